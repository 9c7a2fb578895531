"""DKIM signing of mail from trusted and authenticated senders, checked
by independent verifiers: python3-dkim (dkim.verify with the keys'
records from `smtpq dkim-keygen`) and OpenDKIM's opendkim-testmsg, which
looks the keys up in DNS (a dnsmasq in a private namespace, dnsns.py)."""
import os
import re
import shutil
import subprocess
import unittest

import dnsns
from harness import (BUILDDIR, PolicyCase, SMTPD, TRUSTED_ADDR,
                     UNTRUSTED_ADDR, parse_spool)

SMTPQ = os.path.join(BUILDDIR, "smtpq")
BASE = ('ournets = [ "127.0.0.1/32" ];\n'
        'ourdomains = [ "ours.example", "example.com" ];\n')

MSG = (b"From: Alice <alice@example.com>\r\n"
       b"To: bob@ours.example\r\n"
       b"Subject: a folded\r\n \t subject   with  spaces  \r\n"
       b"Date: Tue, 1 Jul 2025 10:52:37 +0200\r\n"
       b"Message-ID: <1@example.com>\r\n"
       b"X-Not-Signed: whatever\r\n"
       b"\r\n"
       b"Body line with trailing space   \r\n"
       b"  indented\tand\t tabbed\r\n"
       b"\r\n"
       b"..a dot-stuffed line\r\n"
       b"\r\n\r\n")


