"""Mail whose lines end in a bare LF, as real clients send a file from disk:
curl --upload-file over smtp:// (STARTTLS) and smtps:// with AUTH, Python
smtplib's sendmail() with bytes and send_message().  It is queued with CRLF
line ends; header rules, the Received line and the logged size still work;
bare_newline = "reject" refuses it; smtpd -t names the setting."""
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import unittest
from email.message import EmailMessage

from certs import HOSTNAME, TlsAuthCase
from harness import BUILDDIR, SMTPD, parse_spool, strip_received
from qharness import wait_for
from test_queue_relay import FAST, HAVE_AIOSMTPD, Hop, RelayCase

USER, PASSWORD = "carol@example.org", "Lf-Lines-2024"

# A file as an editor writes it: LF line ends.
LF_FILE = (b"From: carol@example.org\nTo: dave@elsewhere.example\n"
           b"Subject: from a file\n\nfirst line\n  indented\n"
           b"\nlast line\n")
# With a line holding only a dot, and one starting with a dot.
DOT_FILE = LF_FILE + b".\n.leading dot\nend\n"


def crlf(data):
    return data.replace(b"\n", b"\r\n")


def need(tool):
    return unittest.skipUnless(shutil.which(tool), "%s not installed" % tool)


def has_bare_newline(data):
    """True if data holds a LF without CR before it or a CR without LF."""
    return re.search(rb"(?<!\r)\n|\r(?!\n)", data) is not None


