"""src/lib/dns.c against a real resolver and DNS server: each status of
dns_mx, dns_addrs, dns_mail_domain (smtpd's sender-domain check) and
dns_ptr, inside a namespace served by dnsmasq (see dnsns.py)."""
import os
import subprocess
import unittest

import dnsns
from dnsns import inside
from harness import BUILDDIR

DNSQ = os.path.join(BUILDDIR, "t", "tools", "dnsq")

ZONE = dict(
    records=[
        dnsns.mx("mail.test", "mx2.mail.test", 20),
        dnsns.mx("mail.test", "mx1.mail.test", 10),
        dnsns.mx("mixed.test", "mx.mixed.test", 10),
        dnsns.null_mx("mixed.test"),
        dnsns.null_mx("null.test"),
        dnsns.host("mx1.mail.test", "127.0.0.2"),
        dnsns.host("mx2.mail.test", "127.0.0.3"),
        dnsns.host("both.test", "127.0.0.4", "::1"),
        dnsns.host("nomx.test", "127.0.0.5"),
        dnsns.host("v6only.test", "::1"),
        dnsns.txt("txtonly.test", "v=spf1 -all"),
        dnsns.servfail("broken.test"),
    ],
    local=("test",),
)


def dnsq(*args):
    p = subprocess.run([DNSQ] + list(args), capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().split("\n")[:-1]


class Dns(unittest.TestCase):
    def setUp(self):
        if not os.access(DNSQ, os.X_OK):
            self.skipTest("t/tools/dnsq not built (make check builds it)")

    @inside(**ZONE)
    def test_mx(self):
        self.assertEqual(dnsq("mx", "mail.test"),
                         ["OK", "10 mx1.mail.test", "20 mx2.mail.test"])
        self.assertEqual(dnsq("mx", "nomx.test"), ["NODATA"])
        self.assertEqual(dnsq("mx", "nosuch.test"), ["NXDOMAIN"])
        self.assertEqual(dnsq("mx", "null.test"), ["NULLMX"])
        # A null MX beside a real one is ignored (RFC 7505 3).
        self.assertEqual(dnsq("mx", "mixed.test"), ["OK", "10 mx.mixed.test"])
        self.assertEqual(dnsq("mx", "outside.invalid"), ["TEMPFAIL"])
        self.assertEqual(dnsq("mx", "x.broken.test"), ["TEMPFAIL"])

    @inside(**ZONE)
    def test_addrs(self):
        self.assertEqual(dnsq("addrs", "both.test"), ["OK", "::1", "127.0.0.4"])
        self.assertEqual(dnsq("addrs", "v6only.test"), ["OK", "::1"])
        self.assertEqual(dnsq("addrs", "txtonly.test"), ["NODATA"])
        self.assertEqual(dnsq("addrs", "nosuch.test"), ["NXDOMAIN"])
        self.assertEqual(dnsq("addrs", "outside.invalid"), ["TEMPFAIL"])

    @inside(**ZONE)
    def test_mail_domain(self):
        for domain, want in (("mail.test", "OK"), ("nomx.test", "OK"),
                             ("v6only.test", "OK"), ("null.test", "NULLMX"),
                             ("txtonly.test", "NODATA"),
                             ("nosuch.test", "NXDOMAIN"),
                             ("outside.invalid", "TEMPFAIL"),
                             ("[192.0.2.1]", "OK")):
            with self.subTest(domain=domain):
                self.assertEqual(dnsq("mail", domain), [want])

    @inside(**ZONE)
    def test_ptr(self):
        self.assertEqual(dnsq("ptr", "127.0.0.5"), ["OK", "nomx.test"])
        # Outside the local domains dnsmasq refuses: a temporary failure.
        self.assertEqual(dnsq("ptr", "127.0.0.6"), ["TEMPFAIL"])


if __name__ == "__main__":
    unittest.main()
