"""The policy configuration: smtpd -t, errors named as file:line, and
SIGHUP reloads (new sessions get the new policy, running sessions keep
theirs, a broken file keeps the old one, nothing is lost under load)."""
import os
import re
import signal
import smtplib
import subprocess
import threading
import time
import unittest

import certs
from harness import (SMTPD, BoundConn, PolicyCase, UNTRUSTED_ADDR,
                     free_port, spool_config, wait_port)
from qharness import SMTPQ

EX_CONFIG = 78


class ConfigCheck(PolicyCase):
    """smtpd -t prints the effective policy and exits 0, or 78 with
    "file:line: message" for the line at fault."""

    def write(self, text, name="smtpd.conf"):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def check(self, path, *args):
        return subprocess.run([SMTPD, "-t", "-C", path] + list(args),
                              capture_output=True, text=True, timeout=20)

    GOOD = r'''hostname = "mx.ours.example";
spool = "%(spool)s";
ournets = [ "127.0.0.1/32", "2001:db8::/32" ];
ourdomains = [ "ours.example", "*.corp.example" ];
norelay = true;
helo_checks = true;
access = [ "deny 203.0.113.5", "block *.spam.example!*" ];
greylist = { delay = 2; file = "%(spool)s/grey"; };
rules = ( { sender = "@bad\\.example$"; action = "reject"; text = "Go away"; } );
limits = { messages_per_minute = 7; connections_per_minute = 9;
           tarpit_after = 2; tarpit_delay = 300; dump_size = 5000; };
'''

    def test_prints_policy(self):
        """Trusted networks, our domains, tagging, access rules, HELO
        checks, greylisting, rules and limits are printed; exit 0."""
        spool = os.path.join(self.workdir, "spool")
        path = self.write(self.GOOD % {"spool": spool})
        p = self.check(path)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        for want in (
                "hostname: mx.ours.example",
                "trusted network (ournets): 127.0.0.1/32",
                "trusted network (ournets): 2001:db8::/32",
                "our domain (ourdomains): ours.example",
                "our domain (ourdomains): *.corp.example",
                "spoofed-domain tagging (norelay, -f): on",
                "sender domain must exist (verifysenderdom, -r): off",
                "refused messages saved (saveblockedmsg, -s): off",
                "access: deny client 203.0.113.5/32",
                "access: block sender *.spam.example!*",
                "HELO checks: on",
                "messages per client and minute: 7",
                "connections per client and minute: 9",
                "tarpit: 300 ms more per error after 2 errors"):
            self.assertIn(want, lines)
        self.assertTrue(any(re.match(r"greylisting: on, retry after 2 s\b.*"
                                     + re.escape(spool + "/grey"), l)
                            for l in lines), lines)
        self.assertTrue(any(re.match(r"rule \(line 9\): sender matching "
                                     r"/@bad\\\.example\$/: 550 5\.7\.1 "
                                     r"Go away", l) for l in lines), lines)
        self.assertNotIn("dropped at connect", p.stdout)

    def test_flags_override_file(self):
        """-f -r -s -k -h show up in the printed policy."""
        spool = os.path.join(self.workdir, "spool")
        path = self.write('hostname = "mx.ours.example";\nspool = "%s";\n'
                          % spool)
        p = self.check(path, "-f", "-r", "-s", "-k", "192.0.2.7",
                       "-k", "198.51.100.0/24", "-h", "other.example")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        for want in (
                "hostname: other.example",
                "spoofed-domain tagging (norelay, -f): on",
                "sender domain must exist (verifysenderdom, -r): on",
                "refused messages saved (saveblockedmsg, -s): %s/dump" % spool,
                "dropped at connect (block, -k): 192.0.2.7/32",
                "dropped at connect (block, -k): 198.51.100.0/24",
                "trusted network (ournets): 127.0.0.0/8",
                "trusted network (ournets): ::1/128",
                "greylisting: off",
                "HELO checks: off"):
            self.assertIn(want, lines)

    HEAD = 'hostname = "mx.ours.example";\nspool = "/nonexistent/spool";\n'
    # (what, config text after HEAD, line at fault, words in the message)
    BAD = [
        ("unknown key", 'ournets = [ "127.0.0.1" ];\ncolour = "blue";\n',
         4, "colour"),
        ("bad CIDR", 'ournets = [\n  "10.0.0.0/33",\n  "127.0.0.1"\n];\n',
         4, "10.0.0.0/33"),
        # The last entry of a list written one entry a line.
        ("bad last CIDR",
         'ournets = [\n  "127.0.0.1",\n  "10.0.0.0/33"\n];\n', 5,
         "10.0.0.0/33"),
        ("host bits", 'block = [ "192.0.2.1/24" ];\n', 3, "192.0.2.1/24"),
        ("bad regex", 'rules = (\n  { action = "reject";\n'
         '    sender = "([a-z";\n  }\n);\n', 5, "regular expression"),
        ("bad access verb",
         'access = [\n  "allow 127.0.0.2",\n  "smite 192.0.2.4",\n'
         '  "deny 192.0.2.5"\n];\n', 5, "smite"),
        ("sweeping access", 'access = [ "deny *!*" ];\n', 3, "*!*"),
        ("unknown limit", '\nlimits = { sessions = 5; speed = 9; };\n',
         4, "speed"),
        ("wrong type", 'norelay = "yes";\n', 3, "norelay"),
        ("out of range", 'greylist = {\n  delay = 1;\n  retry = 5;\n};\n',
         5, "retry"),
        ("tag on sender", 'rules = (\n  { sender = "x"; action = "tag";'
         ' text = "X-A: b"; }\n);\n', 4, "tag"),
        ("code vs action", 'rules = ( { rcpt = "x"; action = "reject";\n'
         '  code = 450; } );\n', 4, "450"),
        ("bad domain", 'ourdomains = [ "ours.example", "bad domain" ];\n',
         3, "bad domain"),
        ("syntax error", 'ournets = [ "127.0.0.1" ];\nnorelay = = true;\n',
         4, ""),
    ]

    def test_bad_configs_name_the_line(self):
        for what, text, line, words in self.BAD:
            with self.subTest(what=what):
                path = self.write(self.HEAD + text, "bad.conf")
                p = self.check(path)
                self.assertEqual(p.returncode, EX_CONFIG, p.stdout + p.stderr)
                self.assertIn("%s:%d:" % (path, line), p.stderr)
                self.assertIn(words, p.stderr)
                self.assertEqual(p.stdout, "")

    def test_bad_access_file_line(self):
        """A bad line in access_file is named as accessfile:line."""
        acc = self.write("# rules\nallow 192.0.2.1\nsmite 192.0.2.2\n",
                         "access")
        path = self.write(self.HEAD + 'access_file = "%s";\n' % acc)
        p = self.check(path)
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertIn("%s:3:" % acc, p.stderr)
        missing = self.write(self.HEAD + 'access_file = "%s.none";\n' % acc)
        p = self.check(missing)
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertIn("%s:3:" % missing, p.stderr)

    def test_bad_k_flag_and_missing_file(self):
        """-k with a bad address, and a missing -C file: exit 78."""
        path = self.write(self.HEAD)
        p = self.check(path, "-k", "not-an-address")
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertIn("not-an-address", p.stderr)
        p = self.check(path + ".missing")
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertIn(path + ".missing", p.stderr)

    def test_daemon_refuses_bad_config(self):
        """Not only -t: starting the daemon on a bad file exits 78."""
        path = self.write(self.HEAD + 'listen = [ "127.0.0.1:1" ];\n'
                          'colour = "blue";\n')
        p = subprocess.run([SMTPD, "-d", "-C", path], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertIn("%s:4:" % path, p.stderr)


BASE = 'ournets = [ "127.0.0.1/32" ];\n'


def domains(*names):
    return BASE + "ourdomains = [ %s ];\n" % ", ".join('"%s"' % n
                                                      for n in names)


class Reload(PolicyCase):
    """SIGHUP compiles the file again and swaps the policy."""

    def rewrite(self, d, extra, limits=None):
        spool_config(self.workdir, listen=["127.0.0.1:%d" % d.port],
                     extra=extra, limits=limits)

    def hup(self, d, n):
        """Sends SIGHUP; waits for the n-th "reloaded" or "reload failed"
        line; returns the log."""
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            log = d.logtext()
            if log.count("reloaded ") + log.count("reload failed") >= n:
                return log
            time.sleep(0.02)
        self.fail("no reload line after SIGHUP:\n" + d.logtext())

    def test_new_sessions_get_new_policy(self):
        """A domain added to ourdomains is relayable for sessions opened
        after the reload; a session opened before keeps the old policy
        (and can still use a domain the new one dropped)."""
        d = self.smtpd(config_extra=domains("ours.example", "old.example"))
        before = self.client(d)
        self.assertReply(before.cmd("MAIL FROM:<a@other.example>"), 250)
        self.rewrite(d, domains("ours.example", "new.example"))
        log = self.hup(d, 1)
        self.assertIn("reloaded %s" % d.conf, log)
        after = self.client(d)
        self.assertReply(after.cmd("MAIL FROM:<a@other.example>"), 250)
        self.assertReply(after.cmd("RCPT TO:<u@new.example>"), 250, "2.1.5")
        self.assertReply(after.cmd("RCPT TO:<u@old.example>"), 554, "5.7.1")
        self.assertReply(before.cmd("RCPT TO:<u@new.example>"), 554, "5.7.1")
        self.assertReply(before.cmd("RCPT TO:<u@old.example>"), 250, "2.1.5")
        self.queued_id(self.send_data(before, b"Subject: old\r\n\r\nx\r\n.\r\n"))
        self.queued_id(self.send_data(after, b"Subject: new\r\n\r\nx\r\n.\r\n"))
        rcpts = sorted(env["rcpt"][0] for env, _ in self.messages(d))
        self.assertEqual(rcpts, ["<u@new.example>", "<u@old.example>"])

    def test_reload_adds_block(self):
        """A block entry added by a reload drops new connections from that
        address at once, while its open session goes on."""
        d = self.smtpd(config_extra=domains("ours.example"))
        before = self.client(d)
        self.rewrite(d, domains("ours.example") + 'block = [ "127.0.0.9" ];')
        self.hup(d, 1)
        c = self.track(BoundConn(d.host, d.port, UNTRUSTED_ADDR))
        self.assertTrue(c.closed(timeout=5))
        self.assertEqual(c.buf, b"")
        self.assertReply(before.cmd("NOOP"), 250, "2.0.0")
        self.client(d, "127.0.0.10")

    def test_flags_survive_reload(self):
        """-k and -f given on the command line still hold after a reload
        of a file that has neither."""
        d = self.smtpd(config_extra=domains("ours.example"),
                       args=["-k", UNTRUSTED_ADDR, "-f"])
        self.rewrite(d, domains("ours.example", "new.example"))
        self.hup(d, 1)
        c = self.track(BoundConn(d.host, d.port, UNTRUSTED_ADDR))
        self.assertTrue(c.closed(timeout=5))
        c = self.client(d, "127.0.0.10")
        self.start_mail(c, "<boss@ours.example>", ["<u@new.example>"])
        qid = self.queued_id(self.send_data(
            c, b"From: boss@ours.example\r\n\r\nx\r\n.\r\n"))
        self.assertIn(b"X-warning: suspect envelope domain",
                      d.queued()[qid])

    def test_broken_reload_keeps_old_policy(self):
        """A reload of a broken file is logged with file:line and the
        running policy stays; the daemon keeps serving, and a later good
        reload still works."""
        d = self.smtpd(config_extra=domains("ours.example"))
        self.rewrite(d, domains("ours.example", "new.example") +
                     'colour = "blue";')
        log = self.hup(d, 1)
        m = re.search(r"reload failed, keeping the running config: (.*)", log)
        self.assertIsNotNone(m, log)
        self.assertRegex(m.group(1), re.escape(d.conf) + r":\d+: .*colour")
        self.assertIsNone(d.proc.poll())
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<a@other.example>"), 250)
        self.assertReply(c.cmd("RCPT TO:<u@new.example>"), 554, "5.7.1")
        self.assertReply(c.cmd("RCPT TO:<u@ours.example>"), 250, "2.1.5")
        self.rewrite(d, domains("ours.example", "new.example"))
        self.hup(d, 2)
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<a@other.example>"), 250)
        self.assertReply(c.cmd("RCPT TO:<u@new.example>"), 250, "2.1.5")

    def test_reload_under_load_loses_nothing(self):
        """10 threads send 20 messages each (a session per message) while
        5 SIGHUPs swap between two policies: every message is accepted
        and is in the spool."""
        variants = [domains("ours.example", "a.example"),
                    domains("ours.example", "b.example")]
        d = self.smtpd(config_extra=variants[0])
        sent, errors, lock = [], [], threading.Lock()

        def worker(t):
            for i in range(20):
                mid = "t%d-m%d" % (t, i)
                try:
                    with smtplib.SMTP(d.host, d.port, timeout=30,
                                      source_address=(UNTRUSTED_ADDR, 0),
                                      local_hostname="mail.isp.net") as s:
                        refused = s.sendmail(
                            "sender@other.example", ["u@ours.example"],
                            ("Subject: %s\r\nMessage-ID: <%s@test>\r\n\r\n"
                             "load\r\n" % (mid, mid)).encode())
                    if refused:
                        raise RuntimeError(refused)
                    with lock:
                        sent.append(mid)
                except Exception as e:  # noqa: BLE001 - reported below
                    with lock:
                        errors.append("%s: %r" % (mid, e))

        threads = [threading.Thread(target=worker, args=(t,))
                   for t in range(10)]
        for t in threads:
            t.start()
        for n in range(1, 6):
            # Each reload happens while messages are still being sent.
            deadline = time.time() + 30
            while len(sent) + len(errors) < 30 * n and time.time() < deadline:
                time.sleep(0.005)
            self.rewrite(d, variants[n % 2])
            self.hup(d, n)
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(sent), 200)
        log = d.logtext()
        self.assertEqual(log.count("reloaded "), 5, log[-2000:])
        self.assertNotIn("reload failed", log)
        got = set()
        for env, body in self.messages(d):
            m = re.search(rb"^Subject: (t\d+-m\d+)", body, re.M)
            self.assertIsNotNone(m, body[:200])
            got.add(m.group(1).decode())
        self.assertEqual(got, set(sent))
        self.assertEqual(len(self.messages(d)), 200)


