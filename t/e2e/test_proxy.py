"""The PROXY protocol (proxy { } in smtpd.conf): HAProxy in front of two
smtpd nodes with send-proxy and send-proxy-v2, and headers that must be
refused -- from an address that is not a trusted balancer, malformed,
truncated, too long, or sent to a listener not marked for them.

Clients bind to distinct loopback addresses: 127.0.0.1 is in ournets and
is the balancer, 127.0.0.9 is an untrusted client."""
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import time
import unittest

from harness import (BoundConn, PolicyCase, Smtpd, TRUSTED_ADDR,
                     UNTRUSTED_ADDR, free_port, parse_spool, wait_port)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SIG2 = b"\r\n\r\n\x00\r\nQUIT\n"
RELAY = ('ournets = [ "127.0.0.1/32" ];\n'
         'ourdomains = [ "ours.example" ];\n')
NOSLOW = {"tarpit_delay": 0}


def v2(cmd_fam, body):
    return SIG2 + cmd_fam + len(body).to_bytes(2, "big") + body


def v2_tcp4(src, sport, dst="127.0.0.1", dport=25, tlvs=b""):
    return v2(b"\x21\x11", socket.inet_aton(src) + socket.inet_aton(dst) +
              sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + tlvs)


class ProxyNode:
    """An smtpd node with a direct listener and a PROXY listener."""

    def __init__(self, case, name, extra="", timeout=None, limits=None):
        self.dir = os.path.join(case.workdir, name)
        os.makedirs(self.dir)
        self.pport = free_port()
        t = "timeout = %d; " % timeout if timeout else ""
        self.d = Smtpd(self.dir, config_extra=RELAY + extra + (
            'proxy = { listen = [ "127.0.0.1:%d" ]; '
            'trusted = [ "127.0.0.1/32" ]; %s};\n' % (self.pport, t)),
            limits=dict(NOSLOW, **(limits or {})))
        case._daemons.append(self.d)
        self.d.start()


