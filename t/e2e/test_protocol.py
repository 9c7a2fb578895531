"""The SMTP command dialogue: greeting, EHLO, each command's replies,
sequencing, syntax errors, error and idle limits, web requests and
PIPELINING, driven over raw sockets."""
import os
import socket
import subprocess

from harness import (SMTPD, ProtoCase, Conn, enhanced, parse_spool,
                     read_until_closed, split_replies)


class Greeting(ProtoCase):
    def test_greeting_names_host(self):
        """The 220 greeting carries the configured hostname."""
        d = self.smtpd()
        c = self.track(Conn(d.host, d.port))
        code, lines = c.reply()
        self.assertEqual(code, 220)
        self.assertTrue(lines[-1].startswith("220 mx.test.example"), lines)

    def test_ehlo_advertises_extensions(self):
        """EHLO lists PIPELINING, SIZE <max>, 8BITMIME, ENHANCEDSTATUSCODES,
        SMTPUTF8 and CHUNKING; SIZE is limits.message_size."""
        d = self.smtpd(limits={"message_size": 123456})
        c = self.open(d, ehlo=False)
        code, lines = c.cmd("EHLO client.example.org")
        self.assertEqual(code, 250)
        self.assertTrue(lines[0].startswith("250-mx.test.example"), lines)
        kw = [l[4:] for l in lines[1:]]
        for k in ("PIPELINING", "SIZE 123456", "8BITMIME",
                  "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING"):
            self.assertIn(k, kw)
        self.assertTrue(all(l.startswith("250-") for l in lines[:-1]), lines)
        self.assertTrue(lines[-1].startswith("250 "), lines)

    def test_helo_plain_reply(self):
        """HELO gets a one-line 250 naming the server, no extension list."""
        d = self.smtpd()
        c = self.open(d, ehlo=False)
        code, lines = c.cmd("HELO client.example.org")
        self.assertEqual(code, 250)
        self.assertEqual(len(lines), 1)
        self.assertIn("mx.test.example", lines[0])

    def test_helo_ehlo_need_a_name(self):
        """HELO and EHLO without an argument: 501 5.5.4."""
        d = self.smtpd()
        c = self.open(d, ehlo=False)
        self.assertReply(c.cmd("EHLO"), 501, "5.5.4")
        self.assertReply(c.cmd("HELO"), 501, "5.5.4")
        # Still before HELO: a transaction is refused.
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1")