class ConfigPaths(PolicyCase):
    """Which file was read is said, and relative paths in it are taken
    from its own directory, wherever the programs are started."""

    def layout(self, port):
        """workdir/etc/smtpd.conf naming ../state, and two other
        directories to start programs in; returns the real workdir."""
        top = os.path.realpath(self.workdir)
        for d in ("etc", "run1", "run2"):
            os.mkdir(os.path.join(top, d))
        with open(os.path.join(top, "etc", "access"), "w") as f:
            f.write("deny 192.0.2.9\n")
        with open(os.path.join(top, "etc", "smtpd.conf"), "w") as f:
            f.write('hostname = "mx.test.example";\n'
                    'listen = [ "127.0.0.1:%d" ];\n'
                    'reverse_lookup = false;\n'
                    'spool = "../state/spool";\n'
                    'dump = "./../state/dump";\n'
                    'access_file = "access";\n'
                    'ourdomains = [ "mx.test.example" ];\n'
                    'routes = ( { domain = "mx.test.example"; '
                    'action = "maildir"; path = "../state/mail/%%u"; } );\n'
                    'queue = { runner = false; };\n' % port)
        return top

    def test_relative_paths_from_the_config_directory(self):
        """smtpd started in one directory with a relative -C and smtpq
        started in others see one spool: etc/../state/spool."""
        port = free_port()
        top = self.layout(port)
        run1, run2 = os.path.join(top, "run1"), os.path.join(top, "run2")
        p = subprocess.run([SMTPD, "-t", "-C", "../etc/smtpd.conf"],
                           cwd=run1, capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertIn("spool: %s/state/spool" % top, lines)
        self.assertIn("access: deny client 192.0.2.9/32", lines)
        self.assertTrue(any(l.startswith("route 1 (line 8): mx.test.example "
                                         "-> maildir %s/state/mail/%%u" % top)
                            for l in lines), lines)
        log = open(os.path.join(top, "smtpd.log"), "ab")
        self.addCleanup(log.close)
        proc = subprocess.Popen([SMTPD, "-d", "-C", "../etc/smtpd.conf"],
                                cwd=run1, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)

        def stop():
            proc.terminate()
            proc.wait(30)
        self.addCleanup(stop)
        self.assertTrue(wait_port("127.0.0.1", port))
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
            c.sendmail("a@example.org", ["b@example.net"],
                       b"Subject: where\r\n\r\nhi\r\n")
        self.assertTrue(os.path.isdir(os.path.join(top, "state", "spool",
                                                   "queue")))
        self.assertFalse(os.path.exists(os.path.join(run1, "state")))
        for cwd, conf in ((os.path.join(top, "etc"), "smtpd.conf"),
                          (run2, "../etc/smtpd.conf"), ("/", top +
                                                        "/etc/smtpd.conf")):
            deadline = time.time() + 10
            while time.time() < deadline:
                q = subprocess.run([SMTPQ, "-C", conf, "list"], cwd=cwd,
                                   capture_output=True, text=True,
                                   timeout=20)
                if "<b@example.net>" in q.stdout:
                    break
                time.sleep(0.05)
            self.assertEqual(q.returncode, 0, q.stderr)
            self.assertIn("<b@example.net>", q.stdout, (cwd, q.stderr))
            q = subprocess.run([SMTPQ, "-C", conf, "check"], cwd=cwd,
                               capture_output=True, text=True, timeout=20)
            self.assertIn("spool: %s/state/spool" % top,
                          q.stdout.splitlines())
        with open(os.path.join(top, "smtpd.log")) as f:
            text = f.read()
        self.assertIn("started: config=../etc/smtpd.conf ", text)
        self.assertIn("spool=%s/state/spool" % top, text)

    def test_config_file_is_named(self):
        """smtpd -t and smtpq check name the file they read."""
        path, spool = spool_config(self.workdir)
        p = subprocess.run([SMTPD, "-t", "-C", path], capture_output=True,
                           text=True, timeout=20)
        self.assertIn("config file: %s" % path, p.stdout.splitlines())
        q = subprocess.run([SMTPQ, "-C", path, "check"], capture_output=True,
                           text=True, timeout=20)
        self.assertIn("config file: %s" % path, q.stdout.splitlines())

    def test_missing_default_config_is_said(self):
        """Without -C and without the default file, smtpd -t and smtpq
        check say that the built-in defaults are used."""
        p = subprocess.run([SMTPD, "-t"], capture_output=True, text=True,
                           timeout=20)
        m = re.search(r"^config file: (.*)$", p.stdout, re.M)
        self.assertIsNotNone(m, p.stdout + p.stderr)
        if not m.group(1).startswith("none ("):
            self.skipTest("the default config exists: " + m.group(1))
        self.assertRegex(m.group(1), r"^none \(/\S+/smtpd\.conf does not "
                         r"exist\); built-in defaults$")
        q = subprocess.run([SMTPQ, "check"], capture_output=True, text=True,
                           timeout=20)
        self.assertIn("config file: " + m.group(1), q.stdout.splitlines())


class ConfigWarnings(PolicyCase):
    """smtpd -t warns on stderr, and still exits 0, about what loads but
    would not work as meant."""

    def check(self, text):
        path = os.path.join(self.workdir, "smtpd.conf")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([SMTPD, "-t", "-C", path], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("config file: %s" % path, p.stdout)
        return [l for l in p.stderr.splitlines() if l]

    def head(self, hostname="mx.ours.example"):
        return ('hostname = "%s";\nspool = "%s";\n'
                % (hostname, os.path.join(self.workdir, "spool")))

    ROUTES = ('routes = (\n'
              '  { domain = [ "ours.example", "*.corp.example" ]; '
              'action = "maildir"; path = "/tmp/none/%u"; },\n'
              '  { domain = "[192.0.2.1]"; action = "maildir"; '
              'path = "/tmp/none/%u"; }\n);\n')

    def test_clean_config_no_warning(self):
        """Every accepted domain routed, an FQDN, a usable spool: no
        warning at all."""
        self.assertEqual(self.check(
            self.head() + 'ourdomains = [ "ours.example", "*.corp.example",'
            ' "*.a.corp.example", "x.corp.example", "[192.0.2.1]" ];\n'
            + self.ROUTES), [])
        # Without routes everything is relayed: every domain is routed.
        self.assertEqual(self.check(
            self.head() + 'ourdomains = [ "other.example" ];\n'), [])

    def test_unrouted_domain(self):
        """An ourdomains entry that no route takes is named, "*.x" with a
        route for x only as well as x with a route for "*.x" only."""
        err = self.check(self.head() + 'ourdomains = [ "ours.example", '
                         '"corp.example", "*.ours.example", '
                         '"other.example", "[192.0.2.2]" ];\n' + self.ROUTES)
        unrouted = [re.search(r"our domain (\S+) is accepted but no route "
                              r"covers it", l) for l in err]
        self.assertTrue(all(unrouted), err)
        self.assertEqual(sorted(m.group(1) for m in unrouted),
                         ["*.ours.example", "[192.0.2.2]", "corp.example",
                          "other.example"])
        self.assertTrue(all(l.startswith("smtpd: warning: ") for l in err))

    def test_short_hostname(self):
        err = self.check(self.head("mx") + 'ourdomains = [ "x.example" ];\n')
        self.assertEqual(len(err), 1, err)
        self.assertIn('hostname "mx" is not a fully-qualified domain name',
                      err[0])

    def test_spool_unusable(self):
        """A spool that is a file, or under a file, is named."""
        plain = os.path.join(self.workdir, "plain")
        with open(plain, "w") as f:
            f.write("x")
        for spool, why in ((plain, "not a directory"),
                           (plain + "/spool/sub", "cannot be created")):
            with self.subTest(spool=spool):
                err = self.check('hostname = "mx.ours.example";\n'
                                 'spool = "%s";\n' % spool)
                self.assertEqual(len(err), 1, err)
                self.assertIn("spool %s: " % spool, err[0])
                self.assertIn(why, err[0])

    def test_same_address_in_listen_and_tls_listen(self):
        if not certs.available():
            self.skipTest("certtool not installed")
        pair = certs.get()["server"]
        err = self.check(self.head() + 'listen = [ "127.0.0.1:2525", '
                         '"[::1]:2526" ];\n'
                         'tls = { certificate = "%s"; key = "%s";\n'
                         '  listen = [ "127.0.0.1:4650", "[::1]:2526" ]; };\n'
                         % (pair.cert, pair.key))
        self.assertEqual(err, ["smtpd: warning: [::1]:2526 is in both listen "
                               "and tls.listen: the second bind fails"])


if __name__ == "__main__":
    unittest.main()
