"""The basic conversation, driven by independent clients."""
import smtplib
import subprocess

from harness import SmtpdCase, parse_spool


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
