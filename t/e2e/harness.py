"""Shared pieces for the end-to-end tests: start the real binaries on
loopback with a throwaway config and spool, and look at what they did.

Tests run under /usr/bin/python3 (Debian's, with python3-aiosmtpd).
"""
import fcntl
import glob
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
# The harness's queue setting; tests that set "queue" themselves replace it.
RUNNER_OFF = "queue = { runner = false; };"
# Binaries live at the top of the build tree; run.py sets BUILDDIR.
BUILDDIR = os.environ.get("BUILDDIR", os.path.dirname(os.path.dirname(HERE)))
SMTPD = os.path.join(BUILDDIR, "smtpd")
# A command smtpd runs under, e.g. SMTPD_WRAPPER="valgrind -q
# --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite".
SMTPD_WRAPPER = os.environ.get("SMTPD_WRAPPER", "").split()


# What the sanitizers (ASan, LSan, TSan, UBSan) print when they find
# something; a build without them never prints these.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "WARNING: ThreadSanitizer",
                   "runtime error:")
# What valgrind (SMTPD_WRAPPER) prints when it finds errors, with or
# without -q.
VALGRIND_ERRORS = re.compile(
    r"^==\d+== (ERROR SUMMARY: [1-9]|Invalid |Conditional jump|"
    r"Use of uninitialised|Syscall param|Mismatched free|"
    r"Source and destination overlap|.* definitely lost in )", re.M)


def sanitizer_build():
    """Whether $BUILDDIR was configured with sanitizers.  What does not
    depend on this build's flags (the configure script, the Debian
    package, built with Debian's) is tested in the plain run only."""
    try:
        with open(os.path.join(BUILDDIR, "Makefile")) as f:
            m = re.search(r"(?m)^SAN_CFLAGS = (.*)$", f.read())
    except OSError:
        return False
    return m is not None and m.group(1).strip() != ""


def sanitizer_report(text):
    """The first sanitizer complaint in text, or None."""
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i != -1:
            return text[max(0, i - 200):i + 2000]
    m = VALGRIND_ERRORS.search(text)
    if m:
        return text[max(0, m.start() - 200):m.end() + 4000]
    return None


# Ports for the servers the tests start come from below the kernel's
# ephemeral range: a port bind(0) found free could be taken, before the
# server binds it, as the local port of some test's outgoing connection.
# Each port handed out is locked (a file in PORT_LOCKS) for the life of
# the test process, so that test files running in parallel, in every
# build's run, never get the same one.
# Not under TMPDIR: each run (run.py) has its own.
PORT_LOCKS = "/tmp/upas-e2e-ports"
PORT_SPAN = 12000
_held_ports = []


def _port_floor():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(1024, low - PORT_SPAN)


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now, and no other test process
    will be given while this one runs."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    floor = _port_floor()
    os.makedirs(PORT_LOCKS, mode=0o1777, exist_ok=True)
    for _ in range(200):
        port = floor + random.randrange(PORT_SPAN)
        fd = os.open(os.path.join(PORT_LOCKS, str(port)),
                     os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port))
        except OSError:
            os.close(fd)
            continue
        _held_ports.append(fd)
        return port
    # Nothing found that way: what the kernel offers.
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def connect_once(host, port):
    """A connected socket to host:port, or None if nothing accepts."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect((host, port))
    except OSError:
        s.close()
        return None
    return s


def wait_port(host, port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = connect_once(host, port)
        if s is not None:
            s.close()
            return True
        time.sleep(0.02)
    return False


def wait_smtp(host, port, timeout=10.0):
    """wait_port for an SMTP server: once connected, takes the greeting,
    closes its side and waits for the server to close, so that this
    session has ended (and no longer counts against the session limits)
    when the test's own connections come; smtpd logs it as client-closed.
    A listener that does not greet in plain text (implicit TLS, PROXY) is
    just closed, as by wait_port."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = connect_once(host, port)
        if s is None:
            time.sleep(0.02)
            continue
        try:
            s.settimeout(2)
            if s.recv(512).startswith(b"220"):
                s.shutdown(socket.SHUT_WR)
                while s.recv(512):
                    pass
        except OSError:
            pass
        finally:
            s.close()
        return True
    return False


