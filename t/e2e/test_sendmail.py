"""sendmail(8): the command programs call as /usr/sbin/sendmail.

Smarthost mode against aiosmtpd (accounts, -t, the offline queue, AUTH
refused), the local queue through the maildrop into a Maildir (as root
and as an unprivileged user with a setgid copy), -bs driven by swaks,
and the real callers from Debian: bsd-mailx, php-cli's mail(), git
send-email and cron's argument list."""
import os
import shutil
import stat
import subprocess
import time

from clientkit import (Aio, ClientCase, Recorder, EX_OK, EX_USAGE,
                       EX_NOPERM, EX_CONFIG, EX_TEMPFAIL)
from harness import BUILDDIR, free_port
from qharness import QueueCase, maildir_files, read_bytes, wait_for

SENDMAIL = os.path.join(BUILDDIR, "sendmail")
FAST = "retry_min = 1; retry_max = 2; scan_interval = 1;"
NOBODY, DAEMON = 65534, 1
DROP_GID = 4711         # the maildrop group of these tests (no name needed)

MSG = (b"From: alice@home.test\nTo: bob@example.com, \"Carol X\" "
       b"<carol@example.com>\nCc: dave@example.com\n"
       b"Bcc: eve@example.com,\n  frank@example.com\n"
       b"Subject: hello\n\nbody line\n.\nafter the dot\n")


def run(args, data=b"", home="/nonexistent", env=None, timeout=60,
        prefix=()):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
         "LANG": "C"}
    if env:
        e.update(env)
    return subprocess.run(list(prefix) + [SENDMAIL] + list(args),
                          input=data, capture_output=True, timeout=timeout,
                          env=e)


class Base(ClientCase):
    """No smtpd.conf (-C names none): smtp.conf accounts."""
    PREFIX = "sendmail-e2e-"

    def setUp(self):
        super().setUp()
        self.home = os.path.join(self.workdir, "home")
        os.makedirs(os.path.join(self.home, ".config", "smtp"))

    def conf(self, text):
        with open(os.path.join(self.home, ".config", "smtp", "smtp.conf"),
                  "w") as f:
            f.write(text)

    def sendmail(self, args, data=MSG, **kw):
        return run(["-C", os.path.join(self.workdir, "none.conf")] +
                   list(args), data=data, home=self.home, **kw)

    def one_account(self, addr, extra="", top=""):
        self.conf('%s\naccounts = ( { name = "main"; host = "%s"; '
                  'tls = "none"; %s } );\n' % (top, addr, extra))