class SimpleCommands(ProtoCase):
    def test_noop_rset_vrfy_help_quit(self):
        """NOOP/RSET 250 2.0.0, VRFY 252 2.x.x, HELP 214, QUIT 221 2.0.0
        and the server closes."""
        d = self.smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("VRFY postmaster"), 252, "2.")
        code, lines = c.cmd("HELP")
        self.assertEqual(code, 214, lines)
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
        self.assertTrue(c.closed())

    def test_commands_are_case_insensitive(self):
        """Verbs and FROM:/TO: are matched without regard to case."""
        d = self.smtpd()
        c = self.open(d, ehlo=False)
        self.assertEqual(c.cmd("ehlo client.example.org")[0], 250)
        self.assertReply(c.cmd("mail from:<a@example.org>"), 250, "2.1.0")
        self.assertReply(c.cmd("rcpt to:<b@example.net>"), 250, "2.1.5")
        self.assertEqual(c.cmd("data")[0], 354)
        c.send("Subject: x\r\n\r\nhi\r\n.\r\n")
        self.queued_id(c.reply())

    def test_vrfy_works_before_helo(self):
        """VRFY needs no HELO and answers 252 (never verifies)."""
        d = self.smtpd()
        c = self.open(d, ehlo=False)
        self.assertReply(c.cmd("VRFY bob"), 252, "2.")

    def test_rset_abandons_transaction(self):
        """After RSET, RCPT needs a new MAIL (503 5.5.1)."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("RCPT TO:<x@example.net>"), 503, "5.5.1")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")


class Sequence(ProtoCase):
    def test_mail_before_helo(self):
        """MAIL before HELO/EHLO: 503 5.5.1."""
        d = self.smtpd()
        c = self.open(d, ehlo=False)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1")

    def test_rcpt_before_mail(self):
        """RCPT without MAIL: 503 5.5.1."""
        d = self.smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("RCPT TO:<b@example.net>"), 503, "5.5.1")

    def test_data_before_rcpt(self):
        """DATA without MAIL, and DATA with MAIL but no RCPT: 503 5.5.1."""
        d = self.smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")

    def test_nested_mail(self):
        """A second MAIL inside a transaction: 503 5.5.1."""
        d = self.smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
        self.assertReply(c.cmd("MAIL FROM:<b@example.org>"), 503, "5.5.1")

    def test_data_after_refused_rcpt_only(self):
        """When every RCPT was refused, DATA is 503 5.5.1 and nothing is
        queued."""
        d = self.smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<bad address>"), 501, "5.1.3")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertNothingQueued(d)

    def test_ehlo_resets_transaction(self):
        """EHLO in the middle of a transaction starts over."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.ehlo(c)
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")

    def test_several_transactions_per_session(self):
        """One session can queue several messages, each with its own
        envelope."""
        d = self.smtpd()
        c = self.open(d)
        ids = []
        for i in range(3):
            self.start_mail(c, "<s%d@example.org>" % i, ["<r%d@example.net>" % i])
            ids.append(self.queued_id(self.send_data(
                c, b"Subject: %d\r\n\r\nbody\r\n.\r\n" % i)))
        q = self.wait_queued(d, 3)
        self.assertEqual(sorted(q), sorted(ids))
        for i, qid in enumerate(ids):
            env, _ = parse_spool(q[qid])
            self.assertEqual(env["from"], "<s%d@example.org>" % i)
            self.assertEqual(env["rcpt"], ["<r%d@example.net>" % i])