def wait_port_free(host, port, timeout=10.0):
    """Waits until nothing accepts connections on port; False if in vain."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = connect_once(host, port)
        if s is None:
            return True
        s.close()
        time.sleep(0.02)
    return False


def proc_status(pid):
    """VmRSS in kB and Threads of a process."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key] = int(val.split()[0])
    return out["VmRSS"], out["Threads"]


def open_files(pid):
    """What the process has open (the targets of /proc/PID/fd/*); a
    descriptor closed while they are read is skipped."""
    opened = []
    for f in glob.glob("/proc/%d/fd/*" % pid):
        try:
            opened.append(os.readlink(f))
        except FileNotFoundError:
            pass
    return opened


def daemon_pids(pid):
    """A daemon's processes: pid and its children (the front, the key
    process, the runner when smtpd runs split)."""
    pids = [pid]
    for path in glob.glob("/proc/%d/task/*/children" % pid):
        with open(path) as f:
            pids += [int(p) for p in f.read().split()]
    return pids


def daemon_status(pid):
    """VmRSS in kB summed over a daemon's processes (daemon_pids()), and
    the most threads one of them has (the front's, where the sessions
    run)."""
    rss = threads = 0
    for p in daemon_pids(pid):
        try:
            r, t = proc_status(p)
        except (OSError, KeyError):
            continue
        rss += r
        threads = max(threads, t)
    return rss, threads