class Smarthost(Base):
    def test_t_reads_to_cc_bcc_and_strips_bcc(self):
        with Aio() as s:
            self.one_account(s.addr())
            p = self.sendmail(["-t", "-i"])
            self.assertExit(p, EX_OK)
            m = s.messages[0]
        self.assertEqual(sorted(m["rcpt"]), [
            "bob@example.com", "carol@example.com", "dave@example.com",
            "eve@example.com", "frank@example.com"])
        self.assertNotIn(b"Bcc", m["data"])
        self.assertNotIn(b"eve@", m["data"])
        # -i: the lone dot is text; the sender comes from From:.
        self.assertIn(b"\r\n.\r\nafter the dot", m["data"])
        self.assertEqual(m["from"], "alice@home.test")
        self.assertIn(b"Message-ID: <", m["data"])
        self.assertIn(b"Date: ", m["data"])

    def test_lone_dot_ends_input_without_i(self):
        with Aio() as s:
            self.one_account(s.addr())
            p = self.sendmail(["-t"])
            self.assertExit(p, EX_OK)
            data = s.messages[0]["data"]
        self.assertIn(b"body line", data)
        self.assertNotIn(b"after the dot", data)

    def test_f_and_F_make_the_sender_and_from(self):
        with Aio() as s:
            self.one_account(s.addr())
            p = self.sendmail(["-f", "cron@home.test", "-FCron Daemon",
                               "-oi", "-oem", "-odi", "-U", "bob@example.com"],
                              data=b"Subject: x\n\nhi\n")
            self.assertExit(p, EX_OK)
            m = s.messages[0]
        self.assertEqual(m["from"], "cron@home.test")
        self.assertEqual(m["rcpt"], ["bob@example.com"])
        self.assertIn(b'From: "Cron Daemon" <cron@home.test>\r\n', m["data"])

    def test_unknown_option_is_a_usage_error(self):
        p = self.sendmail(["-X", "bob@example.com"])
        self.assertExit(p, EX_USAGE)
        self.assertIn(b"usage: sendmail", p.stderr)
        p = self.sendmail(["-N", "sometimes", "bob@example.com"])
        self.assertExit(p, EX_USAGE)

    def test_accounts_by_sender_from_and_name(self):
        with Aio() as work, Aio() as home:
            self.conf(
                'account = "home";\n'
                'accounts = (\n'
                ' { name = "work"; from = [ "*@work.test" ]; host = "%s"; '
                'tls = "none"; },\n'
                ' { name = "home"; from = "*@home.test"; host = "%s"; '
                'tls = "none"; } );\n' % (work.addr(), home.addr()))
            # -f picks work; From: picks home; -a picks by name.
            self.assertExit(self.sendmail(
                ["-f", "me@work.test", "x@example.com"],
                data=b"From: me@home.test\n\nA\n"), EX_OK)
            self.assertExit(self.sendmail(
                ["x@example.com"], data=b"From: Me <me@WORK.test>\n\nB\n"),
                EX_OK)
            self.assertExit(self.sendmail(
                ["-a", "home", "x@example.com"],
                data=b"From: me@work.test\n\nC\n"), EX_OK)
            self.assertExit(self.sendmail(
                ["x@example.com"], data=b"Subject: none\n\nD\n"), EX_OK)
            wbodies = [m["data"].split(b"\r\n\r\n", 1)[1] for m in work.messages]
            hbodies = [m["data"].split(b"\r\n\r\n", 1)[1] for m in home.messages]
        self.assertEqual(wbodies, [b"A\r\n", b"B\r\n"])
        self.assertEqual(hbodies, [b"C\r\n", b"D\r\n"])
        p = self.sendmail(["-a", "nosuch", "x@example.com"])
        self.assertExit(p, EX_CONFIG)
        self.assertIn(b"no account named", p.stderr)

    def test_offline_queue_then_flush(self):
        port = free_port()
        qdir = os.path.join(self.workdir, "offline")
        self.one_account("127.0.0.1:%d" % port,
                         top='queue_dir = "%s";' % qdir)
        p = self.sendmail(["-t", "-i", "-N", "failure"])
        self.assertExit(p, EX_OK)
        self.assertIn(b"offline queue", p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(qdir).st_mode), 0o700)
        files = [f for f in os.listdir(qdir) if not f.startswith(".")]
        self.assertEqual(len(files), 1)
        listing = self.sendmail(["-bp"])
        self.assertExit(listing, EX_OK)
        self.assertIn(b"<eve@example.com>", listing.stdout)
        # Still down: -q keeps it and says to retry.
        self.assertExit(self.sendmail(["-q"]), EX_TEMPFAIL)
        with Aio(port=port) as s:
            p = self.sendmail(["-q"])
            self.assertExit(p, EX_OK)
            self.assertEqual(len(s.messages), 1)
            m = s.messages[0]
        self.assertEqual(len(m["rcpt"]), 5)
        self.assertNotIn(b"Bcc", m["data"])
        self.assertEqual([f for f in os.listdir(qdir)
                          if not f.startswith(".")], [])

    def test_next_send_flushes_the_offline_queue(self):
        port = free_port()
        qdir = os.path.join(self.workdir, "offline")
        self.one_account("127.0.0.1:%d" % port,
                         top='queue_dir = "%s";' % qdir)
        self.assertExit(self.sendmail(["a@example.com"],
                                      data=b"Subject: 1\n\none\n"), EX_OK)
        with Aio(port=port) as s:
            self.assertExit(self.sendmail(["b@example.com"],
                                          data=b"Subject: 2\n\ntwo\n"), EX_OK)
            rcpts = [m["rcpt"] for m in s.messages]
        self.assertEqual(rcpts, [["b@example.com"], ["a@example.com"]])

    def test_auth_refused_is_77_and_nothing_queued(self):
        qdir = os.path.join(self.workdir, "offline")
        keys = os.path.join(self.workdir, "keys")
        with open(keys, "w") as f:
            f.write("proto=pass service=smtp server=127.0.0.1 user=alice "
                    "!password=wrong\n")
        os.chmod(keys, 0o600)
        rec = Recorder(users={"alice": "right"})
        with Aio(rec, auth_require_tls=False) as s:
            self.one_account(
                s.addr(), 'user = "alice"; auth_cleartext = true; '
                'keyfile = "%s";' % keys, top='queue_dir = "%s";' % qdir)
            p = self.sendmail(["bob@example.com"])
            self.assertExit(p, EX_NOPERM)
            self.assertEqual(s.messages, [])
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertFalse(os.path.exists(qdir) and
                         [f for f in os.listdir(qdir)
                          if not f.startswith(".")])

    def test_no_smarthost_config_is_78(self):
        p = self.sendmail(["bob@example.com"])
        self.assertExit(p, EX_CONFIG)
        self.assertIn(b"smtp.conf", p.stderr)


