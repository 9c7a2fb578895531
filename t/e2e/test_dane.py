"""DANE for SMTP (RFC 7672): smtp with tls_policy=auto against MX hosts
whose TLSA records come from DNSSEC-signed zones, validated by unbound
inside a private network namespace (dnssec.py), glibc trusting its AD bit
through "options trust-ad".  The mail hosts are aiosmtpd with STARTTLS
and certtool certificates."""
import hashlib
import os
import ssl
import subprocess
import unittest

from clientkit import (ClientCase, Aio, smtp, make_certs, EX_OK,
                       EX_TEMPFAIL)
import dnssec
from dnsns import inside

SEND = ["alice@x.test"]


def _der(pem):
    with open(pem) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def _spki_der(pem):
    pub = subprocess.run(["openssl", "x509", "-in", pem, "-pubkey",
                          "-noout"], check=True, capture_output=True).stdout
    return subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"],
                          input=pub, check=True,
                          capture_output=True).stdout


class Dane(ClientCase):
    PREFIX = "dane-"

    def setUp(self):
        super().setUp()
        ok, why = dnssec.available()
        if not ok:
            self.skipTest(why)
        self.certs = make_certs(os.path.join(self.workdir))
        c = self.certs
        ee = hashlib.sha256(_spki_der(c["srv.pem"])).hexdigest()
        ta = hashlib.sha256(_der(c["ca.pem"])).hexdigest()
        wrong = hashlib.sha256(b"another key").hexdigest()
        ee512 = hashlib.sha512(_der(c["srv.pem"])).hexdigest()
        self.zones = {
            # mx1: DANE-EE SPKI SHA-256; mx2: a digest of nothing we
            # have; mail: DANE-TA of the private CA, full cert SHA-256.
            "a.test": (True, [
                "@ MX 10 mx1", "mx1 A 127.0.0.9",
                "_25._tcp.mx1 TLSA 3 1 1 " + ee,
                "mx2 A 127.0.0.10", "_25._tcp.mx2 TLSA 3 1 1 " + wrong,
                "mail A 127.0.0.11", "_25._tcp.mail TLSA 2 0 1 " + ta,
                "smarthost A 127.0.0.13",
                "_25._tcp.smarthost TLSA 3 0 2 " + ee512]),
            "bad.test": (True, ["@ MX 10 mx2.a.test."]),
            "ta.test": (True, ["@ MX 10 mail.a.test."]),
            "ee512.test": (True, ["@ MX 10 smarthost.a.test."]),
            # Unsigned: its TLSA record must not count.
            "plain.test": (False, [
                "@ MX 10 mx", "mx A 127.0.0.12",
                "_25._tcp.mx TLSA 3 1 1 " + wrong]),
        }

    def resolver(self):
        r = dnssec.start(os.path.join(self.workdir, "dns"), self.zones)
        self.addCleanup(r.stop)
        return r

    def server(self, host, chain=False):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert = self.certs["srv.pem"]
        if chain:
            cert = os.path.join(self.workdir, "chain.pem")
            with open(cert, "w") as out:
                for p in ("srv.pem", "ca.pem"):
                    with open(self.certs[p]) as f:
                        out.write(f.read())
        ctx.load_cert_chain(cert, self.certs["srv.key"])
        return Aio(host=host, port=25, tls_context=ctx)

    def send(self, domain):
        return smtp(["-d", "-o", "tls_policy=auto", domain] + SEND +
                    ["bob@" + domain])

    @inside(local=("example",), timeout=120)
    def test_dane_ee_match_delivered(self):
        self.resolver()
        with self.server("127.0.0.9") as s:
            p = self.send("a.test")
            self.assertExit(p, EX_OK)
            self.assertEqual(len(s.messages), 1)
        self.assertIn(b"certificate authenticated by DANE", p.stderr)

    @inside(local=("example",), timeout=120)
    def test_dane_mismatch_deferred_never_clear(self):
        r = self.resolver()
        with self.server("127.0.0.10") as s:
            p = self.send("bad.test")
            self.assertExit(p, EX_TEMPFAIL)
            self.assertEqual(s.messages, [])
        err = p.stderr.decode()
        self.assertIn("matches none of its TLSA records", err)
        self.assertNotIn("MAIL FROM", err)
        self.assertNotIn("trying again without TLS", err)

    @inside(local=("example",), timeout=120)
    def test_unsigned_zone_falls_back_to_opportunistic(self):
        self.resolver()
        with self.server("127.0.0.12") as s:
            p = self.send("plain.test")
            self.assertExit(p, EX_OK)
            self.assertEqual(len(s.messages), 1)
        self.assertIn(b"certificate not checked", p.stderr)

    @inside(local=("example",), timeout=120)
    def test_dane_ta_private_ca(self):
        self.resolver()
        with self.server("127.0.0.11", chain=True) as s:
            p = self.send("ta.test")
            self.assertExit(p, EX_OK)
            self.assertEqual(len(s.messages), 1)
        self.assertIn(b"certificate authenticated by DANE", p.stderr)

    @inside(local=("example",), timeout=120)
    def test_dane_ta_without_the_ca_in_the_chain_deferred(self):
        self.resolver()
        with self.server("127.0.0.11") as s:
            p = self.send("ta.test")
            self.assertExit(p, EX_TEMPFAIL)
            self.assertEqual(s.messages, [])

    @inside(local=("example",), timeout=120)
    def test_dane_ee_full_certificate_sha512(self):
        self.resolver()
        with self.server("127.0.0.13") as s:
            p = self.send("ee512.test")
            self.assertExit(p, EX_OK)
            self.assertEqual(len(s.messages), 1)
        self.assertIn(b"certificate authenticated by DANE", p.stderr)


if __name__ == "__main__":
    unittest.main()
