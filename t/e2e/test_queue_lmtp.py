"""LMTP delivery (RFC 2033) into a real Dovecot: mail accepted by smtpd,
handed by the queue runner to dovecot-lmtp over its unix socket or TCP,
and read back from Dovecot's Maildirs with doveadm.  One recipient over
its quota gets its own reply after the data while the others in the same
transaction are delivered; the bounce (552) or the retry (452, with
quota_full_tempfail) concerns that recipient alone.
"""
import subprocess
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
        # Dovecot knows its users: RCPT takes every local part here.
        return ('{ domain = "example.org"; action = "maildir"; '
                'path = "%s/%%d/%%u"; create = true; catchall = true; }, '
                '{ domain = "example.com"; action = "lmtp"; '
                'lmtp = "%s"; catchall = true; %s }'
                % (self.path("mail"), lmtp, extra))

    def dsns(self):
        return [parse_mail(read_bytes(f)) for f in
                maildir_files(self.path("mail", "example.org", "alice"))]

    def test_unix_socket_per_recipient_quota_bounce(self):
        """Three recipients in one transaction: bob and dave get the
        message, carol is over quota (552 5.2.2) and bounces alone."""
        dv = self.dovecot()
        self.setup_queue(self.routes("unix:" + dv.lmtp_socket), queue=FAST)
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
        self.setup_queue(self.routes("unix:" + dv.lmtp_socket), queue=FAST)
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
        self.setup_queue(self.routes("inet:127.0.0.1:%d" % dv.lmtp_port,
                                     "concurrency = 1;"), queue=FAST)
        for i in range(3):
            self.send("alice@example.org", ["bob@example.com"],
                      body=b"Subject: m%d\r\n\r\nhello\r\n" % i)
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.diag())
        self.assertEqual(dv.subjects("bob"), ["m0", "m1", "m2"])
        self.assertEqual(dv.logtext().count("Connect from 127.0.0.1"), 1,
                         dv.logtext())

    def test_dovecot_down_defers_then_delivers(self):
        """No LMTP server: every recipient is deferred with a 4.x.x reply
        and nothing is lost; with Dovecot back the mail goes in."""
        dv = dovecotkit.Dovecot(self.workdir, {"bob": ("pw", "")})
        self.addCleanup(dv.stop)
        self.setup_queue(self.routes("unix:" + dv.lmtp_socket), queue=FAST)
        self.send("alice@example.org", ["bob@example.com"])
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