class Refusals(PolicyCase):
    """Headers that must not be taken: the connection is closed without a
    greeting, and the log names the real peer and the reason."""

    def node(self, **kw):
        return ProxyNode(self, "n", **kw)

    def send_raw(self, port, data, source=TRUSTED_ADDR, close_write=False):
        """Connects from source, sends data, returns all the server sent
        until it closed (bounded)."""
        s = socket.socket()
        s.settimeout(10)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        sport = s.getsockname()[1]
        if data:
            s.sendall(data)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        got = b""
        try:
            while len(got) < 65536:
                b = s.recv(4096)
                if not b:
                    break
                got += b
        except OSError:
            pass
        s.close()
        return got, sport

    def assertRefused(self, n, data, why, source=TRUSTED_ADDR, **kw):
        got, sport = self.send_raw(n.pport, data, source, **kw)
        self.assertEqual(got, b"", "a refused connection gets no greeting")
        pat = r"refused %s port %d: %s" % (re.escape(source), sport, why)
        self.wait_log(n.d, pat)
        return n.d.logtext()

    def wait_log(self, d, pattern, count=1, timeout=10):
        deadline = time.time() + timeout
        while True:
            text = d.logtext()
            if len(re.findall(pattern, text)) >= count or \
                    time.time() > deadline:
                break
            time.sleep(0.03)
        self.assertGreaterEqual(len(re.findall(pattern, text)), count,
                                "%r not in the log:\n%s" % (pattern,
                                                            text[-3000:]))
        return text

    def test_untrusted_peer_refused(self):
        n = self.node()
        self.assertRefused(
            n, b"PROXY TCP4 127.0.0.1 127.0.0.1 1234 25\r\n",
            "PROXY listener, not a trusted balancer", source=UNTRUSTED_ADDR)

    def test_malformed_v1(self):
        n = self.node()
        for bad, why in [
                (b"PROXY TCP4 127.0.0.7 127.0.0.1 99999 25\r\n", "bad port"),
                (b"PROXY TCP4 ::1 ::1 1 25\r\n", "bad address"),
                (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "not ended by CRLF"),
                (b"PROXY UNKNOWN " + b"x" * 120 + b"\r\n", "longer than 107"),
                (b"EHLO client.example\r\n", "not a PROXY header")]:
            with self.subTest(bad=bad):
                self.assertRefused(n, bad, "bad PROXY header: .*" + why)
        self.assertNothingQueued(n.d)

    def test_malformed_v2(self):
        n = self.node()
        good = v2_tcp4("127.0.0.7", 4000)
        for bad, why in [
                (SIG2 + b"\x11" + good[13:], "unknown version"),
                (SIG2 + b"\x2f" + good[13:], "unknown command"),
                (v2(b"\x21\x12", good[16:]), "datagram"),
                (v2(b"\x21\x11", good[16:24]), "shorter than its addresses"),
                (v2_tcp4("127.0.0.7", 1, tlvs=b"\x02\x01\x00x"),
                 "TLV longer than"),
                (v2_tcp4("127.0.0.7", 1, tlvs=b"\x20\x00\x08\x01\x00\x00"
                         b"\x00\x00\x22\x01\x00"), "sub-TLV longer"),
                (SIG2 + b"\x21\x11\xff\xff" + b"\x00" * 3000,
                 "header too long")]:
            with self.subTest(bad=bad[:20]):
                self.assertRefused(n, bad, "bad PROXY header: .*" + why)
        self.assertNothingQueued(n.d)

    def test_truncated_and_slow(self):
        n = self.node(timeout=1)
        self.assertRefused(n, b"PROXY TCP4 127.0.0.7", "bad PROXY header: "
                           "truncated header", close_write=True)
        self.assertRefused(n, v2_tcp4("127.0.0.7", 1)[:20],
                           "bad PROXY header: truncated header",
                           close_write=True)
        t0 = time.time()
        self.assertRefused(n, b"PROXY TCP4 127.0.0.7", "bad PROXY header: "
                           "header not complete in time")
        self.assertLess(time.time() - t0, 9)

    def test_header_on_unmarked_listener(self):
        """The direct listener takes no header: v1 and v2 both end the
        connection, logged, and nothing is relayed."""
        n = self.node()
        for hdr in (b"PROXY TCP4 127.0.0.1 127.0.0.1 1234 25\r\n",
                    v2_tcp4("127.0.0.1", 1234)):
            got, sport = self.send_raw(n.d.port, hdr + b"EHLO x\r\n")
            self.assertNotIn(b"\r\n250", got)
        text = self.wait_log(n.d, r"PROXY header on a listener not "
                             r"configured for it", count=2)
        self.assertNotIn("Segmentation", text)
        self.assertNothingQueued(n.d)

    def test_local_and_tlvs(self):
        """A v2 LOCAL header (a health check) leaves the real peer; the
        TLS and authority TLVs are logged; unknown TLVs are skipped."""
        n = self.node()
        c = self.track(BoundConn("127.0.0.1", n.pport, TRUSTED_ADDR))
        c.send(v2(b"\x20\x00", b""))
        self.assertEqual(c.reply()[0], 220)
        c.cmd("QUIT")
        ssl = (b"\x05\x00\x00\x00\x00" + b"\x21\x00\x07TLSv1.3" +
               b"\x22\x00\x0bclient.cert" + b"\x23\x00\x16"
               b"TLS_AES_256_GCM_SHA384")
        tlvs = (b"\x02\x00\x0bmx.example." + b"\xe0\x00\x04abcd" +
                b"\x20" + len(ssl).to_bytes(2, "big") + ssl)
        c = self.track(BoundConn("127.0.0.1", n.pport, TRUSTED_ADDR))
        c.send(v2_tcp4("127.0.0.9", 5555, tlvs=tlvs))
        self.assertEqual(c.reply()[0], 220)
        # Relay control sees 127.0.0.9, not the trusted balancer.
        self.assertEqual(c.cmd("EHLO x.example")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<u@other.example>")[0], 554)
        c.cmd("QUIT")
        text = self.wait_log(n.d, r"connect address=127\.0\.0\.9 port=5555 "
                             r"name=unknown proxy=127\.0\.0\.1 ")
        self.assertRegex(text, r"connect address=127\.0\.0\.1 port=\d+ "
                         r"name=unknown trusted proxy=127\.0\.0\.1 "
                         r"proxy_port=\d+ version=2 command=local")
        line = [l for l in text.splitlines() if "port=5555 " in l][0]
        for want in ('ssl=yes', 'client_cert=yes', 'verify=0',
                     'tls_version="TLSv1.3"', 'cn="client.cert"',
                     'cipher="TLS_AES_256_GCM_SHA384"',
                     'authority="mx.example."'):
            self.assertIn(want, line)

    def test_per_client_cap_on_carried_address(self):
        """sessions_per_ip counts the client the header names: a third
        session of 127.0.0.7 is refused, 127.0.0.8 still gets in, all
        through the one balancer address."""
        n = ProxyNode(self, "cap", limits={"sessions_per_ip": 2})
        for port, want in ((1000, 220), (1001, 220), (1002, 421)):
            c = self.track(BoundConn("127.0.0.1", n.pport, TRUSTED_ADDR))
            c.send(b"PROXY TCP4 127.0.0.7 127.0.0.1 %d 25\r\n" % port)
            self.assertEqual(c.reply()[0], want)
        c = self.track(BoundConn("127.0.0.1", n.pport, TRUSTED_ADDR))
        c.send(v2_tcp4("127.0.0.8", 1003))
        self.assertEqual(c.reply()[0], 220)
        self.wait_log(n.d, r"refused 127\.0\.0\.7 \(through 127\.0\.0\.1\): "
                      r"2 sessions per client is the limit")


HAPROXY_CFG = """global
    maxconn 200
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
frontend smtp
    bind 127.0.0.1:%(port)d
    default_backend nodes
backend nodes
    balance roundrobin
    server a 127.0.0.1:%(a)d %(how)s
    server b 127.0.0.1:%(b)d %(how)s
"""


@unittest.skipUnless(os.path.exists(HAPROXY), "haproxy is not installed")
class BehindHAProxy(PolicyCase):
    """HAProxy (balance roundrobin) in front of two nodes."""

    def setUp(self):
        super().setUp()
        self.haproxy = None

    def tearDown(self):
        if self.haproxy is not None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(10)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
                self.haproxy.wait()
            self.hlog.close()
        super().tearDown()

    def start(self, how):
        self.a = ProxyNode(self, "a")
        self.b = ProxyNode(self, "b")
        self.port = free_port()
        cfg = os.path.join(self.workdir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CFG % {"port": self.port, "a": self.a.pport,
                                   "b": self.b.pport, "how": how})
        self.hlog = open(os.path.join(self.workdir, "haproxy.log"), "wb")
        self.haproxy = subprocess.Popen([HAPROXY, "-f", cfg, "-db"],
                                        stdin=subprocess.DEVNULL,
                                        stdout=self.hlog, stderr=self.hlog)
        self.assertTrue(wait_port("127.0.0.1", self.port), "haproxy")

    def send(self, source, rcpt, token):
        """One message through the balancer; the SMTP exception if any."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10,
                          source_address=(source, 0)) as s:
            s.ehlo("client.example")
            s.sendmail("alice@example.org", [rcpt],
                       "Subject: %s\r\n\r\n%s\r\n" % (token, token))

    def all_messages(self):
        out = []
        for n in (self.a, self.b):
            out += [(n, parse_spool(raw)) for raw in n.d.queued().values()]
        return out

    def relay_control(self, how, version):
        self.start(how)
        # Trusted client: may relay; untrusted: our domains only.
        self.send(TRUSTED_ADDR, "u@other.example", "t-trusted")
        with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
            self.send(UNTRUSTED_ADDR, "u@other.example", "t-refused")
        self.assertEqual(cm.exception.recipients["u@other.example"][0], 554)
        self.send(UNTRUSTED_ADDR, "u@ours.example", "t-ours")
        for i in range(4):
            self.send(UNTRUSTED_ADDR, "u@ours.example", "t-more-%d" % i)
        msgs = self.all_messages()
        self.assertEqual(len(msgs), 6)
        per_node = {n.d.port: 0 for n in (self.a, self.b)}
        for n, (env, body) in msgs:
            per_node[n.d.port] += 1
            tok = re.search(rb"Subject: (\S+)", body).group(1)
            first = body.split(b"\r\n\t")[0]
            want = b"127.0.0.1" if tok == b"t-trusted" else b"127.0.0.9"
            self.assertIn(b"[" + want + b"]", first, body[:300])
        # Round robin: both nodes took a share.
        self.assertTrue(all(v >= 2 for v in per_node.values()), per_node)
        text = self.a.d.logtext() + self.b.d.logtext()
        self.assertIn("policy relay refused to=<u@other.example>", text)
        self.assertRegex(text, r"connect address=127\.0\.0\.9 port=\d+ "
                         r"name=unknown proxy=127\.0\.0\.1 proxy_port=\d+ "
                         r"version=%d" % version)

    def test_send_proxy_v1(self):
        self.relay_control("send-proxy", 1)

    def test_send_proxy_v2(self):
        self.relay_control("send-proxy-v2", 2)

    def test_node_killed_under_load(self):
        """A node is killed while three clients send: they retry through
        the balancer and every acknowledged message is in one node's spool
        exactly once (the killed node's journal is read on restart)."""
        self.start("send-proxy-v2")
        acked = {}
        attempts = {}
        lock = threading.Lock()

        def client(k):
            for i in range(8):
                tok = "tok-%d-%d" % (k, i)
                for attempt in range(1, 6):
                    attempts[tok] = attempt
                    try:
                        self.send(UNTRUSTED_ADDR, "u@ours.example", tok)
                    except (smtplib.SMTPException, OSError):
                        time.sleep(0.2)
                        continue
                    with lock:
                        acked[tok] = attempt
                    break

        threads = [threading.Thread(target=client, args=(k,))
                   for k in range(3)]
        for t in threads:
            t.start()
        deadline = time.time() + 30
        while len(acked) < 6 and time.time() < deadline:
            time.sleep(0.02)
        self.b.d.proc.kill()
        self.b.d.proc.wait()
        self.b.d.proc = None
        self.b.d.log.close()
        for t in threads:
            t.join(120)
        self.assertEqual(len(acked), 24, "every message acknowledged")
        # Restarted, the killed node moves its journal into queue/.
        self.b.d.start()
        found = {}
        for n, (env, body) in self.all_messages():
            tok = re.search(rb"Subject: (\S+)", body).group(1).decode()
            found.setdefault(tok, []).append(n.d.port)
        for tok, attempt in acked.items():
            self.assertIn(tok, found, "acknowledged message lost")
            if attempts[tok] == 1:
                self.assertEqual(len(found[tok]), 1, tok)
            else:
                # An attempt cut off before its reply may have been
                # committed too: never more copies than attempts.
                self.assertLessEqual(len(found[tok]), attempts[tok], tok)
        self.assertTrue(found, "nothing delivered")
        self.assertTrue(any(self.b.d.port in v for v in found.values()),
                        "the killed node had taken messages")


if __name__ == "__main__":
    unittest.main()
