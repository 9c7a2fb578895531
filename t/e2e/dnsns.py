#!/usr/bin/python3
"""dnsns: run code inside a private network namespace with its own DNS.

Tests that need DNS (MX routing, smtpd's sender-domain check) must never
query the machine's resolver.  This module gives them a throwaway world:

  * new network and mount namespaces (plus a user namespace when not
    root), so nothing leaves the machine and nothing outside changes;
  * the loopback interface up: 127.0.0.0/8 and ::1 work, and servers may
    bind port 25 on any 127.x.y.z address;
  * /etc/resolv.conf replaced (bind mount) by "nameserver 127.0.0.1";
  * dnsmasq on 127.0.0.1:53 serving exactly the records you give.

Records (keyword arguments, each a list; the same for every interface):

  mx=[(domain, host, pref), ...]      MX records          (--mx-host)
  hosts=[(name, addr, ...), ...]      A/AAAA records      (--host-record)
  txt=[(name, text), ...]             TXT records         (--txt-record)
  null_mx=[domain, ...]               RFC 7505 null MX    (--dns-rr, type 15)
  ptr=[(addr, name), ...]             PTR for an IPv4 address (--ptr-record)
  local=[domain, ...]                 answered locally only, default ["test"]:
                                      unknown names under them are NXDOMAIN
                                      and known names without the asked type
                                      are NODATA.
  extra=[arg, ...]                    more dnsmasq arguments

Names outside the `local` domains get REFUSED, which resolvers report as a
temporary failure (a handy way to test SERVFAIL-like behaviour: use a name
under ".invalid" or any domain not listed).

Three ways to use it:

  1. A test method decorated with @inside(...) runs in a forked child that
     enters the namespace; failures and skips are passed back to the
     parent test.  Everything the method starts (servers, threads) must be
     stopped by the method itself, or through self.addCleanup() calls made
     inside it, which run in the child::

         from dnsns import inside

         class T(unittest.TestCase):
             @inside(mx=[("a.test", "mx1.a.test", 10)],
                     hosts=[("mx1.a.test", "127.0.0.2")])
             def test_mx(self):
                 ...  # start a server on 127.0.0.2:25, run the client

  2. run(argv, **records) runs one command inside and returns a
     subprocess.CompletedProcess (stdout and stderr captured as bytes).

  3. From the shell: dnsns.py [--mx D,HOST,PREF] [--host NAME,ADDR[,ADDR]]
     [--txt NAME,TEXT] [--null-mx D] [--ptr ADDR,NAME] [--local D]
     [--dnsmasq-arg ARG] -- command [args...]; exits with the command's
     status.

available() says whether this machine can do it (a reason string, or
None); tests should skipTest() with that reason.
"""
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import unittest

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
IP = shutil.which("ip") or "/usr/sbin/ip"
MOUNT = shutil.which("mount") or "/usr/bin/mount"
CHILD_TIMEOUT = 120  # seconds a decorated test may run inside


def available():
    """None if namespaces and dnsmasq can be used here, else why not."""
    for prog in (DNSMASQ, IP, MOUNT):
        if not os.access(prog, os.X_OK):
            return "%s not installed" % prog
    rc = subprocess.run(["unshare", "-rmn" if os.geteuid() else "-mn",
                         "true"], capture_output=True)
    if rc.returncode != 0:
        return "cannot create namespaces: %s" % rc.stderr.decode().strip()
    return None


def _dnsmasq_args(mx=(), hosts=(), txt=(), null_mx=(), ptr=(),
                  local=("test",), extra=()):
    args = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts",
            "--conf-file=/dev/null", "--pid-file=", "--user=root",
            "--group=root", "--listen-address=127.0.0.1",
            "--bind-interfaces", "--port=53", "--log-facility=-"]
    for d in local:
        args.append("--local=/%s/" % d)
    for domain, host, pref in mx:
        args.append("--mx-host=%s,%s,%d" % (domain, host, pref))
    for rec in hosts:
        args.append("--host-record=%s" % ",".join(rec))
    for name, text in txt:
        args.append("--txt-record=%s,%s" % (name, text))
    for domain in null_mx:
        # RFC 7505: preference 0, exchange "." (the root: one zero byte).
        args.append("--dns-rr=%s,15,000000" % domain)
    for addr, name in ptr:
        rev = ".".join(reversed(addr.split("."))) + ".in-addr.arpa"
        args.append("--ptr-record=%s,%s" % (rev, name))
    args.extend(extra)
    return args