class Smtpd:
    """One smtpd daemon (or stdio session) with its own config and spool."""

    def __init__(self, workdir, config_extra="", hostname="mx.test.example",
                 listen=None, args=(), limits=None):
        self.workdir = workdir
        # smtpd started as root works in it as an unprivileged user.
        os.chmod(workdir, 0o755)
        self.spool = os.path.join(workdir, "spool")
        self.conf = os.path.join(workdir, "smtpd.conf")
        self.logfile = os.path.join(workdir, "smtpd.log")
        self.host = "127.0.0.1"
        self.port = None
        self.proc = None
        self.args = list(args)
        self.stdio_report = None
        # Other ports of ours (implicit TLS) that start() waits for too.
        self.more_ports = []
        lines = ['hostname = "%s";' % hostname,
                 'spool = "%s";' % self.spool,
                 'reverse_lookup = false;']
        if listen is None:
            self.port = free_port()
            listen = ["%s:%d" % (self.host, self.port)]
        if listen:
            lines.append("listen = [ %s ];" % ", ".join('"%s"' % l for l in listen))
        if limits:
            lines.append("limits = { %s };" % " ".join(
                "%s = %s;" % (k, v) for k, v in limits.items()))
        # The queue runner stays out of smtpd unless a test wants it: the
        # tests look at queue/ themselves, and a runner would deliver.
        if not re.search(r"^\s*queue\s*=", config_extra, re.M):
            lines.append(RUNNER_OFF)
        lines.append(config_extra)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def move_port(self):
        """Listens on a fresh port from the next start on: a daemon
        started again and again must not count on getting its old port
        back (another test's connection may have taken it as its own
        local port meanwhile)."""
        old = '"%s:%d"' % (self.host, self.port)
        self.port = free_port()
        with open(self.conf) as f:
            text = f.read()
        if old not in text:
            raise RuntimeError("no %s to move in %s" % (old, self.conf))
        with open(self.conf, "w") as f:
            f.write(text.replace(old, '"%s:%d"' % (self.host, self.port), 1))

    def start(self):
        self.log = open(self.logfile, "ab")
        self.proc = subprocess.Popen(SMTPD_WRAPPER +
                                     [SMTPD, "-d", "-C", self.conf] + self.args,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        wait = 60.0 if SMTPD_WRAPPER else 10.0
        if not (wait_smtp(self.host, self.port, wait) and
                all(wait_port(self.host, p, wait) for p in self.more_ports)):
            self.stop()
            raise RuntimeError("smtpd did not start:\n" + self.logtext())
        return self

    def stdio(self, input_bytes, timeout=20, env=None, extra_args=()):
        """Runs one stdio-mode session; returns (returncode, stdout, stderr)."""
        p = subprocess.run(SMTPD_WRAPPER +
                           [SMTPD, "-d", "-i", "-C", self.conf] + list(extra_args),
                           input=input_bytes, capture_output=True,
                           timeout=timeout, env=env)
        self.stdio_report = self.stdio_report or sanitizer_report(
            p.stderr.decode("utf-8", "replace"))
        return p.returncode, p.stdout, p.stderr

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        # Killed, the parent takes its children along (PR_SET_PDEATHSIG),
        # but they may take a moment to die: until then a listener of
        # theirs would answer a new instance's start-up check.
        for p in [self.port] + self.more_ports:
            wait_port_free(self.host, p)
        return rc

    def logtext(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_report(self):
        """A sanitizer's complaint in the log or a stdio session, or None."""
        return self.stdio_report or sanitizer_report(self.logtext())

    def settle(self, timeout=10.0):
        """Waits until the journal is empty: every message acknowledged so
        far has been written out to queue/ (see doc/smtpd-spool.5)."""
        jdir = os.path.join(self.spool, "journal")
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if not any(n.endswith(".j") for n in os.listdir(jdir)):
                    return True
            except FileNotFoundError:
                return True
            time.sleep(0.01)
        return False

    def queued(self):
        """{queue id: raw bytes} of every message in the queue."""
        self.settle()
        qdir = os.path.join(self.spool, "queue")
        out = {}
        if os.path.isdir(qdir):
            for name in os.listdir(qdir):
                with open(os.path.join(qdir, name), "rb") as f:
                    out[name] = f.read()
        return out

    def tmpfiles(self):
        tdir = os.path.join(self.spool, "tmp")
        return os.listdir(tdir) if os.path.isdir(tdir) else []


def parse_spool(raw):
    """Splits a spool file into (envelope dict, message bytes).
    The envelope's 'rcpt' is a list; format in doc/smtpd-spool.5."""
    head, sep, body = raw.partition(b"\n\n")
    assert sep, "spool file without an envelope end"
    env = {"rcpt": []}
    lines = head.decode("utf-8", "replace").split("\n")
    env["version"] = lines[0]
    for line in lines[1:]:
        key, _, val = line.partition(" ")
        if key == "rcpt":
            env["rcpt"].append(val)
        else:
            env[key] = val
    return env, body


class SmtpdCase(unittest.TestCase):
    """A test case with a fresh work directory; self.smtpd() starts daemons
    that are stopped at the end of the test."""

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="smtpd-e2e-")
        # smtpd started as root works in it as an unprivileged user.
        os.chmod(self.workdir, 0o755)
        self._daemons = []

    def tearDown(self):
        for d in self._daemons:
            d.stop()
        # A sanitizer build fails the test on any report in smtpd's log.
        reports = [r for r in (d.sanitizer_report() for d in self._daemons)
                   if r is not None]
        if os.environ.get("KEEP_E2E") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if reports:
            self.fail("a sanitizer (or valgrind) report in smtpd's output:\n"
                      + reports[0])

    def smtpd(self, start=True, **kw):
        d = Smtpd(self.workdir, **kw)
        self._daemons.append(d)
        return d.start() if start else d


class Conn:
    """A raw SMTP conversation over a socket, for what real clients won't do."""

    def __init__(self, host, port, timeout=10):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self):
        """Reads one whole (possibly multi-line) reply: (code, [lines])."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed; got %r" % (lines,))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            line = line.decode("utf-8", "replace")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True if the server closes the connection without sending more."""
        self.sock.settimeout(timeout)
        try:
            data = self.buf or self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        return data == b""

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------
# Helpers added for the protocol, data, spool and daemon tests.

import re  # noqa: E402

ENHANCED_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


class BoundConn(Conn):
    """A Conn whose local end is bound to a chosen source address
    (127.0.0.2 and so on: another client address on loopback)."""

    def __init__(self, host, port, source, timeout=10):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""


def read_until_closed(conn, timeout=10, limit=1 << 20):
    """Everything the server sends until it closes (or timeout / limit)."""
    conn.sock.settimeout(timeout)
    data = conn.buf
    conn.buf = b""
    deadline = time.time() + timeout
    while len(data) < limit and time.time() < deadline:
        try:
            chunk = conn.sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def split_replies(data):
    """Raw server output -> [(code, [lines])], whole replies only."""
    out, lines = [], []
    for raw in data.split(b"\r\n")[:-1]:
        line = raw.decode("utf-8", "replace")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            out.append((int(line[:3]), lines))
            lines = []
    return out


