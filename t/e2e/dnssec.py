#!/usr/bin/python3
"""DNSSEC-validated DNS inside a dnsns namespace, for the DANE tests.

Call start() from code running inside dnsns (a @dnsns.inside test): it
writes each zone, signs the ones asked for with ldns-signzone (one
ECDSA P-256 key per zone, its DNSKEY the trust anchor), and starts
unbound as a validating resolver on 127.0.0.53:53 that serves the zones
from its auth-zone copies (validated like data from upstream).  Then it
bind-mounts a resolv.conf with `options trust-ad` over the namespace's
one, so that glibc passes the AD bit on to the programs there.  Names
outside the zones fail (SERVFAIL): the resolver has no way out.

    import dnssec
    ok, why = dnssec.available()
    srv = dnssec.start(workdir, {
        "dane.test": (True, ["@ MX 10 mx", "mx A 127.0.0.1",
                             "_25._tcp.mx TLSA 3 1 1 ab12..."]),
        "plain.test": (False, [...]),       # unsigned: insecure answers
    })
    ...
    srv.stop()

Needs unbound and ldnsutils (Debian); unbound's system service is never
involved.
"""
import os
import shutil
import subprocess
import time

import dnsns

ADDR = "127.0.0.53"


def available():
    for prog in ("unbound", "ldns-keygen", "ldns-signzone"):
        if shutil.which(prog) is None:
            return False, "%s not installed (Debian: unbound, ldnsutils)" % (
                prog)
    return dnsns.available()


class Resolver:
    def __init__(self, proc, work, log):
        self.proc = proc
        self.work = work
        self.log = log

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["umount", "/etc/resolv.conf"])

    def logtext(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""


def _zone(work, name, signed, records):
    path = os.path.join(work, name + ".zone")
    with open(path, "w") as f:
        f.write("$ORIGIN %s.\n$TTL 300\n" % name)
        f.write("@ SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300\n"
                % (name, name))
        f.write("@ NS ns.%s.\nns A 127.0.0.53\n" % name)
        for r in records:
            f.write(r + "\n")
    if not signed:
        return path, None
    p = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", name],
                       cwd=work, capture_output=True, text=True, check=True)
    base = p.stdout.strip()
    with open(os.path.join(work, base + ".key")) as f:
        anchor = f.read().split(";")[0].strip()
    # ldns-signzone appends the DNSKEY itself; -n: NSEC3 is not needed.
    subprocess.run(["ldns-signzone", "-o", name, path, base], cwd=work,
                   capture_output=True, text=True, check=True)
    return path + ".signed", anchor


def start(work, zones):
    """zones: {name: (signed, [zone file lines])}.  A Resolver."""
    os.makedirs(work, exist_ok=True)
    log = os.path.join(work, "unbound.log")
    conf = ["server:",
            "  interface: %s" % ADDR, "  port: 53",
            "  username: \"\"", "  chroot: \"\"",
            "  directory: \"%s\"" % work, "  pidfile: \"\"",
            "  use-syslog: no", "  logfile: \"%s\"" % log,
            "  verbosity: 1", "  do-daemonize: no",
            "  do-not-query-localhost: no",
            "  module-config: \"validator iterator\"",
            "  val-log-level: 2", "  harden-dnssec-stripped: yes",
            "  qname-minimisation: no", "  cache-max-ttl: 0",
            "  cache-max-negative-ttl: 0", "  msg-cache-size: 0",
            "  rrset-cache-size: 0", "  num-threads: 1",
            "  so-reuseport: no", "  outgoing-range: 64"]
    auth = []
    for name, (signed, records) in zones.items():
        path, anchor = _zone(work, name, signed, records)
        if anchor:
            conf.append("  trust-anchor: \"%s\"" % anchor)
        else:
            conf.append("  domain-insecure: \"%s\"" % name)
        auth += ["auth-zone:", "  name: \"%s\"" % name,
                 "  zonefile: \"%s\"" % path, "  for-downstream: no",
                 "  for-upstream: yes", "  fallback-enabled: no"]
    # RFC 6761 names (test., invalid.) are static local zones by default.
    for tld in sorted({n.rstrip(".").split(".")[-1] for n in zones}):
        conf.append("  local-zone: \"%s.\" nodefault" % tld)
    conf.append("  domain-insecure: \".\"")
    conf += auth
    cpath = os.path.join(work, "unbound.conf")
    with open(cpath, "w") as f:
        f.write("\n".join(conf) + "\n")
    p = subprocess.run(["unbound-checkconf", cpath], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise RuntimeError("unbound.conf: %s" % (p.stdout + p.stderr))
    proc = subprocess.Popen(["unbound", "-d", "-c", cpath],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=open(log + ".err", "w"))
    deadline = time.time() + 10
    while dnsns.query("ready.invalid", "A", server=(ADDR, 53),
                      timeout=0.2)[0] is None:
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError("unbound did not start")
        time.sleep(0.05)
    resolv = os.path.join(work, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("nameserver %s\noptions trust-ad timeout:2 attempts:1\n"
                % ADDR)
    subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"],
                   check=True)
    return Resolver(proc, work, log)
