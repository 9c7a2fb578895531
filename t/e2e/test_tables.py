"""Lookup tables and the recipients they describe: unknown local
recipients refused at RCPT (never a bounce), users, aliases and +tag
subaddresses delivered, text files reloaded while smtpd runs, a
100,000-entry CDB file made by smtpq makemap, a socketmap service written
here (answering, slow, talking nonsense, down), relay_recipients,
sender-dependent smarthosts with their own credentials, and per-user
message and recipient limits."""
import os
import re
import smtplib
import socket
import subprocess
import threading
import time
import unittest

from harness import SMTPD
from qharness import SMTPQ, QueueCase, maildir_files, read_bytes, wait_for

try:
    from clientkit import Aio, Recorder
    HAVE_AIOSMTPD = True
except ImportError:
    HAVE_AIOSMTPD = False

FAST = "retry_min = 1; retry_max = 2; scan_interval = 1;"


class TableCase(QueueCase):
    def box(self, user, domain="example.com"):
        return self.path("mail", domain, user)

    def maildir(self, create="true", extra=""):
        return ('{ domain = "example.com"; action = "maildir"; '
                'path = "%s/%%d/%%u"; create = %s; %s }'
                % (self.path("mail"), create, extra))

    def start(self, routes, extra="", aliases="", queue=FAST):
        self.setup_queue(routes, aliases=aliases, queue=queue,
                         start_smtpd=False)
        with open(self.qconf, "a") as f:
            f.write(extra + "\n")
        p = subprocess.run([SMTPD,
                            "-t", "-C", self.qconf], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.d.start()

    def rcpt(self, rcpt, sender="alice@example.org", login=None):
        """The reply to RCPT TO:<rcpt> as (code, text)."""
        with smtplib.SMTP(self.d.host, self.d.port, timeout=30) as c:
            c.ehlo("client.test")
            if login:
                c.login(*login)
            code, msg = c.mail(sender)
            if code != 250:
                return code, msg.decode()
            code, msg = c.rcpt(rcpt)
            return code, msg.decode()

    def write(self, name, text):
        p = self.path(name)
        with open(p + ".new", "w") as f:
            f.write(text)
        os.replace(p + ".new", p)
        return p


class Recipients(TableCase):
    def test_unknown_local_recipient_refused_at_rcpt(self):
        self.start(self.maildir(), extra='users = [ "alice", "bob" ];')
        code, text = self.rcpt("nobody@example.com")
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith("5.1.1"), text)
        self.assertIn("policy unknown recipient to=<nobody@example.com>",
                      self.d.logtext())
        # Nothing queued, so no DSN can follow; no Maildir was made.
        self.assertEqual(self.queue_ids(), [])
        self.deliver()
        self.assertFalse(os.path.exists(self.box("nobody")))
        self.assertFalse(os.path.exists(self.path("mail", "example.org")))
        self.assertNotIn("queue dsn", self.log())

    def test_user_alias_and_tag_delivered(self):
        self.start(self.maildir(), aliases='{ name = "info"; to = [ "bob" ]; }',
                   extra='users = [ "alice", "bob" ];\n'
                         'recipient_delimiter = "+";')
        for r in ("alice@example.com", "info@example.com",
                  "alice+lists@example.com", "info+x@example.com"):
            self.assertEqual(self.rcpt(r)[0], 250, r)
        self.assertEqual(self.rcpt("carol+x@example.com")[0], 550)
        self.send("sender@example.org", ["alice+lists@example.com",
                                         "info@example.com"])
        self.deliver()
        files = wait_for(lambda: maildir_files(self.box("alice")))
        self.assertEqual(len(files), 1, self.log())
        self.assertIn(b"\nDelivered-To: alice+lists@example.com\n",
                      read_bytes(files[0]))
        files = wait_for(lambda: maildir_files(self.box("bob")))
        self.assertEqual(len(files), 1, self.log())
        self.assertFalse(os.path.exists(self.box("alice+lists")))
        self.assertFalse(os.path.exists(self.box("info")))

    def test_existing_maildir_is_a_user_when_not_created(self):
        self.start(self.maildir(create="false"))
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(self.box("dora"), sub))
        self.assertEqual(self.rcpt("dora@example.com")[0], 250)
        self.assertEqual(self.rcpt("erin@example.com")[0], 550)
        # postmaster is always a recipient (RFC 5321 4.5.1).
        self.assertEqual(self.rcpt("postmaster@example.com")[0], 250)

    def test_catchall_route_takes_anyone(self):
        self.start(self.maildir(extra="catchall = true;"))
        self.send("a@example.org", ["whoever@example.com"])
        self.deliver()
        self.assertEqual(len(wait_for(lambda: maildir_files(
            self.box("whoever")))), 1, self.log())

    def test_relay_recipients(self):
        routes = ('{ domain = "example.net"; action = "relay"; '
                  'host = "127.0.0.1:9"; }')
        self.start(routes, extra='ourdomains = [ "example.net", '
                   '"whole.example" ];\n'
                   'relay_recipients = [ "ok@example.net", '
                   '"@whole.example" ];')
        self.assertEqual(self.rcpt("ok@example.net")[0], 250)
        self.assertEqual(self.rcpt("no@example.net")[0], 550)


