"""Reading smtpd.conf (smtpd.conf(5), DESCRIPTION): units for every time
and size setting, errors named as file:line however deep the setting, one
host-name default for smtpd and smtpq, and SIGHUP taking a new secrets
file for new sessions."""
import email
import email.policy
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time

from certs import PLAIN_PASS, PLAIN_USER, TlsAuthCase
from harness import (SMTPD, SMTPD_WRAPPER, PolicyCase, Smtpd, free_port,
                     wait_port)
from qharness import SMTPQ

EX_CONFIG = 78


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class Units(PolicyCase):
    """Durations with s/m/h/d/w and sizes with k/m/g in settings that took
    bare seconds and bytes only; bare numbers keep their meaning."""

    def check(self, conf):
        return subprocess.run([SMTPD, "-t", "-C", conf],
                              capture_output=True, text=True, timeout=20)

    def test_units_printed(self):
        """smtpd -t shows "5m", "2h", "10m" and "64k" as seconds and
        bytes, in limits, greylist, tls and auth.throttle alike."""
        spool = os.path.join(self.workdir, "spool")
        conf = write(os.path.join(self.workdir, "smtpd.conf"),
                     'spool = "%s";\n'
                     'limits = { command_timeout = "5m"; data_timeout = 90;\n'
                     '  data_deadline = "2h"; message_size = "10m";\n'
                     '  header_size = "64k"; dump_max_age = "1d"; };\n'
                     'greylist = { delay = "2m"; retry = "1h"; expire = "1w";'
                     ' file = "%s/grey"; };\n'
                     'queue = { bounce_size = "1m"; retry_min = "10m"; };\n'
                     % (spool, spool))
        p = self.check(conf)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        for want in ("timeouts: 300 s per command, 90 s for message data, "
                     "30 s to finish sessions at shutdown",
                     "deadlines: 300 s for a whole command line, 7200 s for "
                     "a whole message transfer",
                     "largest message: 10485760 bytes",
                     "header examined: up to 65536 bytes"):
            self.assertIn(want, lines)
        self.assertTrue(any(l.startswith("greylisting: on, retry after "
                                         "120 s within 3600 s, remembered "
                                         "604800 s") for l in lines), lines)
        self.assertRegex(p.stdout, r"kept 86400 s")

    def test_units_in_a_running_smtpd(self):
        """message_size = "1k" is advertised as SIZE 1024 and enforced;
        command_timeout = "2s" closes an idle session with 421."""
        d = self.smtpd(limits={"message_size": '"1k"',
                               "command_timeout": '"2s"'})
        with smtplib.SMTP(d.host, d.port, timeout=10) as c:
            code, _ = c.ehlo("client.example.org")
            self.assertEqual(code, 250)
            self.assertEqual(c.esmtp_features.get("size"), "1024")
            code, msg = c.mail("a@example.org", ["SIZE=2000"])
            self.assertEqual(code, 552, msg)
        with socket.create_connection((d.host, d.port), timeout=10) as s:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"220 "))
            start = time.monotonic()
            line = f.readline()
            self.assertTrue(line.startswith(b"421 "), line)
            self.assertLess(time.monotonic() - start, 9)

    def test_bad_unit_named(self):
        """A value with a unknown unit is refused naming its line."""
        conf = write(os.path.join(self.workdir, "bad.conf"),
                     'limits = {\n  command_timeout = "5 minutes";\n};\n')
        p = self.check(conf)
        self.assertEqual(p.returncode, EX_CONFIG, p.stdout + p.stderr)
        self.assertIn("%s:2: command_timeout" % conf, p.stderr)
        self.assertIn("not a duration", p.stderr)


