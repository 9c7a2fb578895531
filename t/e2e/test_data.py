"""Message data with DATA: the end marker, dot-unstuffing, bare CR/LF and
SMTP smuggling, size, loop, line-length and recipient limits, data
timeouts."""
import time

from harness import ProtoCase, parse_spool, read_until_closed, strip_received

class DataCase(ProtoCase):
    def transact(self, d, data, rcpts=("<bob@example.net>",), c=None):
        """One MAIL/RCPT/DATA with raw data (CRLF.CRLF included); the reply
        to the data."""
        c = c or self.open(d)
        self.start_mail(c, rcpts=rcpts)
        return self.send_data(c, data)

    def stored(self, d, rep):
        """(envelope, client data) of the message the reply names."""
        env, body = parse_spool(self.spooled(d, self.queued_id(rep)))
        return env, strip_received(body)


class EndOfData(DataCase):
    def test_message_stored_exactly(self):
        """The queued message is the client's data byte for byte after the
        Received header."""
        d = self.smtpd()
        data = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: t\r\n"
                b"\r\nline 1\r\n\r\n  indented\r\n\tTab\r\nlast\r\n")
        _, body = self.stored(d, self.transact(d, data + b".\r\n"))
        self.assertEqual(body, data)

    def test_dot_unstuffing(self):
        """A leading dot is removed from each line that has one; other dots
        are kept."""
        d = self.smtpd()
        data = (b"Subject: dots\r\n\r\n..\r\n...three\r\n.x\r\n"
                b"mid . dot\r\n .space\r\nend.\r\n.\r\n")
        _, body = self.stored(d, self.transact(d, data))
        self.assertEqual(body, b"Subject: dots\r\n\r\n.\r\n..three\r\nx\r\n"
                               b"mid . dot\r\n .space\r\nend.\r\n")

    def test_only_crlf_dot_crlf_ends(self):
        """' .', '..' and '.x' lines do not end the data; the message ends
        at the first line holding a single dot."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(b"Subject: e\r\n\r\n .\r\n..\r\n.. \r\n")
        c.send(b"still data\r\n.\r\nNOOP\r\n")
        _, body = self.stored(d, c.reply())
        self.assertEqual(body, b"Subject: e\r\n\r\n .\r\n.\r\n. \r\nstill data\r\n")
        self.assertReply(c.reply(), 250, "2.0.0")

    def test_empty_message(self):
        """A lone '.' right after 354 ends an empty message, which is
        queued."""
        d = self.smtpd()
        _, body = self.stored(d, self.transact(d, b".\r\n"))
        self.assertEqual(body, b"")

    def test_eight_bit_data_unchanged(self):
        """With BODY=8BITMIME, 8-bit octets are stored unchanged."""
        d = self.smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME"),
                         250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<b@example.net>"), 250, "2.1.5")
        data = ("Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "\r\nGrüße, ça va? Ω ✓\r\n").encode() + bytes(range(0x80, 0x100)) + b"\r\n"
        env, body = self.stored(d, self.send_data(c, data + b".\r\n"))
        self.assertEqual(body, data)
        self.assertEqual(env.get("body"), "8BITMIME")


class BareLineEnds(DataCase):
    def test_bare_lf_taken_as_crlf(self):
        """A line ending in a bare LF is taken as ending in CRLF and
        stored so; the session goes on."""
        d = self.smtpd()
        c = self.open(d)
        rep = self.transact(d, b"Subject: x\r\n\r\nline one\nline two\r\n.\r\n", c=c)
        _, body = self.stored(d, rep)
        self.assertEqual(body, b"Subject: x\r\n\r\nline one\r\nline two\r\n")
        rep = self.transact(d, b"Subject: ok\r\n\r\nfine\r\n.\r\n", c=c)
        self.queued_id(rep)

    def test_lf_only_message(self):
        """Every line ending in LF, the header's end too, and dot-stuffed
        lines after LF: stored with CRLF and unstuffed; only the CRLF '.'
        CRLF at the end ends the data."""
        d = self.smtpd()
        rep = self.transact(d, b"Subject: x\nFrom: a@example.org\n\n..\n"
                               b"..dot\nend\n\r\n.\r\n")
        _, body = self.stored(d, rep)
        self.assertEqual(body, b"Subject: x\r\nFrom: a@example.org\r\n\r\n"
                               b".\r\n.dot\r\nend\r\n\r\n")

    def test_bare_cr_refused(self):
        """A bare CR in the data: 550 5.5.2, nothing queued."""
        d = self.smtpd()
        rep = self.transact(d, b"Subject: x\r\n\r\nline\rmore\r\n.\r\n")
        self.assertReply(rep, 550, "5.5.2")
        self.assertNothingQueued(d)

    def test_crcrlf_refused(self):
        """CR CR LF is a bare CR followed by CRLF: refused."""
        d = self.smtpd()
        rep = self.transact(d, b"Subject: x\r\n\r\nline\r\r\n.\r\n")
        self.assertReply(rep, 550, "5.5.2")
        self.assertNothingQueued(d)


class RejectMode(DataCase):
    """bare_newline = "reject": every line must end in CRLF."""

    def smtpd(self, **kw):
        kw.setdefault("config_extra", 'bare_newline = "reject";')
        return super().smtpd(**kw)

    def test_bare_lf_refused(self):
        """A bare LF in the data: the data is read to its end, then
        550 5.5.2; nothing is queued and the session goes on."""
        d = self.smtpd()
        c = self.open(d)
        rep = self.transact(d, b"Subject: x\r\n\r\nline one\nline two\r\n.\r\n", c=c)
        self.assertReply(rep, 550, "5.5.2")
        self.assertNothingQueued(d)
        rep = self.transact(d, b"Subject: ok\r\n\r\nfine\r\n.\r\n", c=c)
        self.queued_id(rep)

    def test_bare_lf_in_header_refused(self):
        """A bare LF ending a header line is refused the same way."""
        d = self.smtpd()
        rep = self.transact(d, b"Subject: x\nFrom: a@example.org\r\n\r\nb\r\n.\r\n")
        self.assertReply(rep, 550, "5.5.2")
        self.assertNothingQueued(d)

    def test_bare_cr_refused(self):
        d = self.smtpd()
        rep = self.transact(d, b"Subject: x\r\n\r\nline\rmore\r\n.\r\n")
        self.assertReply(rep, 550, "5.5.2")
        self.assertNothingQueued(d)

    def test_crlf_message_stored(self):
        d = self.smtpd()
        data = b"Subject: x\r\n\r\n..dot\r\nline\r\n"
        _, body = self.stored(d, self.transact(d, data + b".\r\n"))
        self.assertEqual(body, b"Subject: x\r\n\r\n.dot\r\nline\r\n")


class Smuggling(DataCase):
    """SMTP smuggling: a message whose data holds a fake end of data
    followed by SMTP commands.  The server must take all of it as one
    (refused) message and run none of the commands."""

    SMUGGLED = (b"MAIL FROM:<evil@attacker.example>\r\n"
                b"RCPT TO:<victim@example.net>\r\nDATA\r\n"
                b"From: ceo@example.net\r\nSubject: smuggled\r\n\r\n"
                b"smuggled body\r\n.\r\n")

    # One daemon for all the variants: each is a session of its own, and
    # none may queue anything or leave the smuggled sender in the log.
    SHARED = {"config_extra": ""}

    def check_smuggle(self, fake_end, smuggled=None, pieces=None):
        d = self.shared_smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.assertEqual(c.cmd("DATA")[0], 354)
        data = (b"From: a@example.org\r\nSubject: real\r\n\r\nfirst part" +
                fake_end + (smuggled or self.SMUGGLED))
        if pieces:
            # Deliver the data in pieces so that the fake end straddles reads.
            cut = [0] + pieces + [len(data)]
            for a, b in zip(cut, cut[1:]):
                c.send(data[a:b])
                time.sleep(0.05)
        else:
            c.send(data)
        c.send(b"VRFY marker\r\n")
        first = c.reply()
        second = c.reply()
        self.assertReply(first, 550, "5.5.2")
        self.assertReply(second, 252, "2.",
                         "a reply to a smuggled command came before VRFY's: %r"
                         % (second,))
        self.assertNothingQueued(d)
        c.cmd("QUIT")
        log = d.logtext()
        self.assertNotIn("evil@attacker.example", log)
        self.assertNotRegex(log, r"smtp queued id=")

    def test_lf_dot_crlf(self):
        """Fake end '\\n.\\r\\n' then smuggled commands: one 550 5.5.2,
        the commands are not run, nothing queued."""
        self.check_smuggle(b"\n.\r\n")

    def test_cr_dot_crlf(self):
        """Fake end '\\r.\\r\\n' then smuggled commands."""
        self.check_smuggle(b"\r.\r\n")

    def test_crlf_dot_cr(self):
        """Fake end '\\r\\n.\\r' then smuggled commands."""
        self.check_smuggle(b"\r\n.\r")

    def test_lf_dot_lf(self):
        """Fake end '\\n.\\n' then smuggled commands."""
        self.check_smuggle(b"\n.\n")

    def test_lf_dot_lf_with_lf_commands(self):
        """Fake end '\\n.\\n' then smuggled commands ending in bare LF, the
        real end following."""
        self.check_smuggle(
            b"\n.\n", b"MAIL FROM:<evil@attacker.example>\n"
                      b"RCPT TO:<victim@example.net>\nDATA\nsmuggled\n.\n"
                      b"\r\n.\r\n")

    def test_lf_dot_crlf_split_across_reads(self):
        """The fake end split over several TCP segments changes nothing."""
        base = len(b"From: a@example.org\r\nSubject: real\r\n\r\nfirst part")
        self.check_smuggle(b"\n.\r\n", pieces=[base, base + 1, base + 2, base + 3])

    def test_cr_dot_crlf_split_across_reads(self):
        """'\\r' and '.\\r\\n' in separate segments: still refused."""
        base = len(b"From: a@example.org\r\nSubject: real\r\n\r\nfirst part")
        self.check_smuggle(b"\r.\r\n", pieces=[base + 1, base + 3])

    def test_crlf_dot_lf(self):
        """Fake end '\\r\\n.\\n' then smuggled commands."""
        self.check_smuggle(b"\r\n.\n")

    def test_cr_dot_cr(self):
        """Fake end '\\r.\\r' then smuggled commands."""
        self.check_smuggle(b"\r.\r")

    def test_lf_dot_cr(self):
        """Fake end '\\n.\\r' then smuggled commands."""
        self.check_smuggle(b"\n.\r")

    def test_lf_dot_lf_lf_commands_crlf_end(self):
        """Fake end '\\n.\\n', smuggled commands and data in LF lines,
        then the real end right after a LF line ('\\n.\\r\\n' is not an
        end either): everything up to the real CRLF '.' CRLF is one refused
        message."""
        self.check_smuggle(
            b"\n.\n", b"MAIL FROM:<evil@attacker.example>\n"
                      b"RCPT TO:<victim@example.net>\nDATA\nsmuggled\n.\r\n"
                      b"QUIT\r\n.\r\n")

    def test_lf_dot_crlf_split_byte_by_byte(self):
        """'\\n.\\r\\n' sent one byte per segment."""
        base = len(b"From: a@example.org\r\nSubject: real\r\n\r\nfirst part")
        self.check_smuggle(b"\n.\r\n", pieces=list(range(base - 1, base + 6)))


class SmugglingRejectMode(Smuggling):
    """The same signatures with bare_newline = "reject"."""
    SHARED = {"config_extra": 'bare_newline = "reject";'}


class SizeLimit(DataCase):
    LIMIT = 10000

    def message(self, size):
        head = b"Subject: size\r\n\r\n"
        line = b"x" * 98 + b"\r\n"
        body = head + line * ((size - len(head)) // 100)
        rest = size - len(body)
        if rest:
            body += b"y" * (rest - 2) + b"\r\n" if rest >= 2 else b""
        assert len(body) == size, (len(body), size)
        return body

    def test_message_at_limit_accepted(self):
        """A message of exactly limits.message_size octets is accepted."""
        d = self.smtpd(limits={"message_size": self.LIMIT})
        data = self.message(self.LIMIT)
        _, body = self.stored(d, self.transact(d, data + b".\r\n"))
        self.assertEqual(body, data)

    def test_message_over_limit_refused(self):
        """One octet over the limit: 552 5.3.4 after the data, nothing
        queued, the session goes on."""
        d = self.smtpd(limits={"message_size": self.LIMIT})
        c = self.open(d)
        rep = self.transact(d, self.message(self.LIMIT + 1) + b".\r\n", c=c)
        self.assertReply(rep, 552, "5.3.4")
        self.assertNothingQueued(d)
        self.queued_id(self.transact(d, b"small\r\n.\r\n", c=c))

    def test_large_message_read_and_refused(self):
        """A 2 MB message against a 10 kB limit is read to its end (the
        session stays in step) and refused; no partial file remains."""
        d = self.smtpd(limits={"message_size": self.LIMIT})
        c = self.open(d)
        self.start_mail(c)
        self.assertEqual(c.cmd("DATA")[0], 354)
        chunk = (b"z" * 1022 + b"\r\n") * 64
        for _ in range(32):
            c.send(chunk)
        c.send(b".\r\nNOOP\r\n")
        self.assertReply(c.reply(), 552, "5.3.4")
        self.assertReply(c.reply(), 250, "2.0.0")
        self.assertNothingQueued(d)

    def test_dot_stuffing_not_counted(self):
        """The size is that of the message, not of its dot-stuffed form on
        the wire."""
        d = self.smtpd(limits={"message_size": self.LIMIT})
        head = b"Subject: size\r\n\r\n"
        line = b"." + b"x" * 97 + b"\r\n"
        n = (self.LIMIT - len(head)) // 100
        data = head + line * n
        data += b"y" * (self.LIMIT - len(data) - 2) + b"\r\n"
        self.assertEqual(len(data), self.LIMIT)
        wire = data.replace(b"\r\n.", b"\r\n..")
        self.assertGreater(len(wire), self.LIMIT)
        _, body = self.stored(d, self.transact(d, wire + b".\r\n"))
        self.assertEqual(body, data)


class MailLoop(DataCase):
    def headers(self, n):
        return b"".join(b"Received: from hop%d.example.org by hop%d.example.net;"
                        b" Tue, 1 Jan 2030 00:00:00 +0000\r\n" % (i, i + 1)
                        for i in range(n))

    def test_101_received_headers_refused(self):
        """101 Received headers from the client: 554 5.4.6, nothing queued."""
        d = self.smtpd()
        rep = self.transact(d, self.headers(101) + b"Subject: loop\r\n\r\nb\r\n.\r\n")
        self.assertReply(rep, 554, "5.4.6")
        self.assertNothingQueued(d)

    def test_99_received_headers_accepted(self):
        """99 Received headers (100 with ours) are not a loop."""
        d = self.smtpd()
        data = self.headers(99) + b"Subject: long path\r\n\r\nb\r\n"
        _, body = self.stored(d, self.transact(d, data + b".\r\n"))
        self.assertEqual(body, data)

    def test_received_in_body_not_counted(self):
        """'Received:' lines after the header are text, not trace fields."""
        d = self.smtpd()
        data = b"Subject: quoted\r\n\r\n" + self.headers(150)
        _, body = self.stored(d, self.transact(d, data + b".\r\n"))
        self.assertEqual(body, data)

    def test_folded_received_headers_counted(self):
        """Folded (multi-line) Received headers count once each: 101 of them
        are refused."""
        d = self.smtpd()
        hdrs = b"".join(b"Received: from hop%d.example.org\r\n\tby hop.example.net;"
                        b" Tue, 1 Jan 2030 00:00:00 +0000\r\n" % i
                        for i in range(101))
        rep = self.transact(d, hdrs + b"Subject: loop\r\n\r\nb\r\n.\r\n")
        self.assertReply(rep, 554, "5.4.6")


class LongLines(DataCase):
    def test_long_lines_pass_unchanged_by_default(self):
        """Lines of 1500 and 100 000 octets (one dot-stuffed) are accepted
        and stored unchanged when limits.line_length is not set."""
        d = self.smtpd()
        data = (b"Subject: long\r\n\r\n" + b"a" * 1500 + b"\r\n" +
                b"." + b"b" * 99999 + b"\r\nend\r\n")
        wire = data.replace(b"\r\n.", b"\r\n..") + b".\r\n"
        _, body = self.stored(d, self.transact(d, wire))
        self.assertEqual(body, data)

    def test_line_length_limit(self):
        """With limits.line_length = 998: a 998-octet line passes, a
        999-octet line gets 550 5.6.0 and nothing is queued."""
        d = self.smtpd(limits={"line_length": 998})
        c = self.open(d)
        data = b"Subject: l\r\n\r\n" + b"c" * 998 + b"\r\n"
        rep = self.transact(d, data + b".\r\n", c=c)
        _, body = self.stored(d, rep)
        self.assertEqual(body, data)
        n = len(self.wait_queued(d, 1))
        rep = self.transact(d, b"Subject: l\r\n\r\n" + b"c" * 999 + b"\r\n.\r\n", c=c)
        self.assertReply(rep, 550, "5.6.0")
        self.assertEqual(len(d.queued()), n)
        self.assertEqual(d.tmpfiles(), [])

    def test_long_header_line_limit(self):
        """The line limit applies to header lines too."""
        d = self.smtpd(limits={"line_length": 998})
        rep = self.transact(d, b"Subject: " + b"h" * 2000 + b"\r\n\r\nb\r\n.\r\n")
        self.assertReply(rep, 550, "5.6.0")
        self.assertNothingQueued(d)


class Recipients(DataCase):
    def test_150_recipients(self):
        """150 recipients in one transaction are all accepted and kept in
        order."""
        d = self.smtpd()
        rcpts = ["<user%03d@example.net>" % i for i in range(150)]
        env, _ = self.stored(d, self.transact(d, b"Subject: many\r\n\r\nx\r\n.\r\n",
                                              rcpts=rcpts))
        self.assertEqual(env["rcpt"], rcpts)

    def test_recipient_limit(self):
        """With limits.recipients = 100 the 101st RCPT gets 452 4.5.3; the
        message goes to the first 100."""
        d = self.smtpd(limits={"recipients": 100})
        c = self.open(d)
        rcpts = ["<user%03d@example.net>" % i for i in range(100)]
        self.start_mail(c, rcpts=rcpts)
        self.assertReply(c.cmd("RCPT TO:<extra@example.net>"), 452, "4.5.3")
        self.assertReply(c.cmd("RCPT TO:<extra2@example.net>"), 452, "4.5.3")
        env, _ = self.stored(d, self.send_data(c, b"Subject: x\r\n\r\nx\r\n.\r\n"))
        self.assertEqual(env["rcpt"], rcpts)

    def test_limit_is_per_transaction(self):
        """The recipient count starts again with each transaction."""
        d = self.smtpd(limits={"recipients": 100})
        c = self.open(d)
        for t in range(2):
            rcpts = ["<t%du%03d@example.net>" % (t, i) for i in range(100)]
            self.start_mail(c, rcpts=rcpts)
            self.queued_id(self.send_data(c, b"x\r\n.\r\n"))


class DataTimeout(DataCase):
    def test_data_timeout(self):
        """A client that stops sending in the middle of the data gets
        421 4.4.2 after limits.data_timeout and is disconnected; nothing is
        queued or left in tmp/."""
        d = self.smtpd(limits={"data_timeout": 1})
        c = self.open(d)
        self.start_mail(c)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(b"Subject: slow\r\n\r\nsome text\r\n")
        c.sock.settimeout(15)
        rest = read_until_closed(c, timeout=15)
        self.assertTrue(rest.startswith(b"421 4.4.2 "), rest)
        self.assertNothingQueued(d)

    def test_lost_connection_in_data(self):
        """A client that disconnects in the middle of the data leaves no
        message and no temporary file."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(b"Subject: cut\r\n\r\n" + b"q" * 300000)
        c.close()
        self.wait_log(d, r"smtp disconnect", count=2)
        self.assertNothingQueued(d)
