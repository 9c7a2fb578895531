"""An smtpd that finds its spool's queue runner lock taken (smtpq run, or a
runner still finishing) accepts mail, says so once, and starts its runner
as soon as the lock is free: the queue does not stay undelivered until a
restart.  Run unprivileged, smtpd is one process with the runner in it."""
import fcntl
import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from harness import SMTPD, free_port, wait_port

USER = "_smtpd"


def wait_for(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


class RunnerLock(unittest.TestCase):
    def setUp(self):
        self.pw = pwd.getpwnam(USER)
        self.dir = tempfile.mkdtemp(prefix="smtpd-e2e-")
        os.chmod(self.dir, 0o755)
        self.spool = os.path.join(self.dir, "spool")
        self.mail = os.path.join(self.dir, "mail")
        for d in (self.spool, self.mail):
            os.mkdir(d, 0o700)
            os.chown(d, self.pw.pw_uid, self.pw.pw_gid)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "smtpd.conf")
        with open(self.conf, "w") as f:
            f.write('hostname = "mx.test.example";\nspool = "%s";\n'
                    'reverse_lookup = false;\nlog = "stderr";\n'
                    'listen = [ "127.0.0.1:%d" ];\n'
                    'routes = ( { domain = "example.com"; action = '
                    '"maildir"; catchall = true; path = "%s/%%u"; '
                    'create = true; } );\n'
                    'queue = { runner = true; retry_min = 1; '
                    'scan_interval = 1; };\n'
                    % (self.spool, self.port, self.mail))
        self.logfile = os.path.join(self.dir, "smtpd.log")
        self.proc = None

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def delivered(self):
        new = os.path.join(self.mail, "box", "new")
        return os.path.isdir(new) and len(os.listdir(new)) > 0

    def test_runner_starts_once_the_lock_is_free(self):
        # The lock as another runner holds it: locked, with a live pid.
        lock = os.path.join(self.spool, "runner.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        os.fchown(fd, self.pw.pw_uid, self.pw.pw_gid)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"%d\n" % os.getpid())
        try:
            with open(self.logfile, "ab") as log:
                self.proc = subprocess.Popen(
                    ["setpriv", "--reuid=%d" % self.pw.pw_uid,
                     "--regid=%d" % self.pw.pw_gid, "--clear-groups",
                     SMTPD, "-C", self.conf],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            self.assertTrue(wait_port("127.0.0.1", self.port), self.log())
            with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
                c.sendmail("a@example.org", ["box@example.com"],
                           b"Subject: held\r\n\r\nwhile locked\r\n")
            self.assertIn("no queue runner in smtpd for now", self.log())
            time.sleep(1.5)
            self.assertFalse(self.delivered(), "delivered while locked")
        finally:
            os.close(fd)
        self.assertTrue(wait_for(self.delivered, 20),
                        "not delivered once the lock was free:\n" +
                        self.log())
        self.assertIn("queue runner started after all", self.log())
        self.proc.terminate()
        self.assertEqual(self.proc.wait(30), 0, self.log())


if __name__ == "__main__":
    unittest.main()
