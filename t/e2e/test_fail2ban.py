"""The shipped fail2ban filter (etc/fail2ban/filter.d/upas-smtpd.conf),
run by fail2ban-regex over a real log: it matches every failed AUTH and
refused relay, with the client's address, and nothing else -- not a
successful AUTH, not other refusals, not an address a client wrote into
a user name or recipient."""
import base64
import os
import shutil
import smtplib
import subprocess
import unittest

from harness import HERE, PolicyCase, TRUSTED_ADDR, UNTRUSTED_ADDR

SRC = os.path.dirname(os.path.dirname(HERE))
FILTER = os.path.join(SRC, "etc", "fail2ban", "filter.d", "upas-smtpd.conf")
F2B = shutil.which("fail2ban-regex")
COMMON = "/etc/fail2ban/filter.d/common.conf"
RELAY = ('ournets = [ "127.0.0.1/32" ];\n'
         'ourdomains = [ "ours.example" ];\n')


def plain(user, password):
    return base64.b64encode(b"\0" + user + b"\0" + password).decode()


@unittest.skipIf(F2B is None or not os.path.exists(COMMON),
                 "fail2ban-regex is not installed "
                 "(Debian package fail2ban)")
class Fail2banFilter(PolicyCase):
    def test_filter_counts(self):
        secrets = os.path.join(self.workdir, "secrets")
        with open(secrets, "w") as f:
            f.write("alice:{PLAIN}right-pw\n")
        os.chmod(secrets, 0o600)
        d = self.smtpd(config_extra=RELAY + (
            'auth = { secrets = "%s"; cleartext = true; '
            'throttle = { delay = 0; failures = 100; }; };\n' % secrets),
            limits={"errors": 100})
        # Four AUTH failures (one with a user name that carries another
        # address), one success.
        c = self.client(d)
        for pw in (b"w1", b"w2", b"w3"):
            self.assertReply(c.cmd("AUTH PLAIN " + plain(b"alice", pw)),
                             535, "5.7.8")
        self.assertReply(c.cmd("AUTH PLAIN " + plain(
            b'x mechanism=PLAIN address=10.9.9.9 reason=""', b"w4")), 535)
        self.assertReply(c.cmd("AUTH PLAIN " + plain(b"alice",
                                                     b"right-pw")), 235)
        c.cmd("QUIT")
        # Three refused relays, one with an address in the recipient and
        # one with routing in the local part.
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        for rcpt in ("<u@other.example>",
                     '<"x> address=10.9.9.8"@other.example>',
                     "<u%other.example@ours.example>"):
            self.assertReply(c.cmd("RCPT TO:" + rcpt), 554, "5.7.1")
        # Noise: other refusals, an accepted message, a trusted client.
        self.assertReply(c.cmd("RCPT TO:<bad address>"), 501)
        self.assertReply(c.cmd("FROB"), 500)
        self.assertReply(c.cmd("RCPT TO:<u@ours.example>"), 250)
        c.cmd("RSET")
        c.cmd("QUIT")
        with smtplib.SMTP(d.host, d.port, timeout=10,
                          source_address=(TRUSTED_ADDR, 0)) as s:
            s.sendmail("a@example.org", ["u@other.example"],
                       "Subject: x\r\n\r\nbody\r\n")
        self.wait_log(d, "smtp disconnect", 4)
        d.stop()
        log = d.logfile
        # Installed, the filter sits beside fail2ban's common.conf.
        fdir = os.path.join(self.workdir, "filter.d")
        os.makedirs(fdir)
        shutil.copy(COMMON, fdir)
        filt = shutil.copy(FILTER, fdir)
        text = d.logtext()
        self.assertEqual(text.count(" auth failed "), 4)
        self.assertEqual(text.count(" relay refused "), 3)

        p = subprocess.run([F2B, "--out", "ip", log, filt],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        ips = p.stdout.split()
        self.assertEqual(len(ips), 7, p.stdout)
        self.assertEqual(set(ips), {UNTRUSTED_ADDR}, p.stdout)
        # The summary agrees, and the dates were read.
        p = subprocess.run([F2B, log, filt], capture_output=True,
                           text=True, timeout=120)
        self.assertRegex(p.stdout, r"Lines: \d+ lines, 0 ignored, 7 matched")
        self.assertNotIn("no date", p.stdout.lower().replace(
            "use datepattern", ""))


if __name__ == "__main__":
    unittest.main()
