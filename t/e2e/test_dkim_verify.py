"""DKIM verification by OpenDKIM (Mode v) as a milter of a receiving
smtpd.  The mail comes signed from a sending smtpd, either by OpenDKIM in
sign mode as its milter or by smtpd's own dkim signing; the receiving
side's OpenDKIM looks the key up in DNS (a dnsmasq serving the TXT record
inside a private network namespace, dnsns.py; no other DNS server is
asked) and adds Authentication-Results: through the milter protocol,
dkim=pass for the message as signed and dkim=fail once it was changed on
the way."""
import contextlib
import os
import re
import shutil
import smtplib
import tempfile
import time
import types
import unittest

import dnsns
import milterkit
from harness import Smtpd, UNTRUSTED_ADDR, parse_spool
from test_dkim import keygen, txt_rr

BASE = ('ournets = [ "127.0.0.1/32" ];\n'
        'ourdomains = [ "example.com" ];\n')
RECEIVER = ('ournets = [ "127.0.0.1/32" ];\n'
            'ourdomains = [ "ours.example" ];\n')
MSG = ("From: Alice <alice@example.com>\r\n"
       "To: bob@ours.example\r\n"
       "Subject: the %s one\r\n"
       "Date: Thu, 03 Dec 2026 01:00:00 +0000\r\n"
       "Message-ID: <%s@example.com>\r\n"
       "\r\n"
       "Signed on the way out, verified on the way in.\r\n")


def milters(port):
    return 'milters = ( { address = "inet:127.0.0.1:%d"; } );\n' % port


def subdir(workdir, name):
    path = os.path.join(workdir, name)
    os.makedirs(path)
    return path


def queued_one(d, timeout=15):
    """The message (body bytes) smtpd d has queued, waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        q = d.queued()
        if q:
            assert len(q) == 1, list(q)
            return parse_spool(list(q.values())[0])[1]
        time.sleep(0.05)
    raise AssertionError("nothing queued:\n" + d.logtext())


def send(d, text, source="127.0.0.1"):
    with smtplib.SMTP(d.host, d.port, timeout=60,
                      source_address=(source, 0)) as s:
        s.ehlo("mail.example.com")
        refused = s.sendmail("alice@example.com", ["bob@ours.example"],
                             text)
        assert refused == {}, refused


def verify_child(workdir, key):
    """Inside the namespace: a signing smtpd (OpenDKIM milter, or built-in
    dkim), a receiving smtpd with OpenDKIM in verify mode; each signed
    message and a changed copy go to the receiver.  {name: the header of
    the message as the receiver queued it}."""
    out = {}
    with contextlib.ExitStack() as stack:
        case = types.SimpleNamespace(addCleanup=stack.callback)
        signer = milterkit.OpenDkim(
            case, os.path.join(workdir, "od-sign"),
            "Mode s\nDomain example.com\nSelector sel\nKeyFile %s\n"
            "Canonicalization relaxed/simple\nRequireSafeKeys no" % key)
        verifier = milterkit.OpenDkim(
            case, os.path.join(workdir, "od-verify"),
            "Mode v\nAuthservID mx.ours.example\nRequireSafeKeys no\n"
            # libunbound would recurse from the root: the namespace's DNS.
            "Nameservers 127.0.0.1")
        senders = {
            "opendkim": BASE + milters(signer.port),
            "builtin": BASE + ('dkim = { keys = ( { domain = "example.com";'
                               ' selector = "sel"; key = "%s"; } ); };\n'
                               % key),
        }
        for name, conf in senders.items():
            a = Smtpd(subdir(workdir, name), config_extra=conf)
            a.start()
            stack.callback(a.stop)
            send(a, MSG % (name, name))
            signed = queued_one(a)
            changed = signed.replace(b"verified on the way in",
                                     b"verified on the way in, or not")
            for kind, data in (("signed", signed), ("changed", changed)):
                b = Smtpd(subdir(workdir, "rcv-%s-%s" % (name, kind)),
                          config_extra=RECEIVER + milters(verifier.port))
                b.start()
                try:
                    send(b, data, source=UNTRUSTED_ADDR)
                    got = queued_one(b)
                finally:
                    b.stop()
                out["%s %s" % (name, kind)] = got.split(
                    b"\r\n\r\n", 1)[0].decode(errors="replace")
    return out


@unittest.skipUnless(os.path.exists(milterkit.OPENDKIM),
                     "opendkim not installed")
class OpenDkimVerify(unittest.TestCase):
    def test_pass_and_fail(self):
        ok, why = dnsns.available()
        if not ok:
            self.skipTest(why)
        workdir = tempfile.mkdtemp(prefix="smtpd-e2e-")
        os.chmod(workdir, 0o755)
        self.addCleanup(shutil.rmtree, workdir, True)
        key, record = keygen(workdir, "rsa", "sel")
        heads = dnsns.run(__file__, "verify_child", args=[workdir, key],
                          records=[txt_rr("sel._domainkey.example.com",
                                          record)],
                          local=("example.com",), timeout=120)
        ar = re.compile(r"(?m)^Authentication-Results: mx\.ours\.example;"
                        r"(?:\r\n[ \t].*)*?\s+dkim=(\w+)")
        for signer in ("opendkim", "builtin"):
            for kind, want in (("signed", "pass"), ("changed", "fail")):
                head = heads["%s %s" % (signer, kind)]
                self.assertIn("DKIM-Signature:", head)
                m = ar.search(head)
                self.assertIsNotNone(m, "%s %s:\n%s" % (signer, kind, head))
                self.assertEqual(m.group(1), want,
                                 "%s %s:\n%s" % (signer, kind, head))


if __name__ == "__main__":
    unittest.main()
