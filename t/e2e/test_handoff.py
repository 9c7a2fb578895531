"""smtpd -m hands each message to a mailer program (Plan 9's way), and
smtpq passwd writes passwords that smtpd's AUTH accepts."""
import os
import pwd
import smtplib
import stat
import subprocess

from harness import BUILDDIR, SmtpdCase

MAILER = """#!/bin/sh
# Records its arguments, input and user, then exits as told.
printf '%%s\\n' "$@" > %(out)s/args
cat > %(out)s/input
id -u > %(out)s/uid
code=$(cat %(dir)s/exit 2>/dev/null || echo 0)
if [ "$code" != 0 ]; then echo "mail refused: no such mailbox here" >&2; fi
exit $code
"""


class MailerHandoff(SmtpdCase):
    def setUp(self):
        super().setUp()
        # The mailer runs as an unprivileged user: it must reach its files.
        os.chmod(self.workdir, 0o755)
        self.out = os.path.join(self.workdir, "out")
        os.mkdir(self.out)
        os.chmod(self.out, 0o1777)
        self.mailer = os.path.join(self.workdir, "mailer")
        with open(self.mailer, "w") as f:
            f.write(MAILER % {"dir": self.workdir, "out": self.out})
        os.chmod(self.mailer, 0o755)

    def outfile(self, name):
        return os.path.join(self.out, name)

    def send(self, d):
        with smtplib.SMTP(d.host, d.port, timeout=10) as c:
            c.ehlo("client.example")
            c.mail("alice@example.org")
            c.rcpt("bob@example.com")
            c.rcpt("carol@example.com")
            return c.data(b"Subject: hand-off\r\n\r\nline one\r\nline two\r\n")

    def exit_with(self, code):
        with open(os.path.join(self.workdir, "exit"), "w") as f:
            f.write("%d\n" % code)

    def test_mailer_gets_envelope_and_message(self):
        """Exit 0 -> 250; the mailer ran as 'mailer -r -- rcpt...' with a
        Unix From line and LF line ends on its input; nothing queued."""
        d = self.smtpd(args=["-m", self.mailer])
        code, msg = self.send(d)
        self.assertEqual(code, 250, msg)
        with open(self.outfile("args")) as f:
            self.assertEqual(f.read().split("\n")[:4],
                             ["-r", "--", "bob@example.com",
                              "carol@example.com"])
        with open(self.outfile("input"), "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"From alice@example.org "), data[:60])
        self.assertIn(b"Received: from client.example", data)
        self.assertTrue(data.endswith(b"\nline one\nline two\n"), data[-40:])
        self.assertNotIn(b"\r", data)
        self.assertEqual(d.queued(), {})

    def test_tempfail_is_451(self):
        """Exit 75 (EX_TEMPFAIL) -> 451."""
        d = self.smtpd(args=["-m", self.mailer])
        self.exit_with(75)
        code, msg = self.send(d)
        self.assertEqual(code, 451, msg)

    def test_failure_is_554_with_stderr(self):
        """Any other exit -> 554 with the mailer's first stderr line."""
        d = self.smtpd(args=["-m", self.mailer])
        self.exit_with(1)
        code, msg = self.send(d)
        self.assertEqual(code, 554, msg)
        self.assertIn(b"mail refused: no such mailbox here", msg)


    def test_option_as_recipient_is_refused(self):
        """A recipient that would look like an option to the mailer gets
        553 5.1.3 at RCPT; the mailer sees the others after "--"."""
        d = self.smtpd(args=["-m", self.mailer])
        with smtplib.SMTP(d.host, d.port, timeout=10) as c:
            c.ehlo("client.example")
            c.mail("alice@example.org")
            code, msg = c.rcpt("-C/tmp/evil.cf@example.com")
            self.assertEqual(code, 553, msg)
            self.assertTrue(msg.startswith(b"5.1.3"), msg)
            self.assertEqual(c.rcpt("bob@example.com")[0], 250)
            code, msg = c.data(b"Subject: x\r\n\r\nx\r\n")
            self.assertEqual(code, 250, msg)
        with open(self.outfile("args")) as f:
            args = f.read().split("\n")[:-1]
        self.assertEqual(args, ["-r", "--", "bob@example.com"])

    def test_mailer_runs_as_mailer_user(self):
        """As root, the mailer runs as queue.mailer_user (default nobody)."""
        if os.geteuid() != 0:
            self.skipTest("needs root")
        d = self.smtpd(args=["-m", self.mailer])
        self.assertEqual(self.send(d)[0], 250)
        with open(self.outfile("uid")) as f:
            self.assertEqual(int(f.read()), pwd.getpwnam("nobody").pw_uid)
        d.stop()
        os.unlink(self.outfile("uid"))
        d = self.smtpd(args=["-m", self.mailer], config_extra=(
            'queue = { runner = false; mailer_user = "daemon"; };'))
        self.assertEqual(self.send(d)[0], 250)
        with open(self.outfile("uid")) as f:
            self.assertEqual(int(f.read()), pwd.getpwnam("daemon").pw_uid)


class SmtpqPasswd(SmtpdCase):
    def test_password_set_with_smtpq_is_accepted(self):
        """smtpq passwd writes a 0600 {CRYPT} line that AUTH accepts; a
        second run replaces the user's line."""
        secrets = os.path.join(self.workdir, "secrets")
        smtpq = os.path.join(BUILDDIR, "smtpq")
        for pw in ("first one", "second one"):
            p = subprocess.run([smtpq, "passwd", "-f", secrets, "carol"],
                               input=pw + "\n", capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(secrets).st_mode), 0o600)
        with open(secrets) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("carol:{CRYPT}$"))
        self.assertNotIn("second one", lines[0])
        d = self.smtpd(args=["-p"],
                       config_extra='auth = { secrets = "%s"; };' % secrets)
        with smtplib.SMTP(d.host, d.port, timeout=30) as c:
            c.ehlo("client.example")
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                c.login("carol", "first one")
            code, _ = c.login("carol", "second one")
            self.assertEqual(code, 235)

    def test_bad_user_name_refused(self):
        """A user name with ':' is refused with the usage exit status."""
        p = subprocess.run([os.path.join(BUILDDIR, "smtpq"), "passwd", "-f",
                            os.path.join(self.workdir, "s"), "a:b"],
                           input="x\n", capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 64)
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "s")))
