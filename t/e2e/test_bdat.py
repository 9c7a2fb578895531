"""CHUNKING (RFC 3030): BDAT chunks, LAST, sequencing errors that must keep
the session in step, binary-safe sizes and failed transfers."""
import os

from harness import ProtoCase, parse_spool, read_until_closed, strip_received


class BdatCase(ProtoCase):
    def bdat(self, c, chunk, last=False):
        """Sends one chunk; returns the reply."""
        c.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
        return c.reply()

    def stored(self, d, rep):
        env, body = parse_spool(self.spooled(d, self.queued_id(rep)))
        return env, strip_received(body)


class Chunks(BdatCase):
    def test_single_last_chunk(self):
        """One BDAT ... LAST chunk is queued exactly as sent."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        data = b"Subject: bdat\r\n\r\none chunk\r\n"
        _, body = self.stored(d, self.bdat(c, data, last=True))
        self.assertEqual(body, data)

    def test_several_chunks_then_bdat_0_last(self):
        """Chunks get 250 2.0.0 each; BDAT 0 LAST ends the message, which is
        the chunks joined."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        parts = [b"Subject: parts\r\n", b"\r\nfirst ", b"second\r\n", b"third\r\n"]
        for p in parts:
            self.assertReply(self.bdat(c, p), 250, "2.0.0")
        _, body = self.stored(d, self.bdat(c, b"", last=True))
        self.assertEqual(body, b"".join(parts))

    def test_bdat_0_last_alone(self):
        """BDAT 0 LAST as the only chunk queues an empty message."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        _, body = self.stored(d, self.bdat(c, b"", last=True))
        self.assertEqual(body, b"")

    def test_binary_safe(self):
        """Chunk bytes are not interpreted: an end-of-data marker, commands,
        leading dots and NUL bytes inside a chunk are stored as they are and
        nothing in them is run."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        data = (b"Subject: raw\r\n\r\n..dots stay\r\n.\r\n"
                b"MAIL FROM:<evil@attacker.example>\r\nQUIT\r\n"
                b"nul\x00byte\r\n\xff\xfe\r\n")
        self.assertReply(self.bdat(c, data[:40]), 250, "2.0.0")
        _, body = self.stored(d, self.bdat(c, data[40:], last=True))
        self.assertEqual(body, data)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.assertNotIn("evil@attacker.example", d.logtext())

    def test_large_chunk(self):
        """A 300 kB chunk (larger than any read buffer) is stored exactly."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        line = bytes(range(32, 127)) + b"\r\n"
        data = b"Subject: big\r\n\r\n" + line * (300000 // len(line))
        _, body = self.stored(d, self.bdat(c, data, last=True))
        self.assertEqual(body, data)

    def test_pipelined_chunks(self):
        """MAIL, RCPT and three BDAT chunks in one write: every reply arrives
        and the message is whole."""
        d = self.smtpd()
        c = self.open(d)
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
               b"BDAT 5\r\nSubj:BDAT 4\r\n x\r\nBDAT 3 LAST\r\n\r\nz")
        codes = [c.reply()[0] for _ in range(4)]
        self.assertEqual(codes, [250, 250, 250, 250])
        rep = c.reply()
        _, body = self.stored(d, rep)
        self.assertEqual(body, b"Subj: x\r\n\r\nz")

    def test_many_tiny_chunks(self):
        """200 one-octet chunks sent at once."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        data = (b"Subject: t\r\n\r\n" + b"abcdefghij" * 20)[:200]
        c.send(b"".join(b"BDAT 1\r\n" + data[i:i + 1] for i in range(200)))
        for i in range(200):
            self.assertReply(c.reply(), 250, "2.0.0")
        _, body = self.stored(d, self.bdat(c, b"\r\n", last=True))
        self.assertEqual(body, data + b"\r\n")

    def test_lone_lf_stored_as_crlf(self):
        """A LF without CR in a chunk is stored as CRLF, and a CRLF split
        between two chunks stays one CRLF."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.assertReply(self.bdat(c, b"Subject: lf\n\nline1\nab\r"), 250, "2.0.0")
        _, body = self.stored(d, self.bdat(c, b"\ncd\r\n", last=True))
        self.assertEqual(body, b"Subject: lf\r\n\r\nline1\r\nab\r\ncd\r\n")

    def test_bdat_then_data_transactions(self):
        """A BDAT transaction and a DATA transaction in one session."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.queued_id(self.bdat(c, b"Subject: 1\r\n\r\nbdat\r\n", last=True))
        self.start_mail(c)
        self.queued_id(self.send_data(c, b"Subject: 2\r\n\r\ndata\r\n.\r\n"))
        self.wait_queued(d, 2)


