#!/usr/bin/python3
"""Runs test code inside a private network namespace with its own DNS.

The code runs in new network, mount and PID namespaces (`unshare`): the
only interface is `lo`, /etc/resolv.conf is replaced (by a bind mount that
only the namespace sees) with

    nameserver 127.0.0.1
    options timeout:1 attempts:1

and dnsmasq on 127.0.0.1:53 serves the records the test asks for, and
nothing else.  Every program started there (smtpd, smtp, clients) resolves
through that dnsmasq, and no query can leave the machine: there is no
interface to leave by.  When the code returns, dnsmasq is stopped; when the
namespace's first process ends, the kernel kills whatever is left in it.

Interface
---------

    import dnsns

    ok, why = dnsns.available()     # (False, reason): skip the test
    records = [
        dnsns.mx("mx.example", "mail.mx.example", 10),  # MX only
        dnsns.host("a.example", "192.0.2.1"),           # A and/or AAAA
        dnsns.host("v6.example", "2001:db8::1"),
        dnsns.null_mx("nullmx.example"),                # MX 0 "." (RFC 7505)
        dnsns.txt("t.example", "v=spf1 -all"),
        dnsns.servfail("broken.example"),               # lookups fail (4xx)
        dnsns.rr("x.example", 99, "0474657374"),        # any type, hex rdata
    ]
    result = dnsns.run(__file__, "child", args=[...], records=records,
                       local=("example",), timeout=60)

run(path, func, args, records, local, timeout) re-executes this file under
`unshare`; inside, it imports the Python file `path` (with its directory on
sys.path, so `import harness` works) and calls func(*args).  The return
value must be JSON-encodable; it comes back as run()'s result.  If func
raises, or the namespace cannot be set up, run() raises NamespaceError
whose text holds the child's traceback and the dnsmasq log.

`local` lists domains dnsmasq is authoritative for: a name under one of
them with no record gets NXDOMAIN, and a name with records of other types
gets NODATA.  Names outside every `local` domain and every servfail()
domain are refused by dnsmasq (REFUSED: a temporary failure to resolvers).

run_command(argv, records, local, timeout, input=None) runs a command the
same way and returns a subprocess.CompletedProcess (text mode).

A unittest method can also run inside as a whole:

    class T(unittest.TestCase):
        @dnsns.inside(records=[...], local=("test",))
        def test_mx(self):
            ...                         # servers, clients, assertions

The method runs in the namespace on a fresh instance of its class (setUp,
the method, its cleanups, tearDown); an assertion failure or a skip there
fails or skips the test outside.  Servers it starts must be stopped by the
method (or its cleanups): the namespace ends with it.

Inside the namespace, query(name, qtype) -> (rcode, [answer types]) asks
the local dnsmasq directly (rcode 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN,
5 REFUSED; None on timeout).

Needs util-linux `unshare` (root, or unprivileged user namespaces for
`unshare -r`), iproute2 `ip` and `dnsmasq` (Debian: dnsmasq-base).
"""
import functools
import importlib.util
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
RESULT_TAG = "DNSNS-RESULT "
QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15,
          "TXT": 16, "AAAA": 28, "SRV": 33, "ANY": 255}


class NamespaceError(RuntimeError):
    """The namespace could not be set up, or the code in it failed."""


# --- records: each is a list of dnsmasq options -------------------------

def mx(name, target, pref=10):
    """An MX record name -> target (target needs no address)."""
    return ["--mx-host=%s,%s,%d" % (name, target, pref)]


def host(name, *addrs):
    """A and AAAA records (and the matching PTRs) for name."""
    return ["--host-record=%s,%s" % (name, ",".join(addrs))]


def null_mx(name):
    """RFC 7505 null MX: MX 0 "." (raw RR: preference 0, root name)."""
    return rr(name, 15, "000000")


def txt(name, *texts):
    return ["--txt-record=%s,%s" % (name, ",".join('"%s"' % t for t in texts))]


def rr(name, rrtype, hexdata):
    """Any record, type number and rdata in hex."""
    return ["--dns-rr=%s,%d,%s" % (name, rrtype, hexdata)]


def cname(name, target):
    return ["--cname=%s,%s" % (name, target)]