class EmptyLists(PolicyCase):
    """An empty list where one meant "none" before the shared reader still
    means none: proxy.trusted, proxy.listen, sendmail.trusted."""

    def test_empty_lists_accepted(self):
        conf = write(os.path.join(self.workdir, "smtpd.conf"),
                     'spool = "%s/spool";\n'
                     'proxy = { trusted = [ ]; listen = [ ]; };\n'
                     'sendmail = { trusted = [ ]; admins = [ ]; };\n'
                     % self.workdir)
        p = subprocess.run([SMTPD, "-t", "-C", conf], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        sendmail = os.path.join(os.path.dirname(SMTPD), "sendmail")
        p = subprocess.run([sendmail, "-C", conf, "-bp"],
                           capture_output=True, text=True, timeout=20,
                           input="")
        self.assertNotEqual(p.returncode, EX_CONFIG, p.stderr)


class DeepErrors(PolicyCase):
    """An error deep in a section (a route's list element, a milter, a
    policy service, a listener's auth group, auth { }, sendmail { }) is
    named by its own file:line, by smtpd -t and smtpq check alike: both
    compile the whole file through one loader, so neither runs on a file
    the other refuses."""

    CASES = [
        ("route domain list element",
         'routes = (\n  { action = "relay";\n    domain = [\n'
         '      "a.example",\n      "not a domain"\n    ];\n  }\n);\n',
         5, "not a domain"),
        ("route duration",
         'routes = (\n  { domain = "a.example"; action = "pipe";\n'
         '    command = [ "/bin/cat" ];\n    timeout = "1y";\n  }\n);\n',
         4, "timeout"),
        ("milter timeout",
         'milters = (\n  { address = "inet:127.0.0.1:1";\n'
         '    timeout = "2h"; }\n);\n', 3, "timeout"),
        ("policy service",
         'policy_services = (\n  {\n    address = "inet:127.0.0.1:1";\n'
         '    max_idle = "soon";\n  }\n);\n', 4, "max_idle"),
        ("listener auth",
         'listen = (\n  { address = "127.0.0.1:2525";\n'
         '    auth = {\n      required = "yes";\n    };\n  }\n);\n',
         4, "required"),
        ("proxy timeout",
         'proxy = {\n  trusted = [ "127.0.0.1" ];\n  timeout = "2m";\n};\n',
         3, "timeout"),
        ("queue size",
         'queue = {\n  runner = false;\n  bounce_size = "1g";\n};\n',
         3, "bounce_size"),
        ("auth throttle",
         'auth = {\n  throttle = {\n    window = "forever";\n  };\n};\n',
         3, "window"),
        ("unknown top-level key",
         'hostname = "mx.example.org";\nrelay_host = "x";\n',
         2, "relay_host"),
        ("limits",
         'limits = {\n  sessions = "many";\n};\n', 2, "sessions"),
    ]

    def test_file_line(self):
        for what, text, line, words in self.CASES:
            with self.subTest(what=what):
                conf = write(os.path.join(self.workdir, "bad.conf"),
                             'spool = "%s/spool";\n' % self.workdir + text)
                for argv in ([SMTPD, "-t", "-C", conf],
                             [SMTPQ, "-C", conf, "check"],
                             [SMTPQ, "-C", conf, "list"]):
                    p = subprocess.run(argv, capture_output=True, text=True,
                                       timeout=20)
                    self.assertEqual(p.returncode, EX_CONFIG,
                                     "%s: %s" % (argv[0], p.stderr))
                    self.assertIn("%s:%d: " % (conf, line + 1), p.stderr)
                    self.assertIn(words, p.stderr)

    def test_sendmail_group(self):
        """sendmail { } errors name their line too (sendmail(8) reads the
        group)."""
        sendmail = os.path.join(os.path.dirname(SMTPD), "sendmail")
        conf = write(os.path.join(self.workdir, "bad.conf"),
                     'spool = "%s/spool";\nsendmail = {\n'
                     '  max_message_size = "1t";\n};\n' % self.workdir)
        p = subprocess.run([sendmail, "-C", conf, "-bp"],
                           capture_output=True, text=True, timeout=20,
                           input="")
        self.assertEqual(p.returncode, EX_CONFIG, p.stdout + p.stderr)
        self.assertIn("%s:3: " % conf, p.stderr)
        self.assertIn("max_message_size", p.stderr)


class NsSmtpd(Smtpd):
    """smtpd in a UTS and mount namespace of its own whose host name is
    "short" and whose /etc/hosts makes short.canon.example its canonical
    name; the network is the host's, so the port is reachable."""

    def __init__(self, workdir, hosts, **kw):
        super().__init__(workdir, **kw)
        self.hosts = hosts

    def start(self):
        self.log = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            ["unshare", "-mu", "--propagation", "private", "sh", "-c",
             'mount --bind "$1" /etc/hosts && hostname short && shift && '
             'exec "$@"', "sh", self.hosts] + SMTPD_WRAPPER +
            [SMTPD, "-d", "-C", self.conf],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        if not wait_port(self.host, self.port, 20):
            self.stop()
            raise RuntimeError("smtpd did not start:\n" + self.logtext())
        return self


class HostName(PolicyCase):
    """Without hostname in the file, smtpd's EHLO and smtpq's DSNs name the
    same host: the canonical DNS name of the system's host name."""

    def test_ehlo_and_dsn_agree(self):
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            self.skipTest("needs root and unshare for a host name of its own")
        hosts = write(os.path.join(self.workdir, "hosts"),
                      "127.0.0.1 localhost\n"
                      "127.0.0.1 short.canon.example short\n")
        mail = os.path.join(self.workdir, "mail")
        d = NsSmtpd(self.workdir, hosts, config_extra=(
            'ournets = [ "127.0.0.0/8" ];\n'
            'routes = (\n'
            '  { domain = "fail.example"; action = "pipe"; catchall = true;'
            ' command = [ "/bin/false" ]; },\n'
            '  { domain = "example.org"; action = "maildir"; catchall = true;'
            ' path = "%s/%%d/%%u"; create = true; }\n);\n' % mail))
        # No hostname: the default is what is compared.
        with open(d.conf) as f:
            text = f.read()
        write(d.conf, re.sub(r'(?m)^hostname = .*\n', "", text))
        self._daemons.append(d)
        d.start()
        with smtplib.SMTP(d.host, d.port, timeout=10) as c:
            code, msg = c.ehlo("client.example.org")
            self.assertEqual(code, 250)
            ehlo_name = msg.split(b"\n")[0].split()[0].decode()
            c.sendmail("alice@example.org", ["bob@fail.example"],
                       b"Subject: x\r\n\r\nbody\r\n")
        self.assertEqual(ehlo_name, "short.canon.example")
        self.assertTrue(d.settle())
        p = subprocess.run(
            ["unshare", "-mu", "--propagation", "private", "sh", "-c",
             'mount --bind "$1" /etc/hosts && hostname short && shift && '
             'exec "$@"', "sh", hosts, SMTPQ, "-d", "-C", d.conf, "run",
             "-o"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        new = os.path.join(mail, "example.org", "alice", "new")
        files = os.listdir(new) if os.path.isdir(new) else []
        self.assertEqual(len(files), 1, p.stderr + d.logtext())
        with open(os.path.join(new, files[0]), "rb") as f:
            msg = email.message_from_bytes(f.read(),
                                           policy=email.policy.default)
        report = [part for part in msg.walk()
                  if part.get_content_type() == "message/delivery-status"]
        self.assertEqual(len(report), 1)
        self.assertIn("Reporting-MTA: dns; %s" % ehlo_name,
                      report[0].as_string())
        self.assertIn("MAILER-DAEMON@%s" % ehlo_name, msg["From"])


class SecretsReload(TlsAuthCase):
    """SIGHUP with auth.secrets naming another file: sessions opened after
    the reload check passwords against it; the old passwords fail there."""

    def switch_secrets(self, d):
        newer = self.write_secrets(["%s:{PLAIN}After-Hup-77" % PLAIN_USER],
                                   name="secrets2")
        with open(d.conf) as f:
            text = f.read()
        write(d.conf, text.replace(os.path.join(self.workdir, "secrets"),
                                   newer))
        d.proc.send_signal(signal.SIGHUP)
        self.wait_log(d, "reloaded")

    def test_sighup_new_secrets_file(self):
        d = self.server()
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        self.switch_secrets(d)
        c2 = self.tls_client(d)
        self.assertReply(self.auth_plain(c2), 535, "5.7.8")
        self.assertReply(self.auth_plain(c2, password="After-Hup-77"), 235,
                         "2.7.0")
