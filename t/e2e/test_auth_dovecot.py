"""SMTP AUTH checked by a real Dovecot (auth.backend = "dovecot") over
its auth-client socket: swaks and Python smtplib log in with PLAIN and
LOGIN, wrong passwords are throttled as with the secrets file, Dovecot
stopped gives 454 4.7.0 and smtpd carries on.  Also the userdb lookup
(dovecot_user_exists) through t/tools/dovecotq."""
import os
import smtplib
import subprocess
import unittest

import dovecotkit
from certs import HOSTNAME, TlsAuthCase, b64
from harness import BUILDDIR, SMTPD

DOVECOTQ = os.path.join(BUILDDIR, "t", "tools", "dovecotq")
USERS = {"bob": ("Bob-s3cret", ""), "carol": ("carol pass", "")}


@unittest.skipIf(dovecotkit.usable(), dovecotkit.usable())
class DovecotAuth(TlsAuthCase):
    THROTTLE = "failures = 3; delay = 10; max_delay = 20; block = 60;"

    def setUp(self):
        super().setUp()
        os.chmod(self.workdir, 0o755)
        # No failure delay in Dovecot: the throttle here is under test.
        self.dv = dovecotkit.Dovecot(self.workdir, USERS,
                                     extra="auth_failure_delay = 0")
        self.addCleanup(self.dv.stop)
        self.dv.start()
        self.d = self.server(auth=False, extra=(
            'auth = { backend = "dovecot"; dovecot_socket = "%s"; '
            'mechanisms = [ "PLAIN", "LOGIN", "CRAM-MD5" ]; '
            'throttle = { %s }; };' % (self.dv.auth_socket, self.THROTTLE)))

    def swaks(self, mech, user, password):
        return subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(self.d.port),
             "--tls", "--tls-verify", "--tls-ca-path", self.certs["ca"].cert,
             "--tls-sni", HOSTNAME, "--ehlo", "swaks.example.org",
             "--auth", mech, "--auth-user", user, "--auth-password", password,
             "--from", "bob@example.org", "--to", "x@elsewhere.example",
             "--body", "via %s" % mech],
            capture_output=True, text=True, timeout=30)

    def test_swaks_plain_and_login(self):
        for mech in ("PLAIN", "LOGIN"):
            with self.subTest(mech=mech):
                p = self.swaks(mech, "bob", "Bob-s3cret")
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertIn("235 2.7.0", p.stdout)
                p = self.swaks(mech, "carol", "wrong")
                self.assertNotEqual(p.returncode, 0)
                self.assertIn("535 5.7.8", p.stdout)
        self.wait_log(self.d, "auth ok user=bob mechanism=LOGIN")
        self.assertNotIn("Bob-s3cret", self.d.logtext())

    def test_smtplib_login(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
            s.starttls(context=self.client_ctx())
            code, _ = s.login("carol", "carol pass")
            self.assertEqual(code, 235)
            self.assertEqual(s.sendmail("carol@example.org",
                                        ["x@elsewhere.example"],
                                        b"Subject: hi\r\n\r\nhi\r\n"), {})
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
            s.starttls(context=self.client_ctx())
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                s.login("carol", "Carol pass")
            self.assertEqual(cm.exception.smtp_code, 535)

    def test_cram_md5_not_offered(self):
        """Dovecot checks passwords, not CRAM-MD5 digests."""
        c = self.tls_client(self.d)
        code, lines = c.cmd("EHLO client.example.org")
        auth = [l for l in lines if l[4:].startswith("AUTH ")]
        self.assertEqual(auth, ["250-AUTH PLAIN LOGIN"], lines)
        self.assertReply(c.cmd("AUTH CRAM-MD5"), 534, "5.7.9")

    def test_wrong_password_throttled(self):
        """failures = 3: 535, 535, then 421 and the address is blocked,
        even with the right password; Dovecot was asked only twice."""
        c = self.tls_client(self.d, source="127.0.0.31")
        for expect in (535, 535, 421):
            rep = self.auth_plain(c, "bob", "guess")
            self.assertReply(rep, expect, "5.7.8" if expect == 535 else
                             "4.7.0")
        self.assertTrue(c.closed())
        c = self.tls_client(self.d, source="127.0.0.31")
        self.assertReply(self.auth_plain(c, "bob", "Bob-s3cret"), 421,
                         "4.7.0")
        c = self.tls_client(self.d, source="127.0.0.32")
        self.assertReply(self.auth_plain(c, "bob", "Bob-s3cret"), 235,
                         "2.7.0")

    def test_dovecot_down_454(self):
        """Dovecot stopped: AUTH PLAIN and LOGIN answer 454 4.7.0, the
        session and the daemon go on, and nothing counts as a failure;
        Dovecot back, the same session logs in."""
        c = self.tls_client(self.d, source="127.0.0.33")
        self.dv.stop()
        for _ in range(4):      # more than failures = 3
            self.assertReply(self.auth_plain(c, "bob", "Bob-s3cret"), 454,
                             "4.7.0")
        self.assertReply(c.cmd("AUTH LOGIN"), 334)
        self.assertReply(c.cmd(b64("bob")), 334)
        self.assertReply(c.cmd(b64("Bob-s3cret")), 454, "4.7.0")
        self.assertReply(c.cmd("NOOP"), 250)
        self.wait_log(self.d, "dovecot auth %s: connect:" %
                      self.dv.auth_socket)
        self.dv.start()
        self.assertReply(self.auth_plain(c, "bob", "Bob-s3cret"), 235,
                         "2.7.0")
        self.assertIsNone(self.d.proc.poll())


@unittest.skipIf(dovecotkit.usable(), dovecotkit.usable())
class DovecotUserdb(TlsAuthCase):
    def setUp(self):
        super().setUp()
        os.chmod(self.workdir, 0o755)
        if not os.path.exists(DOVECOTQ):
            self.skipTest("t/tools/dovecotq not built (make check builds it)")
        self.dv = dovecotkit.Dovecot(self.workdir, USERS)
        self.addCleanup(self.dv.stop)
        self.dv.start()

    def q(self, *args, stdin=""):
        p = subprocess.run([DOVECOTQ] + list(args), input=stdin,
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout.strip(), p.stderr

    def test_user_exists(self):
        userdb = os.path.join(self.dv.run, "auth-userdb")
        for sock in (userdb, self.dv.master_socket):
            for name, want in (("bob", "yes"), ("bob@example.com", "yes"),
                               ("zed", "no"), ("a\tb", "no")):
                with self.subTest(sock=sock, name=name):
                    rc, out, err = self.q("user", sock, name)
                    self.assertEqual(out, want, err)
                    self.assertEqual(rc, 0 if want == "yes" else 1)

    def test_user_tempfail_when_down(self):
        self.dv.stop()
        rc, out, err = self.q("user", self.dv.master_socket, "bob")
        self.assertEqual((rc, out), (75, "tempfail"))
        self.assertIn("dovecot userdb", err)

    def test_verifier_directly(self):
        sock = self.dv.auth_socket
        self.assertEqual(self.q("auth", sock, "carol",
                                stdin="carol pass\n")[:2], (0, "ok"))
        self.assertEqual(self.q("auth", sock, "carol",
                                stdin="carol\n")[:2], (1, "fail"))
        self.assertEqual(self.q("auth", sock, "nobody-here",
                                stdin="x\n")[:2], (1, "fail"))


class DovecotAuthConfig(TlsAuthCase):
    def check(self, auth):
        d = self.smtpd(start=False, config_extra="auth = { %s };" % auth)
        return subprocess.run([SMTPD, "-t", "-C", d.conf],
                              capture_output=True, text=True)

    def test_config(self):
        p = self.check('backend = "dovecot";')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("checked by Dovecot at /run/dovecot/auth-client",
                      p.stdout)
        p = self.check('backend = "dovecot"; dovecot_socket = "/x/auth";')
        self.assertIn("checked by Dovecot at /x/auth", p.stdout)
        for bad, why in (
                ('backend = "ldap";', 'must be "file" or "dovecot"'),
                ('dovecot_socket = "/x";', 'needs auth.backend'),
                ('backend = "dovecot"; secrets = "/etc/smtpd/secrets";',
                 "exclude each other")):
            p = self.check(bad)
            self.assertEqual(p.returncode, 78, bad)
            self.assertIn(why, p.stderr)


if __name__ == "__main__":
    unittest.main()
