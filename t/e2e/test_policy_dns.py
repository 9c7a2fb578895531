"""The sender DNS check (-r / verifysenderdom), inside a private network
namespace whose only DNS server is a dnsmasq with made-up records (see
dnsns.py): no query can reach the machine's resolver or the Internet."""
import shutil
import tempfile
import unittest

import dnsns
from harness import (BoundConn, Smtpd, TRUSTED_ADDR, UNTRUSTED_ADDR,
                     enhanced)

BASE = ('ournets = [ "127.0.0.1/32" ];\n'
        'ourdomains = [ "ours.example" ];\n')

RECORDS = [
    dnsns.mx("mxonly.example", "mail.mxonly.example", 10),
    dnsns.host("aonly.example", "192.0.2.10"),
    dnsns.host("aaaaonly.example", "2001:db8::10"),
    dnsns.host("both.example", "192.0.2.11", "2001:db8::11"),
    dnsns.null_mx("nullmx.example"),
    dnsns.txt("norecords.example", "v=spf1 -all"),
    dnsns.cname("alias.example", "aonly.example"),
    dnsns.servfail("broken.example"),
]

# sender -> (reply code, enhanced code) for an untrusted client with -r.
EXPECT = {
    "<x@nx.example>": (550, "5.1.8"),
    "<x@sub.nx.example>": (550, "5.1.8"),
    "<x@nullmx.example>": (550, "5.1.8"),
    "<x@norecords.example>": (550, "5.1.8"),
    "<x@mxonly.example>": (250, "2.1.0"),
    "<x@aonly.example>": (250, "2.1.0"),
    "<x@AOnly.EXAMPLE>": (250, "2.1.0"),
    "<x@aaaaonly.example>": (250, "2.1.0"),
    "<x@both.example>": (250, "2.1.0"),
    "<x@alias.example>": (250, "2.1.0"),
    "<x@[192.0.2.99]>": (250, "2.1.0"),
    "<x@broken.example>": (451, "4.4.3"),
    # dnsmasq answers REFUSED outside its domains: DNS cannot tell.
    "<x@outside.org>": (451, "4.4.3"),
    "<>": (250, "2.1.0"),
}


def mail_replies(d, source, senders):
    """{sender: (code, lines)} for MAIL FROM from a fresh session each."""
    out = {}
    for sender in senders:
        c = BoundConn(d.host, d.port, source, timeout=20)
        try:
            c.reply()
            c.cmd("EHLO mail.isp.net")
            out[sender] = c.cmd("MAIL FROM:" + sender)
            c.cmd("QUIT")
        finally:
            c.close()
    return out


def sender_dns_child():
    """Runs in the namespace: three daemons (-r, verifysenderdom = true,
    neither); returns their replies, logs and what the namespace looks
    like."""
    out = {"resolv": open("/etc/resolv.conf").read(),
           "probe": dnsns.query("aonly.example", "A")}
    setups = {"flag": (BASE, ["-r"]),
              "config": (BASE + "verifysenderdom = true;\n", []),
              "off": (BASE, [])}
    for name, (extra, args) in setups.items():
        work = tempfile.mkdtemp(prefix="smtpd-e2e-dns-")
        d = Smtpd(work, config_extra=extra, args=args)
        d.start()
        try:
            senders = list(EXPECT) if name != "off" else ["<x@nx.example>"]
            out[name] = mail_replies(d, UNTRUSTED_ADDR, senders)
            if name == "flag":
                out["trusted"] = mail_replies(
                    d, TRUSTED_ADDR, ["<x@nx.example>", "<x@broken.example>"])
        finally:
            d.stop()
            out[name + "-log"] = d.logtext()
            shutil.rmtree(work, ignore_errors=True)
    return out


class SenderDns(unittest.TestCase):
    """-r: an untrusted sender's domain needs MX or A/AAAA records; no such
    domain or a null MX: 550 5.1.8; DNS failure: 451 4.4.3."""

    @classmethod
    def setUpClass(cls):
        ok, why = dnsns.available()
        if not ok:
            raise unittest.SkipTest(why)
        cls.r = dnsns.run(__file__, "sender_dns_child", records=RECORDS,
                          timeout=120)

    def test_namespace_resolver(self):
        """The daemons saw only the namespace's resolv.conf and dnsmasq."""
        self.assertIn("nameserver 127.0.0.1", self.r["resolv"])
        self.assertIn("options timeout:1 attempts:1", self.r["resolv"])
        self.assertEqual(self.r["probe"], [0, [1]])

    def check(self, which):
        for sender, (code, ecode) in EXPECT.items():
            with self.subTest(setup=which, sender=sender):
                got_code, lines = self.r[which][sender]
                self.assertEqual(got_code, code, lines)
                self.assertEqual(enhanced(lines), ecode, lines)
                if code == 550:
                    self.assertIn("Sender address rejected", lines[-1])

    def test_r_flag(self):
        """-r: NXDOMAIN, null MX, no records 550; MX-only, A-only,
        AAAA-only, CNAME, address literal accepted; SERVFAIL and REFUSED
        451; the null sender is exempt."""
        self.check("flag")

    def test_verifysenderdom_config(self):
        """verifysenderdom = true does the same as -r."""
        self.check("config")

    def test_trusted_exempt(self):
        """127.0.0.1 (ournets) is not checked, even for broken domains."""
        for sender, (code, lines) in self.r["trusted"].items():
            with self.subTest(sender=sender):
                self.assertEqual(code, 250, lines)

    def test_off_by_default(self):
        """Without -r a nonexistent domain is accepted."""
        code, lines = self.r["off"]["<x@nx.example>"]
        self.assertEqual(code, 250, lines)

    def test_null_mx_reply_text(self):
        """The null MX refusal says the domain accepts no mail; NXDOMAIN
        says it was not found; the 451 asks to try again."""
        self.assertIn("accepts no mail",
                      self.r["flag"]["<x@nullmx.example>"][1][-1])
        self.assertIn("not found", self.r["flag"]["<x@nx.example>"][1][-1])
        self.assertIn("try again",
                      self.r["flag"]["<x@broken.example>"][1][-1])


if __name__ == "__main__":
    unittest.main()
