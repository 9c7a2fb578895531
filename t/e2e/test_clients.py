"""Independent SMTP clients against smtpd: swaks (daemon and --pipe stdio),
Python smtplib, curl and msmtp."""
import os
import shutil
import smtplib
import subprocess
import unittest
from email.message import EmailMessage

from harness import SMTPD, ProtoCase, parse_spool, strip_received


def need(tool):
    return unittest.skipUnless(shutil.which(tool), "%s not installed" % tool)


class Swaks(ProtoCase):
    @need("swaks")
    def test_daemon_several_recipients_pipelined(self):
        """swaks with --pipeline and two recipients: queued once for both,
        headers as swaks wrote them."""
        d = self.smtpd()
        p = subprocess.run(["swaks", "--server", "%s:%d" % (d.host, d.port),
                            "--ehlo", "swaks.example.org", "--pipeline",
                            "--from", "alice@example.org",
                            "--to", "bob@example.net,carol@example.net",
                            "--header", "Subject: swaks pipelined",
                            "--body", "two recipients"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("250 2.0.0 Ok: queued as", p.stdout)
        q = self.wait_queued(d, 1)
        env, body = parse_spool(next(iter(q.values())))
        self.assertEqual(env["rcpt"], ["<bob@example.net>", "<carol@example.net>"])
        self.assertEqual(env["helo"], "swaks.example.org")
        self.assertIn(b"Subject: swaks pipelined\r\n", body)
        self.assertIn(b"two recipients", body)

    @need("swaks")
    def test_stdio_pipe(self):
        """swaks --pipe runs 'smtpd -i' as its server over a pipe: the
        message is queued and smtpd exits cleanly."""
        d = self.smtpd(start=False, listen=[])
        p = subprocess.run(["swaks", "--pipe", "%s -i -C %s" % (SMTPD, d.conf),
                            "--from", "alice@example.org",
                            "--to", "postmaster@mx.test.example",
                            "--body", "hello over a pipe"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("250 2.0.0 Ok: queued as", p.stdout)
        self.assertIn("221 2.0.0", p.stdout)
        q = d.queued()
        self.assertEqual(len(q), 1)
        env, body = parse_spool(next(iter(q.values())))
        self.assertEqual(env["rcpt"], ["<postmaster@mx.test.example>"])
        self.assertIn(b"hello over a pipe", body)

    @need("swaks")
    def test_swaks_sees_refusal(self):
        """swaks reports a refused oversized message (SIZE limit) as a
        failure."""
        d = self.smtpd(limits={"message_size": 2000})
        p = subprocess.run(["swaks", "--server", "%s:%d" % (d.host, d.port),
                            "--from", "a@example.org", "--to", "b@example.net",
                            "--body", "x" * 5000],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("552 5.3.4", p.stdout)
        self.assertNothingQueued(d)


class Smtplib(ProtoCase):
    def test_send_message(self):
        """smtplib.send_message with To and Cc: both are recipients, the
        message text arrives intact."""
        d = self.smtpd()
        msg = EmailMessage()
        msg["From"] = "Alice <alice@example.org>"
        msg["To"] = "Bob <bob@example.net>"
        msg["Cc"] = "carol@example.com"
        msg["Subject"] = "smtplib"
        msg.set_content("Hello Bob,\n.leading dot line\n..two dots\nbye\n")
        with smtplib.SMTP(d.host, d.port, local_hostname="py.example.org",
                          timeout=10) as s:
            s.ehlo()
            self.assertTrue(s.has_extn("pipelining"))
            self.assertTrue(s.has_extn("chunking"))
            self.assertEqual(s.send_message(msg), {})
        q = self.wait_queued(d, 1)
        env, body = parse_spool(next(iter(q.values())))
        self.assertEqual(env["from"], "<alice@example.org>")
        self.assertEqual(env["rcpt"], ["<bob@example.net>", "<carol@example.com>"])
        self.assertEqual(env["helo"], "py.example.org")
        text = strip_received(body)
        self.assertIn(b"\r\n.leading dot line\r\n..two dots\r\nbye\r\n", text)

    def test_sendmail_partial_refusal(self):
        """smtplib.sendmail with three recipients, one malformed: the bad
        one is reported refused (501), the message goes to the other two."""
        d = self.smtpd()
        with smtplib.SMTP(d.host, d.port, timeout=10) as s:
            refused = s.sendmail("a@example.org",
                                 ["x@example.net", "bad@@example.net", "y@example.net"],
                                 b"Subject: some\r\n\r\nbody\r\n")
        self.assertEqual(list(refused), ["bad@@example.net"])
        self.assertEqual(refused["bad@@example.net"][0], 501)
        q = self.wait_queued(d, 1)
        env, _ = parse_spool(next(iter(q.values())))
        self.assertEqual(env["rcpt"], ["<x@example.net>", "<y@example.net>"])

    def test_smtputf8_send_message(self):
        """send_message with non-ASCII addresses uses SMTPUTF8; smtpd queues
        it with the UTF-8 envelope."""
        d = self.smtpd()
        msg = EmailMessage()
        msg["From"] = "jörg@exämple.org"
        msg["To"] = "用户@例子.广告"
        msg["Subject"] = "ünïcode"
        msg.set_content("grüße\n")
        with smtplib.SMTP(d.host, d.port, timeout=10) as s:
            self.assertEqual(s.send_message(msg), {})
        q = self.wait_queued(d, 1)
        env, _ = parse_spool(next(iter(q.values())))
        self.assertEqual(env["from"], "<jörg@exämple.org>")
        self.assertEqual(env["rcpt"], ["<用户@例子.广告>"])
        self.assertIn("smtputf8", env)

    def test_many_messages_one_connection(self):
        """50 messages over one smtplib connection are all queued."""
        d = self.smtpd()
        with smtplib.SMTP(d.host, d.port, timeout=10) as s:
            for i in range(50):
                s.sendmail("a@example.org", ["r%d@example.net" % i],
                           b"Subject: %d\r\n\r\nn\r\n" % i)
        self.wait_queued(d, 50)

    def test_refused_sender_raises(self):
        """A malformed sender makes smtplib raise SMTPSenderRefused with the
        server's 501 5.1.7."""
        d = self.smtpd()
        with smtplib.SMTP(d.host, d.port, timeout=10) as s:
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                s.sendmail("a@@example.org", ["b@example.net"], b"x\r\n")
        self.assertEqual(cm.exception.smtp_code, 501)
        self.assertTrue(cm.exception.smtp_error.startswith(b"5.1.7"))


class Curl(ProtoCase):
    @need("curl")
    def test_upload(self):
        """curl smtp:// upload with two --mail-rcpt: exit 0 and the file's
        bytes (leading dots included) are what is queued."""
        d = self.smtpd()
        msg = (b"From: curl@example.org\r\nTo: bob@example.net\r\n"
               b"Subject: curl upload\r\n\r\nline one\r\n.dot line\r\n"
               b"..\r\nlast line\r\n")
        path = os.path.join(self.workdir, "mail.txt")
        with open(path, "wb") as f:
            f.write(msg)
        p = subprocess.run(["curl", "-sS", "--max-time", "20",
                            "smtp://%s:%d/curl.example.org" % (d.host, d.port),
                            "--mail-from", "curl@example.org",
                            "--mail-rcpt", "bob@example.net",
                            "--mail-rcpt", "carol@example.net", "-T", path],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        q = self.wait_queued(d, 1)
        env, body = parse_spool(next(iter(q.values())))
        self.assertEqual(env["from"], "<curl@example.org>")
        self.assertEqual(env["rcpt"], ["<bob@example.net>", "<carol@example.net>"])
        self.assertEqual(env["helo"], "curl.example.org")
        self.assertEqual(strip_received(body), msg)

    @need("curl")
    def test_upload_refused_for_size(self):
        """curl fails (non-zero exit) when smtpd refuses a message over the
        size limit, and nothing is queued."""
        d = self.smtpd(limits={"message_size": 1000})
        path = os.path.join(self.workdir, "big.txt")
        with open(path, "wb") as f:
            f.write(b"Subject: big\r\n\r\n" + b"0123456789" * 50 + b"\r\n" * 600)
        p = subprocess.run(["curl", "-sS", "--max-time", "20",
                            "smtp://%s:%d" % (d.host, d.port),
                            "--mail-from", "a@example.org",
                            "--mail-rcpt", "b@example.net", "-T", path],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertNothingQueued(d)


class Msmtp(ProtoCase):
    @need("msmtp")
    def test_msmtp_sends(self):
        """msmtp (no TLS, no auth) delivers a message with LF line ends,
        which it converts to CRLF; the queued copy has CRLF lines."""
        d = self.smtpd()
        p = subprocess.run(["msmtp", "-C", "/dev/null", "--host=" + d.host,
                            "--port=%d" % d.port, "--tls=off", "--auth=off",
                            "--domain=msmtp.example.org",
                            "--from=m@example.org", "--", "bob@example.net"],
                           input=b"Subject: msmtp\n\nbody line\n.dot\n",
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        q = self.wait_queued(d, 1)
        env, body = parse_spool(next(iter(q.values())))
        self.assertEqual(env["from"], "<m@example.org>")
        self.assertEqual(env["helo"], "msmtp.example.org")
        self.assertTrue(strip_received(body).endswith(b"\r\n\r\nbody line\r\n.dot\r\n"),
                        body)