def _enter():
    """Enters new net and mount namespaces (and a user one if not root)."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET
    if os.geteuid() != 0:
        flags |= CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "unshare: %s" % os.strerror(e))
    if flags & CLONE_NEWUSER:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write("0 %d 1" % uid)
        with open("/proc/self/gid_map", "w") as f:
            f.write("0 %d 1" % gid)
    # Our mounts must not propagate back to the real system.
    subprocess.run([MOUNT, "--make-rprivate", "/"], check=True)
    subprocess.run([IP, "link", "set", "lo", "up"], check=True)


class _World:
    """dnsmasq and the resolv.conf bind mount, inside the namespace."""

    def __init__(self, records):
        self.records = records
        self.dir = None
        self.proc = None

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="dnsns-")
        conf = os.path.join(self.dir, "resolv.conf")
        with open(conf, "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        subprocess.run([MOUNT, "--bind", conf, "/etc/resolv.conf"],
                       check=True)
        self.log = open(os.path.join(self.dir, "dnsmasq.log"), "wb")
        self.proc = subprocess.Popen(_dnsmasq_args(**self.records),
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited: " + self.logtext())
            try:
                with socket.create_connection(("127.0.0.1", 53), 0.5):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("dnsmasq did not start: " + self.logtext())

    def logtext(self):
        try:
            with open(os.path.join(self.dir, "dnsmasq.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.dir:
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)


def _in_child(records, body):
    """Forks; the child enters the namespace, runs body() and reports
    (kind, text) through a pipe: kind is ok, fail, skip or error."""
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        result = ("ok", "")
        world = None
        try:
            _enter()
            world = _World(records).start()
            result = body()
        except unittest.SkipTest as e:
            result = ("skip", str(e))
        except AssertionError:
            result = ("fail", traceback.format_exc())
        except BaseException:
            result = ("error", traceback.format_exc())
        finally:
            if world is not None:
                world.stop()
            try:
                os.write(w, json.dumps(result).encode())
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)
    os.close(w)
    chunks = []
    timed_out = True
    deadline = time.time() + CHILD_TIMEOUT
    while True:
        left = deadline - time.time()
        if left <= 0 or not select.select([r], [], [], left)[0]:
            break
        data = os.read(r, 65536)
        if not data:
            timed_out = False
            break
        chunks.append(data)
    os.close(r)
    if timed_out:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.waitpid(pid, 0)
    if not chunks:
        return ("error", "the namespace child died or timed out")
    return tuple(json.loads(b"".join(chunks).decode()))


def inside(**records):
    """Decorator: run this test method inside a fresh DNS namespace."""
    def wrap(fn):
        def test(self):
            why = available()
            if why:
                self.skipTest(why)

            def body():
                n0 = len(self._cleanups)
                try:
                    fn(self)
                finally:
                    # Cleanups registered inside must run inside.
                    while len(self._cleanups) > n0:
                        f, args, kw = self._cleanups.pop()
                        f(*args, **kw)
                return ("ok", "")
            kind, text = _in_child(records, body)
            if kind == "skip":
                self.skipTest(text)
            if kind == "fail":
                self.fail("inside the DNS namespace:\n" + text)
            if kind == "error":
                raise RuntimeError("inside the DNS namespace:\n" + text)
        test.__name__ = fn.__name__
        test.__doc__ = fn.__doc__
        return test
    return wrap


def run(argv, input=None, timeout=60, env=None, **records):
    """Runs argv inside a fresh DNS namespace; a CompletedProcess."""
    def body():
        p = subprocess.run(argv, input=input, capture_output=True,
                           timeout=timeout, env=env)
        return ("ok", json.dumps([p.returncode,
                                  p.stdout.decode("latin-1"),
                                  p.stderr.decode("latin-1")]))
    kind, text = _in_child(records, body)
    if kind != "ok":
        raise RuntimeError(text)
    rc, out, err = json.loads(text)
    return subprocess.CompletedProcess(argv, rc, out.encode("latin-1"),
                                       err.encode("latin-1"))


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mx", action="append", default=[],
                    help="DOMAIN,HOST,PREF")
    ap.add_argument("--host", action="append", default=[],
                    help="NAME,ADDR[,ADDR]")
    ap.add_argument("--txt", action="append", default=[], help="NAME,TEXT")
    ap.add_argument("--null-mx", action="append", default=[])
    ap.add_argument("--ptr", action="append", default=[], help="ADDR,NAME")
    ap.add_argument("--local", action="append", default=None)
    ap.add_argument("--dnsmasq-arg", action="append", default=[])
    ap.add_argument("command", nargs="+")
    a = ap.parse_args(argv)
    records = dict(
        mx=[(d, h, int(p)) for d, h, p in (m.split(",") for m in a.mx)],
        hosts=[tuple(h.split(",")) for h in a.host],
        txt=[tuple(t.split(",", 1)) for t in a.txt],
        null_mx=a.null_mx,
        ptr=[tuple(p.split(",", 1)) for p in a.ptr],
        local=a.local if a.local is not None else ["test"],
        extra=a.dnsmasq_arg)

    def body():
        return ("ok", str(subprocess.run(a.command).returncode))
    kind, text = _in_child(records, body)
    if kind != "ok":
        sys.stderr.write(text + "\n")
        return 1
    return int(text)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
