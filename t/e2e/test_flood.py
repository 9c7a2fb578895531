"""Connection floods: clients that connect and never speak, faster and in
greater numbers than the session limits allow, from one address, from one
IPv4 /24 and from one IPv6 /64.  The limits hold (the excess gets 421
4.7.0 from the acceptor and is closed, no worker thread is taken for it),
smtpd's memory and threads stay bounded, and a trusted client is still
served."""
import select
import socket
import time

import dnsns
from harness import ProtoCase, daemon_status, free_port

BASE = ('ournets = [ "127.0.0.1/32", "fd00:65::1/128" ];\n'
        'ourdomains = [ "ours.example" ];\n')
# smtpd's own threads besides the workers: main, acceptor, and a few
# helpers (signals, metrics); generous, as the workers are what count.
BASE_THREADS = 8
BURST = 2000
IP_BIND_ADDRESS_NO_PORT = 24



def flood(host, port, sources, count, batch=200, deadline=40):
    """Opens count connections, round robin over sources, in batches
    connected all at once; never says a word.  Returns (held sockets that
    got 220, first lines of the refused ones)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    held, refused = [], []
    end = time.time() + deadline
    n = 0
    while n < count and time.time() < end:
        socks = []
        for _ in range(min(batch, count - n)):
            s = socket.socket(fam, socket.SOCK_STREAM)
            if fam == socket.AF_INET:
                s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((sources[n % len(sources)], 0))
            s.setblocking(False)
            try:
                s.connect((host, port))
            except BlockingIOError:
                pass
            socks.append(s)
            n += 1
        bufs = {s: b"" for s in socks}
        waiting = set(socks)
        while waiting and time.time() < end:
            ready, _, _ = select.select(list(waiting), [], [], 1)
            for s in ready:
                try:
                    chunk = s.recv(512)
                except OSError:
                    chunk = b""
                bufs[s] += chunk
                if b"\r\n" in bufs[s] or not chunk:
                    waiting.discard(s)
        for s in socks:
            line = bufs[s].split(b"\r\n", 1)[0].decode("ascii", "replace")
            if line.startswith("220 "):
                held.append(s)
            else:
                refused.append(line)
                s.close()
    return held, refused


class Flood(ProtoCase):
    def trusted_served(self, d, host="127.0.0.1", source=None):
        """A trusted client gets 250 for EHLO, MAIL and RCPT (a liveness
        bound of 5 s per reply, not a speed test)."""
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(5)
        if source:
            s.bind((source, 0))
        s.connect((host, d.port))
        f = s.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                self.assertTrue(line, "closed")
                if line[3:4] != b"-":
                    return int(line[:3]), line

        try:
            self.assertEqual(reply()[0], 220)
            for cmd in (b"EHLO trusted.example", b"MAIL FROM:<a@ours.example>",
                        b"RCPT TO:<b@example.net>"):
                s.sendall(cmd + b"\r\n")
                self.assertEqual(reply()[0], 250, cmd)
            s.sendall(b"QUIT\r\n")
            self.assertEqual(reply()[0], 221)
        finally:
            f.close()
            s.close()

    def check_flood(self, d, sources, cap, why, count=BURST, host=None):
        """Floods d from sources: exactly cap sessions held, the rest
        421 4.7.0 with why; workers and memory bounded; a trusted client
        served meanwhile.  Returns the held sockets."""
        pid = d.proc.pid
        self.trusted_served(d, **({"host": host, "source": "fd00:65::1"}
                                  if host else {}))
        rss0, _ = daemon_status(pid)
        held, refused = flood(host or d.host, d.port, sources, count)
        # Closed before smtpd is stopped (which would wait for them).
        self._conns.extend(held)
        self.assertEqual(len(held), cap)
        self.assertEqual(len(refused), count - cap)
        for line in refused:
            self.assertRegex(line, r"^421 4\.7\.0 .*%s" % why)
        rss, threads = daemon_status(pid)
        # One worker per held session, none for the refused.
        self.assertLessEqual(threads, cap + BASE_THREADS)
        # Refused connections leave nothing behind (a worker's stack and
        # session are some 30 kB: 2,000 of them would be 60 MB).
        self.assertLess(rss - rss0, 16 * 1024, "RSS %d -> %d kB" % (rss0, rss))
        self.trusted_served(d, **({"host": host, "source": "fd00:65::1"}
                                  if host else {}))
        return held

    def test_one_address(self):
        """sessions_per_ip = 5: 2,000 silent connections from 127.0.1.2
        in bursts of 200: five are held, every other one gets 421 4.7.0
        at once and is closed; smtpd has no more than five workers."""
        d = self.smtpd(config_extra=BASE, limits={
            "sessions": 1000, "sessions_per_ip": 5, "sessions_per_net": 1000,
            "command_timeout": 60})
        self.check_flood(d, ["127.0.1.2"], 5, "from your address")
        self.assertRegex(d.logtext(), r"refused 127\.0\.1\.2: 5 sessions "
                         r"per client is the limit")

    def test_one_slash24(self):
        """sessions_per_net = 10: silent connections from 200 addresses
        of 127.0.1.0/24: ten are held, the rest get 421 4.7.0."""
        d = self.smtpd(config_extra=BASE, limits={
            "sessions": 1000, "sessions_per_ip": 50, "sessions_per_net": 10,
            "command_timeout": 60})
        self.check_flood(d, ["127.0.1.%d" % i for i in range(2, 202)], 10,
                         "from your network")

    def test_total_then_idle_cut(self):
        """sessions = 20: silent connections from 100 different /24s:
        twenty are held and the rest refused 421 4.7.0; the silent ones
        are cut off after command_timeout (421 4.4.2), after which a
        trusted client is served."""
        d = self.smtpd(config_extra=BASE, limits={
            "sessions": 20, "sessions_per_ip": 50, "sessions_per_net": 50,
            "command_timeout": 3})
        pid = d.proc.pid
        held, refused = flood(d.host, d.port,
                              ["127.%d.0.2" % i for i in range(2, 102)], 400)
        self._conns.extend(held)
        self.assertEqual(len(held), 20)
        self.assertEqual(len(refused), 380)
        for line in refused:
            self.assertRegex(line, r"^421 4\.7\.0 .*Too many connections")
        self.assertLessEqual(daemon_status(pid)[1], 20 + BASE_THREADS)
        for s in held:
            s.settimeout(10)
            self.assertTrue(s.recv(512).startswith(b"421 4.4.2"))
        deadline = time.time() + 10
        while True:
            try:
                self.trusted_served(d)
                break
            except AssertionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    @dnsns.inside(timeout=90)
    def test_one_slash64(self):
        """sessions_per_ip = 5 (an IPv6 client is its /64): silent
        connections from 100 addresses of fd00:64::/64 (a namespace's
        loopback): five are held, the rest get 421 4.7.0; a trusted
        client from another /64 is served."""
        import subprocess
        addrs = ["fd00:64::%x" % i for i in range(1, 102)] + ["fd00:65::1"]
        for a in addrs:
            subprocess.run(["ip", "-6", "addr", "add", a + "/64", "dev", "lo",
                            "nodad"], check=True)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        port = free_port("fd00:64::1")
        d = self.smtpd(start=False, config_extra=BASE,
                       listen=["[fd00:64::1]:%d" % port], limits={
                           "sessions": 1000, "sessions_per_ip": 5,
                           "sessions_per_net": 1000, "command_timeout": 60})
        d.host, d.port = "fd00:64::1", port
        d.start()
        try:
            self.check_flood(d, addrs[1:-1], 5, "from your address",
                             count=500, host="fd00:64::1")
        finally:
            for s in self._conns:
                s.close()
            d.stop()