class RealCallers(Base):
    """bsd-mailx, php-cli and git send-email, pointed at our sendmail by a
    wrapper script (no system-wide /usr/sbin/sendmail is touched)."""

    def wrapper(self):
        w = os.path.join(self.workdir, "sendmail-wrapper")
        with open(w, "w") as f:
            f.write('#!/bin/sh\nexec "%s" -C "%s" "$@"\n'
                    % (SENDMAIL, os.path.join(self.workdir, "none.conf")))
        os.chmod(w, 0o755)
        return w

    def env(self):
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": self.home, "LANG": "C"}

    def test_bsd_mailx(self):
        rc = os.path.join(self.workdir, "mailrc")
        with open(rc, "w") as f:
            f.write("set sendmail=%s\n" % self.wrapper())
        env = self.env()
        env["MAILRC"] = rc
        with Aio() as s:
            self.one_account(s.addr())
            p = subprocess.run(["bsd-mailx", "-s", "from mailx",
                                "bob@example.com"], input=b"mailx body\n",
                               capture_output=True, env=env, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(wait_for(lambda: s.messages, timeout=10))
            m = s.messages[0]
        self.assertEqual(m["rcpt"], ["bob@example.com"])
        self.assertIn(b"Subject: from mailx", m["data"])
        self.assertIn(b"mailx body", m["data"])

    def test_php_mail(self):
        with Aio() as s:
            self.one_account(s.addr())
            p = subprocess.run(
                ["php", "-n", "-d", "sendmail_path=%s -t -i" % self.wrapper(),
                 "-r", 'exit(mail("bob@example.com", "from php", "php body",'
                 ' "From: web@home.test\\r\\nCc: carol@example.com") ? 0 : 3);'],
                capture_output=True, env=self.env(), timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            m = s.messages[0]
        self.assertEqual(sorted(m["rcpt"]),
                         ["bob@example.com", "carol@example.com"])
        self.assertEqual(m["from"], "web@home.test")
        self.assertIn(b"Subject: from php", m["data"])

    def test_git_send_email(self):
        repo = os.path.join(self.workdir, "repo")
        git = ["git", "-C", repo, "-c", "user.name=Ann Author",
               "-c", "user.email=ann@home.test"]
        env = self.env()
        subprocess.run(["git", "init", "-q", repo], check=True, env=env)
        with open(os.path.join(repo, "f"), "w") as f:
            f.write("change\n")
        subprocess.run(git + ["add", "f"], check=True, env=env)
        subprocess.run(git + ["commit", "-q", "-m", "a change"], check=True,
                       env=env)
        patch = subprocess.run(git + ["format-patch", "-1", "-o", repo],
                               check=True, capture_output=True,
                               env=env).stdout.decode().strip()
        with Aio() as s:
            self.one_account(s.addr())
            p = subprocess.run(
                git + ["send-email", "--smtp-server=%s" % self.wrapper(),
                       "--to=bob@example.com", "--from=ann@home.test",
                       "--confirm=never", "--suppress-cc=all",
                       "--no-validate", "--quiet", patch],
                capture_output=True, env=env, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            m = s.messages[0]
        self.assertEqual(m["rcpt"], ["bob@example.com"])
        self.assertEqual(m["from"], "ann@home.test")
        self.assertIn(b"Subject: [PATCH] a change", m["data"])


class LocalQueue(QueueCase):
    """smtpd.conf exists: the message goes through spool/maildrop, the
    runner (smtpq run -o) picks it up and delivers it into a Maildir."""

    def setUp(self):
        super().setUp()
        self.spool_dir = os.path.join(self.workdir, "spool")

    def setup_local(self, sendmail_conf=""):
        self.setup_queue('{ domain = "defer.test"; action = "relay"; '
                         'host = "127.0.0.1:%d"; }, '
                         '{ domain = "*"; action = "maildir"; '
                         'path = "%s/%%d/%%u"; create = true; '
                         'catchall = true; }'
                         % (free_port(), self.path("mail")), queue=FAST,
                         start_smtpd=False)
        with open(self.qconf, "a") as f:
            f.write('sendmail = { domain = "example.com"; %s };\n'
                    % sendmail_conf)
        # What make install-sendmail sets up: the spool traversable, the
        # maildrop writable by the group only, queue/ readable by it.
        os.makedirs(self.spool_dir, exist_ok=True)
        os.chmod(self.spool_dir, 0o755)
        drop = os.path.join(self.spool_dir, "maildrop")
        os.makedirs(drop, exist_ok=True)
        os.chown(drop, 0, DROP_GID)
        os.chmod(drop, 0o1730)
        for sub in ("queue", "tmp"):
            d = os.path.join(self.spool_dir, sub)
            os.makedirs(d, exist_ok=True)
            os.chown(d, 0, DROP_GID)
            os.chmod(d, 0o2750)
        os.chmod(self.qconf, 0o644)

    def setgid_copy(self):
        """A copy of sendmail, setgid to the maildrop group, with smtpq
        and smtpd beside it."""
        # A setgid program cannot be ptraced, which LeakSanitizer needs
        # at exit: a sanitizer build of it fails for that reason alone.
        # The normal build runs these tests.
        with open(SENDMAIL, "rb") as f:
            if b"__asan_init" in f.read():
                self.skipTest("setgid programs do not run under the "
                              "sanitizers")
        bindir = self.path("bin")
        os.makedirs(bindir, exist_ok=True)
        os.chmod(bindir, 0o755)
        copy = os.path.join(bindir, "sendmail")
        shutil.copy(SENDMAIL, copy)
        os.chown(copy, 0, DROP_GID)
        os.chmod(copy, 0o2755)
        return copy

    def as_user(self, user, argv, data=b""):
        return subprocess.run(
            ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
             "--clear-groups", "--"] + argv, input=data,
            capture_output=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "HOME": "/", "LANG": "C"})

    def box(self, user, domain="example.com"):
        return self.path("mail", domain, user)

    def queued_envelopes(self):
        qdir = os.path.join(self.spool_dir, "queue")
        out = []
        for n in sorted(os.listdir(qdir)):
            raw = read_bytes(os.path.join(qdir, n))
            out.append(raw.split(b"\n\n", 1)[0].decode())
        return out

    def test_root_t_into_maildir_with_bcc_stripped(self):
        self.setup_local()
        p = run(["-C", self.qconf, "-t", "-i", "-N", "success,failure",
                 "-R", "hdrs", "-V", "env 1"], data=MSG)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.deliver()
        for user in ("bob", "carol", "dave", "eve", "frank"):
            files = wait_for(lambda: maildir_files(self.box(user)))
            self.assertEqual(len(files), 1, user)
        raw = read_bytes(maildir_files(self.box("eve"))[0])
        self.assertNotIn(b"Bcc", raw)
        self.assertIn(b"from userid 0", raw)
        self.assertEqual(os.listdir(os.path.join(self.spool_dir,
                                                 "maildrop")), [])

    def test_cron_argument_list(self):
        self.setup_local()
        p = run(["-C", self.qconf, "-FCronDaemon", "-i", "-B8BITMIME",
                 "-oem", "root"],
                data=("Content-Type: text/plain; charset=UTF-8\n"
                      "Subject: Cron <root@host> run-parts\n\n"
                      "caf\u00e9\n").encode())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.deliver()
        files = wait_for(lambda: maildir_files(self.box("root")))
        raw = read_bytes(files[0])
        self.assertIn(b'From: "CronDaemon" <root@example.com>', raw)
        self.assertIn("caf\u00e9".encode(), raw)

    def test_envelope_keeps_dsn_and_user(self):
        self.setup_local()
        # No runner: pick up with one pass, but let nothing be delivered
        # by routing nowhere first -- here the envelope is read before.
        p = run(["-C", self.qconf, "-N", "success", "-R", "hdrs",
                 "-V", "env 1", "-f", "ops@example.com", "bob@example.com"],
                data=b"Subject: x\n\nx\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        drop = os.path.join(self.spool_dir, "maildrop")
        names = os.listdir(drop)
        self.assertEqual(len(names), 1)
        raw = read_bytes(os.path.join(drop, names[0]))
        self.assertIn(b"rcpt <bob@example.com> notify=SUCCESS\n", raw)
        self.assertIn(b"ret HDRS\n", raw)
        self.assertIn(b"envid env+201\n", raw)
        self.assertIn(b"from <ops@example.com>\n", raw)

    def test_unprivileged_user_submits_and_cannot_read_others(self):
        self.setup_local()
        copy = self.setgid_copy()
        p = self.as_user(NOBODY, [copy, "-C", self.qconf, "-t", "-i"],
                         data=b"To: bob@defer.test\nSubject: secret\n\n"
                              b"nobody's secret\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        drop = os.path.join(self.spool_dir, "maildrop")
        names = os.listdir(drop)
        self.assertEqual(len(names), 1)
        path = os.path.join(drop, names[0])
        st = os.stat(path)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)),
                         (NOBODY, 0o640))
        # Another user can neither read nor remove it, nor list maildrop/.
        for argv in (["cat", path], ["rm", "-f", path], ["ls", drop]):
            r = self.as_user(DAEMON, argv)
            self.assertNotEqual(r.returncode, 0, argv)
        self.assertTrue(os.path.exists(path))
        # Picked up as nobody's; its relay is down, so it stays queued.
        self.smtpq("run", "-o")
        self.assertEqual(os.listdir(drop), [])
        envs = self.queued_envelopes()
        self.assertEqual(len(envs), 1)
        self.assertIn("\nuser nobody\n", envs[0] + "\n")
        self.assertIn("from <nobody@example.com>", envs[0])
        qfile = os.path.join(self.spool_dir, "queue",
                             envs[0].split("\nid ")[1].split("\n")[0])
        for user in (DAEMON, NOBODY):
            r = self.as_user(user, ["cat", qfile])
            self.assertNotEqual(r.returncode, 0)
            self.assertNotIn(b"secret", r.stdout)
        # mailq: nobody sees the message, daemon does not.
        mine = self.as_user(NOBODY, [copy, "-C", self.qconf, "-bp"])
        self.assertEqual(mine.returncode, 0, mine.stderr)
        self.assertIn(b"<bob@defer.test>", mine.stdout)
        other = self.as_user(DAEMON, [copy, "-C", self.qconf, "-bp"])
        self.assertEqual(other.returncode, 0, other.stderr)
        self.assertNotIn(b"bob@defer.test", other.stdout)
        self.assertIn(b"no messages of daemon", other.stdout)
        # root sees everything, through smtpq list.
        root = run(["-C", self.qconf, "-bp"])
        self.assertIn(b"<bob@defer.test>", root.stdout)
        # A user may not flush the queue.
        r = self.as_user(NOBODY, [copy, "-C", self.qconf, "-q"])
        self.assertEqual(r.returncode, EX_NOPERM, r.stderr)

    def test_user_config_does_not_keep_the_group(self):
        self.setup_local()
        copy = self.setgid_copy()
        own = self.path("own.conf")
        shutil.copy(self.qconf, own)
        os.chown(own, NOBODY, NOBODY)
        p = self.as_user(NOBODY, [copy, "-C", own, "bob@example.com"],
                         data=b"Subject: x\n\nx\n")
        self.assertEqual(p.returncode, EX_NOPERM, p.stderr)
        self.assertEqual(os.listdir(os.path.join(self.spool_dir,
                                                 "maildrop")), [])

    def test_forged_sender_refused_or_rewritten(self):
        self.setup_local()
        copy = self.setgid_copy()
        p = self.as_user(NOBODY, [copy, "-C", self.qconf, "-f",
                                    "ceo@example.com", "bob@example.com"],
                         data=b"Subject: forged\n\nx\n")
        self.assertEqual(p.returncode, EX_NOPERM, p.stderr)
        self.assertIn(b"may not send as <ceo@example.com>", p.stderr)
        self.assertEqual(os.listdir(os.path.join(self.spool_dir,
                                                 "maildrop")), [])
        # Rewritten when the config says so.
        text = open(self.qconf).read().replace(
            'sendmail = { domain = "example.com";  };',
            'sendmail = { domain = "example.com"; '
            'sender_mismatch = "rewrite"; };')
        with open(self.qconf, "w") as f:
            f.write(text)
        p = self.as_user(NOBODY, [copy, "-C", self.qconf, "-f",
                                    "ceo@example.com", "bob@example.com"],
                         data=b"Subject: forged\n\nx\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.deliver()
        raw = read_bytes(wait_for(lambda: maildir_files(self.box("bob")))[0])
        self.assertIn(b"Return-Path: <nobody@example.com>", raw)

    def test_bs_session_with_swaks(self):
        self.setup_local()
        p = subprocess.run(
            ["swaks", "--pipe", "%s -C %s -bs" % (SENDMAIL, self.qconf),
             "--from", "root@example.com", "--to", "bob@example.com",
             "--header", "Subject: via -bs"],
            capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.deliver()
        raw = read_bytes(wait_for(lambda: maildir_files(self.box("bob")))[0])
        self.assertIn(b"Subject: via -bs", raw)

    def test_bp_and_bi(self):
        self.setup_local('trusted = [ "root" ];')
        p = run(["-C", self.qconf, "bob@nowhere.invalid"],
                data=b"Subject: q\n\nq\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run(["-C", self.qconf, "-bi"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"nothing to rebuild", p.stdout)
        p = run(["-C", self.qconf, "-bp"])
        self.assertEqual(p.returncode, 0, p.stderr)
