"""Privilege separation: smtpd started as root is a parent with three
children -- the SMTP front (unprivileged, no capabilities), the key
process (TLS key, AUTH secrets) and the queue runner -- read back from
/proc; the front cannot read the key or the secrets, yet TLS and AUTH work
through the key process; a child killed with SIGKILL under load is started
again and no acknowledged message is lost; SIGHUP reaches every process;
SIGTERM leaves nothing behind."""
import glob
import os
import pwd
import re
import shutil
import signal
import smtplib
import subprocess
import threading
import time
import unittest

import certs
from harness import SmtpdCase, open_files
from qharness import maildir_files, wait_for

USER = "_smtpd"
PASSWORD = "Key-Process-1"
# linux/capability.h
CAPS = {"chown": 0, "dac_override": 1, "dac_read_search": 2, "fowner": 3,
        "kill": 5, "setgid": 6, "setuid": 7}
RUNNER_CAPS = sum(1 << n for n in CAPS.values())
ROLES = ("front", "key process", "queue runner")


def proc_status(pid):
    """/proc/PID/status as a dict of strings."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def children(pid):
    """The pids whose parent is pid."""
    kids = set()
    for path in glob.glob("/proc/%d/task/*/children" % pid):
        with open(path) as f:
            kids.update(int(p) for p in f.read().split())
    return kids


def alive(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return "\nState:\tZ" not in f.read()
    except FileNotFoundError:
        return False


@unittest.skipUnless(os.geteuid() == 0, "privilege separation needs root")
@unittest.skipUnless(certs.available(), "certtool (gnutls-bin) not installed")
class Privsep(SmtpdCase):
    def setUp(self):
        super().setUp()
        try:
            self.pw = pwd.getpwnam(USER)
        except KeyError:
            self.fail("user %s does not exist (tools/dev and make install "
                      "create it)" % USER)
        self.pair = certs.get()["server"]
        self.ca = certs.get()["ca"].cert
        self.secrets = os.path.join(self.workdir, "secrets")
        with open(self.secrets, "w") as f:
            f.write("alice:{PLAIN}%s\n" % PASSWORD)
        os.chmod(self.secrets, 0o600)
        self.mail = os.path.join(self.workdir, "mail")

    def start(self, runner=True):
        conf = ('tls = { certificate = "%s"; key = "%s"; };\n'
                'auth = { secrets = "%s"; throttle = { failures = 50; }; };\n'
                'ourdomains = [ "example.com" ];\n'
                'routes = ( { domain = "example.com"; action = "maildir"; catchall = true; '
                'path = "%s/%%u"; create = true; } );\n'
                'queue = { runner = %s; retry_min = 1; retry_max = 2; '
                'scan_interval = 1; };\n'
                % (self.pair.cert, self.pair.key, self.secrets, self.mail,
                   "true" if runner else "false"))
        d = self.smtpd(config_extra=conf)
        self.assertTrue(self.wait_log(d, "started: user=%s" % USER))
        return d

    def wait_log(self, d, needle, count=1, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if d.logtext().count(needle) >= count:
                return True
            time.sleep(0.05)
        return False

    def roles(self, d):
        """{role: pid} of the children now running, from the log."""
        pids = {}
        for role, pid in re.findall(r"started the (front|key process|"
                                    r"queue runner), pid (\d+)",
                                    d.logtext()):
            pids[role] = int(pid)
        return pids

    def smtp(self, d, tls=False, login=False):
        c = smtplib.SMTP(d.host, d.port, timeout=20)
        c.ehlo("client.example.org")
        if tls:
            import ssl
            ctx = ssl.create_default_context(cafile=self.ca)
            ctx.check_hostname = False
            c.starttls(context=ctx)
            c.ehlo("client.example.org")
        if login:
            c.login("alice", PASSWORD)
        return c

    def test_each_process_has_only_its_privileges(self):
        """Uid, gid, capabilities and no_new_privs of each process, from
        /proc/PID/status: the front is the unprivileged user with nothing,
        the key process uid 0 with nothing, the runner the user with the
        local-delivery capabilities only; the parent keeps root."""
        d = self.start()
        pids = self.roles(d)
        self.assertEqual(set(pids), set(ROLES))
        self.assertEqual(children(d.proc.pid), set(pids.values()))
        uid, gid = self.pw.pw_uid, self.pw.pw_gid
        want = {"front": (uid, gid, 0), "key process": (0, 0, 0),
                "queue runner": (uid, gid, RUNNER_CAPS)}
        for role, (u, g, caps) in want.items():
            st = proc_status(pids[role])
            self.assertEqual(st["Uid"].split(), [str(u)] * 4, role)
            self.assertEqual(st["Gid"].split(), [str(g)] * 4, role)
            self.assertEqual(st["Groups"].split(), [str(g)], role)
            for k in ("CapEff", "CapPrm", "CapBnd"):
                self.assertEqual(int(st[k], 16), caps, (role, k))
            self.assertEqual(int(st["CapInh"], 16), 0, role)
            self.assertEqual(int(st["CapAmb"], 16), 0, role)
            self.assertEqual(st["NoNewPrivs"], "1", role)
        st = proc_status(d.proc.pid)
        self.assertEqual(st["Uid"].split(), ["0"] * 4)
        self.assertNotEqual(int(st["CapEff"], 16), 0)

    def test_front_has_neither_key_nor_secrets(self):
        """The front's user cannot open the key or the secrets file, the
        front holds neither open, and yet STARTTLS and AUTH work: the
        handshake signatures are made by the key process."""
        d = self.start(runner=False)
        front = self.roles(d)["front"]
        self.assertEqual(proc_status(front)["Uid"].split()[0],
                         str(self.pw.pw_uid))
        for path in (self.pair.key, self.secrets):
            st = os.stat(path)
            self.assertEqual((st.st_uid, st.st_mode & 0o077), (0, 0), path)
            p = subprocess.run(["setpriv", "--reuid=%d" % self.pw.pw_uid,
                                "--regid=%d" % self.pw.pw_gid,
                                "--clear-groups", "cat", path],
                               capture_output=True, text=True, timeout=10)
            self.assertNotEqual(p.returncode, 0, path)
            self.assertIn("Permission denied", p.stderr)
        opened = open_files(front)
        self.assertNotIn(self.pair.key, opened)
        self.assertNotIn(self.secrets, opened)
        with open(self.pair.key) as f:
            pem = f.read().encode()
        self.assertNotIn(b"PRIVATE KEY", open(
            "/proc/%d/cmdline" % front, "rb").read())
        before = d.logtext().count("key: sign request")
        for _ in range(3):
            c = self.smtp(d, tls=True, login=True)
            c.sendmail("alice@example.org", ["bob@example.com"],
                       b"Subject: through the key process\r\n\r\nhi\r\n")
            c.quit()
        self.assertGreaterEqual(d.logtext().count("key: sign request"),
                                before + 3, d.logtext()[-3000:])
        # A wrong password is refused by the key process's check.
        c = self.smtp(d, tls=True)
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            c.login("alice", "wrong")
        c.close()
        self.assertNotIn(pem[40:80], d.logtext().encode())

    def load(self, d, stop, acked, errors, tls=False):
        """Sends messages until stop is set (at most 2000, about 50 a
        second), each with a unique token; records the tokens that got
        250.  Reconnects after failures."""
        n = 0
        while not stop.is_set() and n < 2000:
            try:
                c = self.smtp(d, tls=tls)
                while not stop.is_set() and n < 2000:
                    tok = "tok-%d-%d" % (threading.get_ident(), n)
                    n += 1
                    c.sendmail("alice@example.org", ["load@example.com"],
                               ("Subject: %s\r\n\r\n%s\r\n"
                                % (tok, tok)).encode())
                    acked.append(tok)
                    time.sleep(0.02)
                c.quit()
            except (OSError, smtplib.SMTPException) as e:
                errors.append(repr(e))
                time.sleep(0.1)

    def delivered_or_queued(self, d):
        """Every body under the Maildir and the spool's queue/."""
        texts = []
        for path in (maildir_files(os.path.join(self.mail, "load")) +
                     glob.glob(os.path.join(d.spool, "queue", "*"))):
            try:
                with open(path, "rb") as f:
                    texts.append(f.read())
            except OSError:
                pass
        return b"\n".join(texts)

    def test_killed_children_restart_under_load(self):
        """kill -9 of the front, the runner and the key process in turn,
        with four clients sending (one over TLS): each is started again,
        sessions resume, and every acknowledged message is delivered or
        still queued."""
        d = self.start()
        stop, acked, errors = threading.Event(), [], []
        threads = [threading.Thread(target=self.load,
                                    args=(d, stop, acked, errors, i == 0))
                   for i in range(4)]
        for t in threads:
            t.start()
        try:
            for role in ("front", "queue runner", "key process"):
                self.assertTrue(wait_for(lambda: len(acked) >= 20, 20))
                pid = self.roles(d)[role]
                os.kill(pid, signal.SIGKILL)
                self.assertTrue(self.wait_log(
                    d, "the %s (pid %d) killed by signal 9; starting it "
                    "again in 1 s" % (role, pid)), role)
                self.assertTrue(wait_for(
                    lambda: self.roles(d)[role] != pid and
                    alive(self.roles(d)[role]), 20), role)
                mark = len(acked)
                self.assertTrue(wait_for(lambda: len(acked) > mark + 10, 30),
                                (role, errors[-3:]))
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertGreater(len(acked), 60)
        # TLS and AUTH work with the restarted key process.
        c = self.smtp(d, tls=True, login=True)
        c.quit()
        missing = acked
        deadline = time.time() + 60
        while missing and time.time() < deadline:
            have = self.delivered_or_queued(d)
            missing = [t for t in acked if t.encode() not in have]
            time.sleep(0.5)
        self.assertEqual(missing, [], "acknowledged but lost")
        self.assertEqual(children(d.proc.pid), set(self.roles(d).values()))

    def test_restart_backs_off(self):
        """A front that keeps dying is started again after 1 s, then 2 s."""
        d = self.start(runner=False)
        for delay in (1, 2):
            pid = self.roles(d)["front"]
            os.kill(pid, signal.SIGKILL)
            self.assertTrue(self.wait_log(
                d, "the front (pid %d) killed by signal 9; starting it "
                "again in %d s" % (pid, delay)))
            self.assertTrue(wait_for(
                lambda: self.roles(d)["front"] != pid, 20))
        c = self.smtp(d)
        self.assertEqual(c.noop()[0], 250)
        c.quit()

    def test_sighup_under_load_reaches_every_process(self):
        """SIGHUP while clients send: the key process, the runner and the
        front each reload, the parent says "reloaded" once, and every
        message sent meanwhile is acknowledged."""
        d = self.start()
        stop, acked, errors = threading.Event(), [], []
        threads = [threading.Thread(target=self.load,
                                    args=(d, stop, acked, errors, i == 0))
                   for i in range(3)]
        for t in threads:
            t.start()
        try:
            self.assertTrue(wait_for(lambda: len(acked) >= 10, 20))
            for n in (1, 2):
                d.proc.send_signal(signal.SIGHUP)
                self.assertTrue(self.wait_log(d, "reloaded %s" % d.conf, n))
            mark = len(acked)
            self.assertTrue(wait_for(lambda: len(acked) > mark + 10, 30))
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        log = d.logtext()
        for line in ("key process: reload done", "queue runner: reload done",
                     "front: reload done"):
            self.assertEqual(log.count(line), 2, line)
        self.assertEqual(log.count("reloaded "), 2)
        self.assertEqual(errors, [])

    def test_sigterm_leaves_no_process(self):
        """SIGTERM with a session open: the parent exits 0 and no child
        is left."""
        d = self.start()
        kids = set(self.roles(d).values())
        c = self.smtp(d)
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(60), 0)
        c.close()
        for pid in kids:
            self.assertFalse(alive(pid), pid)
        log = d.logtext()
        for role in ROLES:
            self.assertRegex(log, r"the %s \(pid \d+\) exited with status 0"
                             % role)

    def test_stdio_session_runs_unprivileged(self):
        """smtpd -i started as root: the message in the spool was
        written by the unprivileged user."""
        d = self.smtpd(start=False, listen=[])
        rc, out, err = d.stdio(b"EHLO x.example.org\r\n"
                               b"MAIL FROM:<a@example.org>\r\n"
                               b"RCPT TO:<b@example.net>\r\nDATA\r\n"
                               b"Subject: x\r\n\r\nx\r\n.\r\nQUIT\r\n",
                               env=dict(os.environ,
                                        TCPREMOTEIP="127.0.0.1"))
        self.assertEqual(rc, 0, err)
        self.assertIn(b"250 2.0.0", out)
        files = glob.glob(os.path.join(d.spool, "queue", "*"))
        self.assertEqual(len(files), 1)
        self.assertEqual(os.stat(files[0]).st_uid, self.pw.pw_uid)


if __name__ == "__main__":
    unittest.main()