def servfail(domain):
    """Lookups under domain fail: dnsmasq forwards them to 127.0.0.2:53,
    where nobody listens (inside the namespace)."""
    return ["--server=/%s/127.0.0.2" % domain]


# --- availability --------------------------------------------------------

def _unshare_argv():
    # --mount-proc: a /proc of the new PID namespace, so that programs
    # that look up their own threads there (LeakSanitizer) find them.
    base = ["unshare", "--mount", "--net", "--pid", "--kill-child",
            "--mount-proc"]
    if os.geteuid() != 0:
        base.insert(1, "--map-root-user")
    return base


def available():
    """(True, "") if namespaces and dnsmasq can be used here, else
    (False, reason)."""
    for prog in ("unshare", "ip"):
        if shutil.which(prog) is None:
            return False, "%s not installed (util-linux / iproute2)" % prog
    if _dnsmasq() is None:
        return False, "dnsmasq not installed (Debian: dnsmasq-base)"
    if not os.path.exists("/etc/resolv.conf"):
        return False, "no /etc/resolv.conf to bind-mount over"
    try:
        p = subprocess.run(_unshare_argv() + ["true"], capture_output=True,
                           text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, "unshare failed: %s" % e
    if p.returncode != 0:
        return False, "unshare cannot make namespaces here: %s" % (
            p.stderr.strip() or p.returncode)
    return True, ""


def _dnsmasq():
    return (shutil.which("dnsmasq") or
            next((p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq")
                  if os.access(p, os.X_OK)), None))


# --- the parent side -----------------------------------------------------

def _spec(records, local):
    opts = []
    for r in records or ():
        opts.extend([r] if isinstance(r, str) else r)
    return {"dnsmasq": opts, "local": list(local or ())}


def run(path, func, args=(), records=(), local=("example",), timeout=60):
    """Calls func(*args) from the Python file path inside the namespace;
    returns what it returned (through JSON)."""
    spec = _spec(records, local)
    spec.update(mode="call", path=os.path.abspath(path), func=func,
                args=list(args))
    p = _launch(spec, timeout)
    for line in reversed(p.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    raise NamespaceError("no result from the namespace (exit %s)\n"
                         "--- stdout\n%s\n--- stderr\n%s"
                         % (p.returncode, p.stdout[-4000:], p.stderr[-8000:]))


def run_command(argv, records=(), local=("example",), timeout=60,
                input=None):
    """Runs argv inside the namespace; a CompletedProcess (text)."""
    spec = _spec(records, local)
    spec.update(mode="command", argv=list(argv))
    return _launch(spec, timeout, input=input)


def _launch(spec, timeout, input=None):
    ok, why = available()
    if not ok:
        raise NamespaceError(why)
    with tempfile.NamedTemporaryFile("w", prefix="dnsns-", suffix=".json",
                                     delete=False) as f:
        json.dump(spec, f)
        specfile = f.name
    try:
        argv = _unshare_argv() + [sys.executable, os.path.abspath(__file__),
                                  "--child", specfile]
        try:
            return subprocess.run(argv, capture_output=True, text=True,
                                  timeout=timeout, input=input)
        except subprocess.TimeoutExpired as e:
            raise NamespaceError("namespace run timed out after %s s\n%s"
                                 % (timeout, e.stderr or ""))
    finally:
        os.unlink(specfile)


def inside(records=(), local=("example",), timeout=60):
    """Decorator: run a unittest method inside a fresh namespace."""
    def wrap(fn):
        @functools.wraps(fn)
        def test(self):
            ok, why = available()
            if not ok:
                self.skipTest(why)
            path = sys.modules[type(self).__module__].__file__
            kind, text = run(__file__, "_test_method",
                             args=[os.path.abspath(path),
                                   type(self).__qualname__, fn.__name__],
                             records=records, local=local, timeout=timeout)
            if kind == "skip":
                self.skipTest(text)
            if kind == "fail":
                self.fail("inside the namespace:\n" + text)
            if kind == "error":
                raise NamespaceError("inside the namespace:\n" + text)
        return test
    return wrap


# --- the child side (inside the namespaces) ------------------------------

def _test_method(path, qualname, name):
    """Runs one @inside test method here; [kind, text] with kind ok,
    fail, skip or error."""
    import unittest
    mspec = importlib.util.spec_from_file_location("dnsns_test_target", path)
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)
    cls = mod
    for part in qualname.split("."):
        cls = getattr(cls, part)
    case = cls(name)
    try:
        case.setUp()
        try:
            getattr(cls, name).__wrapped__(case)
        finally:
            case.doCleanups()
            case.tearDown()
    except unittest.SkipTest as e:
        return ["skip", str(e)]
    except AssertionError:
        return ["fail", traceback.format_exc()]
    except BaseException:
        return ["error", traceback.format_exc()]
    return ["ok", ""]


def query(name, qtype="A", server=("127.0.0.1", 53), timeout=1.0):
    """One UDP query; (rcode, [answer rr types]) or (None, []) on timeout."""
    qid = random.randrange(65536)
    qt = QTYPES[qtype] if isinstance(qtype, str) else qtype
    pkt = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        pkt += bytes([len(label)]) + label.encode()
    pkt += b"\0" + struct.pack(">HH", qt, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(pkt, server)
            data = s.recv(4096)
        except (socket.timeout, ConnectionRefusedError):
            return None, []
    rid, flags, qd, an = struct.unpack(">HHHH", data[:8])
    if rid != qid:
        return None, []
    off = 12
    for _ in range(qd):
        off = _skip_name(data, off) + 4
    types = []
    for _ in range(an):
        off = _skip_name(data, off)
        t, _c, _ttl, rdlen = struct.unpack(">HHIH", data[off:off + 10])
        types.append(t)
        off += 10 + rdlen
    return flags & 0xF, types


def _skip_name(data, off):
    while True:
        n = data[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += n + 1


def _child(specfile):
    with open(specfile) as f:
        spec = json.load(f)
    # Refuse to run anywhere but in a namespace with nothing but lo.
    names = [n for _, n in socket.if_nameindex()]
    if names != ["lo"]:
        sys.stderr.write("dnsns: not in a private network namespace: %r\n"
                         % names)
        return 70
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = tempfile.mkdtemp(prefix="dnsns-")
    resolv = os.path.join(work, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    # The namespace's mounts are private (unshare's default propagation).
    subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"],
                   check=True)
    dlog = open(os.path.join(work, "dnsmasq.log"), "w+")
    argv = [_dnsmasq(), "--no-daemon", "--conf-file=/dev/null",
            "--no-resolv", "--no-hosts", "--no-poll",
            "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53",
            "--pid-file=", "--log-queries", "--log-facility=-",
            "--cache-size=0"]
    argv += ["--local=/%s/" % d for d in spec["local"]]
    argv += spec["dnsmasq"]
    dns = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=dlog,
                           stderr=dlog)
    rc = 0
    try:
        deadline = time.time() + 10
        while query("dnsns-ready.invalid", "A", timeout=0.2)[0] is None:
            if dns.poll() is not None or time.time() > deadline:
                raise NamespaceError("dnsmasq did not start: %r" % argv)
            time.sleep(0.05)
        if spec["mode"] == "command":
            p = subprocess.run(spec["argv"], stdin=sys.stdin)
            rc = p.returncode
        else:
            sys.path.insert(0, os.path.dirname(spec["path"]))
            sys.path.insert(0, HERE)
            mspec = importlib.util.spec_from_file_location(
                "dnsns_target", spec["path"])
            mod = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(mod)
            result = getattr(mod, spec["func"])(*spec["args"])
            sys.stdout.flush()
            sys.stdout.write(RESULT_TAG + json.dumps(result) + "\n")
            sys.stdout.flush()
    except BaseException:
        traceback.print_exc()
        rc = 1
    finally:
        dns.terminate()
        try:
            dns.wait(5)
        except subprocess.TimeoutExpired:
            dns.kill()
            dns.wait()
        if rc != 0:
            dlog.seek(0)
            sys.stderr.write("--- dnsmasq log\n" + dlog.read()[-8000:])
        dlog.close()
        subprocess.run(["umount", "/etc/resolv.conf"])
        shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child(sys.argv[2]))
    sys.stderr.write("usage: dnsns.py --child specfile (see the docstring)\n")
    sys.exit(64)
