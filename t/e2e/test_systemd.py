"""smtpd under systemd and inetd: readiness through NOTIFY_SOCKET (a
datagram socket the test binds, path and abstract name), socket
activation with systemd-socket-activate in both modes (the daemon taking
the passed sockets with the settings of the matching listener, and one
stdio session per connection), and the units and inetd line the build
makes."""
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import time
import unittest

import certs
from certs import HOSTNAME, PLAIN_PASS, PLAIN_USER, TlsAuthCase
from harness import (BUILDDIR, SMTPD, Conn, free_port, spool_config,
                     wait_port)

ACTIVATE = shutil.which("systemd-socket-activate")
MSG = (b"From: alice@example.org\r\nTo: postmaster@%s\r\n"
       b"Subject: activated\r\n\r\nbody\r\n" % HOSTNAME.encode())


def need_activate(f):
    return unittest.skipUnless(ACTIVATE, "systemd-socket-activate not "
                               "installed (Debian package systemd)")(f)


class Notifications:
    """A datagram socket standing in for systemd's notification socket."""

    def __init__(self, workdir, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "smtpd-test-%d-%d" % (os.getpid(), time.time_ns())
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            path = os.path.join(workdir, "notify")
            self.sock.bind(path)
            self.env = path

    def next(self, timeout=15):
        """The next message, as a list of lines; None on timeout."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode().split("\n")
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()


class Notify(TlsAuthCase):
    def run_daemon(self, abstract):
        n = Notifications(self.workdir, abstract)
        self.addCleanup(n.close)
        d = self.smtpd(start=False)
        env = dict(os.environ, NOTIFY_SOCKET=n.env)
        log = open(d.logfile, "ab")
        self.addCleanup(log.close)
        p = subprocess.Popen([SMTPD, "-d", "-C", d.conf], env=env,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        msg = n.next()
        self.assertEqual(msg, ["READY=1"], d.logtext())
        # Ready means listening: the port takes a connection at once.
        c = Conn(d.host, d.port)
        self.assertEqual(c.reply()[0], 220)
        c.close()
        p.send_signal(signal.SIGHUP)
        msg = n.next()
        self.assertIsNotNone(msg, d.logtext())
        self.assertEqual(msg[0], "RELOADING=1")
        self.assertRegex(msg[1], r"^MONOTONIC_USEC=\d+$")
        self.assertEqual(n.next(), ["READY=1"])
        self.assertIn("reloaded", d.logtext())
        p.send_signal(signal.SIGTERM)
        self.assertEqual(n.next(), ["STOPPING=1"])
        self.assertEqual(p.wait(30), 0)

    def test_ready_reload_stop(self):
        """NOTIFY_SOCKET a path: READY=1 once the port accepts, RELOADING=1
        (with MONOTONIC_USEC) then READY=1 on SIGHUP, STOPPING=1 on
        SIGTERM, exit 0."""
        self.run_daemon(abstract=False)

    def test_abstract_socket(self):
        """NOTIFY_SOCKET "@name": the abstract namespace."""
        self.run_daemon(abstract=True)

    def test_failed_reload_is_ready_again(self):
        """A reload that fails to load still ends with READY=1."""
        n = Notifications(self.workdir)
        self.addCleanup(n.close)
        d = self.smtpd(start=False)
        env = dict(os.environ, NOTIFY_SOCKET=n.env)
        log = open(d.logfile, "ab")
        self.addCleanup(log.close)
        p = subprocess.Popen([SMTPD, "-d", "-C", d.conf], env=env,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        self.assertEqual(n.next(), ["READY=1"], d.logtext())
        with open(d.conf, "a") as f:
            f.write("this is not libconfig\n")
        p.send_signal(signal.SIGHUP)
        self.assertEqual(n.next()[0], "RELOADING=1")
        self.assertEqual(n.next(), ["READY=1"])
        self.assertIn("reload failed", d.logtext())
        p.send_signal(signal.SIGTERM)
        self.assertEqual(n.next(), ["STOPPING=1"])
        self.assertEqual(p.wait(30), 0)


class Activation(TlsAuthCase):
    def activate(self, args, conf, env_extra=None):
        log = open(os.path.join(self.workdir, "smtpd.log"), "ab")
        self.addCleanup(log.close)
        p = subprocess.Popen([ACTIVATE] + args + [SMTPD, "-d", "-C", conf],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)

        def stop():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.addCleanup(stop)
        return p

    def logtext(self):
        with open(os.path.join(self.workdir, "smtpd.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def conf(self, text):
        pair = self.certs["server"]
        return spool_config(self.workdir, extra=(
            'queue = { runner = false; };\n'
            'tls = { certificate = "%s"; key = "%s"; };\n'
            'auth = { secrets = "%s"; };\n%s' % (
                pair.cert, pair.key, self.write_secrets(), text)))

    @need_activate
    def test_daemon_without_listen(self):
        """Accept=no, no listen in the config: the daemon serves the passed
        socket (not one stdio session) -- several connections in turn."""
        port = free_port()
        conf, spool = self.conf("")
        p = self.activate(["-l", "127.0.0.1:%d" % port], conf)
        self.assertTrue(wait_port("127.0.0.1", port))
        for i in range(3):
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                s.sendmail("alice@example.org", ["postmaster@" + HOSTNAME],
                           MSG)
        self.assertIsNone(p.poll())
        self.assertIn("(from systemd)", self.logtext())
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0)
        self.assertEqual(len(os.listdir(os.path.join(spool, "queue"))), 3)

    @need_activate
    def test_settings_by_address(self):
        """The passed socket takes the settings of the listen entry with
        its address (AUTH required: 530); the other entry is opened by
        smtpd itself."""
        port, other = free_port(), free_port()
        conf, _ = self.conf(
            'listen = ( { address = "127.0.0.1:%d"; auth = "required"; },'
            ' "127.0.0.1:%d" );' % (port, other))
        self.activate(["-l", "127.0.0.1:%d" % port], conf)
        self.assertTrue(wait_port("127.0.0.1", port))
        c = self.track(Conn("127.0.0.1", port))
        self.assertEqual(c.reply()[0], 220)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 530, "5.7.0")
        self.assertTrue(wait_port("127.0.0.1", other))
        c = self.track(Conn("127.0.0.1", other))
        self.assertEqual(c.reply()[0], 220)
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250)

    @need_activate
    def test_settings_by_name(self):
        """--fdname=submission: the socket takes the settings of the
        listener named "submission" whatever its address (here implicit
        TLS with AUTH required, checked with smtplib.SMTP_SSL)."""
        port = free_port()
        conf, _ = self.conf(
            'listen = ( { address = "127.0.0.1:%d"; name = "submission";'
            ' tls = "implicit"; auth = "required"; } );' % free_port())
        self.activate(["-l", "127.0.0.1:%d" % port, "--fdname=submission"],
                      conf)
        self.assertTrue(wait_port("127.0.0.1", port))
        with smtplib.SMTP_SSL("127.0.0.1", port, context=self.client_ctx(),
                              timeout=10) as s:
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                s.sendmail("alice@example.org", ["bob@elsewhere.example"],
                           MSG)
            self.assertEqual(cm.exception.smtp_code, 530)
            s.rset()
            s.login(PLAIN_USER, PLAIN_PASS)
            s.sendmail("alice@example.org", ["bob@elsewhere.example"], MSG)
        self.assertIn("name=submission", self.logtext())

    @need_activate
    def test_inetd_accept_yes(self):
        """--inetd -a: one smtpd -i per connection, on the connection as
        stdin/stdout; two connections, two processes, two messages."""
        port = free_port()
        conf, spool = self.conf('listen = "127.0.0.1:%d";' % free_port())
        log = open(os.path.join(self.workdir, "smtpd.log"), "ab")
        self.addCleanup(log.close)
        p = subprocess.Popen([ACTIVATE, "--inetd", "-a", "-l",
                              "127.0.0.1:%d" % port, SMTPD, "-i", "-C", conf],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.addCleanup(lambda: (p.poll() is None and p.terminate(),
                                 p.wait(10)))
        self.assertTrue(wait_port("127.0.0.1", port))
        for i in range(2):
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                code, msg = s.ehlo()
                self.assertEqual(code, 250)
                self.assertIn(b"STARTTLS", msg)
                s.sendmail("alice@example.org", ["postmaster@" + HOSTNAME],
                           MSG)
        qdir = os.path.join(spool, "queue")
        deadline = time.time() + 10
        while len(os.listdir(qdir)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(os.listdir(qdir)), 2)


class Units(unittest.TestCase):
    def read(self, name):
        with open(os.path.join(BUILDDIR, name)) as f:
            return f.read()

    def test_units_name_the_installed_paths(self):
        """The build makes the units and the inetd line from their .in
        files with the configured paths, none left as a placeholder."""
        svc = self.read("etc/systemd/smtpd.service")
        self.assertIn("Type=notify", svc)
        self.assertRegex(svc, r"ExecStart=/\S+/sbin/smtpd -C /\S+/smtpd.conf")
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", svc)
        self.assertIn("Accept=no", self.read("etc/systemd/smtpd.socket"))
        self.assertIn("Accept=yes",
                      self.read("etc/systemd/smtpd-stdio.socket"))
        self.assertRegex(self.read("etc/systemd/smtpd-stdio@.service"),
                         r"ExecStart=/\S+/sbin/smtpd -i -C /\S+/smtpd.conf")
        self.assertRegex(self.read("etc/inetd.conf"),
                         r"(?m)^smtp\tstream\ttcp\tnowait\troot\t/\S+/sbin/"
                         r"smtpd\tsmtpd -i -C /\S+/smtpd.conf$")
        for name in ("etc/systemd/smtpd.service", "etc/systemd/smtpd.socket",
                     "etc/systemd/smtpd-stdio.socket",
                     "etc/systemd/smtpd-stdio@.service", "etc/inetd.conf"):
            self.assertNotRegex(self.read(name), r"@[a-z]+@", name)
