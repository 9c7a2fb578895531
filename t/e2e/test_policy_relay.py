"""Relay control, spoofed-domain tagging (-f / norelay) and dropped
clients (-k / block), seen from clients on distinct loopback addresses:
127.0.0.1 is in ournets, 127.0.0.9 is not."""
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

import dnsns
from harness import (BoundConn, Conn, PolicyCase, Smtpd, TRUSTED_ADDR,
                     UNTRUSTED_ADDR, enhanced, free_port, parse_spool)

BASE = ('ournets = [ "127.0.0.1/32" ];\n'
        'ourdomains = [ "ours.example", "*.corp.example", "[192.0.2.1]" ];\n')
# Many refusals in one session: no tarpit, no error limit in the way.
NOSLOW = {"tarpit_delay": 0, "errors": 1000}

# Recipients that must never be relayed for an untrusted client.
FOREIGN = [
    "<user@other.example>",
    "<user%other.example@ours.example>",
    "<@ours.example:user@other.example>",
    "<other.example!user@ours.example>",
    '<"user@other.example"@ours.example>',
    "<user@[192.0.2.2]>",
    "<user@[127.0.0.1]>",
    "<user@[IPv6:::1]>",
    "<user@ours.example.other.example>",
    "<user@evilcorp.example>",
    "<user@corp.example.other.example>",
    # "*.corp.example" is below corp.example only, as in routes.
    "<user@corp.example>",
    "<user@OTHER.EXAMPLE>",
    "<USER%OTHER.EXAMPLE@OURS.EXAMPLE>",
    "<user@other.example.>",
]
# Recipients in our domains: anyone may send to them.
OURS = [
    "<user@ours.example>",
    "<user@OURS.EXAMPLE>",
    "<User@Ours.Example>",
    "<user@OURS.EXAMPLE.>",
    "<user@a.b.corp.example>",
    "<user@Mail.CORP.example.>",
    "<Postmaster>",
    "<user@[192.0.2.1]>",
    "<@other.example:user@ours.example>",
]


def msg(headers, body="body line\r\n"):
    """Message data (header lines without line ends) ending in CRLF.CRLF."""
    return ("".join(h + "\r\n" for h in headers) + "\r\n" + body +
            ".\r\n").encode()


