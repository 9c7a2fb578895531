"""LMTP delivery (RFC 2033) into a real Dovecot: mail accepted by smtpd,
handed by the queue runner to dovecot-lmtp over its unix socket or TCP,
and read back from Dovecot's Maildirs with doveadm.  One recipient over
its quota gets its own reply after the data while the others in the same
transaction are delivered; the bounce (552) or the retry (452, with
quota_full_tempfail) concerns that recipient alone.  Recipients are
checked at RCPT in Dovecot's userdb (users = "dovecot:..."): an unknown
one is refused there (550 5.1.1, no DSN), Dovecot down or silent gives
451 4.3.0.
"""
import os
import smtplib
import socket
import subprocess
import threading
import unittest

import dovecotkit
from harness import SMTPD
from qharness import QueueCase, dsn_fields, maildir_files, parse_mail, \
    read_bytes, wait_for

FAST = "retry_min = 1; retry_max = 2; scan_interval = 1;"
QUOTA = "userdb_quota_rule=*:storage=1K"
BIG = b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 40


@unittest.skipIf(dovecotkit.usable(), dovecotkit.usable())
class LmtpCase(QueueCase):
    def dovecot(self, users=None, **kw):
        if users is None:
            users = {"bob": ("pw", ""), "carol": ("pw", QUOTA),
                     "dave": ("pw", "")}
        dv = dovecotkit.Dovecot(self.workdir, users, **kw)
        self.addCleanup(dv.stop)
        return dv.start()

    def routes(self, lmtp, extra=""):
        # example.com's recipients are checked in Dovecot's userdb.
        return ('{ domain = "example.org"; action = "maildir"; '
                'path = "%s/%%d/%%u"; create = true; catchall = true; }, '
                '{ domain = "example.com"; action = "lmtp"; '
                'lmtp = "%s"; %s }'
                % (self.path("mail"), lmtp, extra))

    def start(self, dv, lmtp=None, extra="", queue=FAST, userdb=None):
        """smtpd with the routes above and users = "dovecot:<userdb>"."""
        self.setup_queue(self.routes(lmtp or "unix:" + dv.lmtp_socket,
                                     extra), queue=queue, start_smtpd=False)
        with open(self.qconf, "a") as f:
            f.write('users = "dovecot:%s";\n' % (userdb or dv.userdb_socket))
        p = subprocess.run([SMTPD, "-t", "-C", self.qconf],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("users: dovecot:", p.stdout)
        self.d.start()

    def rcpt(self, *rcpts):
        """The replies to RCPT TO for each of rcpts as (code, text)."""
        out = []
        with smtplib.SMTP(self.d.host, self.d.port, timeout=30) as c:
            c.ehlo("client.test")
            self.assertEqual(c.mail("alice@example.org")[0], 250)
            for r in rcpts:
                code, msg = c.rcpt(r)
                out.append((code, msg.decode()))
        return out

    def dsns(self):
        return [parse_mail(read_bytes(f)) for f in
                maildir_files(self.path("mail", "example.org", "alice"))]

    def test_unix_socket_per_recipient_quota_bounce(self):
        """Three recipients in one transaction: bob and dave get the
        message, carol is over quota (552 5.2.2) and bounces alone."""
        dv = self.dovecot()
        self.start(dv)
        self.send("alice@example.org", ["bob@example.com",
                                        "carol@example.com",
                                        "dave@example.com"], body=BIG)
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.diag())
        self.assertEqual(dv.subjects("bob"), ["big"])
        self.assertEqual(dv.subjects("dave"), ["big"])
        self.assertEqual(dv.subjects("carol"), [])
        dsns = wait_for(self.dsns)
        self.assertEqual(len(dsns), 1, self.diag())
        _, rcpts = dsn_fields(dsns[0])
        self.assertEqual([(r["final-recipient"], r["status"], r["action"])
                          for r in rcpts],
                         [("rfc822; carol@example.com", "5.2.2", "failed")])
        self.assertIn("Quota exceeded", rcpts[0]["diagnostic-code"])
        log = self.log()
        self.assertRegex(log, r"queue delivered to=<bob@example.com>.*"
                         r"reply=\"250 2\.0\.0")
        self.assertRegex(log, r"queue bounced to=<carol@example.com>.*"
                         r"reply=\"552 5\.2\.2")

    def test_quota_tempfail_retries_that_recipient_only(self):
        """With quota_full_tempfail carol's 452 4.2.2 defers her alone;
        once her quota is raised the retry brings her the message, and
        bob keeps his one copy."""
        dv = self.dovecot(quota_tempfail=True)
        self.start(dv)
        self.send("alice@example.org", ["bob@example.com",
                                        "carol@example.com"], body=BIG)
        self.deliver()
        out = self.smtpq("list").stdout
        self.assertRegex(out, r"<carol@example.com> pending .*"
                         r"reply=\"452 4\.2\.2", self.diag())
        self.assertRegex(out, r"<bob@example.com> delivered")
        self.assertEqual(dv.subjects("bob"), ["big"])
        self.assertEqual(dv.subjects("carol"), [])
        dv.write_users({"bob": ("pw", ""),
                        "carol": ("pw", "userdb_quota_rule=*:storage=10M")})
        self.smtpq("flush")
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.diag())
        self.assertEqual(dv.subjects("carol"), ["big"])
        self.assertEqual(dv.subjects("bob"), ["big"])
        self.assertEqual(self.dsns(), [])

    def test_tcp_one_connection_for_several_messages(self):
        """inet:127.0.0.1:port, concurrency 1: three messages go over one
        LMTP connection (RSET between them)."""
        dv = self.dovecot()
        self.start(dv, "inet:127.0.0.1:%d" % dv.lmtp_port, "concurrency = 1;")
        for i in range(3):
            self.send("alice@example.org", ["bob@example.com"],
                      body=b"Subject: m%d\r\n\r\nhello\r\n" % i)
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.diag())
        self.assertEqual(dv.subjects("bob"), ["m0", "m1", "m2"])
        self.assertEqual(dv.logtext().count("Connect from 127.0.0.1"), 1,
                         dv.logtext())

    def test_dovecot_down_defers_then_delivers(self):
        """No LMTP server at delivery: every recipient is deferred with a
        4.x.x reply and nothing is lost; with Dovecot back the mail goes
        in."""
        dv = self.dovecot({"bob": ("pw", "")})
        self.start(dv)
        self.send("alice@example.org", ["bob@example.com"])
        dv.stop()
        self.deliver()
        out = self.smtpq("list").stdout
        self.assertIn("bob@example.com", out, self.diag())
        self.assertRegex(out, r"45\d 4\.\d\.\d")
        self.assertRegex(self.log(), r"queue deferred to=<bob@example.com>")
        dv.start()
        self.smtpq("flush")
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.diag())
        self.assertEqual(dv.subjects("bob"), ["test"])

    def test_unknown_user_refused_at_rcpt_no_dsn(self):
        """Dovecot's userdb decides at RCPT: zed is refused with 550
        5.1.1 and never queued (so no DSN), bob and postmaster are taken
        and bob's copy reaches his INBOX."""
        dv = self.dovecot()
        self.start(dv)
        replies = self.rcpt("zed@example.com", "Bob@Example.COM",
                            "postmaster@example.com")
        self.assertEqual(replies[0][0], 550, replies)
        self.assertTrue(replies[0][1].startswith("5.1.1"), replies)
        self.assertEqual([r[0] for r in replies[1:]], [250, 250], replies)
        with smtplib.SMTP(self.d.host, self.d.port, timeout=30) as c:
            refused = c.sendmail("alice@example.org",
                                 ["zed@example.com", "bob@example.com"],
                                 b"Subject: known\r\n\r\nhi\r\n")
        self.assertEqual(list(refused), ["zed@example.com"])
        self.assertEqual(refused["zed@example.com"][0], 550)
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.diag())
        self.assertEqual(dv.subjects("bob"), ["known"])
        self.assertNotRegex(self.log(), r"queue \w+ to=<zed@")
        self.assertEqual(self.dsns(), [])
        self.assertIn("policy unknown recipient to=<zed@example.com>",
                      self.d.logtext())

    def test_userdb_down_451_at_rcpt(self):
        """Dovecot stopped: even a known user gets 451 4.3.0 at RCPT,
        never an acceptance; the reason is logged and with Dovecot back
        the same user is taken."""
        dv = self.dovecot()
        self.start(dv)
        dv.stop()
        code, text = self.rcpt("bob@example.com")[0]
        self.assertEqual(code, 451, text)
        self.assertTrue(text.startswith("4.3.0"), text)
        self.assertIn("dovecot userdb %s" % dv.userdb_socket,
                      self.d.logtext())
        self.assertEqual(self.queue_ids(), [])
        dv.start()
        self.assertEqual(self.rcpt("bob@example.com")[0][0], 250)

    def test_userdb_silent_451_at_rcpt(self):
        """A socket that accepts and never answers: 451 4.3.0 once the
        lookup's 10 seconds are up."""
        dv = dovecotkit.Dovecot(self.workdir, {"bob": ("pw", "")})
        self.addCleanup(dv.stop)
        path = self.path("silent")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        os.chmod(path, 0o666)
        srv.listen(8)
        held = []
        stop = threading.Event()

        def hold():
            srv.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(srv.accept()[0])
                except OSError:
                    pass

        t = threading.Thread(target=hold)
        t.start()

        def done():
            stop.set()
            t.join(5)
            for c in held:
                c.close()
            srv.close()
        self.addCleanup(done)
        self.start(dv, userdb=path)
        code, text = self.rcpt("bob@example.com")[0]
        self.assertEqual(code, 451, text)
        self.assertTrue(text.startswith("4.3.0"), text)
        self.assertRegex(self.d.logtext(), r"dovecot userdb .*silent: "
                         r"Connection timed out")

    def test_userdb_keys_address_then_user(self):
        """A userdb keyed on what it is given (username_format %u):
        carol is found as carol@example.com, bob (listed without a
        domain) as bob on the second question, dave not at all."""
        dv = self.dovecot({"bob": ("pw", ""),
                           "carol@example.com": ("pw", "")},
                          username_format="%u")
        self.start(dv)
        replies = self.rcpt("carol@example.com", "bob@example.com",
                            "dave@example.com")
        self.assertEqual([r[0] for r in replies], [250, 250, 550], replies)