def enhanced(reply_lines):
    """The enhanced status code of a reply's last line, or None."""
    parts = reply_lines[-1].split(" ")
    if len(parts) >= 2 and ENHANCED_RE.match(parts[1]):
        return parts[1]
    return None


def spool_config(workdir, listen=(), limits=None, extra="",
                 hostname="mx.test.example"):
    """Writes a config like Smtpd's (listen may be empty) and returns
    (conf path, spool path)."""
    spool = os.path.join(workdir, "spool")
    conf = os.path.join(workdir, "smtpd.conf")
    lines = ['hostname = "%s";' % hostname, 'spool = "%s";' % spool,
             'reverse_lookup = false;']
    if listen:
        lines.append("listen = [ %s ];" % ", ".join('"%s"' % l for l in listen))
    if limits:
        lines.append("limits = { %s };" % " ".join(
            "%s = %s;" % (k, v) for k, v in limits.items()))
    lines.append(extra)
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    return conf, spool


class ProtoCase(SmtpdCase):
    """SmtpdCase with assertions on SMTP replies.  Connections made with
    self.open() are closed before the daemons are stopped, so that shutdown
    never waits on an idle test connection."""

    def setUp(self):
        super().setUp()
        self._conns = []

    def tearDown(self):
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass
        super().tearDown()

    # Error replies are not slowed down (limits.tarpit_delay = 0) unless a
    # test sets limits itself with tarpit settings.
    no_tarpit = True

    @classmethod
    def _tarpit_off(cls, kw):
        """kw with limits.tarpit_delay = 0 added when no_tarpit says so."""
        if cls.no_tarpit:
            kw = dict(kw)
            kw["limits"] = dict(kw.get("limits") or {})
            kw["limits"].setdefault("tarpit_delay", 0)
        return kw

    def smtpd(self, start=True, **kw):
        return super().smtpd(start=start, **self._tarpit_off(kw))

    # shared_smtpd(): one daemon for all the tests of a class, started
    # with these keyword arguments at the first call, stopped (and its
    # output checked for sanitizer reports) after the last test.  For
    # tests that are each a session of their own and change nothing in
    # the daemon; its log and queue gather what every test left.  Under
    # valgrind a start costs seconds.
    SHARED = {}
    _shared = None

    def shared_smtpd(self):
        cls = type(self)
        # The class's own: a subclass with other SHARED has its own daemon.
        if cls.__dict__.get("_shared") is None:
            workdir = tempfile.mkdtemp(prefix="smtpd-e2e-")
            cls._shared = Smtpd(workdir, **cls._tarpit_off(cls.SHARED))
            try:
                cls._shared.start()
            except Exception:
                cls._shared = None
                shutil.rmtree(workdir, ignore_errors=True)
                raise
        return cls._shared

    @classmethod
    def tearDownClass(cls):
        d = cls.__dict__.get("_shared")
        cls._shared = None
        super().tearDownClass()
        if d is None:
            return
        d.stop()
        report = d.sanitizer_report()
        if os.environ.get("KEEP_E2E") is None:
            shutil.rmtree(d.workdir, ignore_errors=True)
        if report is not None:
            raise AssertionError("a sanitizer (or valgrind) report in the "
                                 "shared smtpd's output:\n" + report)

    def track(self, c):
        """Closes c before the daemons stop at the end of the test."""
        self._conns.append(c)
        return c

    def assertReply(self, rep, code, ecode=None, msg=None):
        """rep is (code, lines) from Conn.reply(); ecode '5.5.1' or a
        prefix such as '5.' (then any enhanced code of that class)."""
        got_code, lines = rep
        self.assertEqual(got_code, code, msg or lines)
        if ecode is not None:
            got = enhanced(lines)
            self.assertIsNotNone(got, "no enhanced status code in %r" % lines)
            if ecode.endswith("."):
                self.assertTrue(got.startswith(ecode), lines)
            else:
                self.assertEqual(got, ecode, lines)

    def ehlo(self, c, name="client.example.org"):
        code, lines = c.cmd("EHLO " + name)
        self.assertEqual(code, 250, lines)
        return lines

    def open(self, d, ehlo=True, host=None):
        """A Conn to daemon d, greeting read, EHLO done if asked."""
        c = self.track(Conn(host or d.host, d.port))
        code, lines = c.reply()
        self.assertEqual(code, 220, lines)
        if ehlo:
            self.ehlo(c)
        return c

    def start_mail(self, c, sender="<alice@example.org>",
                   rcpts=("<bob@example.net>",)):
        self.assertReply(c.cmd("MAIL FROM:" + sender), 250, "2.1.0")
        for r in rcpts:
            self.assertReply(c.cmd("RCPT TO:" + r), 250, "2.1.5")

    def send_data(self, c, data):
        """DATA with raw data bytes (must end with CRLF.CRLF); the reply."""
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(data)
        return c.reply()

    def queued_id(self, rep):
        """The id from '250 2.0.0 Ok: queued as ID'."""
        self.assertReply(rep, 250, "2.0.0")
        m = re.search(r"queued as (\S+)", rep[1][-1])
        self.assertIsNotNone(m, rep)
        return m.group(1)

    def spooled(self, d, qid, timeout=10):
        """The queue file of message qid, waiting (bounded) for it to be
        written out of the journal."""
        path = os.path.join(d.spool, "queue", qid)
        deadline = time.time() + timeout
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.02)
        self.assertTrue(os.path.exists(path), "no queue file for " + qid)
        with open(path, "rb") as f:
            return f.read()

    def wait_queued(self, d, n, timeout=15):
        """{id: bytes} once n messages are in queue/ (bounded wait)."""
        deadline = time.time() + timeout
        q = d.queued()
        while len(q) < n and time.time() < deadline:
            time.sleep(0.05)
            q = d.queued()
        self.assertEqual(len(q), n, "messages in queue/")
        return q

    def wait_log(self, d, pattern, count=1, timeout=10):
        """The daemon's log once pattern (a regex) matches count times."""
        deadline = time.time() + timeout
        while True:
            text = d.logtext()
            if len(re.findall(pattern, text)) >= count or time.time() > deadline:
                break
            time.sleep(0.03)
        self.assertGreaterEqual(len(re.findall(pattern, text)), count,
                                "%r not in the log:\n%s" % (pattern, text[-3000:]))
        return text

    def assertNothingQueued(self, d):
        self.assertEqual(d.queued(), {}, "messages in queue/")
        self.assertEqual(d.tmpfiles(), [], "files left in tmp/")