class RelayControl(PolicyCase):
    """ournets = 127.0.0.1/32: only it may send to foreign domains."""

    def rcpt_reply(self, d, source, rcpt):
        c = self.client(d, source)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250, "2.1.0")
        rep = c.cmd("RCPT TO:" + rcpt)
        c.cmd("QUIT")
        return rep

    def test_open_relay_battery_refused_from_untrusted(self):
        """Every routing trick to a foreign domain gets 554 5.7.1 from the
        untrusted address, and the refusal is logged."""
        d = self.smtpd(config_extra=BASE, limits=NOSLOW)
        for rcpt in FOREIGN:
            with self.subTest(rcpt=rcpt):
                self.assertReply(self.rcpt_reply(d, UNTRUSTED_ADDR, rcpt),
                                 554, "5.7.1")
        self.assertIn("policy relay refused", d.logtext())

    def test_our_domains_accepted_from_untrusted(self):
        """Our domains (any case, trailing dot, *.corp.example subdomains,
        a listed address literal) and <Postmaster> are accepted from
        anyone."""
        d = self.smtpd(config_extra=BASE, limits=NOSLOW)
        for rcpt in OURS:
            with self.subTest(rcpt=rcpt):
                self.assertReply(self.rcpt_reply(d, UNTRUSTED_ADDR, rcpt),
                                 250, "2.1.5")

    def test_trusted_address_may_relay(self):
        """The same battery is accepted from 127.0.0.1 (in ournets)."""
        d = self.smtpd(config_extra=BASE, limits=NOSLOW)
        for rcpt in FOREIGN + OURS:
            with self.subTest(rcpt=rcpt):
                self.assertReply(self.rcpt_reply(d, TRUSTED_ADDR, rcpt),
                                 250, "2.1.5")

    def test_one_refusal_leaves_the_transaction(self):
        """A refused recipient does not end the transaction: the message
        goes to the accepted recipient only and nothing is relayed."""
        d = self.smtpd(config_extra=BASE)
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<x@other.example>"), 554, "5.7.1")
        self.assertReply(c.cmd("RCPT TO:<u@ours.example>"), 250, "2.1.5")
        self.queued_id(self.send_data(c, msg(["Subject: t"])))
        [(env, _)] = self.messages(d)
        self.assertEqual(env["rcpt"], ["<u@ours.example>"])

    def test_swaks_untrusted_refused_trusted_relays(self):
        """swaks bound to 127.0.0.9 cannot relay (554 5.7.1, nothing
        queued); bound to 127.0.0.1 it can."""
        d = self.smtpd(config_extra=BASE)
        base = ["swaks", "--server", "%s:%d" % (d.host, d.port),
                "--from", "alice@example.org", "--to", "bob@other.example",
                "--helo", "mail.isp.net", "--body", "relay test"]
        p = subprocess.run(base + ["--local-interface", UNTRUSTED_ADDR],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertRegex(p.stdout, r"<\*\* 554 5\.7\.1 ")
        self.assertEqual(self.messages(d), [])
        p = subprocess.run(base + ["--local-interface", TRUSTED_ADDR],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        [(env, body)] = self.messages(d)
        self.assertEqual(env["rcpt"], ["<bob@other.example>"])
        self.assertIn(b"relay test", body)

    def test_default_ournets_trust_all_loopback(self):
        """Without ournets, 127.0.0.0/8 is trusted: 127.0.0.9 may relay."""
        d = self.smtpd(config_extra='ourdomains = [ "ours.example" ];')
        self.assertReply(self.rcpt_reply(d, UNTRUSTED_ADDR,
                                         "<u@other.example>"), 250, "2.1.5")

    def test_empty_ournets_trust_nobody(self):
        """ournets = [] trusts nobody, not even 127.0.0.1."""
        d = self.smtpd(config_extra='ournets = [];\n'
                       'ourdomains = [ "ours.example" ];')
        self.assertReply(self.rcpt_reply(d, TRUSTED_ADDR,
                                         "<u@other.example>"), 554, "5.7.1")
        self.assertReply(self.rcpt_reply(d, TRUSTED_ADDR,
                                         "<u@ours.example>"), 250, "2.1.5")


class SockConn(Conn):
    """A Conn over a socket connected elsewhere."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""


def mapped_peer_child():
    """Inside a private network namespace (only lo): a dual-stack listener
    (":port"); IPv4 clients arrive as ::ffff:a.b.c.d.  Returns the reply
    codes seen and the daemon log."""
    work = tempfile.mkdtemp(prefix="smtpd-e2e-mapped-")
    port = free_port()
    d = Smtpd(work, config_extra=BASE, listen=[":%d" % port])
    d.port = port
    d.start()
    out = {}
    try:
        cases = [("v4-untrusted", socket.AF_INET, UNTRUSTED_ADDR, "127.0.0.1"),
                 ("v4-trusted", socket.AF_INET, TRUSTED_ADDR, "127.0.0.1"),
                 ("mapped-untrusted", socket.AF_INET6, "::ffff:127.0.0.9",
                  "::ffff:127.0.0.1"),
                 ("mapped-trusted", socket.AF_INET6, "::ffff:127.0.0.1",
                  "::ffff:127.0.0.1"),
                 ("v6-loopback", socket.AF_INET6, "::1", "::1")]
        for name, fam, src, dst in cases:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(10)
            s.bind((src, 0))
            s.connect((dst, port))
            c = SockConn(s)
            r = [c.reply()]
            r.append(c.cmd("EHLO mail.isp.net"))
            r.append(c.cmd("MAIL FROM:<alice@example.org>"))
            r.append(c.cmd("RCPT TO:<bob@other.example>"))
            r.append(c.cmd("RCPT TO:<bob@ours.example>"))
            c.cmd("QUIT")
            c.close()
            out[name] = [(code, lines) for code, lines in r]
    finally:
        d.stop()
        out["log"] = d.logtext()
        shutil.rmtree(work, ignore_errors=True)
    return out


class MappedPeer(PolicyCase):
    """IPv4 clients on an IPv6 (dual-stack) listener match IPv4 ournets."""

    def test_ipv4_mapped_peer_matches_ipv4_ournets(self):
        """::ffff:127.0.0.1 is trusted by "127.0.0.1/32" and may relay;
        ::ffff:127.0.0.9 and ::1 are not; the log shows plain IPv4."""
        ok, why = dnsns.available()
        if not ok:
            self.skipTest(why)
        r = dnsns.run(__file__, "mapped_peer_child", timeout=60)
        log = r.pop("log")
        want_relay = {"v4-untrusted": 554, "v4-trusted": 250,
                      "mapped-untrusted": 554, "mapped-trusted": 250,
                      "v6-loopback": 554}
        for name, replies in r.items():
            with self.subTest(client=name):
                codes = [code for code, _ in replies]
                self.assertEqual(codes[:3], [220, 250, 250], replies)
                self.assertEqual(codes[3], want_relay[name], replies)
                self.assertEqual(codes[4], 250, replies)
                if codes[3] == 554:
                    self.assertEqual(enhanced(replies[3][1]), "5.7.1")
        self.assertIn("address=127.0.0.9 ", log)
        self.assertRegex(log, r"address=127\.0\.0\.1 .* trusted")
        self.assertNotIn("::ffff:", log)


class SpoofTagging(PolicyCase):
    """-f / norelay: mail from untrusted clients claiming our domains gets
    X-warning headers in the spool file; nothing is refused."""

    def send(self, d, source, sender, headers, rcpt="<u@ours.example>"):
        c = self.client(d, source)
        self.assertReply(c.cmd("MAIL FROM:" + sender), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:" + rcpt), 250, "2.1.5")
        qid = self.queued_id(self.send_data(c, msg(headers)))
        c.cmd("QUIT")
        raw = d.queued()[qid]
        env, body = parse_spool(raw)
        head = body.split(b"\r\n\r\n", 1)[0].decode()
        return [l for l in head.split("\r\n") if l.startswith("X-warning:")]

    ENV = "X-warning: suspect envelope domain"
    FROM = "X-warning: suspect From: domain"
    SENDER = "X-warning: suspect Sender: domain"

    def check_cases(self, d):
        cases = [
            # (source, envelope sender, header lines, expected warnings)
            (UNTRUSTED_ADDR, "<boss@ours.example>",
             ["From: Boss <boss@ours.example>", "Subject: a"],
             [self.ENV, self.FROM]),
            (UNTRUSTED_ADDR, "<boss@OURS.Example>",
             ["From: boss@x.corp.example", "Subject: b"],
             [self.ENV, self.FROM]),
            (UNTRUSTED_ADDR, "<someone@other.example>",
             ["From: Boss <boss@ours.example>", "Subject: c"],
             [self.FROM]),
            (UNTRUSTED_ADDR, "<boss@ours.example>",
             ["From: someone@other.example", "Subject: d"],
             [self.ENV]),
            (UNTRUSTED_ADDR, "<someone@other.example>",
             ["From: someone@other.example", "Subject: e"], []),
            (UNTRUSTED_ADDR, "<>",
             ["From: MAILER-DAEMON@other.example", "Subject: f"], []),
            # A mailing list: a good Sender: vouches for an our-domain From:.
            (UNTRUSTED_ADDR, "<list-bounces@lists.other.example>",
             ["Sender: list-bounces@lists.other.example",
              "From: Boss <boss@ours.example>", "Subject: g"], []),
            # A folded From: is read unfolded; field names in any case.
            (UNTRUSTED_ADDR, "<a@other.example>",
             ["FROM: The Boss", " <boss@ours.example>", "Subject: j"],
             [self.FROM]),
            # Two From: fields of ours: one warning each.
            (UNTRUSTED_ADDR, "<a@other.example>",
             ["From: boss@ours.example", "From: cto@ours.example",
              "Subject: h"], [self.FROM, self.FROM]),
            # Trusted clients are never tagged.
            (TRUSTED_ADDR, "<boss@ours.example>",
             ["From: Boss <boss@ours.example>",
              "Sender: boss@ours.example", "Subject: i"], []),
        ]
        for source, sender, headers, want in cases:
            with self.subTest(source=source, sender=sender, headers=headers):
                got = self.send(d, source, sender, headers)
                self.assertEqual(sorted(got), sorted(want))

    def test_norelay_config_tags(self):
        """norelay = true: tags exactly where the sender claims to be us."""
        d = self.smtpd(config_extra=BASE + "norelay = true;")
        self.check_cases(d)
        self.assertIn("policy tagged as spoofed", d.logtext())

    def test_f_flag_tags(self):
        """-f does the same as norelay = true."""
        d = self.smtpd(config_extra=BASE, args=["-f"])
        self.check_cases(d)

    def test_our_sender_field_is_suspect_and_does_not_vouch(self):
        """A Sender: in our domain is tagged, and does not vouch for the
        From: (Plan 9 returns early only for a good Sender:), so an
        our-domain From: is tagged as well."""
        d = self.smtpd(config_extra=BASE, args=["-f"])
        got = self.send(d, UNTRUSTED_ADDR, "<x@other.example>",
                        ["Sender: boss@ours.example",
                         "From: boss@ours.example", "Subject: s"])
        self.assertEqual(sorted(got), sorted([self.SENDER, self.FROM]))

    def test_no_tags_without_f(self):
        """Without -f/norelay nothing is tagged, even for spoofed mail."""
        d = self.smtpd(config_extra=BASE)
        got = self.send(d, UNTRUSTED_ADDR, "<boss@ours.example>",
                        ["From: boss@ours.example", "Subject: n"])
        self.assertEqual(got, [])


class BlockedClients(PolicyCase):
    """-k and block: the client is dropped before any reply, unlogged."""

    def assertDropped(self, d, source):
        c = self.track(BoundConn(d.host, d.port, source))
        self.assertTrue(c.closed(timeout=5), "not closed")
        self.assertEqual(c.buf, b"")

    def test_k_drops_before_greeting(self):
        """-k 127.0.0.9: closed with no 220 and no log line naming it;
        127.0.0.10 is still served."""
        d = self.smtpd(config_extra=BASE, args=["-k", UNTRUSTED_ADDR])
        for _ in range(3):
            self.assertDropped(d, UNTRUSTED_ADDR)
        c = self.client(d, "127.0.0.10")
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
        log = self.wait_log(d, "address=127.0.0.10")
        self.assertIn("address=127.0.0.10", log)
        self.assertNotIn("127.0.0.9", log)

    def test_block_list_and_repeated_k_with_cidr(self):
        """block = [cidr] and several -k add up; trusted addresses are
        dropped too when listed."""
        d = self.smtpd(config_extra=BASE + 'block = [ "127.0.0.8/30" ];',
                       args=["-k", "127.0.1.0/24", "-k", TRUSTED_ADDR])
        for src in ("127.0.0.8", UNTRUSTED_ADDR, "127.0.0.11", "127.0.1.7",
                    TRUSTED_ADDR):
            with self.subTest(source=src):
                self.assertDropped(d, src)
        c = self.client(d, "127.0.0.12")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        log = d.logtext()
        for src in ("127.0.0.8 ", "127.0.0.9 ", "127.0.0.11 ", "127.0.1.7 ",
                    "address=127.0.0.1 "):
            self.assertNotIn(src, log)

    def test_k_in_stdio_mode_says_nothing(self):
        """A stdio session from a -k address (TCPREMOTEIP) ends with no
        output at all."""
        d = self.smtpd(start=False, config_extra=BASE)
        env = dict(os.environ, TCPREMOTEIP=UNTRUSTED_ADDR)
        rc, out, err = d.stdio(b"EHLO x.example\r\nQUIT\r\n", env=env,
                               extra_args=["-k", UNTRUSTED_ADDR])
        self.assertEqual(out, b"")
        self.assertNotIn(b"127.0.0.9", err)
        env["TCPREMOTEIP"] = "127.0.0.10"
        rc, out, err = d.stdio(b"QUIT\r\n", env=env,
                               extra_args=["-k", UNTRUSTED_ADDR])
        self.assertTrue(out.startswith(b"220 "), out)


if __name__ == "__main__":
    unittest.main()
