"""The basic conversation, driven by independent clients."""
import os
import shutil
import smtplib
import subprocess
import tempfile
import unittest

from harness import BUILDDIR, SmtpdCase, parse_spool

# make install brings the build up to date first: not while other tests
# run its binaries.
SERIAL = True


class Basic(SmtpdCase):
    def test_swaks_daemon_queues_message(self):
        d = self.smtpd()
        p = subprocess.run(["swaks", "--server", "%s:%d" % (d.host, d.port),
                            "--from", "alice@example.org",
                            "--to", "bob@example.net",
                            "--body", "hello from swaks"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("250 2.0.0 Ok: queued as", p.stdout)
        q = d.queued()
        self.assertEqual(len(q), 1)
        env, body = parse_spool(next(iter(q.values())))
        self.assertEqual(env["from"], "<alice@example.org>")
        self.assertEqual(env["rcpt"], ["<bob@example.net>"])
        self.assertIn(b"hello from swaks", body)
        self.assertTrue(body.startswith(b"Received: from "))

    def test_smtplib_sendmail(self):
        d = self.smtpd()
        with smtplib.SMTP(d.host, d.port, timeout=10) as c:
            refused = c.sendmail("a@example.org", ["x@example.net", "y@example.net"],
                                 b"Subject: hi\r\n\r\nbody line\r\n")
            self.assertEqual(refused, {})
        q = d.queued()
        self.assertEqual(len(q), 1)
        env, body = parse_spool(next(iter(q.values())))
        self.assertEqual(env["rcpt"], ["<x@example.net>", "<y@example.net>"])
        self.assertTrue(body.endswith(b"body line\r\n"))


class Install(unittest.TestCase):
    """make install and uninstall into a DESTDIR: the config is installed,
    an edited one survives uninstall, an unedited one goes."""

    def make(self, target, destdir):
        p = subprocess.run(["make", "-s", "-C", BUILDDIR, target,
                            "DESTDIR=" + destdir],
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def installed(self, destdir):
        return sorted(os.path.relpath(os.path.join(d, f), destdir)
                      for d, _, files in os.walk(destdir) for f in files)

    def setUp(self):
        if not os.path.exists(os.path.join(BUILDDIR, "Makefile")):
            self.skipTest("no Makefile in " + BUILDDIR)
        self.destdir = tempfile.mkdtemp(prefix="smtpd-install-")
        self.addCleanup(shutil.rmtree, self.destdir, True)

    def conf(self):
        files = [f for f in self.installed(self.destdir)
                 if f.endswith("/etc/smtpd.conf")]
        self.assertEqual(len(files), 1, self.installed(self.destdir))
        return os.path.join(self.destdir, files[0])

    def test_uninstall_keeps_an_edited_config(self):
        self.make("install", self.destdir)
        conf = self.conf()
        with open(conf) as f:
            text = f.read()
        self.assertRegex(text, r'(?m)^spool = "/\S+/spool/smtpd";$')
        with open(conf, "a") as f:
            f.write('hostname = "mx.edited.example";\n')
        out = self.make("uninstall", self.destdir)
        self.assertEqual(self.installed(self.destdir),
                         [os.path.relpath(conf, self.destdir)])
        with open(conf) as f:
            self.assertIn("mx.edited.example", f.read())
        self.assertIn("kept ", out)
        # Installing again keeps it too.
        self.make("install", self.destdir)
        with open(conf) as f:
            self.assertIn("mx.edited.example", f.read())

    def test_uninstall_removes_an_unedited_config(self):
        self.make("install", self.destdir)
        self.conf()
        self.make("uninstall", self.destdir)
        self.assertEqual(self.installed(self.destdir), [])