class Sequencing(BdatCase):
    def test_bdat_before_mail(self):
        """BDAT before MAIL: 503 5.5.1, its chunk is read and thrown away
        (commands inside it are not run) and the session stays in step."""
        d = self.smtpd()
        c = self.open(d)
        chunk = b"QUIT\r\nMAIL FROM:<x@example.org>\r\n"
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk + b"NOOP\r\n")
        self.assertReply(c.reply(), 503, "5.5.1")
        self.assertReply(c.reply(), 250, "2.0.0")
        self.assertReply(c.cmd("RCPT TO:<b@example.net>"), 503, "5.5.1")
        self.assertNothingQueued(d)

    def test_bdat_last_before_rcpt(self):
        """BDAT LAST after MAIL but before any RCPT: 503 5.5.1, chunk
        consumed; RCPT and a new BDAT then work."""
        d = self.smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
        self.assertReply(self.bdat(c, b"RCPT TO:<z@example.net>\r\n", last=True),
                         503, "5.5.1")
        self.assertReply(c.cmd("RCPT TO:<b@example.net>"), 250, "2.1.5")
        env, body = self.stored(d, self.bdat(c, b"Subject: ok\r\n\r\nx\r\n", last=True))
        self.assertEqual(env["rcpt"], ["<b@example.net>"])

    def test_bdat_before_helo(self):
        """BDAT before HELO: 503 5.5.1, chunk consumed."""
        d = self.smtpd()
        c = self.open(d, ehlo=False)
        self.assertReply(self.bdat(c, b"EHLO evil\r\n"), 503, "5.5.1")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1")

    def test_binary_chunk_out_of_sequence(self):
        """A 100 kB binary chunk sent out of sequence is consumed whole."""
        d = self.smtpd()
        c = self.open(d)
        chunk = bytes(range(256)) * 400
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk + b"NOOP\r\n")
        self.assertReply(c.reply(), 503, "5.5.1")
        self.assertReply(c.reply(), 250, "2.0.0")

    def test_data_during_bdat(self):
        """DATA and MAIL inside a BDAT transfer: 503 5.5.1; the transfer
        can still be finished."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.assertReply(self.bdat(c, b"Subject: x\r\n\r\n"), 250, "2.0.0")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1")
        _, body = self.stored(d, self.bdat(c, b"end\r\n", last=True))
        self.assertEqual(body, b"Subject: x\r\n\r\nend\r\n")

    def test_rset_abandons_transfer(self):
        """RSET in the middle of a BDAT transfer discards it: nothing
        queued, nothing left in tmp/."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.assertReply(self.bdat(c, b"Subject: x\r\n\r\n" + b"p" * 200000), 250, "2.0.0")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(self.bdat(c, b"more", last=True), 503, "5.5.1")
        self.assertNothingQueued(d)

    def test_bad_bdat_syntax(self):
        """BDAT without a valid size: 501 5.5.4."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.assertReply(c.cmd("BDAT abc"), 501, "5.5.4")

    def test_lost_connection_in_chunk(self):
        """A client that vanishes inside a chunk leaves nothing behind."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        c.send(b"BDAT 500000 LAST\r\n" + b"w" * 250000)
        c.close()
        self.wait_log(d, r"smtp disconnect", count=2)
        self.assertNothingQueued(d)


