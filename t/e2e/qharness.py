"""Helpers for the queue tests: an smtpd to accept mail, a queue config
(routes, aliases, queue settings) and smtpq to deliver it.

While smtpd's own config loader does not know the queue settings yet, they
go into a separate smtpq.conf naming the same spool; once smtpd accepts
them (checked with smtpd -t), one file serves both.  Likewise, when smtpd
runs the queue runner itself, start_runner() and deliver() notice the
runner lock is taken and only wait.
"""
import email
import email.policy
import fcntl
import os
import signal
import smtplib
import subprocess
import time

from harness import RUNNER_OFF, BUILDDIR, SmtpdCase, sanitizer_report

SMTPQ = os.path.join(BUILDDIR, "smtpq")


def wait_for(pred, timeout=15.0, step=0.05):
    """Polls pred() until it is true; returns its last value."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)


def alive(pid):
    """True while pid runs (a zombie nobody reaped counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def maildir_files(path):
    """Paths of the messages in a Maildir's new/, sorted."""
    new = os.path.join(path, "new")
    if not os.path.isdir(new):
        return []
    return sorted(os.path.join(new, f) for f in os.listdir(new))


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def parse_mail(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def dsn_fields(msg):
    """The message/delivery-status part as (per-message dict, [per-rcpt
    dicts]), field names lower-cased."""
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            dicts = []
            for b in blocks:
                dicts.append({k.lower(): str(v) for k, v in b.items()})
            return dicts[0], dicts[1:]
    return None, []


class QueueCase(SmtpdCase):
    hostname = "mx.test.example"

    def setUp(self):
        super().setUp()
        # Pipe programs run as nobody: they must reach their files.
        os.chmod(self.workdir, 0o755)
        self.runner = None
        self.runner_log = os.path.join(self.workdir, "smtpq.log")

    def tearDown(self):
        rc = self.stop_runner()
        try:
            with open(self.runner_log, "rb") as f:
                report = sanitizer_report(f.read().decode("utf-8", "replace"))
        except OSError:
            report = None
        super().tearDown()
        self.assertIsNone(report, report)
        self.assertIn(rc, (None, 0), "smtpq run exited %s" % rc)

    # --- set-up ---

    def setup_queue(self, routes, aliases="", queue="", start_smtpd=True,
                    in_smtpd=False):
        """Starts smtpd and writes the queue config.  routes, aliases and
        queue are libconfig text for those settings' values.  in_smtpd:
        the daemon runs the queue runner itself (queue.runner = true)."""
        self.d = self.smtpd(start=False, hostname=self.hostname)
        self.spool = self.d.spool
        snippet = "routes = ( %s );\n" % routes
        if aliases:
            snippet += "aliases = ( %s );\n" % aliases
        # smtpq run is the runner in these tests, unless in_smtpd.
        snippet += "queue = { runner = %s; %s };\n" % (
            "true" if in_smtpd else "false", queue)
        with open(self.d.conf) as f:
            base = f.read().replace(RUNNER_OFF + "\n", "")
        probe = os.path.join(self.workdir, "probe.conf")
        with open(probe, "w") as f:
            f.write(base + snippet)
        ok = subprocess.run([os.path.join(BUILDDIR, "smtpd"), "-t", "-C",
                             probe], capture_output=True).returncode == 0
        if ok:
            self.qconf = self.d.conf
            with open(self.qconf, "w") as f:
                f.write(base + snippet)
        else:
            self.qconf = os.path.join(self.workdir, "smtpq.conf")
            with open(self.qconf, "w") as f:
                f.write('hostname = "%s";\nspool = "%s";\n%s'
                        % (self.hostname, self.spool, snippet))
        if start_smtpd:
            self.d.start()
        return self.d

    def path(self, *parts):
        return os.path.join(self.workdir, *parts)

    def script(self, name, text):
        """An executable /bin/sh script in the work directory."""
        p = self.path(name)
        with open(p, "w") as f:
            f.write("#!/bin/sh\n" + text)
        os.chmod(p, 0o755)
        return p

    def outdir(self, name="out"):
        """A directory pipe programs (running as nobody) can write to."""
        p = self.path(name)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, 0o1777)
        return p

    # --- smtpq ---

    def smtpq(self, *args, timeout=30):
        p = subprocess.run([SMTPQ, "-C", self.qconf] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        report = sanitizer_report(p.stderr)
        self.assertIsNone(report, report)
        return p

    def runner_held_by_other(self):
        out = self.smtpq("stats").stdout
        return "runner: running" in out and self.runner is None

    def deliver(self, timeout=30):
        """One delivery pass over everything due (smtpq run -o), or, if
        smtpd runs the runner itself, a flush."""
        # What smtpd acknowledged must be out of its journal first.
        if getattr(self, "d", None) is not None:
            self.d.settle()
        if self.runner is not None or self.runner_held_by_other():
            return self.smtpq("flush")
        p = subprocess.run([SMTPQ, "-d", "-C", self.qconf, "run", "-o"],
                           capture_output=True, text=True, timeout=timeout)
        with open(self.runner_log, "a") as f:
            f.write(p.stderr)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def lock_free(self):
        """True when nobody holds spool/runner.lock (a runner killed with
        -9 lets go of it only once its last child is gone too)."""
        path = os.path.join(self.spool, "runner.lock")
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def start_runner(self):
        if self.runner_held_by_other():
            return
        wait_for(self.lock_free, 15)
        self.runner_out = open(self.runner_log, "ab")
        self.runner = subprocess.Popen([SMTPQ, "-d", "-C", self.qconf, "run"],
                                       stdin=subprocess.DEVNULL,
                                       stdout=self.runner_out,
                                       stderr=self.runner_out)
        self.assertTrue(wait_for(lambda: "runner: running" in
                                 self.smtpq("stats").stdout, 10),
                        "runner did not start:\n" + self.log())

    def stop_runner(self, sig=signal.SIGTERM):
        if self.runner is None:
            return None
        if self.runner.poll() is None:
            self.runner.send_signal(sig)
            try:
                self.runner.wait(30)
            except subprocess.TimeoutExpired:
                self.runner.kill()
                self.runner.wait()
        rc = self.runner.returncode
        self.runner = None
        self.runner_out.close()
        return rc

    def log(self):
        """Both logs, for assertions and failure messages."""
        text = ""
        for p in (self.runner_log, self.d.logfile):
            try:
                with open(p, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except OSError as e:
                text += "(%s: %s)\n" % (p, e)
        return text

    def diag(self):
        """What a failure message should show: logs and the queue."""
        try:
            q = subprocess.run([SMTPQ, "-C", self.qconf, "list"],
                               capture_output=True, text=True, timeout=30)
            queue = q.stdout + q.stderr
        except (OSError, subprocess.TimeoutExpired) as e:
            queue = str(e)
        return "%s\n--- smtpq list:\n%s--- runner %s" % (
            self.log(), queue, "started here" if self.runner else
            "not started here")

    def queue_ids(self):
        # What smtpd acknowledged reaches queue/ from its journal.
        if getattr(self, "d", None) is not None:
            self.d.settle()
        q = os.path.join(self.spool, "queue")
        return sorted(os.listdir(q)) if os.path.isdir(q) else []

    # --- mail ---

    def send(self, sender, rcpts, body=b"Subject: test\r\n\r\nhello\r\n",
             mail_options=(), rcpt_options=()):
        with smtplib.SMTP(self.d.host, self.d.port, timeout=10) as c:
            refused = c.sendmail(sender, rcpts, body, list(mail_options),
                                 list(rcpt_options))
            self.assertEqual(refused, {})

    def write_spool(self, qid, sender, rcpt_lines, body, extra=()):
        """Queues a message by writing the spool format directly
        (doc/smtpd-spool.5), for envelope items smtpd does not store yet."""
        lines = ["smtpd-spool 1", "id " + qid,
                 "arrival %d" % int(time.time()), "from <%s>" % sender]
        lines += ["rcpt " + r for r in rcpt_lines]
        lines += list(extra)
        data = ("\n".join(lines) + "\n\n").encode() + body
        os.makedirs(os.path.join(self.spool, "tmp"), exist_ok=True)
        os.makedirs(os.path.join(self.spool, "queue"), exist_ok=True)
        tmp = os.path.join(self.spool, "tmp", qid)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.spool, "queue", qid))