class Syntax(ProtoCase):
    # Each test is a session of its own: they share one daemon.
    def test_unknown_command(self):
        """An unknown verb: 500 5.5.2; the session goes on."""
        d = self.shared_smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("FROB it"), 500, "5.5.2")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_command_line_limit_512(self):
        """A command line of 512 octets (CRLF included) is read; 513 is
        500 5.5.2; the session stays in step."""
        d = self.shared_smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("NOOP " + "x" * (512 - 7)), 250, "2.0.0")
        self.assertReply(c.cmd("NOOP " + "x" * (513 - 7)), 500, "5.5.2")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_huge_command_line(self):
        """A 100 000-octet line (bigger than any input buffer) gets one
        500 5.5.2 and the next command is understood."""
        d = self.shared_smtpd()
        c = self.open(d)
        c.send("NOOP " + "y" * 100000 + "\r\nRSET\r\n")
        self.assertReply(c.reply(), 500, "5.5.2")
        self.assertReply(c.reply(), 250, "2.0.0")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_bad_sender(self):
        """Malformed MAIL FROM paths: 501 5.1.7."""
        d = self.shared_smtpd()
        c = self.open(d)
        for path in ("<alice@example.org", "alice@example.org>", "<alice>",
                     "<alice@>", "<@example.org>", "<a..b@example.org>",
                     "<alice@exa mple.org>", "<alice@-example.org>"):
            with self.subTest(path=path):
                self.assertReply(c.cmd("MAIL FROM:" + path), 501, "5.1.7")
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250, "2.1.0")

    def test_mail_without_from(self):
        """MAIL without FROM: is a syntax error 501 (5.5.4 or 5.1.7)."""
        d = self.shared_smtpd()
        c = self.open(d)
        rep = c.cmd("MAIL <alice@example.org>")
        self.assertEqual(rep[0], 501, rep)
        self.assertIn(enhanced(rep[1]), ("5.5.4", "5.1.7"))

    def test_bad_recipient(self):
        """Malformed RCPT TO paths: 501 5.1.3."""
        d = self.shared_smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
        for path in ("<bob@example.net", "<>", "<bob>", "<bob@@example.net>",
                     "<bob@example..net>", "<\"unterminated@example.net>"):
            with self.subTest(path=path):
                self.assertReply(c.cmd("RCPT TO:" + path), 501, "5.1.3")
        self.assertReply(c.cmd("RCPT TO:<bob@example.net>"), 250, "2.1.5")

    def test_rcpt_without_to(self):
        """RCPT without TO: is a 501."""
        d = self.shared_smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
        rep = c.cmd("RCPT <bob@example.net>")
        self.assertEqual(rep[0], 501, rep)
        self.assertIn(enhanced(rep[1]), ("5.5.4", "5.1.3"))

    def test_data_with_argument(self):
        """DATA takes no argument: 501 5.5.4."""
        d = self.shared_smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.assertReply(c.cmd("DATA now"), 501, "5.5.4")

    def test_unknown_parameters(self):
        """Unknown MAIL and RCPT parameters: 555 5.5.4."""
        d = self.shared_smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> FROB=1"), 555, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> BODY=BINARYMIME"),
                         555, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<b@example.net> FROB=2"), 555, "5.5.4")

    def test_bad_size_parameter(self):
        """SIZE=abc and SIZE without a value: 501 5.5.4."""
        d = self.shared_smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE=abc"), 501, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE"), 501, "5.5.4")

    def test_parameters_need_ehlo(self):
        """After plain HELO, ESMTP parameters are refused (555 5.5.4)."""
        d = self.shared_smtpd()
        c = self.open(d, ehlo=False)
        self.assertEqual(c.cmd("HELO client.example.org")[0], 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE=10"), 555, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")

    def test_nul_in_command(self):
        """A NUL byte in a command line is refused with 500 5.5.2."""
        d = self.shared_smtpd()
        c = self.open(d)
        c.send(b"NOOP a\x00b\r\n")
        self.assertReply(c.reply(), 500, "5.5.2")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")


class EnhancedCodes(ProtoCase):
    def test_every_reply_has_an_enhanced_code(self):
        """Across a session touching every command and error, each reply
        other than the greeting, HELO/EHLO, 354 and 214 carries an RFC 3463
        code whose class matches the reply code."""
        d = self.smtpd(limits={"message_size": 1000})
        c = self.open(d)
        script = ["NOOP", "RSET", "VRFY x", "VRFY", "EXPN list", "FROB",
                  "RCPT TO:<b@example.net>", "DATA",
                  "MAIL FROM:<a@example.org> SIZE=5000",
                  "MAIL FROM:<a@example.org> XYZ=1",
                  "MAIL FROM:<a@@example.org>",
                  "MAIL FROM:<a@example.org>", "MAIL FROM:<a@example.org>",
                  "RCPT TO:<b@@example.net>", "RCPT TO:<b@example.net> XYZ=1",
                  "RCPT TO:<b@example.net>", "DATA x", "RSET",
                  "NOOP " + "z" * 600]
        for line in script:
            with self.subTest(cmd=line[:40]):
                code, lines = c.cmd(line)
                e = enhanced(lines)
                self.assertIsNotNone(e, lines)
                self.assertEqual(e[0], str(code)[0], lines)
        self.start_mail(c)
        code, lines = self.send_data(c, b"x" * 2000 + b"\r\n.\r\n")
        self.assertEqual(enhanced(lines)[0], str(code)[0], lines)
        self.start_mail(c)
        code, lines = self.send_data(c, b"small\r\n.\r\n")
        self.assertEqual(enhanced(lines), "2.0.0", lines)
        code, lines = c.cmd("QUIT")
        self.assertEqual(enhanced(lines), "2.0.0", lines)


