"""smtp (the client) against independent servers: aiosmtpd, Postfix's
smtp-sink, and our own smtpd.  Delivery, pipelining, ESMTP parameters,
partial failures and the sysexits statuses."""
import os
import re
import socket
import threading
import unittest

from clientkit import (ClientCase, Aio, Recorder, Sink, smtp, MESSAGE, EX_OK, EX_USAGE,
                       EX_DATAERR, EX_NOUSER, EX_UNAVAILABLE, EX_TEMPFAIL,
                       EX_PROTOCOL)
from harness import Smtpd, free_port, parse_spool


class Base(ClientCase):
    PREFIX = "client-e2e-"


class Aiosmtpd(Base):
    def test_sends_message(self):
        body = (b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n"
                b"middle . dot\r\n.\r\nlast\r\n")
        with Aio() as s:
            p = smtp([s.addr(), "alice@example.test", "bob@example.test",
                      "carol@example.test"], data=body)
            self.assertExit(p, EX_OK)
            self.assertEqual(p.stderr, b"")
            self.assertEqual(len(s.messages), 1)
            m = s.messages[0]
        self.assertEqual(m["from"], "alice@example.test")
        self.assertEqual(m["rcpt"], ["bob@example.test", "carol@example.test"])
        # Dot-stuffed on the wire, unstuffed by the server.
        self.assertIn(b"\r\n.leading dot\r\n..two\r\nmiddle . dot\r\n.\r\n"
                      b"last\r\n", m["data"])
        self.assertTrue(m["data"].startswith(b"Subject: dots\r\n"))
        self.assertIn(b"\r\nMessage-ID: <", m["data"])

    def test_lf_input_goes_out_as_crlf(self):
        with Aio() as s:
            p = smtp([s.addr(), "alice@example.test", "bob@example.test"],
                     data=b"Subject: lf\n\nline 1\nline 2")
            self.assertExit(p, EX_OK)
            data = s.messages[0]["data"]
        self.assertNotIn(b"\n", data.replace(b"\r\n", b""))
        self.assertTrue(data.endswith(b"line 1\r\nline 2\r\n"))

    def test_large_message_intact(self):
        line = b"0123456789" * 7 + b"\r\n"
        body = b"Subject: big\r\n\r\n" + b"".join(
            (b"." if i % 50 == 0 else b"") + line for i in range(30000))
        with Aio() as s:
            p = smtp([s.addr(), "a@example.test", "b@example.test"], data=body)
            self.assertExit(p, EX_OK)
            data = s.messages[0]["data"]
        self.assertTrue(data.endswith(body[body.index(b"\r\n\r\n") + 4:]))

    def test_unqualified_addresses_get_domain(self):
        with Aio() as s:
            p = smtp([".d.test", s.addr(), "alice", "bob", "<carol>"],
                     data=b"To: bob\r\n\r\nx\r\n")
            self.assertExit(p, EX_OK)
            m = s.messages[0]
        self.assertEqual(m["from"], "alice@d.test")
        self.assertEqual(m["rcpt"], ["bob@d.test", "carol@d.test"])
        self.assertIn(b"To: bob@d.test\r\n", m["data"])
        self.assertIn(b"From: alice@d.test\r\n", m["data"])

    def test_null_sender(self):
        with Aio() as s:
            p = smtp(["-d", s.addr(), "/dev/null", "bob@example.test"])
            self.assertExit(p, EX_OK)
            self.assertIn(s.messages[0]["from"], ("", "<>"))
        self.assertIn(b"-> MAIL FROM:<>", p.stderr)

    def test_helo_name(self):
        with Aio() as s:
            self.assertExit(smtp(["-h", "given.test", s.addr(), "a@x.test",
                                  "b@x.test"]), EX_OK)
            self.assertExit(smtp([s.addr(), "a@x.test", "b@x.test"],
                                 env={"site": "site.test"}), EX_OK)
            helos = s.handler.helo
        self.assertEqual(helos, ["given.test", "site.test"])

    def test_8bitmime_and_size(self):
        with Aio() as s:
            p = smtp([s.addr(), "a@x.test", "b@x.test"],
                     data="Subject: x\n\nGrüße\n".encode())
            self.assertExit(p, EX_OK)
            p = smtp([s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            m8, m7 = s.messages
        self.assertIn("BODY=8BITMIME", m8["mail_options"])
        self.assertNotIn("BODY=8BITMIME", m7["mail_options"])
        size = [o for o in m7["mail_options"] if o.startswith("SIZE=")]
        self.assertEqual(len(size), 1)
        self.assertEqual(int(size[0][5:]), len(MESSAGE))

    def test_size_refused_before_sending(self):
        big = b"Subject: big\r\n\r\n" + b"x" * 5000 + b"\r\n"
        with Aio(data_size_limit=1000) as s:
            p = smtp(["-d", s.addr(), "a@x.test", "b@x.test"], data=big)
            self.assertExit(p, EX_DATAERR)
            self.assertEqual(s.messages, [])
        self.assertNotIn(b"-> MAIL", p.stderr)
        self.assertIn(b"larger than", p.stderr)
        self.assertIn(b"SIZE 1000", p.stderr)

    def test_smtputf8(self):
        rcpt = "jürgen@example.test"
        with Aio(enable_SMTPUTF8=True) as s:
            p = smtp([s.addr(), "a@x.test", rcpt])
            self.assertExit(p, EX_OK)
            m = s.messages[0]
        self.assertEqual(m["rcpt"], [rcpt])
        self.assertIn("SMTPUTF8", m["mail_options"])
        # A server without SMTPUTF8: a clear permanent failure.
        with Aio() as s:
            p = smtp([s.addr(), "a@x.test", rcpt])
            self.assertExit(p, EX_DATAERR)
            self.assertEqual(s.messages, [])
        self.assertIn(b"SMTPUTF8", p.stderr)

    def test_partial_recipient_failure(self):
        h = Recorder(refuse={"gone@x.test": "550 5.1.1 <gone@x.test>: no such user",
                             "busy@x.test": "450 4.2.1 mailbox busy"})
        with Aio(h) as s:
            p = smtp([s.addr(), "a@x.test", "ok@x.test", "gone@x.test",
                      "busy@x.test"])
            # The worst outcome (permanent) decides; the message went to
            # the accepted recipient.
            self.assertExit(p, EX_NOUSER)
            self.assertEqual(s.messages[0]["rcpt"], ["ok@x.test"])
        err = p.stderr.decode()
        lines = err.strip().split("\n")
        self.assertEqual(len(lines), 2, err)
        self.assertRegex(lines[0], r"^smtp: 127\.0\.0\.1 \[127\.0\.0\.1\]|"
                         r"^smtp: \[127\.0\.0\.1\]")
        self.assertIn("<gone@x.test>: 550 5.1.1 <gone@x.test>: no such user",
                      lines[0])
        self.assertIn("<busy@x.test>: 450 4.2.1 mailbox busy", lines[1])
        self.assertNotIn("ok@x.test", err)

    def test_temporary_recipient_failure(self):
        h = Recorder(refuse={"busy@x.test": "451 4.3.0 try later"})
        with Aio(h) as s:
            p = smtp([s.addr(), "a@x.test", "busy@x.test"])
            self.assertExit(p, EX_TEMPFAIL)
            self.assertEqual(s.messages, [])
        self.assertIn(b"451 4.3.0 try later", p.stderr)

    def test_mail_refused(self):
        h = Recorder(mail_reply="553 5.1.8 sender domain does not exist")
        with Aio(h) as s:
            p = smtp([s.addr(), "a@nowhere.test", "b@x.test", "c@x.test"])
            self.assertExit(p, EX_DATAERR)
        err = p.stderr.decode()
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn("MAIL FROM:<a@nowhere.test> refused: 553 5.1.8", err)

    def test_data_refused(self):
        for reply, want in (("554 5.6.0 content rejected", EX_DATAERR),
                            ("451 4.3.0 disk full", EX_TEMPFAIL)):
            with Aio(Recorder(data_reply=reply)) as s:
                p = smtp([s.addr(), "a@x.test", "b@x.test"])
                self.assertExit(p, want)
            self.assertIn(reply.encode(), p.stderr)

    def test_ipv6(self):
        try:
            socket.socket(socket.AF_INET6).bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        with Aio(host="::1") as s:
            p = smtp([s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual(len(s.messages), 1)


class SmtpSink(Base):
    def test_pipelined_commands_in_one_group(self):
        with Sink(self.workdir) as s:
            p = smtp(["-d", s.addr(), "a@x.test", "b@x.test", "c@x.test"])
            self.assertExit(p, EX_OK)
            msgs = s.messages()
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"X-Rcpt-Args: <b@x.test>", msgs[0])
        self.assertTrue(msgs[0].endswith(b"\nhello\n\n"), msgs[0])
        t = p.stderr.decode()
        # All commands went out before the first reply came back.
        self.assertLess(t.index("-> DATA"), t.index("<- 250 2.1.0"))

    def test_without_pipelining(self):
        with Sink(self.workdir, ["-p"]) as s:
            p = smtp(["-d", s.addr(), "a@x.test", "b@x.test", "c@x.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual(len(s.messages()), 1)
        t = p.stderr.decode()
        self.assertLess(t.index("<- 250 2.1.0"), t.index("-> RCPT"))

    def test_helo_fallback(self):
        with Sink(self.workdir, ["-f", "EHLO"]) as s:
            p = smtp(["-d", s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual(len(s.messages()), 1)
        self.assertIn(b"-> HELO client.test", p.stderr)

    def test_error_replies(self):
        cases = [
            (["-f", "RCPT", "-B", "550 5.1.1 no such user"], EX_NOUSER,
             "550 5.1.1 no such user"),
            (["-r", "RCPT"], EX_TEMPFAIL, "450 4.3.0"),
            (["-r", "MAIL"], EX_TEMPFAIL, "450 4.3.0"),
            (["-f", "MAIL", "-B", "553 5.1.8 bad sender"], EX_DATAERR,
             "553 5.1.8 bad sender"),
            (["-f", "DATA", "-B", "554 5.5.1 no data for you"], EX_PROTOCOL,
             "554 5.5.1"),
            (["-f", ".", "-B", "554 5.6.0 content rejected"], EX_DATAERR,
             "554 5.6.0 content rejected"),
            (["-r", "."], EX_TEMPFAIL, "450 4.3.0"),
            (["-f", "CONNECT", "-B", "554 5.7.1 go away"], EX_UNAVAILABLE,
             "554 5.7.1 go away"),
            (["-r", "CONNECT"], EX_TEMPFAIL, "450 4.3.0"),
            (["-Q", "RCPT"], EX_TEMPFAIL, "421"),
            (["-q", "DATA"], EX_TEMPFAIL, "connection lost"),
            (["-q", "."], EX_TEMPFAIL, "connection lost"),
        ]
        for args, want, text in cases:
            with self.subTest(args=args):
                with Sink(self.workdir, args) as s:
                    p = smtp([s.addr(), "a@x.test", "b@x.test"])
                self.assertExit(p, want)
                err = p.stderr.decode()
                self.assertIn(text, err)
                self.assertTrue(err.startswith("smtp: [127.0.0.1]: "), err)
                self.assertEqual(err.count("\n"), 1, err)


class Failures(Base):
    def test_connection_refused(self):
        port = free_port()
        p = smtp(["127.0.0.1:%d" % port, "a@x.test", "b@x.test"])
        self.assertExit(p, EX_TEMPFAIL)
        self.assertIn(b"Connection refused", p.stderr)
        self.assertIn(b"127.0.0.1", p.stderr)

    def test_no_greeting_times_out(self):
        # The kernel accepts the connection; nobody ever speaks.
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        try:
            p = smtp(["-o", "command_timeout=1", "127.0.0.1:%d" %
                      ls.getsockname()[1], "a@x.test", "b@x.test"])
        finally:
            ls.close()
        self.assertExit(p, EX_TEMPFAIL)
        self.assertIn(b"timed out", p.stderr)

    def test_connect_times_out(self):
        # A full accept queue makes the kernel drop new SYNs: the
        # connection attempt hangs until connect_timeout.
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        port = ls.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):
                f = socket.socket()
                f.setblocking(False)
                f.connect_ex(("127.0.0.1", port))
                fillers.append(f)
            p = smtp(["-o", "connect_timeout=1", "127.0.0.1:%d" % port,
                      "a@x.test", "b@x.test"], timeout=30)
        finally:
            for f in fillers:
                f.close()
            ls.close()
        self.assertExit(p, EX_TEMPFAIL)
        self.assertIn(b"connection timed out after 1 s", p.stderr)

    def test_garbage_server(self):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)

        def serve():
            c, _ = ls.accept()
            c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
            c.close()
        t = threading.Thread(target=serve)
        t.start()
        p = smtp(["127.0.0.1:%d" % ls.getsockname()[1], "a@x.test",
                  "b@x.test"])
        t.join(10)
        ls.close()
        self.assertExit(p, EX_PROTOCOL)
        self.assertIn(b"not SMTP", p.stderr)

    def test_usage(self):
        for args in ([], ["127.0.0.1:25"], ["127.0.0.1:25", "a@x.test"],
                     ["-Z", "127.0.0.1:25", "a@x.test", "b@x.test"],
                     ["udp!x.test", "a@x.test", "b@x.test"],
                     ["127.0.0.1:25", "a@x.test", "not an address"],
                     ["127.0.0.1:25", "a b@x.test", "b@x.test"],
                     ["-o", "nosuch=1", "127.0.0.1:25", "a@x.test", "b@x.test"],
                     ["-o", "connect_timeout=soon", "127.0.0.1:25", "a@x.test",
                      "b@x.test"],
                     [".", "127.0.0.1:25", "a@x.test", "b@x.test"]):
            with self.subTest(args=args):
                p = smtp(args)
                self.assertExit(p, EX_USAGE)
                self.assertTrue(p.stderr.startswith(b"smtp: ") or
                                b"usage: smtp" in p.stderr, p.stderr)

    def test_config_errors(self):
        conf = os.path.join(self.workdir, "smtp.conf")
        with open(conf, "w") as f:
            f.write("connect_timeout = 5;\nbogus = 1;\n")
        p = smtp(["-C", conf, "127.0.0.1:25", "a@x.test", "b@x.test"])
        self.assertExit(p, 78)
        self.assertIn(b"smtp.conf:2: unknown setting", p.stderr)
        with open(conf, "w") as f:
            f.write("connect_timeout = ;\n")
        p = smtp(["-C", conf, "127.0.0.1:25", "a@x.test", "b@x.test"])
        self.assertExit(p, 78)
        self.assertIn(b"smtp.conf:1:", p.stderr)
        p = smtp(["-C", conf + ".missing", "127.0.0.1:25", "a@x.test",
                  "b@x.test"])
        self.assertExit(p, 78)

    def test_config_file_and_host_sections(self):
        home = os.path.join(self.workdir, "home")
        os.makedirs(os.path.join(home, ".config", "smtp"))
        with open(os.path.join(home, ".config", "smtp", "smtp.conf"), "w") as f:
            f.write('command_timeout = 300;\n'
                    'hosts = ( { host = "127.0.0.1"; command_timeout = 1; } );\n')
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        try:
            p = smtp(["127.0.0.1:%d" % ls.getsockname()[1], "a@x.test",
                      "b@x.test"], home=home)
        finally:
            ls.close()
        # The per-host command_timeout of 1 s applied.
        self.assertExit(p, EX_TEMPFAIL)
        self.assertIn(b"timed out", p.stderr)


class OwnSmtpd(Base):
    def test_our_smtpd_queues_it(self):
        d = Smtpd(self.workdir).start()
        try:
            p = smtp(["-d", "%s:%d" % (d.host, d.port), "alice@example.org",
                      "bob@example.net", "carol@example.net"],
                     data="Subject: ours\n\nGrüße\n.dot\n".encode())
            self.assertExit(p, EX_OK)
            q = d.queued()
        finally:
            d.stop()
        self.assertEqual(len(q), 1)
        env, body = parse_spool(next(iter(q.values())))
        self.assertEqual(env["from"], "<alice@example.org>")
        self.assertEqual(env["rcpt"], ["<bob@example.net>", "<carol@example.net>"])
        self.assertIn("Subject: ours\r\n".encode(), body)
        self.assertTrue(body.endswith("Grüße\r\n.dot\r\n".encode()))
        t = p.stderr.decode()
        self.assertIn("BODY=8BITMIME", t)
        # Pipelined: MAIL, both RCPTs and DATA before MAIL's reply.
        self.assertRegex(t, re.compile(r"-> MAIL FROM:<alice@example.org> "
                                       r"SIZE=\d+ BODY=8BITMIME\n"
                                       r"-> RCPT TO:<bob@example.net>\n"
                                       r"-> RCPT TO:<carol@example.net>\n"
                                       r"-> DATA\n<- 250 "))
        self.assertRegex(t, r"<- 250 .*queued as")


if __name__ == "__main__":
    unittest.main()