class Tables(TableCase):
    def test_text_file_reloaded_while_running(self):
        users = self.write("users", "# people\nalice  Alice A.\n")
        self.start(self.maildir(), extra='users = "file:%s";' % users)
        self.assertEqual(self.rcpt("alice@example.com")[0], 250)
        self.assertEqual(self.rcpt("carol@example.com")[0], 550)
        time.sleep(1.1)
        self.write("users", "alice\ncarol\n")
        self.assertTrue(wait_for(lambda: self.rcpt("carol@example.com")[0]
                                 == 250, 10), self.d.logtext())
        self.assertIn("reloaded: 2 entries", self.d.logtext())
        # A broken file keeps the old contents, logged with file:line.
        time.sleep(1.1)
        self.write("users", "alice\n" + "x" * 6000 + "\n")
        self.assertTrue(wait_for(lambda: self.rcpt("carol@example.com")[0]
                                 == 250 and "users:2: line longer" in
                                 self.d.logtext(), 10), self.d.logtext())
        self.assertEqual(self.rcpt("carol@example.com")[0], 250)

    def test_cdb_file_of_100000_entries(self):
        src = self.path("users")
        with open(src, "w") as f:
            for i in range(100000):
                f.write("user%d@example.com ok\n" % i)
        p = subprocess.run([SMTPQ, "makemap", "-t", "cdb", src],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("100000 entries", p.stdout)
        self.start(self.maildir(), extra='users = "cdb:%s.cdb";' % src)
        self.assertEqual(self.rcpt("USER99999@example.com")[0], 250)
        self.assertEqual(self.rcpt("user0@example.com")[0], 250)
        self.assertEqual(self.rcpt("user100000@example.com")[0], 550)
        # Rebuilt while smtpd runs: the new file is used.
        with open(src, "a") as f:
            f.write("user100000@example.com ok\n")
        time.sleep(1.1)
        p = subprocess.run([SMTPQ, "makemap", src], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(wait_for(lambda: self.rcpt(
            "user100000@example.com")[0] == 250, 10), self.d.logtext())

    def test_makemap_refuses_a_bad_file_whole(self):
        src = self.write("bad", "a 1\nb 2\na 3\n")
        p = subprocess.run([SMTPQ, "makemap", src], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 65, p.stderr)
        self.assertIn("%s:3: \"a\" is listed twice" % src, p.stderr)
        self.assertFalse(os.path.exists(src + ".cdb"))
        self.assertEqual([n for n in os.listdir(self.workdir)
                          if ".cdb" in n], [])
        p = subprocess.run([SMTPQ, "makemap", self.path("missing")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 66, p.stderr)

    def test_bad_table_reference_is_a_config_error(self):
        self.setup_queue(self.maildir(), start_smtpd=False)
        with open(self.qconf, "a") as f:
            f.write('\nusers = "ldap:whatever";\n')
        p = subprocess.run([SMTPD,
                            "-t", "-C", self.qconf], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 78)
        self.assertRegex(p.stderr, r"smtpd\.conf:\d+: .*is not a table")


class SocketmapServer:
    """A socketmap service: answers OK for the users it knows, NOTFOUND
    for others; mode "slow" never answers, "garbage" talks nonsense."""

    def __init__(self, path=None):
        self.users = {"alice"}
        self.mode = "ok"
        self.requests = []
        if path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(path)
            # smtpd started as root looks up from its unprivileged front.
            os.chmod(path, 0o666)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, c):
        c.settimeout(10)
        try:
            data = b""
            while not data.endswith(b","):
                chunk = c.recv(1024)
                if not chunk:
                    return
                data += chunk
            n, rest = data.split(b":", 1)
            name, key = rest[:int(n)].decode().split(" ", 1)
            self.requests.append((name, key))
            if self.mode == "slow":
                self.stop.wait(8)
                return
            if self.mode == "garbage":
                c.sendall(b"999999999:" + b"x" * 100)
                return
            local = key.split("@")[0]
            reply = b"OK yes" if local in self.users else b"NOTFOUND "
            c.sendall(b"%d:%s," % (len(reply), reply))
        finally:
            c.close()

    def close(self):
        self.stop.set()
        self.sock.close()


class Socketmap(TableCase):
    def test_socketmap_answers_and_fails_safe(self):
        path = self.path("sm.sock")
        sm = SocketmapServer(path)
        self.addCleanup(sm.close)
        self.start(self.maildir(), extra='users = "socketmap:unix:%s:users";'
                   % path)
        self.assertEqual(self.rcpt("alice@example.com")[0], 250)
        self.assertIn(("users", "alice@example.com"), sm.requests)
        self.assertEqual(self.rcpt("bob@example.com")[0], 550)
        # Too slow: the lookup gives up after its timeout, never accepts.
        sm.mode = "slow"
        code, text = self.rcpt("alice@example.com")
        self.assertEqual((code, text[:5]), (451, "4.3.0"), text)
        self.assertIn("no reply in time", self.d.logtext())
        # Nonsense: a bounded read, the same default verdict.
        sm.mode = "garbage"
        code, text = self.rcpt("alice@example.com")
        self.assertEqual((code, text[:5]), (451, "4.3.0"), text)
        self.assertIn("malformed reply", self.d.logtext())
        # Down.
        sm.close()
        os.unlink(path)
        code, text = self.rcpt("alice@example.com")
        self.assertEqual(code, 451, text)
        self.assertIn("cannot connect", self.d.logtext())

    def test_socketmap_over_tcp(self):
        sm = SocketmapServer()
        self.addCleanup(sm.close)
        port = sm.sock.getsockname()[1]
        self.start(self.maildir(), extra='users = "socketmap:inet:'
                   '127.0.0.1:%d:virtual";' % port)
        self.assertEqual(self.rcpt("alice@example.com")[0], 250)
        self.assertEqual(self.rcpt("zed@example.com")[0], 550)
        self.assertIn(("virtual", "alice@example.com"), sm.requests)


@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed")
class SenderRoutes(TableCase):
    def test_two_senders_two_smarthosts(self):
        hops = {}
        for name in ("sales", "eng"):
            h = Recorder(users={name: "pw-" + name})
            s = Aio(h, auth_require_tls=False, auth_required=True)
            s.__enter__()
            self.addCleanup(s.__exit__)
            hops[name] = (h, s)
        keys = self.path("relay.keys")
        with open(keys, "w") as f:
            for name in ("sales", "eng"):
                f.write("key proto=pass label=%s user=%s !password=pw-%s\n"
                        % (name, name, name))
        os.chmod(keys, 0o600)
        routes = ('{ domain = "*"; sender = "*@sales.example"; '
                  'action = "relay"; host = "127.0.0.1:%d"; auth = "sales"; },'
                  '{ domain = "*"; action = "relay"; host = "127.0.0.1:%d"; '
                  'auth = "eng"; }'
                  % (hops["sales"][1].port, hops["eng"][1].port))
        self.start(routes, queue=FAST + 'relay_keys = "%s";' % keys)
        self.send("ann@sales.example", ["x@example.net"])
        self.send("bo@eng.example", ["y@example.net"])
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        hs, he = hops["sales"][0], hops["eng"][0]
        self.assertEqual([m["from"] for m in hs.messages],
                         ["ann@sales.example"])
        self.assertEqual([m["from"] for m in he.messages], ["bo@eng.example"])
        self.assertEqual([a[1] for a in hs.auth], ["sales"])
        self.assertEqual([a[1] for a in he.auth], ["eng"])


class VirtualDomains(TableCase):
    def test_domains_from_a_table(self):
        self.write("vdomains", "one.example\ntwo.example\n")
        routes = ('{ domain = "file:vdomains"; action = "maildir"; '
                  'path = "%s/%%d/%%u"; create = true; }' % self.path("mail"))
        self.start(routes, extra='ournets = [ "192.0.2.0/24" ];\n'
                   'ourdomains = [ "file:vdomains" ];\n'
                   'users = [ "ann@one.example", "bo@two.example" ];')
        self.assertEqual(self.rcpt("ann@one.example")[0], 250)
        self.assertEqual(self.rcpt("bo@two.example")[0], 250)
        self.assertEqual(self.rcpt("ann@two.example")[0], 550)
        # Not ours: relaying is refused to an untrusted client.
        self.assertEqual(self.rcpt("ann@three.example")[0], 554)
        self.send("x@example.org", ["ann@one.example"])
        self.deliver()
        self.assertEqual(len(wait_for(lambda: maildir_files(
            self.path("mail", "one.example", "ann")))), 1, self.log())


class SendersTable(TableCase):
    def auth_start(self, senders):
        secrets = self.write("secrets", "ann:{PLAIN}pw-ann\n")
        os.chmod(secrets, 0o600)
        self.start(self.maildir(extra="catchall = true;"),
                   extra='auth = { secrets = "%s"; cleartext = true; '
                         'senders = "%s"; };' % (secrets, senders))

    def mail_as_ann(self, sender):
        with smtplib.SMTP(self.d.host, self.d.port, timeout=30) as c:
            c.ehlo("client.test")
            c.login("ann", "pw-ann")
            code, msg = c.mail(sender)
            return code, msg.decode()

    def test_login_sender_map_in_a_file(self):
        self.write("senders", "ann  ann@example.org, @sales.example\n")
        self.auth_start("file:senders")
        self.assertEqual(self.mail_as_ann("ann@example.org")[0], 250)
        self.assertEqual(self.mail_as_ann("x@Sales.Example")[0], 250)
        code, text = self.mail_as_ann("boss@example.org")
        self.assertEqual((code, text[:5]), (553, "5.7.1"), text)

    def test_login_sender_map_down_defers(self):
        self.auth_start("socketmap:unix:%s:senders" % self.path("none.sock"))
        code, text = self.mail_as_ann("ann@example.org")
        self.assertEqual((code, text[:5]), (451, "4.3.0"), text)
        self.assertIn("auth.senders lookup failed for login ann",
                      self.d.logtext())


class AccessTable(TableCase):
    UNTRUSTED = 'ournets = [ "192.0.2.0/24" ];\n'

    def mail(self, sender):
        with smtplib.SMTP(self.d.host, self.d.port, timeout=30) as c:
            c.ehlo("client.test")
            code, msg = c.mail(sender)
            return code, msg.decode()

    def test_verbs_from_a_file(self):
        self.write("access", "spammer@example.org deny\n"
                             "@bad.example deny\n")
        self.start(self.maildir(extra="catchall = true;"),
                   extra=self.UNTRUSTED + 'access_table = "file:access";')
        self.assertEqual(self.mail("spammer@example.org")[0], 554)
        self.assertEqual(self.mail("x@bad.example")[0], 554)
        self.assertEqual(self.mail("friend@example.org")[0], 250)
        time.sleep(1.1)
        self.write("access", "127.0.0.1 dial\n")
        self.assertTrue(wait_for(lambda: self.mail("friend@example.org")[0]
                                 == 554, 10), self.d.logtext())

    def test_unreadable_access_table_defers(self):
        self.start(self.maildir(extra="catchall = true;"),
                   extra=self.UNTRUSTED + 'access_table = '
                   '"socketmap:unix:%s:access";' % self.path("none.sock"))
        code, text = self.mail("friend@example.org")
        self.assertEqual((code, text[:5]), (451, "4.3.0"), text)
        self.assertIn("policy access table: socketmap:unix:",
                      self.d.logtext())


class UserLimits(TableCase):
    def test_trusted_sender_limits_hit_and_reset(self):
        self.start(self.maildir(extra="catchall = true;"),
                   extra="limits = { user_messages = 2; user_recipients = 3;"
                         " user_window = 2; };")
        with smtplib.SMTP(self.d.host, self.d.port, timeout=10) as c:
            c.ehlo("client.test")
            for i in range(2):
                self.assertEqual(c.mail("ann@example.org")[0], 250)
                c.rset()
            code, msg = c.mail("ann@example.org")
            self.assertEqual((code, msg[:5]), (451, b"4.7.1"), msg)
            # Another sender has its own count.
            self.assertEqual(c.mail("bo@example.org")[0], 250)
            for i in range(3):
                self.assertEqual(c.rcpt("r%d@example.com" % i)[0], 250)
            code, msg = c.rcpt("r9@example.com")
            self.assertEqual((code, msg[:5]), (451, b"4.7.1"), msg)
        self.assertIn("policy user limit sender:ann@example.org "
                      "messages=2/2", self.d.logtext())
        time.sleep(2.5)
        with smtplib.SMTP(self.d.host, self.d.port, timeout=10) as c:
            c.ehlo("client.test")
            self.assertEqual(c.mail("ann@example.org")[0], 250)

    def test_login_limit(self):
        secrets = self.write("secrets", "ann:{PLAIN}pw-ann\n")
        os.chmod(secrets, 0o600)
        self.start(self.maildir(extra="catchall = true;"),
                   extra='auth = { secrets = "%s"; cleartext = true; };\n'
                         "limits = { user_messages = 1; };" % secrets)
        with smtplib.SMTP(self.d.host, self.d.port, timeout=10) as c:
            c.ehlo("client.test")
            c.login("ann", "pw-ann")
            self.assertEqual(c.mail("any@example.org")[0], 250)
            c.rset()
            code, msg = c.mail("other@example.org")
            self.assertEqual((code, msg[:5]), (451, b"4.7.1"), msg)
        self.assertIn("policy user limit login:ann messages=1/1",
                      self.d.logtext())

    def test_login_at_its_limit_in_smtpq_stats(self):
        # A quote and a backslash in the login, for the label escapes.
        secrets = self.write("secrets", 'ann"q\\x:{PLAIN}pw-ann\n')
        os.chmod(secrets, 0o600)
        self.start(self.maildir(extra="catchall = true;"),
                   extra='auth = { secrets = "%s"; cleartext = true; };\n'
                         "limits = { user_messages = 1; user_recipients = 2;"
                         " user_window = 10; };" % secrets)
        with smtplib.SMTP(self.d.host, self.d.port, timeout=10) as c:
            c.ehlo("client.test")
            c.login('ann"q\\x', "pw-ann")
            self.assertEqual(c.mail("any@example.org")[0], 250)
            for i in range(2):
                self.assertEqual(c.rcpt("r%d@example.com" % i)[0], 250)
            c.rset()
            code, msg = c.mail("other@example.org")
            self.assertEqual((code, msg[:5]), (451, b"4.7.1"), msg)
        # The text escapes the backslash as the log does.
        # A window long enough to outlast slow (sanitized) stats runs.
        line = r'login:ann"q\\x5cx +1/1 +2/2 +([1-9]|10)s'
        self.assertTrue(wait_for(lambda: re.search(
            line, self.smtpq("stats").stdout), 10),
            self.smtpq("stats").stdout)
        out = self.smtpq("stats").stdout
        self.assertIn("per-user limits", out)
        prom = self.smtpq("stats", "--prometheus")
        self.assertEqual(prom.returncode, 0, prom.stderr)
        label = '{kind="login",user="ann\\"q\\\\x"}'
        self.assertIn("smtpd_user_messages%s 1\n" % label, prom.stdout)
        self.assertIn("smtpd_user_recipients%s 2\n" % label, prom.stdout)
        self.assertIn("smtpd_user_messages_limit 1\n", prom.stdout)
        self.assertRegex(prom.stdout, r"smtpd_user_window_seconds\{kind="
                         r'"login",user="[^\n]*"\} ([1-9]|10)\n')
        # Once the window has ended the login is gone from both.
        self.assertTrue(wait_for(lambda: "login:ann" not in
                                 self.smtpq("stats").stdout, 20), out)
        self.assertNotIn("smtpd_user_messages{",
                         self.smtpq("stats", "--prometheus").stdout)
        self.assertNotIn("per-user limits", self.smtpq("stats").stdout)