class Addresses(ProtoCase):
    # Sessions of their own, messages found by their ids: one daemon for
    # all but the test with a size limit.
    def envelope_of(self, d, sender, rcpts, utf8=False):
        c = self.open(d)
        self.assertReply(c.cmd("MAIL FROM:" + sender +
                               (" SMTPUTF8" if utf8 else "")), 250, "2.1.0")
        for r in rcpts:
            self.assertReply(c.cmd("RCPT TO:" + r), 250, "2.1.5")
        qid = self.queued_id(self.send_data(c, b"Subject: a\r\n\r\nb\r\n.\r\n"))
        env, _ = parse_spool(self.spooled(d, qid))
        return env

    def test_quoted_local_parts(self):
        """Quoted local parts (spaces, '>' and escaped quotes) are accepted
        and kept as written."""
        d = self.shared_smtpd()
        env = self.envelope_of(d, '<"john doe"@example.org>',
                               ['<"odd>name"@example.net>',
                                '<"a\\"b"@example.net>'])
        self.assertEqual(env["from"], '<"john doe"@example.org>')
        self.assertEqual(env["rcpt"], ['<"odd>name"@example.net>',
                                       '<"a\\"b"@example.net>'])

    def test_ip_literals(self):
        """IPv4 and IPv6 address literals are accepted as domains."""
        d = self.shared_smtpd()
        env = self.envelope_of(d, "<a@[192.0.2.1]>",
                               ["<b@[192.0.2.2]>", "<c@[IPv6:2001:db8::1]>"])
        self.assertEqual(env["from"], "<a@[192.0.2.1]>")
        self.assertEqual(env["rcpt"], ["<b@[192.0.2.2]>",
                                       "<c@[IPv6:2001:db8::1]>"])

    def test_malformed_ip_literals_refused(self):
        """Address literals that are neither IPv4, IPv6 nor a tagged
        general literal (RFC 5321 4.1.3) are refused with 501 5.1.3."""
        d = self.shared_smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
        for lit in ("[300.1.2.3]", "[192.0.2]", "[example]",
                    "[IPv6:2001:db8::zz]"):
            with self.subTest(literal=lit):
                self.assertReply(c.cmd("RCPT TO:<b@%s>" % lit), 501, "5.1.3")

    def test_source_route_ignored(self):
        """A source route is accepted and dropped: only the mailbox is
        kept."""
        d = self.shared_smtpd()
        env = self.envelope_of(d, "<@relay.example.org:a@example.org>",
                               ["<@one.example,@two.example:b@example.net>"])
        self.assertEqual(env["from"], "<a@example.org>")
        self.assertEqual(env["rcpt"], ["<b@example.net>"])

    def test_null_sender(self):
        """MAIL FROM:<> is the null sender, stored as 'from <>'."""
        d = self.shared_smtpd()
        env = self.envelope_of(d, "<>", ["<b@example.net>"])
        self.assertEqual(env["from"], "<>")

    def test_postmaster_without_domain(self):
        """RCPT TO:<Postmaster> needs no domain (RFC 5321 4.1.1.3)."""
        d = self.shared_smtpd()
        env = self.envelope_of(d, "<a@example.org>", ["<Postmaster>"])
        self.assertEqual(len(env["rcpt"]), 1)
        self.assertTrue(env["rcpt"][0].lower().startswith("<postmaster"),
                        env["rcpt"])

    def test_utf8_address_needs_smtputf8(self):
        """A non-ASCII address without SMTPUTF8: 553 5.6.7 (MAIL and RCPT)."""
        d = self.shared_smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("MAIL FROM:<jörg@exämple.org>"), 553, "5.6.7")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<用户@例子.广告>"), 553, "5.6.7")
        self.assertReply(c.cmd("RCPT TO:<b@example.net>"), 250, "2.1.5")

    def test_utf8_address_with_smtputf8(self):
        """With MAIL ... SMTPUTF8, UTF-8 addresses are accepted, stored as
        UTF-8, and the envelope says smtputf8."""
        d = self.shared_smtpd()
        env = self.envelope_of(d, "<jörg@exämple.org>", ["<用户@例子.广告>"],
                               utf8=True)
        self.assertEqual(env["from"], "<jörg@exämple.org>")
        self.assertEqual(env["rcpt"], ["<用户@例子.广告>"])
        self.assertIn("smtputf8", env)

    def test_invalid_utf8_refused(self):
        """Bytes that are not UTF-8 in an address are refused even with
        SMTPUTF8."""
        d = self.shared_smtpd()
        c = self.open(d)
        c.send(b"MAIL FROM:<j\xc3\x28rg@example.org> SMTPUTF8\r\n")
        code, lines = c.reply()
        self.assertIn(code, (501, 553), lines)
        self.assertEqual(enhanced(lines)[0], "5", lines)

    def test_body_and_size_parameters(self):
        """BODY=8BITMIME and BODY=7BIT are accepted and recorded; SIZE= under
        the limit is accepted."""
        d = self.shared_smtpd()
        for body in ("8BITMIME", "7BIT"):
            with self.subTest(body=body):
                c = self.open(d)
                self.assertReply(c.cmd("MAIL FROM:<a@example.org> BODY=%s "
                                       "SIZE=100" % body), 250, "2.1.0")
                self.assertReply(c.cmd("RCPT TO:<b@example.net>"), 250, "2.1.5")
                qid = self.queued_id(self.send_data(c, b"x\r\n.\r\n"))
                env, _ = parse_spool(self.spooled(d, qid))
                self.assertEqual(env.get("body"), body)

    def test_declared_size_over_limit(self):
        """SIZE= over limits.message_size is refused at MAIL: 552 5.3.4."""
        d = self.smtpd(limits={"message_size": 10000})
        c = self.open(d)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE=10001"), 552, "5.3.4")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE=10000"), 250, "2.1.0")