class LfCase(TlsAuthCase):
    """smtpd with STARTTLS, implicit TLS and AUTH against a secrets file
    with one {CRYPT} account written by smtpq passwd (so PLAIN and LOGIN
    are the mechanisms).  No client is trusted by address: relaying to
    elsewhere.example needs AUTH."""

    def setUp(self):
        super().setUp()
        secrets = os.path.join(self.workdir, "secrets")
        p = subprocess.run([os.path.join(BUILDDIR, "smtpq"), "passwd", "-f",
                            secrets, USER], input=PASSWORD + "\n",
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.secrets = secrets

    def lf_server(self, extra=""):
        return self.server(implicit=True, secrets=self.secrets,
                           extra='ournets = [];\nourdomains = [ "example.net" ];\n'
                           + extra)

    def only_message(self, d):
        """(envelope, message without the Received line) of the one
        message queued; asserts there is exactly one."""
        q = self.wait_queued(d, 1)
        env, body = parse_spool(next(iter(q.values())))
        return env, strip_received(body)

    def curl(self, d, url, mech, path):
        port = int(url.rsplit(":", 1)[1])
        return subprocess.run(
            ["curl", "-sS", "--max-time", "20", url + "/client.example.org",
             "--resolve", "%s:%d:127.0.0.1" % (HOSTNAME, port),
             "--cacert", self.certs["ca"].cert, "--ssl-reqd",
             "--user", "%s:%s" % (USER, PASSWORD),
             "--login-options", "AUTH=" + mech,
             "--mail-from", USER, "--mail-rcpt", "dave@elsewhere.example",
             "--upload-file", path],
            capture_output=True, text=True, timeout=30)

    def lf_file(self, data=LF_FILE):
        path = os.path.join(self.workdir, "mail.txt")
        with open(path, "wb") as f:
            f.write(data)
        return path


class Curl(LfCase):
    @need("curl")
    def test_starttls_auth_plain(self):
        """curl smtp:// with STARTTLS and AUTH PLAIN uploads a LF file:
        exit 0, queued with CRLF lines."""
        d = self.lf_server()
        p = self.curl(d, "smtp://%s:%d" % (HOSTNAME, d.port), "PLAIN",
                      self.lf_file())
        self.assertEqual(p.returncode, 0, p.stderr)
        env, body = self.only_message(d)
        self.assertEqual(env["rcpt"], ["<dave@elsewhere.example>"])
        # curl ends a file that does not end in CRLF with CRLF "." CRLF.
        self.assertEqual(body, crlf(LF_FILE) + b"\r\n")
        self.assertFalse(has_bare_newline(body))

    @need("curl")
    def test_implicit_tls_auth_login(self):
        """curl smtps:// (implicit TLS) with AUTH LOGIN, the same file."""
        d = self.lf_server()
        p = self.curl(d, "smtps://%s:%d" % (HOSTNAME, d.tls_port), "LOGIN",
                      self.lf_file())
        self.assertEqual(p.returncode, 0, p.stderr)
        _, body = self.only_message(d)
        self.assertEqual(body, crlf(LF_FILE) + b"\r\n")

    @need("curl")
    def test_reject_mode_refuses(self):
        """With bare_newline = "reject" the same upload fails and nothing
        is queued."""
        d = self.lf_server('bare_newline = "reject";')
        p = self.curl(d, "smtp://%s:%d" % (HOSTNAME, d.port), "PLAIN",
                      self.lf_file())
        self.assertNotEqual(p.returncode, 0)
        self.assertNothingQueued(d)
        self.assertIn("code=550 status=5.5.2", d.logtext())

    @need("curl")
    def test_dot_line_in_lf_file_refused(self):
        """curl dot-stuffs only after CRLF, so a LF file with a line holding
        only '.' goes out as LF '.' LF, the smuggling signature: refused
        (curl fails), nothing queued."""
        d = self.lf_server()
        p = self.curl(d, "smtp://%s:%d" % (HOSTNAME, d.port), "PLAIN",
                      self.lf_file(DOT_FILE))
        self.assertNotEqual(p.returncode, 0)
        self.assertNothingQueued(d)
        self.assertIn("code=550 status=5.5.2", d.logtext())


class Smtplib(LfCase):
    def test_sendmail_bytes_relay_port(self):
        """sendmail() with a bytes message read from a file, no AUTH, to a
        local domain: queued with CRLF, dot lines kept, the size logged is
        what is stored."""
        d = self.lf_server()
        with smtplib.SMTP(d.host, d.port, timeout=30) as c:
            c.sendmail("carol@example.org", ["dave@example.net"], DOT_FILE)
        env, body = self.only_message(d)
        self.assertEqual(env["rcpt"], ["<dave@example.net>"])
        # smtplib dot-stuffs after any LF, and adds CRLF after data that
        # does not end in CRLF.
        self.assertEqual(body, crlf(DOT_FILE) + b"\r\n")
        # The size logged is the message as stored, our Received line
        # included (the size smtpq list shows), counted with CRLF.
        q = self.wait_queued(d, 1)
        _, stored = parse_spool(next(iter(q.values())))
        m = re.search(r"smtp queued id=\S+ .* size=(\d+)", d.logtext())
        self.assertIsNotNone(m, d.logtext())
        self.assertEqual(int(m.group(1)), len(stored))
        self.assertGreater(len(stored), len(body))

    def test_sendmail_bytes_submission(self):
        """sendmail() with bytes after STARTTLS and AUTH (login() picks
        PLAIN or LOGIN, never CRAM-MD5 here: the account is {CRYPT})."""
        d = self.lf_server()
        ctx = ssl.create_default_context(cafile=self.certs["ca"].cert)
        with smtplib.SMTP(d.host, d.port, timeout=30) as c:
            # The test certificate also names 127.0.0.1.
            c.starttls(context=ctx)
            c.login(USER, PASSWORD)
            refused = c.sendmail(USER, ["dave@elsewhere.example"], LF_FILE)
        self.assertEqual(refused, {})
        _, body = self.only_message(d)
        self.assertEqual(body, crlf(LF_FILE) + b"\r\n")

    def test_send_message(self):
        """send_message() of an EmailMessage whose body has LF lines."""
        d = self.lf_server()
        msg = EmailMessage()
        msg["From"] = "carol@example.org"
        msg["To"] = "dave@example.net"
        msg["Subject"] = "send_message"
        msg.set_content("one\ntwo\n.\nthree\n")
        with smtplib.SMTP(d.host, d.port, timeout=30) as c:
            c.send_message(msg)
        _, body = self.only_message(d)
        self.assertFalse(has_bare_newline(body))
        self.assertIn(b"\r\n\r\none\r\ntwo\r\n.\r\nthree\r\n", body)

    def test_header_rules_see_lf_header(self):
        """Header rules match a header that came with LF line ends, folded
        lines included; the message is refused as the rule says."""
        d = self.lf_server(
            'rules = ( { header = "^Subject: win the lottery$"; '
            'action = "reject"; code = 554; status = "5.7.1"; '
            'text = "No lotteries"; } );')
        with smtplib.SMTP(d.host, d.port, timeout=30) as c:
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                c.sendmail("carol@example.org", ["dave@example.net"],
                           b"From: carol@example.org\nSubject: win the\n"
                           b" lottery\n\nbody\n")
            self.assertEqual(cm.exception.smtp_code, 554)
            self.assertEqual(cm.exception.smtp_error, b"5.7.1 No lotteries")
            c.sendmail("carol@example.org", ["dave@example.net"],
                       b"Subject: fine\n\nbody\n")
        _, body = self.only_message(d)
        self.assertEqual(body, b"Subject: fine\r\n\r\nbody\r\n\r\n")


class Setting(LfCase):
    def conf(self, value):
        path = os.path.join(self.workdir, "t.conf")
        with open(path, "w") as f:
            f.write('spool = "%s";\n%s\n' % (
                os.path.join(self.workdir, "spool"), value))
        return subprocess.run([SMTPD, "-t", "-C", path], capture_output=True,
                               text=True, timeout=20)

    def test_smtpd_t_prints_it(self):
        """smtpd -t shows the default and a set value."""
        p = self.conf("")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("lines ending in a bare LF: taken as CRLF (normalize)",
                      p.stdout)
        p = self.conf('bare_newline = "reject";')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("lines ending in a bare LF: message refused (reject)",
                      p.stdout)

    def test_bad_value_refused(self):
        """Another value is a config error naming the line (exit 78)."""
        p = self.conf('\nbare_newline = "yes";')
        self.assertEqual(p.returncode, 78)
        self.assertRegex(p.stderr, r"t\.conf:3: bare_newline must be "
                                   r"\"normalize\" or \"reject\"")


@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed")
class Relayed(RelayCase):
    def test_lf_message_relayed_with_crlf(self):
        """A message that came in with LF lines goes out to the next hop
        (aiosmtpd, which keeps the bytes it gets) with CRLF lines."""
        h = Hop()
        s = self.aio(h)
        self.setup_queue(self.relay(s.port), queue=FAST)
        self.send("alice@example.org", ["bob@example.net"], DOT_FILE)
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.messages), 1)
        data = h.messages[0]["data"]
        self.assertTrue(data.endswith(crlf(DOT_FILE) + b"\r\n"), data)
        self.assertFalse(has_bare_newline(data), data)


if __name__ == "__main__":
    unittest.main()