class LmtpConfigCase(QueueCase):
    def check(self, route):
        d = self.smtpd(start=False)
        with open(d.conf, "a") as f:
            f.write('routes = ( { domain = "example.com"; action = "lmtp"; '
                    '%s } );\n' % route)
        return subprocess.run([SMTPD, "-t", "-C", d.conf],
                              capture_output=True, text=True)

    def test_lmtp_address_checked(self):
        for bad in ('', 'lmtp = "/run/dovecot/lmtp";',
                    'lmtp = "inet:127.0.0.1";', 'lmtp = "unix:relative";',
                    'lmtp = "unix:/x"; host = "127.0.0.1:25";'):
            p = self.check(bad)
            self.assertEqual(p.returncode, 78, bad + p.stdout + p.stderr)
            self.assertRegex(p.stderr, r"smtpd\.conf:\d+: .*(lmtp|host)")
        for good in ('lmtp = "unix:/run/dovecot/lmtp";',
                     'lmtp = "inet:127.0.0.1:24";',
                     'lmtp = "inet:[::1]:24";'):
            p = self.check(good)
            self.assertEqual(p.returncode, 0, good + p.stdout + p.stderr)
            self.assertIn(good.split('"')[1], p.stdout)


if __name__ == "__main__":
    unittest.main()
