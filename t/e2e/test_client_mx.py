"""smtp's routing by MX, inside a private network namespace whose DNS is
a dnsmasq we control (see dnsns.py).  Mail hosts listen on 127.0.0.x:25;
a host that is "down" is an address nobody listens on."""
import unittest

from clientkit import (ClientCase, Aio, Recorder, Sink, smtp, make_certs, server_tls,
                       EX_OK, EX_NOHOST, EX_TEMPFAIL)
import dnsns
from dnsns import inside

ZONE = dict(
    records=[
        dnsns.mx("a.test", "mx1.a.test", 10),
        dnsns.mx("a.test", "mx2.a.test", 20),
        dnsns.mx("b.test", "mx1.b.test", 10),
        dnsns.mx("b.test", "mx2.b.test", 10),
        dnsns.mx("busted.test", "mx1.busted.test", 10),
        dnsns.mx("busted.test", "mx2.busted.test", 20),
        dnsns.mx("v6.test", "mx.v6.test", 10),
        dnsns.mx("ghost.test", "mx.ghost.test", 10),
        dnsns.host("mx1.a.test", "127.0.0.9"),
        dnsns.host("mx2.a.test", "127.0.0.3"),
        dnsns.host("mx1.b.test", "127.0.0.11"),
        dnsns.host("mx2.b.test", "127.0.0.12"),
        dnsns.host("mx1.busted.test", "127.0.0.13"),
        dnsns.host("mx2.busted.test", "127.0.0.14"),
        dnsns.host("mx.v6.test", "::1", "127.0.0.15"),
        dnsns.host("nomx.test", "127.0.0.4"),
        dnsns.host("gw.test", "127.0.0.5"),
        dnsns.host("smarthost.test", "127.0.0.7"),
        dnsns.null_mx("null.test"),
    ],
    local=("test",),
)

SEND = ["alice@x.test", "bob@a.test"]