class ErrorLimit(ProtoCase):
    def test_too_many_errors_closes(self):
        """With limits.errors = 3, the third error reply is followed by 421
        and the connection is closed."""
        d = self.smtpd(limits={"errors": 3})
        c = self.open(d)
        self.assertReply(c.cmd("FROB 1"), 500, "5.5.2")
        self.assertReply(c.cmd("RCPT TO:<x@example.net>"), 503, "5.5.1")
        self.assertReply(c.cmd("FROB 3"), 500, "5.5.2")
        code, lines = c.reply()
        self.assertEqual(code, 421, lines)
        self.assertEqual(enhanced(lines)[0], "4", lines)
        self.assertTrue(c.closed())

    def test_good_commands_do_not_count(self):
        """Successful commands between errors do not trigger the limit
        early."""
        d = self.smtpd(limits={"errors": 3})
        c = self.open(d)
        for _ in range(2):
            self.assertReply(c.cmd("FROB"), 500, "5.5.2")
            for _ in range(5):
                self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")


class IdleTimeout(ProtoCase):
    def test_command_timeout(self):
        """An idle client gets 421 4.4.2 after limits.command_timeout and is
        disconnected."""
        d = self.smtpd(limits={"command_timeout": 1})
        c = self.open(d)
        c.sock.settimeout(15)
        self.assertReply(c.reply(), 421, "4.4.2")
        self.assertTrue(c.closed())
        self.assertRegex(d.logtext(), r"disconnect reason=timeout")

    def test_timeout_mid_line(self):
        """Half a command line and then silence: 421 4.4.2 and close."""
        d = self.smtpd(limits={"command_timeout": 1})
        c = self.open(d)
        c.send("MAIL FROM:<a@exa")
        c.sock.settimeout(15)
        self.assertReply(c.reply(), 421, "4.4.2")
        self.assertTrue(c.closed())

    def test_timeout_before_helo(self):
        """A client that never says HELO is timed out the same way."""
        d = self.smtpd(limits={"command_timeout": 1})
        c = self.open(d, ehlo=False)
        c.sock.settimeout(15)
        self.assertReply(c.reply(), 421, "4.4.2")
        self.assertTrue(c.closed())


