"""Shared pieces for the end-to-end tests: start the real binaries on
loopback with a throwaway config and spool, and look at what they did.

Tests run under /usr/bin/python3 (Debian's, with python3-aiosmtpd).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
# Binaries live at the top of the build tree; run.py sets BUILDDIR.
BUILDDIR = os.environ.get("BUILDDIR", os.path.dirname(os.path.dirname(HERE)))
SMTPD = os.path.join(BUILDDIR, "smtpd")


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=10.0):
    deadline = time.time() + timeout
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.time() < deadline:
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect((host, port))
                return True
        except OSError:
            time.sleep(0.02)
    return False


class Smtpd:
    """One smtpd daemon (or stdio session) with its own config and spool."""

    def __init__(self, workdir, config_extra="", hostname="mx.test.example",
                 listen=None, args=(), limits=None):
        self.workdir = workdir
        self.spool = os.path.join(workdir, "spool")
        self.conf = os.path.join(workdir, "smtpd.conf")
        self.logfile = os.path.join(workdir, "smtpd.log")
        self.host = "127.0.0.1"
        self.port = None
        self.proc = None
        self.args = list(args)
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
        lines.append(config_extra)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.log = open(self.logfile, "ab")
        self.proc = subprocess.Popen([SMTPD, "-d", "-C", self.conf] + self.args,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        if not wait_port(self.host, self.port):
            self.stop()
            raise RuntimeError("smtpd did not start:\n" + self.logtext())
        return self

    def stdio(self, input_bytes, timeout=20, env=None, extra_args=()):
        """Runs one stdio-mode session; returns (returncode, stdout, stderr)."""
        p = subprocess.run([SMTPD, "-d", "-i", "-C", self.conf] + list(extra_args),
                           input=input_bytes, capture_output=True,
                           timeout=timeout, env=env)
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
        return rc

    def logtext(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def queued(self):
        """{queue id: raw bytes} of every message in the queue."""
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
        self._daemons = []

    def tearDown(self):
        for d in self._daemons:
            d.stop()
        if os.environ.get("KEEP_E2E") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)

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