class FailedTransfer(BdatCase):
    def test_oversized_chunk_ends_transfer(self):
        """A chunk that takes the message over limits.message_size gets
        552 5.3.4; the rest of the transfer is refused with 503 5.5.1 (its
        bytes still read); after RSET a new message goes through."""
        d = self.smtpd(limits={"message_size": 1000})
        c = self.open(d)
        self.start_mail(c)
        self.assertReply(self.bdat(c, b"a" * 600), 250, "2.0.0")
        self.assertReply(self.bdat(c, b"b" * 600), 552, "5.3.4")
        self.assertReply(self.bdat(c, b"NOOP\r\n" * 10), 503, "5.5.1")
        self.assertReply(self.bdat(c, b"c" * 10, last=True), 503, "5.5.1")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertNothingQueued(d)
        self.start_mail(c)
        _, body = self.stored(d, self.bdat(c, b"Subject: ok\r\n\r\nok\r\n", last=True))
        self.assertEqual(body, b"Subject: ok\r\n\r\nok\r\n")

    def test_oversized_last_chunk(self):
        """An oversized LAST chunk: 552 5.3.4 and the transaction is over."""
        d = self.smtpd(limits={"message_size": 1000})
        c = self.open(d)
        self.start_mail(c)
        self.assertReply(self.bdat(c, b"x" * 5000, last=True), 552, "5.3.4")
        self.assertNothingQueued(d)
        self.assertReply(c.cmd("RCPT TO:<b@example.net>"), 503, "5.5.1")

    def test_mail_loop_refused(self):
        """101 Received headers sent with BDAT: 554 5.4.6, nothing queued."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        hdrs = b"".join(b"Received: from h%d.example.org; Tue, 1 Jan 2030 "
                        b"00:00:00 +0000\r\n" % i for i in range(101))
        self.assertReply(self.bdat(c, hdrs + b"Subject: l\r\n\r\nx\r\n", last=True),
                         554, "5.4.6")
        self.assertNothingQueued(d)

    def test_mail_loop_split_across_chunks(self):
        """Received headers are counted wherever the chunk boundaries fall:
        101 of them, each split in the middle of 'Received:', are refused
        with 554 5.4.6."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        hdr = b"Received: from h.example.org; Tue, 1 Jan 2030 00:00:00 +0000\r\n"
        data = hdr * 101 + b"Subject: l\r\n\r\nx\r\n"
        cuts = [i * len(hdr) + 4 for i in range(101)]
        pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        c.send(b"".join(b"BDAT %d\r\n" % len(p) + p for p in pieces[:-1]) +
               b"BDAT %d LAST\r\n" % len(pieces[-1]) + pieces[-1])
        reps = [c.reply() for _ in pieces]
        codes = [r[0] for r in reps]
        self.assertTrue(554 in codes, "no 554 5.4.6 among the %d replies; last: %r"
                        % (len(codes), reps[-1]))
        self.assertReply(reps[codes.index(554)], 554, "5.4.6")
        self.assertNotIn(250, codes[codes.index(554):])
        self.assertNothingQueued(d)

    def test_line_length_limit(self):
        """limits.line_length applies to BDAT data: 550 5.6.0."""
        d = self.smtpd(limits={"line_length": 998})
        c = self.open(d)
        self.start_mail(c)
        self.assertReply(self.bdat(c, b"Subject: l\r\n\r\n" + b"k" * 1200 + b"\r\n",
                                   last=True), 550, "5.6.0")
        self.assertNothingQueued(d)

    def test_chunk_timeout(self):
        """A chunk that stops arriving: 421 4.4.2 after limits.data_timeout,
        the connection closes, nothing is left behind."""
        d = self.smtpd(limits={"data_timeout": 1})
        c = self.open(d)
        self.start_mail(c)
        c.send(b"BDAT 1000 LAST\r\n" + b"s" * 100)
        rest = read_until_closed(c, timeout=15)
        self.assertTrue(rest.startswith(b"421 4.4.2 "), rest)
        self.assertNothingQueued(d)


class LineEnds(BdatCase):
    """BDAT follows DATA's line rules (bare_newline in smtpd.conf(5)),
    without the end marker and dot-stuffing."""

    def refused(self, d, chunks):
        """Sends chunks (the last with LAST): the refusal is 550 5.5.2,
        on the chunk it is in; nothing is queued, the session goes on."""
        c = self.open(d)
        self.start_mail(c)
        for i, ch in enumerate(chunks):
            rep = self.bdat(c, ch, last=i == len(chunks) - 1)
            if rep[0] != 250:
                break
        self.assertReply(rep, 550, "5.5.2")
        self.assertNothingQueued(d)
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.start_mail(c)
        qid = self.queued_id(self.bdat(c, b"Subject: ok\r\n\r\nok\r\n",
                                       last=True))
        self.spooled(d, qid)
        os.unlink(os.path.join(d.spool, "queue", qid))
        c.close()

    def test_bare_cr_refused(self):
        """A CR not followed by LF: 550 5.5.2."""
        self.refused(self.smtpd(), [b"Subject: x\r\n\r\nline\rmore\r\n"])

    def test_cr_ending_the_message_refused(self):
        """A chunk ending in CR and then BDAT 0 LAST: that CR is bare."""
        self.refused(self.smtpd(), [b"Subject: x\r\n\r\nline\r", b""])

    def test_smuggling_signatures_refused(self):
        """A '.' line next to a bare LF is refused in BDAT too, split across
        chunks or not; commands after it are never run."""
        d = self.smtpd()
        for sig in (b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r"):
            with self.subTest(sig=sig):
                data = (b"Subject: x\r\n\r\nfirst" + sig +
                        b"MAIL FROM:<evil@attacker.example>\r\n")
                self.refused(d, [data])
                self.refused(d, [data[:20], data[20:22], data[22:]])
        self.assertNotIn("evil@attacker.example", d.logtext())

    def test_bare_lf_refused_in_reject_mode(self):
        """With bare_newline = "reject" a lone LF is refused."""
        d = self.smtpd(config_extra='bare_newline = "reject";')
        self.refused(d, [b"Subject: lf\r\n\r\nline1\nline2\r\n"])