class WebRequests(ProtoCase):
    def test_http_verbs_close_without_reply(self):
        """GET, POST, CONNECT, HEAD, PUT, OPTIONS: the server closes the
        connection at once and writes nothing after its greeting."""
        d = self.smtpd()
        for req in ("GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    "POST /submit HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
                    "CONNECT mail.example.org:25 HTTP/1.1\r\n\r\n",
                    "HEAD / HTTP/1.0\r\n\r\n", "PUT /x HTTP/1.1\r\n\r\n",
                    "OPTIONS * HTTP/1.1\r\n\r\n", "get / HTTP/1.1\r\n\r\n"):
            with self.subTest(req=req.split(" ")[0]):
                c = self.open(d, ehlo=False)
                c.send(req)
                self.assertEqual(read_until_closed(c, timeout=10), b"")
        self.assertIn("web request", d.logtext())

    def test_http_after_ehlo(self):
        """A web verb after EHLO also ends the session without a reply."""
        d = self.smtpd()
        c = self.open(d)
        c.send("POST / HTTP/1.1\r\n\r\nNOOP\r\n")
        self.assertEqual(read_until_closed(c, timeout=10), b"")


class Pipelining(ProtoCase):
    def recv_once(self, c, timeout=10):
        c.sock.settimeout(timeout)
        return c.sock.recv(65536)

    def test_group_replies_in_one_segment(self):
        """EHLO, MAIL, RCPT, RCPT, DATA sent in one write: all five replies
        come back together in a single read."""
        d = self.smtpd()
        c = self.open(d, ehlo=False)
        c.send("EHLO client.example.org\r\nMAIL FROM:<a@example.org>\r\n"
               "RCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n")
        data = self.recv_once(c)
        reps = split_replies(data)
        self.assertEqual([r[0] for r in reps], [250, 250, 250, 250, 354], data)
        self.assertTrue(data.endswith(b"\r\n"), data)
        c.send("Subject: p\r\n\r\npipelined\r\n.\r\nQUIT\r\n")
        data = read_until_closed(c)
        reps = split_replies(data)
        self.assertEqual([r[0] for r in reps], [250, 221], data)
        self.wait_queued(d, 1)

    def test_transaction_group_one_segment(self):
        """MAIL, RCPT, RCPT, NOOP (no DATA) in one write: four replies in one
        read, with no stall waiting for more input."""
        d = self.smtpd()
        c = self.open(d)
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
               "RCPT TO:<bad>\r\nNOOP\r\n")
        data = self.recv_once(c)
        self.assertEqual([r[0] for r in split_replies(data)],
                         [250, 250, 501, 250], data)

    def test_whole_session_in_one_write(self):
        """A complete session, message and QUIT included, sent at once:
        every reply in order and the message queued."""
        d = self.smtpd()
        c = self.track(Conn(d.host, d.port))
        c.send("EHLO client.example.org\r\nMAIL FROM:<a@example.org>\r\n"
               "RCPT TO:<b@example.net>\r\nDATA\r\nSubject: all\r\n\r\n"
               "at once\r\n.\r\nMAIL FROM:<c@example.org>\r\n"
               "RCPT TO:<d@example.net>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n")
        data = read_until_closed(c)
        self.assertEqual([r[0] for r in split_replies(data)],
                         [220, 250, 250, 250, 354, 250, 250, 250, 354, 250, 221],
                         data)
        self.wait_queued(d, 2)

    def test_large_group_all_replies(self):
        """500 RCPTs in one write (replies exceed any small output buffer):
        all 500 replies arrive and the message has 500 recipients."""
        d = self.smtpd()
        c = self.open(d)
        group = "MAIL FROM:<a@example.org>\r\n" + "".join(
            "RCPT TO:<r%d@example.net>\r\n" % i for i in range(500))
        c.send(group)
        for i in range(501):
            self.assertEqual(c.reply()[0], 250, i)
        qid = self.queued_id(self.send_data(c, b"x\r\n.\r\n"))
        env, _ = parse_spool(self.spooled(d, qid))
        self.assertEqual(len(env["rcpt"]), 500)

    def test_replies_not_delayed_by_partial_line(self):
        """Commands followed by half a command in the same write: replies to
        the whole commands are sent without waiting for the rest."""
        d = self.smtpd()
        c = self.open(d)
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nNO")
        data = self.recv_once(c)
        while data.count(b"\r\n") < 2:
            more = self.recv_once(c)
            self.assertTrue(more)
            data += more
        self.assertEqual([r[0] for r in split_replies(data)], [250, 250])
        c.send("OP\r\n")
        self.assertReply(c.reply(), 250, "2.0.0")