def keygen(workdir, kind, selector):
    path = os.path.join(workdir, "%s.pem" % selector)
    args = [SMTPQ, "dkim-keygen", "-t", kind]
    if kind == "rsa":
        args += ["-b", "2048"]
    p = subprocess.run(args + ["example.com", selector, path],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    m = re.match(r'(\S+)\._domainkey\.example\.com\. IN TXT \((.*)\)$',
                 p.stdout.strip())
    assert m, p.stdout
    record = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return path, record


def dkim_verify_all(message, records):
    """[(selector, result)] for each signature, by python3-dkim."""
    import dkim

    def dnsfunc(name, timeout=5):
        sel = name.decode().split(".")[0]
        return records.get(sel, "").encode()

    def one(i):
        try:
            return dkim.DKIM(message).verify(idx=i, dnsfunc=dnsfunc)
        except dkim.ValidationError:
            return False
    n = len([l for l in message.split(b"\r\n")
             if l.lower().startswith(b"dkim-signature:")])
    return [one(i) for i in range(n)]


def txt_rr(name, text):
    """A TXT record split in 255-byte strings, as raw rdata."""
    data = text.encode()
    hexd = "".join("%02x%s" % (len(data[i:i + 255]), data[i:i + 255].hex())
                   for i in range(0, len(data), 255))
    return dnsns.rr(name, 16, hexd)


class Dkim(PolicyCase):

    def setUp(self):
        super().setUp()
        self.rsa, self.rsa_rec = keygen(self.workdir, "rsa", "s1")
        self.ed, self.ed_rec = keygen(self.workdir, "ed25519", "s2")
        self.records = {"s1": self.rsa_rec, "s2": self.ed_rec}
        secrets = os.path.join(self.workdir, "secrets")
        with open(secrets, "w") as f:
            f.write("alice:{PLAIN}wonderland\n")
        os.chmod(secrets, 0o600)
        conf = BASE + ('auth = { secrets = "%s"; cleartext = true; };\n'
                       % secrets) + ('dkim = { keys = (\n'
                       ' { domain = "example.com"; selector = "s1"; '
                       'key = "%s"; },\n'
                       ' { domain = "Example.COM"; selector = "s2"; '
                       'key = "%s"; } ); };\n' % (self.rsa, self.ed))
        self.d = self.smtpd(config_extra=conf,
                            limits={"tarpit_delay": 0})

    def send(self, source, msg=MSG, sender="<alice@example.com>"):
        c = self.client(self.d, source=source)
        self.start_mail(c, sender, ["<bob@ours.example>"])
        qid = self.queued_id(self.send_data(c, msg + b".\r\n"))
        env, body = parse_spool(self.spooled(self.d, qid))
        c.close()
        return body

    def test_signed_and_verified(self):
        """Both signatures (rsa-sha256, ed25519-sha256) verify with
        python3-dkim; the message is unchanged but for the two fields."""
        body = self.send(TRUSTED_ADDR)
        self.assertTrue(body.startswith(b"DKIM-Signature: "), body[:80])
        self.assertEqual(dkim_verify_all(body, self.records), [True, True])
        sigs = re.findall(rb"(?ms)^DKIM-Signature: .*?\r\n(?=[^ \t])", body)
        self.assertEqual(len(sigs), 2)
        self.assertIn(b"a=rsa-sha256; c=relaxed/relaxed; d=example.com;",
                      sigs[0] + sigs[1])
        self.assertIn(b"a=ed25519-sha256;", sigs[0] + sigs[1])
        h = re.search(rb"h=([^;]*);", sigs[0]).group(1)
        names = re.sub(rb"\s", b"", h).lower().split(b":")
        self.assertEqual(names.count(b"from"), 2)   # oversigned
        self.assertIn(b"subject", names)
        self.assertNotIn(b"x-not-signed", names)
        rest = body
        for s in sigs:
            rest = rest.replace(s, b"", 1)
        rest = re.sub(rb"\AReceived: .*?\r\n(?=[^ \t])", b"", rest,
                      flags=re.S)
        unstuffed = MSG.replace(b"\r\n..a dot", b"\r\n.a dot")
        self.assertEqual(rest, unstuffed)
        # A change to the body or a signed header breaks them.
        bad = body.replace(b"indented", b"Indented")
        self.assertEqual(dkim_verify_all(bad, self.records), [False, False])
        bad = body.replace(b"Subject: a folded", b"Subject: a Folded")
        self.assertEqual(dkim_verify_all(bad, self.records), [False, False])
        self.assertIn("dkim signed d=example.com s=s1 a=rsa-sha256",
                      self.d.logtext())

    def test_large_message(self):
        """A message too large for the journal (its file is rewritten
        with the signature in front) verifies too."""
        big = MSG + b"".join(b"line %06d of a long body  \r\n" % i
                             for i in range(12000))
        body = self.send(TRUSTED_ADDR, msg=big)
        self.assertGreater(len(body), 300000)
        self.assertEqual(dkim_verify_all(body, self.records), [True, True])
        self.assertEqual(self.d.tmpfiles(), [])

    def test_authenticated_signed(self):
        """An untrusted client that authenticates gets its mail signed."""
        import smtplib
        s = smtplib.SMTP(self.d.host, self.d.port,
                         source_address=(UNTRUSTED_ADDR, 0), timeout=20)
        s.login("alice", "wonderland")
        s.sendmail("alice@example.com", ["bob@ours.example"], MSG)
        s.quit()
        (body,) = [parse_spool(raw)[1] for raw in
                   self.wait_queued(self.d, 1).values()]
        self.assertEqual(dkim_verify_all(body, self.records), [True, True])

    def test_untrusted_not_signed(self):
        """Mail from an untrusted, unauthenticated client, and mail from
        another domain, is not signed."""
        body = self.send(UNTRUSTED_ADDR)
        self.assertNotIn(b"DKIM-Signature", body)
        body = self.send(TRUSTED_ADDR, sender="<x@other.example>")
        self.assertNotIn(b"DKIM-Signature", body)

    def test_opendkim_verifies(self):
        """opendkim-testmsg verifies the signatures against the keys in
        DNS (inside a private namespace)."""
        if shutil.which("opendkim-testmsg") is None:
            self.skipTest("opendkim-tools is not installed")
        ok, why = dnsns.available()
        if not ok:
            self.skipTest(why)
        body = self.send(TRUSTED_ADDR)
        records = [txt_rr("s1._domainkey.example.com", self.rsa_rec),
                   txt_rr("s2._domainkey.example.com", self.ed_rec)]
        r = dnsns.run_command(["opendkim-testmsg"], records=records,
                              local=("example.com",), input=body.decode())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # And a tampered message fails there too.
        r = dnsns.run_command(["opendkim-testmsg"], records=records,
                              local=("example.com",),
                              input=body.decode().replace("indented", "x"))
        self.assertNotEqual(r.returncode, 0)

    def test_config_and_keygen_errors(self):
        """A key that is not one, a missing key, a header list without
        From: smtpd -t says where; dkim-keygen will not overwrite."""
        junk = os.path.join(self.workdir, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a key\n")
        for extra, msg in (
                ('dkim = { keys = ( { domain = "example.com"; selector = '
                 '"s"; key = "%s"; } ); };' % junk, "not a PEM private key"),
                ('dkim = { keys = ( { domain = "example.com"; selector = '
                 '"s"; key = "/nonexistent.pem"; } ); };', "cannot read"),
                ('dkim = { headers = [ "Subject" ]; keys = ( { domain = '
                 '"example.com"; selector = "s"; key = "%s"; } ); };'
                 % self.rsa, "must include From"),
                ('dkim = { keys = ( { domain = "bad domain"; selector = '
                 '"s"; key = "%s"; } ); };' % self.rsa, "bad dkim domain")):
            conf = os.path.join(self.workdir, "bad.conf")
            with open(conf, "w") as f:
                f.write(extra + "\n")
            p = subprocess.run([SMTPD, "-t", "-C", conf],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
            self.assertIn(msg, p.stderr)
            self.assertRegex(p.stderr, r"bad\.conf:\d+: ")
        p = subprocess.run([SMTPD, "-t", "-C", self.d.conf],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("DKIM signing: mail from example.com with "
                      "ed25519-sha256 key", p.stdout)
        p = subprocess.run([SMTPQ, "dkim-keygen", "example.com", "s1",
                            self.rsa], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 73)
        self.assertIn("File exists", p.stderr)
        p = subprocess.run([SMTPQ, "dkim-keygen", "-t", "dsa", "example.com",
                            "s9", os.path.join(self.workdir, "x.pem")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 64)
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "x.pem")))


if __name__ == "__main__":
    unittest.main()
