"""Real milters for the tests: rspamd (a proxy worker in milter mode and a
scanning worker) and OpenDKIM, each started in the foreground with its own
configuration, state and logs in a directory of the test, on free
loopback ports, and stopped by a cleanup of the test.

rspamd reads Debian's /etc/rspamd/rspamd.conf with LOCAL_CONFDIR, DBDIR,
RUNDIR and LOGDIR pointing into the test's directory, so the system's
/etc/rspamd/local.d, /var/lib/rspamd and /var/log/rspamd are never used;
local.d here switches off the modules that only ask the network (fuzzy
hashes, DNS lists, the maps of rspamd.com) and sends rspamd's DNS to
127.0.0.2:53, where nothing listens: rspamd's resolver keeps idle TCP
connections open to its nameservers, and the test's dnsmasq on
127.0.0.1:53 reads a TCP query in its only process, so one such
connection would stall it for everyone (OpenDKIM's key lookups).
Tests that start it run inside a network namespace (dnsns.py) whose only
interface is lo and whose 127.0.0.1:53 is the test's dnsmasq: nothing it
tries can leave the machine.  No redis: the modules that need one (Bayes,
ratelimit, greylisting, history) stay off by themselves."""
import os
import pwd
import shutil
import socket
import subprocess
import time
import urllib.request

from harness import free_port

RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"
RSPAMD_CONF = "/etc/rspamd/rspamd.conf"
OPENDKIM = (os.environ.get("OPENDKIM") or shutil.which("opendkim") or
            "/usr/sbin/opendkim")
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

# Modules that would only ask the network (or need redis).
RSPAMD_OFF = ("fuzzy_check", "rbl", "asn", "phishing", "multimap",
              "url_redirector", "dcc", "emails", "neural", "replies",
              "reputation", "ratelimit", "greylist", "history_redis",
              "metadata_exporter", "clickhouse", "elastic",
              "external_services", "spamtrap", "mx_check", "maps_stats",
              "rspamd_update", "dynamic_conf", "http_headers", "p0f",
              "antivirus")


def rspamd_usable():
    """"" if rspamd can be started here, else why not."""
    if not os.path.exists(RSPAMD):
        return "rspamd not installed"
    if not os.path.exists(RSPAMD_CONF):
        return "no %s" % RSPAMD_CONF
    if os.geteuid() != 0:
        return "rspamd needs root here (it drops to _rspamd)"
    try:
        pwd.getpwnam("_rspamd")
    except KeyError:
        return "no _rspamd user"
    return ""


def wait_tcp(port, timeout=30.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def _stopper(proc):
    def stop():
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return stop


class Rspamd:
    """rspamd in dir: .milter is the proxy's port (milter = yes),
    .scan the scanning worker's.  local maps file names of local.d to
    their text, written over (or next to) the defaults below."""

    def __init__(self, case, dir, local=None):
        self.dir = dir
        self.milter, self.scan, self.controller = (free_port(), free_port(),
                                                   free_port())
        for sub in ("local.d", "override.d", "db", "run", "log"):
            os.makedirs(os.path.join(dir, sub), exist_ok=True)
        files = {
            "options.inc": ('dns { nameserver = ["127.0.0.2:53"]; '
                            'timeout = 1s; retransmits = 1; }\n'
                            'disable_hyperscan = true;\n'),
            "logging.inc": 'level = "notice";\n',
        }
        for mod in RSPAMD_OFF:
            files["%s.conf" % mod] = "enabled = false;\n"
        files.update(local or {})
        for name, text in files.items():
            with open(os.path.join(dir, "local.d", name), "w") as f:
                f.write(text)
        # The workers' sockets replace the packaged ones (override.d).
        over = {
            "worker-normal.inc": 'bind_socket = "127.0.0.1:%d";\ncount = 1;\n'
                                 % self.scan,
            "worker-controller.inc": 'bind_socket = "127.0.0.1:%d";\n'
                                     'count = 1;\n' % self.controller,
            "worker-proxy.inc": (
                'bind_socket = "127.0.0.1:%d";\ncount = 1;\nmilter = yes;\n'
                'timeout = 60s;\nupstream "local" {\n  default = yes;\n'
                '  self_scan = no;\n  hosts = "127.0.0.1:%d";\n}\n'
                % (self.milter, self.scan)),
        }
        for name, text in over.items():
            with open(os.path.join(dir, "override.d", name), "w") as f:
                f.write(text)
        subprocess.run(["chown", "-R", "_rspamd:_rspamd", dir], check=True)
        self.log = open(os.path.join(dir, "rspamd.out"), "ab")
        argv = [RSPAMD, "-f", "-c", RSPAMD_CONF, "-u", "_rspamd",
                "-g", "_rspamd"]
        for var, sub in (("LOCAL_CONFDIR", ""), ("DBDIR", "db"),
                         ("RUNDIR", "run"), ("LOGDIR", "log")):
            argv += ["--var", "%s=%s" % (var, os.path.join(dir, sub)
                                         .rstrip("/"))]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        case.addCleanup(self.log.close)
        case.addCleanup(_stopper(self.proc))
        if not (wait_tcp(self.milter, 90, self.proc) and self.ready(90)):
            raise RuntimeError("rspamd did not start:\n" + self.logtext())

    def ready(self, timeout):
        """The scanning worker answers /ping (it has loaded its rules)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(
                        "http://127.0.0.1:%d/ping" % self.scan,
                        timeout=5) as r:
                    if r.read().strip() == b"pong":
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def stop(self):
        _stopper(self.proc)()

    def logtext(self):
        out = []
        for path in (os.path.join(self.dir, "rspamd.out"),
                     os.path.join(self.dir, "log", "rspamd.log")):
            try:
                with open(path, errors="replace") as f:
                    out.append(f.read()[-6000:])
            except OSError:
                pass
        return "\n".join(out)


class OpenDkim:
    """OpenDKIM in the foreground on 127.0.0.1:.port, with the settings
    given (lines of opendkim.conf(5)) and its own pid file; or on a whole
    configuration file conf whose Socket is inet:port@127.0.0.1."""

    def __init__(self, case, dir, settings=None, conf=None, port=None):
        os.makedirs(dir, exist_ok=True)
        self.port = port or free_port()
        self.conf = conf or os.path.join(dir, "opendkim.conf")
        if conf is None:
            with open(self.conf, "w") as f:
                f.write("Syslog no\nBackground no\nSocket inet:%d@127.0.0.1\n"
                        "PidFile %s/opendkim.pid\n%s\n"
                        % (self.port, dir, settings))
        self.proc = subprocess.Popen([OPENDKIM, "-f", "-x", self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        case.addCleanup(_stopper(self.proc))
        if not wait_tcp(self.port, 20, self.proc):
            raise RuntimeError("opendkim did not start (%s)" %
                               self.proc.poll())