class PipeliningWrites(ProtoCase):
    """The same checks over a SOCK_SEQPACKET socket given to 'smtpd -i': a
    packet socket keeps write boundaries, so each recv() returns exactly
    what one write() of the server sent."""

    def session(self):
        d = self.smtpd(start=False, listen=[])
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(mine.close)
        proc = subprocess.Popen([SMTPD, "-d", "-i", "-C", d.conf], stdin=theirs,
                                stdout=theirs, stderr=subprocess.DEVNULL,
                                env=dict(os.environ, TCPREMOTEIP="127.0.0.1"))
        theirs.close()
        self.addCleanup(proc.wait, 20)
        self.addCleanup(mine.shutdown, socket.SHUT_RDWR)
        mine.settimeout(10)
        self.assertTrue(mine.recv(65536).startswith(b"220 "))
        return d, mine

    def test_group_is_one_write(self):
        """EHLO, MAIL, RCPT, RCPT, DATA sent as one packet: the five replies
        come back in one write."""
        d, s = self.session()
        s.send(b"EHLO client.example.org\r\nMAIL FROM:<a@example.org>\r\n"
               b"RCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n")
        data = s.recv(65536)
        self.assertEqual([r[0] for r in split_replies(data)], [250, 250, 250, 250, 354],
                         "first write held only %r" % data)
        s.send(b"Subject: w\r\n\r\nx\r\n.\r\nNOOP\r\nQUIT\r\n")
        data = s.recv(65536)
        self.assertEqual([r[0] for r in split_replies(data)], [250, 250, 221],
                         "first write held only %r" % data)

    def test_group_with_errors_is_one_write(self):
        """A group holding refused commands is still answered in one
        write."""
        d, s = self.session()
        s.send(b"EHLO client.example.org\r\nRCPT TO:<b@example.net>\r\n"
               b"MAIL FROM:<a@example.org>\r\nRCPT TO:<bad>\r\n"
               b"RCPT TO:<b@example.net>\r\nNOOP\r\n")
        data = s.recv(65536)
        self.assertEqual([r[0] for r in split_replies(data)],
                         [250, 503, 250, 501, 250, 250], "first write held only %r" % data)

    def test_bdat_group_is_one_write(self):
        """MAIL, RCPT and two BDAT chunks in one packet: one write with all
        four replies."""
        d, s = self.session()
        s.send(b"EHLO client.example.org\r\n")
        s.recv(65536)
        s.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
               b"BDAT 12\r\nSubject: b\r\nBDAT 6 LAST\r\n\r\nab\r\n")
        data = s.recv(65536)
        self.assertEqual([r[0] for r in split_replies(data)], [250, 250, 250, 250],
                         "first write held only %r" % data)
        self.assertIn(b"queued as", data)
