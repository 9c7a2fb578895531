"""A private Dovecot for tests: its own config, sockets and Maildirs in a
temporary directory, started in the foreground (dovecot -F) and stopped
with the test.  The system's Dovecot instance is never touched.

Accounts live in one passwd-file (passdb and userdb): name, password,
and optional extra userdb fields such as a quota rule.  Mail is stored as
the user nobody in <dir>/mail/<name>/ (Maildir).
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

from harness import free_port

DOVECOT = shutil.which("dovecot", path="/usr/sbin:/usr/bin")
DOVEADM = shutil.which("doveadm", path="/usr/bin:/usr/sbin")


def usable():
    """Why Dovecot cannot run here, or None."""
    if DOVECOT is None or DOVEADM is None:
        return "dovecot-core is not installed"
    if not os.path.exists("/usr/lib/dovecot/lmtp"):
        return "dovecot-lmtpd is not installed"
    if os.geteuid() != 0:
        return "Dovecot tests need root"
    for u in ("dovecot", "dovenull", "nobody"):
        try:
            pwd.getpwnam(u)
        except KeyError:
            return "no user %s" % u
    return None


class Dovecot:
    def __init__(self, workdir, users, quota_tempfail=False, extra="",
                 username_format="%n"):
        """users: {name: (password, "extra userdb fields")};
        username_format: how Dovecot turns a login into a passwd-file key
        ("%n" drops the domain, "%u" keeps it)."""
        self.dir = os.path.join(workdir, "dovecot")
        self.run = os.path.join(self.dir, "run")
        self.maildir = os.path.join(self.dir, "mail")
        for d in (self.dir, self.run, self.maildir,
                  os.path.join(self.dir, "state")):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.maildir, nobody.pw_uid, nobody.pw_gid)
        self.lmtp_port = free_port()
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.logfile = os.path.join(self.dir, "dovecot.log")
        self.users = os.path.join(self.dir, "users")
        self.write_users(users)
        with open(self.conf, "w") as f:
            f.write(CONF % {
                "dir": self.dir, "run": self.run, "maildir": self.maildir,
                "log": self.logfile, "users": self.users,
                "port": self.lmtp_port,
                "tempfail": "yes" if quota_tempfail else "no",
                "extra": extra,
                "userdb_owner": userdb_owner(),
                "fmt": username_format})
        self.proc = None

    def write_users(self, users):
        nobody = pwd.getpwnam("nobody")
        tmp = self.users + ".tmp"
        with open(tmp, "w") as f:
            for name, (password, fields) in users.items():
                f.write("%s:{PLAIN}%s:%d:%d::%s/%s::%s\n" % (
                    name, password, nobody.pw_uid, nobody.pw_gid,
                    self.maildir, name, fields))
        os.chmod(tmp, 0o644)
        # Dovecot rereads the file when its mtime (seconds) changes.
        try:
            old = os.stat(self.users).st_mtime
        except FileNotFoundError:
            old = None
        if old is not None:
            os.utime(tmp, (old + 2, old + 2))
        os.rename(tmp, self.users)
        if old is not None:
            # ... and checks it at most once a second.
            time.sleep(1.2)

    @property
    def lmtp_socket(self):
        return os.path.join(self.run, "lmtp")

    @property
    def auth_socket(self):
        return os.path.join(self.run, "auth-client")

    @property
    def userdb_socket(self):
        return os.path.join(self.run, "auth-userdb")

    @property
    def master_socket(self):
        return os.path.join(self.run, "auth-master")

    def start(self):
        self.out = open(self.logfile + ".stderr", "ab")
        self.proc = subprocess.Popen([DOVECOT, "-c", self.conf, "-F"],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited %s:\n%s" % (
                    self.proc.returncode, self.logtext()))
            if all(self.connectable(p) for p in (
                    self.lmtp_socket, self.auth_socket, self.master_socket,
                    self.userdb_socket)):
                return self
            time.sleep(0.05)
        raise RuntimeError("dovecot did not start:\n" + self.logtext())

    @staticmethod
    def connectable(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.out.close()

    def logtext(self):
        text = ""
        for p in (self.logfile, self.logfile + ".stderr"):
            try:
                with open(p, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return text

    def doveadm(self, *args):
        return subprocess.run([DOVEADM, "-c", self.conf] + list(args),
                              capture_output=True, text=True, timeout=30)

    def subjects(self, user):
        """The Subject of each message in user's INBOX (doveadm fetch)."""
        p = self.doveadm("fetch", "-u", user, "hdr.subject", "mailbox",
                         "INBOX", "all")
        if p.returncode != 0:
            raise RuntimeError("doveadm fetch: %s" % p.stderr)
        return sorted(line.split(":", 1)[1].strip()
                      for line in p.stdout.splitlines()
                      if line.lower().startswith("hdr.subject:"))


def userdb_owner():
    """The auth-userdb listener's owner and mode.  smtpd started as root
    looks recipients up from its front, as _smtpd: the socket is that
    user's, as a Postfix setup gives it to postfix (with a 0666 socket
    Dovecot lets a client see only the users of its own uid)."""
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("_smtpd")
            return "    mode = 0600\n    user = _smtpd"
        except KeyError:
            pass
    return "    mode = 0666"


CONF = """
base_dir = %(run)s
state_dir = %(dir)s/state
log_path = %(log)s
info_log_path = %(log)s
instance_name = dovecot-test
protocols = lmtp
listen = 127.0.0.1
ssl = no
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:%(maildir)s/%%n
mail_plugins = quota
quota_full_tempfail = %(tempfail)s
plugin {
  quota = maildir:User quota
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%(fmt)s %(users)s
}
userdb {
  driver = passwd-file
  args = username_format=%(fmt)s %(users)s
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = %(port)d
  }
}
service auth {
  unix_listener auth-client {
    mode = 0666
  }
  unix_listener auth-master {
    mode = 0600
  }
  unix_listener auth-userdb {
%(userdb_owner)s
  }
}
%(extra)s
"""
