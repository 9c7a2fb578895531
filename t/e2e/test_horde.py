"""Idle hordes: tens of thousands of clients that connect, take their
greeting and say nothing more.  smtpd must hold them all in bounded
memory and still answer a trusted client meanwhile.  The figures (RSS
and threads at 1,000 / 10,000 / 30,000 sessions, from /proc/PID/status)
are printed for the record; the memory ceiling is asserted, and that
idle sessions do not hold a thread each, arriving or waiting.  Split, the figures are the sum
over smtpd's processes."""
import glob
import os
import resource
import select
import socket
import sys
import time

from harness import SMTPD, ProtoCase, daemon_status

# Many thousands of sockets: run alone.
SERIAL = True



def sanitized():
    """True for a build with AddressSanitizer or ThreadSanitizer: their
    shadow memory and thread limits (TSan: some 8,000) make neither the
    figures nor a horde of this size meaningful."""
    try:
        with open(SMTPD, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__tsan_init" in data


SANITIZED = sanitized()
# The goal is 30,000; a hard RLIMIT_NOFILE below that (raising it needs
# CAP_SYS_RESOURCE) caps the horde, since smtpd and the test each hold
# one descriptor per session.
NOFILE_HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
HORDE = min(int(os.environ.get("HORDE_SESSIONS",
                               "2000" if SANITIZED else "30000")),
            30000 if NOFILE_HARD == resource.RLIM_INFINITY
            else NOFILE_HARD - 1000)
STEPS = sorted({n for n in (1000, 10000) if n < HORDE} | {HORDE})
# Several loopback sources, each with its own ephemeral port range.
SOURCES = ["127.0.0.%d" % i for i in range(2, 7)]
# 1 GiB for 30,000 sessions: what each may cost, plus a fixed base.
RSS_BASE_KB = 64 * 1024
RSS_PER_SESSION_KB = (1024 * 1024 - RSS_BASE_KB) / 30000
FDS = HORDE + 1000
# Workers busy with sessions while the horde arrives, a few spares, and
# the daemon's own threads.
THREADS_MAX = 600
IP_BIND_ADDRESS_NO_PORT = 24
BASE = ('ournets = [ "127.0.0.1/32" ];\n'
        'ourdomains = [ "ours.example" ];\n')




def raise_nofile(want):
    """Raises our soft RLIMIT_NOFILE (smtpd inherits it); False if the
    hard limit is lower and cannot be raised."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return True
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError):
            return False
        return True
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return True


class Horde:
    """Idle client connections, opened in batches, greeting read."""

    def __init__(self, port):
        self.port = port
        self.socks = []

    def grow(self, total, deadline):
        """Opens connections until there are total of them, each having
        read its 220 greeting.  Returns how many are open."""
        while len(self.socks) < total and time.time() < deadline:
            batch = []
            for _ in range(min(500, total - len(self.socks))):
                src = SOURCES[len(self.socks + batch) % len(SOURCES)]
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind((src, 0))
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", self.port))
                except BlockingIOError:
                    pass
                batch.append(s)
            self.socks.extend(self.greeted(batch, deadline))
        return len(self.socks)

    @staticmethod
    def greeted(batch, deadline):
        """The sockets of batch that got a 220 greeting."""
        waiting = {s.fileno(): s for s in batch}
        bufs = {fd: b"" for fd in waiting}
        good = []
        poller = select.poll()
        for fd in waiting:
            poller.register(fd, select.POLLIN)
        while waiting and time.time() < deadline:
            for fd, _ in poller.poll(1000):
                s = waiting[fd]
                try:
                    chunk = s.recv(512)
                except OSError:
                    chunk = b""
                bufs[fd] += chunk
                if b"\r\n" in bufs[fd] or not chunk:
                    poller.unregister(fd)
                    del waiting[fd]
                    if bufs[fd].startswith(b"220 "):
                        good.append(s)
                    else:
                        s.close()
        for s in waiting.values():
            s.close()
        return good

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


class IdleHorde(ProtoCase):
    def test_idle_horde(self):
        """30,000 (or as many as RLIMIT_NOFILE allows) idle sessions from five loopback addresses (limits set
        high enough for them): every one is greeted, smtpd's RSS stays
        within 1 GiB per 30,000 sessions, and a trusted client meanwhile still gets 250 for
        its EHLO, MAIL, RCPT and NOOP."""
        if not raise_nofile(FDS):
            self.skipTest("cannot raise RLIMIT_NOFILE to %d" % FDS)
        d = self.smtpd(config_extra=BASE, limits={
            "sessions": HORDE + 100, "sessions_per_ip": HORDE + 100,
            "sessions_per_net": HORDE + 100, "command_timeout": 600})
        pid = d.proc.pid
        horde = Horde(d.port)
        self.addCleanup(horde.close)
        deadline = time.time() + 50
        figures = []
        try:
            for step in STEPS:
                got = horde.grow(step, deadline)
                self.assertEqual(got, step, "only %d of %d sessions greeted"
                                 % (got, step))
                rss, threads = daemon_status(pid)
                figures.append((step, rss, threads))
                sys.stderr.write("\n  %6d idle sessions: VmRSS %7d kB "
                                 "(%.1f kB each), %6d threads" %
                                 (step, rss, rss / step, threads))
                if not SANITIZED:
                    self.assertLess(rss,
                                    RSS_BASE_KB + step * RSS_PER_SESSION_KB)
                    # Idle sessions are set aside, not a thread each,
                    # and a flood of them does not hold workers through
                    # the park time: the threads stay bounded (a few
                    # hundred), whatever the size of the horde.
                    self.assertLess(threads, THREADS_MAX)
                # Liveness, not speed: a trusted client is served.
                c = self.open(d)
                c.sock.settimeout(5)
                self.assertReply(c.cmd("MAIL FROM:<a@ours.example>"), 250)
                self.assertReply(c.cmd("RCPT TO:<b@example.net>"), 250)
                self.assertReply(c.cmd("NOOP"), 250)
                self.assertReply(c.cmd("QUIT"), 221)
                c.close()
        finally:
            sys.stderr.write("\n")
            horde.close()


class DescriptorLimit(ProtoCase):
    def test_soft_limit_raised(self):
        """smtpd started with a soft RLIMIT_NOFILE of 256 raises it to the
        hard limit itself: 600 idle sessions are all greeted, not left
        waiting behind accept() failing with EMFILE."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 2000:
            self.skipTest("hard RLIMIT_NOFILE %d is too low" % hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        try:
            d = self.smtpd(config_extra=BASE, limits={
                "sessions": 1000, "sessions_per_ip": 1000,
                "sessions_per_net": 1000})
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        horde = Horde(d.port)
        self.addCleanup(horde.close)
        self.assertEqual(horde.grow(600, time.time() + 30), 600)
        # The sessions' process: smtpd itself, or its front when it has
        # split (started as root).
        pids = [d.proc.pid]
        for path in glob.glob("/proc/%d/task/*/children" % d.proc.pid):
            with open(path) as f:
                pids += [int(p) for p in f.read().split()]
        soft_limits = []
        for pid in pids:
            with open("/proc/%d/limits" % pid) as f:
                line = [l for l in f if l.startswith("Max open files")][0]
            soft_limits.append(line.split()[3])
        self.assertTrue(any(v != "256" for v in soft_limits), soft_limits)
        horde.close()

    def test_warns_when_hard_limit_too_low(self):
        """limits.sessions above what RLIMIT_NOFILE allows: smtpd says so
        at start (it cannot raise a hard limit)."""
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard == resource.RLIM_INFINITY or hard > 99000:
            self.skipTest("hard RLIMIT_NOFILE is above any sessions limit")
        d = self.smtpd(config_extra=BASE, limits={"sessions": hard + 1000})
        self.wait_log(d, r"limits\.sessions = %d, but only %d open files "
                      r"are allowed" % (hard + 1000, hard))