class Mx(ClientCase):
    PREFIX = "client-mx-"

    @inside(**ZONE)
    def test_first_mx_down_second_used(self):
        with Aio(host="127.0.0.3", port=25) as mx2:
            p = smtp(["-d", "a.test"] + SEND)
            self.assertExit(p, EX_OK)
            self.assertEqual(len(mx2.messages), 1)
            self.assertEqual(mx2.messages[0]["rcpt"], ["bob@a.test"])
        t = p.stderr.decode()
        self.assertLess(t.index("connecting to mx1.a.test [127.0.0.9] port 25"),
                        t.index("connecting to mx2.a.test [127.0.0.3] port 25"))

    @inside(**ZONE)
    def test_first_mx_tempfails_second_used(self):
        with Sink(self.workdir, ["-r", "CONNECT"], host="127.0.0.9",
                  port=25), Aio(host="127.0.0.3", port=25) as mx2:
            p = smtp(["-d", "a.test"] + SEND)
            self.assertExit(p, EX_OK)
            self.assertEqual(len(mx2.messages), 1)
        self.assertIn(b"<- 450", p.stderr)

    @inside(**ZONE)
    def test_every_mx_down(self):
        p = smtp(["net!a.test"] + SEND)
        self.assertExit(p, EX_TEMPFAIL)
        err = p.stderr.decode()
        self.assertIn("Connection refused", err)
        self.assertEqual(err.count("\n"), 1, err)

    @inside(**ZONE)
    def test_no_mx_uses_the_domains_address(self):
        with Aio(host="127.0.0.4", port=25) as s:
            p = smtp(["-d", "nomx.test", "alice@x.test", "bob@nomx.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual(len(s.messages), 1)
        self.assertIn(b"connecting to nomx.test [127.0.0.4]", p.stderr)

    @inside(**ZONE)
    def test_null_mx_is_permanent(self):
        p = smtp(["-d", "mx!null.test", "alice@x.test", "bob@null.test"])
        self.assertExit(p, EX_NOHOST)
        self.assertIn(b"null MX", p.stderr)
        self.assertNotIn(b"connecting", p.stderr)

    @inside(**ZONE)
    def test_unknown_domain_goes_to_gateway(self):
        with Aio(host="127.0.0.5", port=25) as gw:
            p = smtp(["-d", "-g", "gw.test", "nosuch.test", "alice@x.test",
                      "bob@nosuch.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual(gw.messages[0]["rcpt"], ["bob@nosuch.test"])
            self.assertIn(b"no such domain: nosuch.test; trying the gateway "
                          b"gw.test", p.stderr)
            # A dial string works as the gateway too.
            p = smtp(["-g", "tcp!gw.test!25", "ghost.test", "alice@x.test",
                      "bob@ghost.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual(len(gw.messages), 2)

    @inside(**ZONE)
    def test_unknown_domain_without_gateway(self):
        p = smtp(["nosuch.test", "alice@x.test", "bob@nosuch.test"])
        self.assertExit(p, EX_NOHOST)
        self.assertIn(b"no such domain: nosuch.test", p.stderr)
        # An MX host without an address is no better.
        p = smtp(["ghost.test", "alice@x.test", "bob@ghost.test"])
        self.assertExit(p, EX_NOHOST)

    @inside(**ZONE)
    def test_dns_failure_is_temporary(self):
        # dnsmasq refuses names outside .test: the resolver's SERVFAIL case.
        with Aio(host="127.0.0.5", port=25) as gw:
            p = smtp(["-g", "gw.test", "example.invalid", "alice@x.test",
                      "bob@example.invalid"])
            self.assertExit(p, EX_TEMPFAIL)
            # Not a case for the gateway: the domain may well exist.
            self.assertEqual(gw.messages, [])
        self.assertIn(b"DNS", p.stderr)

    @inside(**ZONE)
    def test_busted_mx_skipped(self):
        with Aio(host="127.0.0.13", port=25) as mx1, \
                Aio(host="127.0.0.14", port=25) as mx2:
            p = smtp(["-b", "mx1.busted.test", "busted.test", "alice@x.test",
                      "bob@busted.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual((len(mx1.messages), len(mx2.messages)), (0, 1))
            p = smtp(["-b", "mx1.busted.test", "-b", "MX2.busted.test.",
                      "busted.test", "alice@x.test", "bob@busted.test"])
            self.assertExit(p, EX_TEMPFAIL)
            self.assertIn(b"busted", p.stderr)

    @inside(**ZONE)
    def test_aaaa_then_a(self):
        with Aio(host="127.0.0.15", port=25) as s:
            p = smtp(["-d", "v6.test", "alice@x.test", "bob@v6.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual(len(s.messages), 1)
        t = p.stderr.decode()
        self.assertLess(t.index("mx.v6.test [::1]"),
                        t.index("mx.v6.test [127.0.0.15]"))

    @inside(**ZONE)
    def test_equal_preferences_share_the_load(self):
        with Aio(host="127.0.0.11", port=25) as m1, \
                Aio(host="127.0.0.12", port=25) as m2:
            for _ in range(24):
                self.assertExit(smtp(["b.test", "alice@x.test",
                                      "bob@b.test"]), EX_OK)
            # Both got some (the chance of this failing is 2 in 2^24).
            self.assertGreater(len(m1.messages), 0)
            self.assertGreater(len(m2.messages), 0)
            self.assertEqual(len(m1.messages) + len(m2.messages), 24)

    @inside(**ZONE)
    def test_tls_verified_against_the_mx_name(self):
        certs = make_certs(self.workdir)
        with Aio(Recorder(), host="127.0.0.3", port=25,
                 tls_context=server_tls(certs)) as s:
            p = smtp(["-d", "-s", "-o", "tls_cafile=" + certs["ca.pem"],
                      "a.test"] + SEND)
            self.assertExit(p, EX_OK)
            self.assertTrue(s.messages[0]["tls"])
        self.assertIn(b"certificate verified", p.stderr)

    @inside(**ZONE)
    def test_smtps_service_means_implicit_tls(self):
        certs = make_certs(self.workdir)
        with Aio(Recorder(), host="127.0.0.7", port=465,
                 ssl_context=server_tls(certs)) as s:
            for dest in ("tcp!smarthost.test!smtps", "smarthost.test:465"):
                p = smtp(["-d", "-o", "tls_cafile=" + certs["ca.pem"],
                          dest, "alice@x.test", "bob@y.test"])
                self.assertExit(p, EX_OK)
                t = p.stderr.decode()
                self.assertLess(t.index("* TLS"), t.index("<- 220"))
                self.assertIn("certificate verified", t)
            self.assertEqual(len(s.messages), 2)
            self.assertTrue(all(m["tls"] for m in s.messages))


if __name__ == "__main__":
    unittest.main()