# ---------------------------------------------------------------------------
# Helpers added for the policy tests.

TRUSTED_ADDR = "127.0.0.1"     # in ournets = [ "127.0.0.1/32" ]
UNTRUSTED_ADDR = "127.0.0.9"   # another loopback address, not trusted


class PolicyCase(ProtoCase):
    """ProtoCase with clients on chosen loopback source addresses."""

    def client(self, d, source=UNTRUSTED_ADDR, helo="mail.isp.net"):
        """A BoundConn from source to daemon d, greeting read, and EHLO
        helo accepted (none when helo is None)."""
        c = self.track(BoundConn(d.host, d.port, source))
        rep = c.reply()
        self.assertEqual(rep[0], 220, rep)
        if helo is not None:
            self.assertReply(c.cmd("EHLO " + helo), 250)
        return c

    def wait_log(self, d, needle, count=1, timeout=10):
        """Waits (bounded) until needle is in d's log count times;
        returns the log text either way."""
        deadline = time.time() + timeout
        while True:
            text = d.logtext()
            if text.count(needle) >= count or time.time() > deadline:
                return text
            time.sleep(0.02)

    def messages(self, d):
        """[(envelope, message bytes)] of every queued message."""
        return [parse_spool(raw) for _, raw in sorted(d.queued().items())]


RECEIVED_RE = re.compile(rb"\AReceived: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n")


def strip_received(body):
    """The message without the Received header smtpd put first."""
    m = RECEIVED_RE.match(body)
    assert m, "message does not start with a Received header: %r" % body[:200]
    return body[m.end():]
