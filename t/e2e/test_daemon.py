"""How smtpd runs: stdio mode, listeners (IPv4, IPv6, -l, config), session
limits, SIGTERM, and many sessions at once."""
import errno
import glob
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import time
import unittest

from harness import (SMTPD, BoundConn, Conn, ProtoCase, daemon_pids,
                     enhanced, free_port, parse_spool, split_replies,
                     strip_received, wait_port)


def ipv6_ok():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def refused(host, port):
    """True if nothing listens on host:port any more."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam) as s:
        s.settimeout(2)
        try:
            s.connect((host, port))
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
    return False


def wait_refused(host, port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if refused(host, port):
            return True
        time.sleep(0.05)
    return False


SESSION = (b"EHLO client.example.org\r\nMAIL FROM:<a@example.org>\r\n"
           b"RCPT TO:<postmaster@mx.test.example>\r\nDATA\r\n"
           b"Subject: stdio\r\n\r\nvia a pipe\r\n.\r\nQUIT\r\n")


class StdioMode(ProtoCase):
    def check_session(self, d, out, rc):
        self.assertEqual(rc, 0)
        codes = [r[0] for r in split_replies(out)]
        self.assertEqual(codes, [220, 250, 250, 250, 354, 250, 221], out)
        q = d.queued()
        self.assertEqual(len(q), 1)
        env, body = parse_spool(next(iter(q.values())))
        self.assertEqual(env["rcpt"], ["<postmaster@mx.test.example>"])
        self.assertEqual(strip_received(body), b"Subject: stdio\r\n\r\nvia a pipe\r\n")
        return env

    def test_dash_i(self):
        """smtpd -i runs one session on stdin/stdout, queues the message and
        exits 0."""
        d = self.smtpd(start=False, listen=[])
        rc, out, err = d.stdio(SESSION)
        self.check_session(d, out, rc)

    def test_no_listen_address_means_stdio(self):
        """Without -l or listen in the config, smtpd runs one stdio
        session."""
        d = self.smtpd(start=False, listen=[])
        p = subprocess.run([SMTPD, "-d", "-C", d.conf], input=SESSION,
                           capture_output=True, timeout=20)
        self.check_session(d, p.stdout, p.returncode)

    def test_dash_i_wins_over_listen(self):
        """-i gives a stdio session even when the config has listeners, and
        opens no listening socket."""
        d = self.smtpd(start=False)
        box = {}

        def probe():
            time.sleep(0.3)
            box["refused"] = refused(d.host, d.port)

        t = threading.Thread(target=probe)
        proc = subprocess.Popen([SMTPD, "-d", "-i", "-C", d.conf],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        t.start()
        proc.stdin.write(b"EHLO x.example.org\r\n")
        proc.stdin.flush()
        t.join()
        out, _ = proc.communicate(b"QUIT\r\n", timeout=20)
        self.assertEqual([r[0] for r in split_replies(out)], [220, 250, 221], out)
        self.assertTrue(box["refused"], "the config's listen address was opened")
        self.assertEqual(proc.returncode, 0)

    def test_peer_from_tcpremoteip(self):
        """In stdio mode the client address comes from TCPREMOTEIP when
        stdin is not a socket."""
        d = self.smtpd(start=False, listen=[])
        env = dict(os.environ, TCPREMOTEIP="192.0.2.7")
        rc, out, err = d.stdio(SESSION, env=env)
        envl = self.check_session(d, out, rc)
        self.assertEqual(envl["peer"], "192.0.2.7")
        body = next(iter(d.queued().values()))
        self.assertIn(b"[192.0.2.7]", body)

    def test_peer_from_netdir(self):
        """-n netdir: the client address is read from netdir/remote."""
        d = self.smtpd(start=False, listen=[])
        netdir = os.path.join(self.workdir, "net")
        os.makedirs(netdir)
        with open(os.path.join(netdir, "remote"), "w") as f:
            f.write("198.51.100.4!4321\n")
        rc, out, err = d.stdio(SESSION, extra_args=["-n", netdir])
        envl = self.check_session(d, out, rc)
        self.assertEqual(envl["peer"], "198.51.100.4")

    def test_inetd_style_socket(self):
        """Given a connected TCP socket as stdin/stdout (inetd), smtpd talks
        SMTP over it and takes the peer address from the socket."""
        d = self.smtpd(start=False, listen=[])
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        client = Conn("127.0.0.1", lsock.getsockname()[1])
        self.track(client)
        srv, _ = lsock.accept()
        lsock.close()
        proc = subprocess.Popen([SMTPD, "-d", "-i", "-C", d.conf], stdin=srv,
                                stdout=srv, stderr=subprocess.DEVNULL)
        srv.close()
        self.assertEqual(client.reply()[0], 220)
        self.ehlo(client)
        self.start_mail(client)
        qid = self.queued_id(self.send_data(client, b"Subject: inetd\r\n\r\nx\r\n.\r\n"))
        self.assertReply(client.cmd("QUIT"), 221, "2.0.0")
        self.assertEqual(proc.wait(20), 0)
        env, _ = parse_spool(self.spooled(d, qid))
        self.assertEqual(env["peer"], "127.0.0.1")

    def test_stdio_eof_exits_zero(self):
        """A stdio client that just goes away ends the session; exit 0."""
        d = self.smtpd(start=False, listen=[])
        rc, out, err = d.stdio(b"EHLO x.example.org\r\nMAIL FROM:<a@example.org>\r\n")
        self.assertEqual(rc, 0)
        self.assertEqual([r[0] for r in split_replies(out)][:3], [220, 250, 250])
        self.assertEqual(d.queued(), {})


class Listeners(ProtoCase):
    def session(self, host, port, d, rcpt="<bob@example.net>"):
        c = self.track(Conn(host, port))
        self.assertEqual(c.reply()[0], 220)
        self.ehlo(c)
        self.start_mail(c, rcpts=[rcpt])
        qid = self.queued_id(self.send_data(c, b"Subject: l\r\n\r\nx\r\n.\r\n"))
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
        return parse_spool(self.spooled(d, qid))

    @unittest.skipUnless(ipv6_ok(), "no IPv6 loopback")
    def test_repeated_l_ipv4_and_ipv6(self):
        """-l may be given several times: 127.0.0.1 and [::1] both serve
        sessions; the IPv6 client's address is ::1."""
        p4, p6 = free_port(), free_port("::1")
        d = self.smtpd(start=False, args=["-l", "127.0.0.1:%d" % p4,
                                          "-l", "[::1]:%d" % p6])
        d.port = p4
        d.start()
        self.assertTrue(wait_port("::1", p6))
        env4, _ = self.session("127.0.0.1", p4, d)
        env6, _ = self.session("::1", p6, d)
        self.assertEqual(env4["peer"], "127.0.0.1")
        self.assertEqual(env6["peer"], "::1")

    def test_l_replaces_config_listen(self):
        """-l replaces the config's listen list."""
        other = free_port()
        d = self.smtpd(start=False, args=["-l", "127.0.0.1:%d" % other])
        config_port, d.port = d.port, other
        d.start()
        self.session("127.0.0.1", other, d)
        self.assertTrue(refused("127.0.0.1", config_port))

    @unittest.skipUnless(ipv6_ok(), "no IPv6 loopback")
    def test_config_listen_list(self):
        """listen in the config may name IPv4 and IPv6 addresses."""
        p6 = free_port("::1")
        p4 = free_port()
        d = self.smtpd(start=False, listen=["127.0.0.1:%d" % p4, "[::1]:%d" % p6])
        d.port = p4
        d.start()
        self.assertTrue(wait_port("::1", p6))
        self.session("::1", p6, d)
        self.session("127.0.0.1", p4, d)

    @unittest.skipUnless(ipv6_ok(), "no IPv6 loopback")
    def test_ipv6_received_uses_ipv6_literal(self):
        """An IPv6 client appears in the Received header as an RFC 5321
        address literal, [IPv6:::1]."""
        p6 = free_port("::1")
        d = self.smtpd(start=False, listen=["[::1]:%d" % p6])
        d.host, d.port = "::1", p6
        d.start()
        _, body = self.session("::1", p6, d)
        first = body.split(b"\r\n\t")[0]
        self.assertIn(b"[IPv6:::1]", first, first)


class SessionLimits(ProtoCase):
    def greet(self, d, source=None):
        c = BoundConn(d.host, d.port, source) if source else Conn(d.host, d.port)
        return self.track(c)

    def open_retry(self, d, source=None):
        """A greeted session, retrying while the start-up probe's session
        (from wait_port) may still hold a slot."""
        deadline = time.time() + 10
        while True:
            c = self.greet(d, source)
            rep = c.reply()
            if rep[0] == 220 or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(rep[0], 220, rep)
        return c

    def test_total_limit(self):
        """With limits.sessions = 2 a third client gets 421 4.7.0 and is
        disconnected; once a session ends, a new client is served."""
        d = self.smtpd(limits={"sessions": 2, "sessions_per_ip": 10})
        a, b = self.open_retry(d), self.open_retry(d)
        self.ehlo(a)
        c = self.greet(d)
        rep = c.reply()
        self.assertEqual(rep[0], 421, rep)
        self.assertEqual(enhanced(rep[1]), "4.7.0", rep)
        self.assertTrue(c.closed())
        self.assertReply(a.cmd("QUIT"), 221, "2.0.0")
        a.close()
        deadline, got = time.time() + 10, None
        while time.time() < deadline:
            e = self.greet(d)
            got = e.reply()
            if got[0] == 220:
                break
            time.sleep(0.05)
        self.assertEqual(got[0], 220, got)
        self.assertReply(b.cmd("NOOP"), 250, "2.0.0")

    def test_per_ip_limit(self):
        """With limits.sessions_per_ip = 2 a third client from 127.0.0.1
        gets 421 4.7.0, while a client from 127.0.0.2 is served."""
        d = self.smtpd(limits={"sessions": 100, "sessions_per_ip": 2})
        self.open_retry(d)
        self.open_retry(d)
        c = self.greet(d)
        rep = c.reply()
        self.assertEqual(rep[0], 421, rep)
        self.assertEqual(enhanced(rep[1]), "4.7.0", rep)
        self.assertTrue(c.closed())
        other = self.greet(d, "127.0.0.2")
        self.assertEqual(other.reply()[0], 220)
        self.assertEqual(other.cmd("EHLO other.example.org")[0], 250)
        self.start_mail(other)
        self.queued_id(self.send_data(other, b"x\r\n.\r\n"))

    def test_reconnect_on_221_is_served(self):
        """With one session allowed, a client that reconnects as soon as it
        reads 221 is served at once, every time: the ended session is no
        longer counted by then."""
        d = self.smtpd(limits={"sessions": 1, "sessions_per_ip": 1})
        c = self.open_retry(d)
        for i in range(30):
            self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
            c.close()
            c = self.greet(d)
            rep = c.reply()
            self.assertEqual(rep[0], 220, "reconnect %d: %r" % (i, rep))
        c.close()

    def test_refused_client_sends_nothing_first(self):
        """A refused client hears 421 without having to send anything, and
        the refusal does not count as a session."""
        d = self.smtpd(limits={"sessions": 1})
        a = self.open_retry(d)
        for _ in range(5):
            c = self.greet(d)
            self.assertEqual(c.reply()[0], 421)
            c.close()
        self.assertReply(a.cmd("NOOP"), 250, "2.0.0")


def last_words(c):
    """What a connection the server has cut off still had to read (b""
    when it was reset or said nothing more within 5 s)."""
    c.sock.settimeout(5)
    try:
        return c.sock.recv(4096)
    except (ConnectionResetError, socket.timeout):
        return b""


class Shutdown(ProtoCase):
    def test_sigterm_idle_exits_zero(self):
        """SIGTERM with no sessions: the listener closes and smtpd exits 0."""
        d = self.smtpd()
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(20), 0)
        self.assertTrue(refused(d.host, d.port))

    def test_sigterm_lets_message_in_progress_finish(self):
        """SIGTERM while a client is sending data: no new connections are
        accepted, the message is still accepted and queued, smtpd exits 0."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(b"Subject: shutdown\r\n\r\nfirst half\r\n")
        d.proc.send_signal(signal.SIGTERM)
        self.assertTrue(wait_refused(d.host, d.port), "still accepting after SIGTERM")
        c.send(b"second half\r\n.\r\n")
        qid = self.queued_id(c.reply())
        code, lines = c.cmd("QUIT")
        self.assertIn(code, (221, 421), lines)
        self.assertEqual(d.proc.wait(20), 0)
        raw = d.queued().get(qid)
        self.assertIsNotNone(raw, "message acknowledged but not in queue/")
        self.assertTrue(raw.endswith(b"first half\r\nsecond half\r\n"))

    def test_sigterm_lets_transaction_finish(self):
        """SIGTERM after MAIL and RCPT: the running session may still send
        its message (DATA is accepted and the message queued) before the
        server goes."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        d.proc.send_signal(signal.SIGTERM)
        self.assertTrue(wait_refused(d.host, d.port))
        rep = c.cmd("DATA")
        self.assertEqual(rep[0], 354, "session cut off at SIGTERM: %r" % (rep,))
        c.send(b"Subject: late\r\n\r\nx\r\n.\r\n")
        self.queued_id(c.reply())
        c.cmd("QUIT")
        self.assertEqual(d.proc.wait(20), 0)

    def test_shutdown_timeout_bounds_wait(self):
        """A session that never ends is cut off after
        limits.shutdown_timeout; smtpd still exits 0 and leaves no
        temporary files."""
        d = self.smtpd(limits={"shutdown_timeout": 1})
        c = self.open(d)
        self.start_mail(c)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(b"Subject: stuck\r\n\r\nnever ends\r\n")
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(20), 0)
        rest = last_words(c)
        self.assertTrue(rest == b"" or rest.startswith(b"421 "), rest)
        self.assertEqual(d.tmpfiles(), [])
        self.assertEqual(d.queued(), {})

    def test_sigterm_tells_idle_session_at_once(self):
        """SIGTERM while a session sits idle between transactions (set
        aside, waiting for its next command): it is told 421 4.3.2 at
        once, and smtpd exits without waiting out limits.shutdown_timeout."""
        d = self.smtpd(limits={"shutdown_timeout": 60})
        c = self.open(d)
        time.sleep(0.5)
        start = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        c.sock.settimeout(10)
        self.assertReply(c.reply(), 421, "4.3.2")
        self.assertEqual(d.proc.wait(20), 0)
        self.assertLess(time.monotonic() - start, 30)
        self.assertIn("disconnect reason=shutdown", d.logtext())

    def test_shutdown_timeout_cuts_idle_transaction(self):
        """A session idle in the middle of a transaction (after MAIL) may
        finish it, so it is cut off only at limits.shutdown_timeout; smtpd
        exits 0 and nothing is queued."""
        d = self.smtpd(limits={"shutdown_timeout": 1})
        c = self.open(d)
        self.start_mail(c)
        time.sleep(0.5)
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(20), 0)
        rest = last_words(c)
        self.assertEqual(rest, b"")
        self.assertIn("cutting off 1 sessions", d.logtext())
        self.assertEqual(d.queued(), {})

    def test_sigint_exits_zero(self):
        """SIGINT stops the daemon like SIGTERM."""
        d = self.smtpd()
        d.proc.send_signal(signal.SIGINT)
        self.assertEqual(d.proc.wait(20), 0)

    def test_signals_during_reload(self):
        """SIGHUPs and a SIGTERM coming while smtpd is still busy with
        the one before are all taken in turn: it reloads, answers, and
        then stops cleanly (exit 0), never killed by one of them."""
        d = self.smtpd()
        for _ in range(20):
            d.proc.send_signal(signal.SIGHUP)
        c = self.open(d)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        self.wait_log(d, r"reloaded ")
        d.proc.send_signal(signal.SIGHUP)
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(20), 0, d.logtext()[-2000:])


class Signals(ProtoCase):
    """Signals arriving while smtpd is busy reloading.  The reload is made
    slow for real: the new config names an access_file that is a FIFO, and
    the reload waits in reading it until the test writes it and closes
    it."""

    def slow_reload(self, d):
        """Starts a reload that hangs on a FIFO; returns the FIFO's
        writing end, which the reload keeps waiting on until closed."""
        fifo = os.path.join(self.workdir, "access.fifo")
        os.mkfifo(fifo)
        with open(d.conf) as f:
            plain = f.read()
        with open(d.conf, "a") as f:
            f.write('access_file = "%s";\n' % fifo)
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while True:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                # ENXIO: nobody reads the FIFO yet.
                if e.errno != errno.ENXIO or time.time() > deadline:
                    raise
                time.sleep(0.02)
        # The reload read the config already; a later one does not hang.
        with open(d.conf, "w") as f:
            f.write(plain)
        return fd

    def test_second_sighup_during_reload(self):
        """SIGHUP while a reload is still running: smtpd stays up, does
        both reloads in turn, and still takes mail."""
        d = self.smtpd()
        fd = self.slow_reload(d)
        d.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        alive = d.proc.poll() is None
        os.close(fd)
        self.assertTrue(alive, "killed by SIGHUP during a reload: exit %s"
                        % d.proc.poll())
        self.wait_log(d, r"reloaded ", count=2)
        self.assertIsNone(d.proc.poll())
        c = self.open(d)
        self.start_mail(c)
        self.queued_id(self.send_data(c, b"Subject: hup\r\n\r\nx\r\n.\r\n"))
        c.cmd("QUIT")
        self.assertEqual(d.stop(), 0)

    def test_sigterm_during_reload(self):
        """SIGTERM while a reload is still running: smtpd finishes the
        reload, then stops cleanly with exit 0."""
        d = self.smtpd()
        fd = self.slow_reload(d)
        d.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        alive = d.proc.poll() is None
        os.close(fd)
        self.assertTrue(alive, "killed by SIGTERM during a reload: exit %s"
                        % d.proc.poll())
        self.assertEqual(d.proc.wait(20), 0)
        self.assertIn("stopping on signal %d" % signal.SIGTERM, d.logtext())


class Concurrency(ProtoCase):
    LIMITS = {"sessions": 1000, "sessions_per_ip": 1000,
              "sessions_per_net": 1000}

    def test_smtp_source_500_messages(self):
        """Postfix's smtp-source sends 500 messages over 50 parallel
        sessions: all 500 are queued."""
        d = self.smtpd(limits=self.LIMITS)
        p = subprocess.run(["smtp-source", "-s", "50", "-m", "500", "-c",
                            "-f", "sender@example.org", "-t", "rcpt@example.net",
                            "%s:%d" % (d.host, d.port)],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        q = self.wait_queued(d, 500, timeout=30)
        for raw in list(q.values())[:20]:
            env, _ = parse_spool(raw)
            self.assertEqual(env["rcpt"], ["<rcpt@example.net>"])

    def test_busy_threads_run_as_batch(self):
        """The front's acceptor, workers and journal writer ask for
        SCHED_BATCH (they wake one another at every reply and commit, and
        preempting for that buys nothing); the process's main thread and
        the other processes keep the default policy."""
        d = self.smtpd(limits=self.LIMITS)
        with smtplib.SMTP(d.host, d.port, timeout=30) as s:
            s.sendmail("a@example.org", ["b@example.net"],
                       b"Subject: x\r\n\r\nx\r\n")
            s.noop()
            policies = {}
            pids = daemon_pids(d.proc.pid)
            for pid in pids:
                for stat in glob.glob("/proc/%d/task/*/stat" % pid):
                    try:
                        with open(stat) as f:
                            fields = f.read().rsplit(")", 1)[1].split()
                    except FileNotFoundError:
                        continue
                    tid = int(stat.split("/")[4])
                    # Field 41, the policy: 0 SCHED_OTHER, 3 SCHED_BATCH.
                    policies[(pid, tid)] = int(fields[38])
        front = max(pids, key=lambda p: sum(1 for k in policies if k[0] == p))
        batch = [k for k, v in policies.items() if v == 3]
        self.assertGreaterEqual(len(batch), 3, policies)
        self.assertTrue(all(pid == front for pid, _ in batch), policies)
        for (pid, tid), v in policies.items():
            if tid == pid:
                self.assertEqual(v, 0, (pid, policies))

    def test_500_sessions_at_once(self):
        """500 smtplib clients connect and say EHLO, wait for each other,
        then each sends one message: every one is accepted and spooled."""
        d = self.smtpd(limits=self.LIMITS)
        n = 500
        barrier = threading.Barrier(n, timeout=60)
        results, lock = [], threading.Lock()

        def client(i):
            try:
                with smtplib.SMTP(d.host, d.port, timeout=60) as s:
                    s.ehlo("c%d.example.org" % i)
                    barrier.wait()
                    s.sendmail("s%d@example.org" % i, ["r%d@example.net" % i],
                               b"Subject: %d\r\n\r\nparallel %d\r\n" % (i, i))
                    r = "ok"
            except Exception as e:  # reported below
                r = repr(e)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        bad = [r for r in results if r != "ok"]
        self.assertEqual(len(results), n)
        self.assertEqual(bad, [], "%d clients failed, e.g. %s" % (len(bad), bad[:3]))
        q = self.wait_queued(d, n, timeout=30)
        senders = sorted(parse_spool(raw)[0]["from"] for raw in q.values())
        self.assertEqual(senders, sorted("<s%d@example.org>" % i for i in range(n)))


class Logging(ProtoCase):
    """log = "stderr" for systemd and containers: the session lines on
    standard error without -d, and without -d's state changes; a daemon
    logging to syslog says once when syslog cannot be reached."""

    def run_daemon(self, extra, cmd_prefix=()):
        d = self.smtpd(start=False, config_extra=extra)
        err = open(os.path.join(self.workdir, "stderr"), "wb")
        self.addCleanup(err.close)
        proc = subprocess.Popen(list(cmd_prefix) + [SMTPD, "-C", d.conf],
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)

        def stop():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        self.addCleanup(stop)
        self.assertTrue(wait_port(d.host, d.port), self.stderr_text())
        with smtplib.SMTP(d.host, d.port, timeout=10) as c:
            c.sendmail("a@example.org", ["b@example.net"],
                       b"Subject: log\r\n\r\nhi\r\n")
        stop()
        self.assertEqual(proc.returncode, 0)
        return self.stderr_text()

    def stderr_text(self):
        with open(os.path.join(self.workdir, "stderr"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def test_stderr_without_debug(self):
        text = self.run_daemon('log = "stderr";\n')
        for want in ("started: config=", "smtp mail from=<a@example.org>",
                     "smtp rcpt to=<b@example.net>", "smtp queued id=",
                     "stopped"):
            self.assertIn(want, text)
        self.assertNotIn("smtp state", text)
        self.assertNotIn("syslog is not reachable", text)
        for line in text.splitlines():
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT[\d:.]+Z smtpd\[\d+\]: ")

    def test_concurrent_sessions_log_every_line_whole(self):
        """Fifty sessions at once, a thousand messages: every line is in
        the log, whole, one per line -- one connect and one disconnect per
        session, one queued line per message."""
        d = self.smtpd(limits={"sessions": 200, "sessions_per_ip": 200,
                               "sessions_per_net": 200})
        p = subprocess.run(["smtp-source", "-s", "50", "-m", "1000", "-c",
                            "-f", "sender@example.org", "-t", "rcpt@example.net",
                            "%s:%d" % (d.host, d.port)],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        d.stop()
        text = d.logtext()
        lines = text.splitlines()
        for line in lines:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT[\d:.]+Z smtpd\[\d+\]: "
                             r"\S")
        queued = [l for l in lines if " smtp queued id=" in l]
        self.assertEqual(len(queued), 1000)
        sessions = {}
        for l in lines:
            m = re.search(r"\]: (\S+) smtp (connect|disconnect) ", l)
            if m:
                sessions.setdefault(m.group(1), []).append(m.group(2))
        self.assertGreaterEqual(len(sessions), 1000)
        bad = {k: v for k, v in sessions.items()
               if v != ["connect", "disconnect"]}
        self.assertEqual(bad, {})
        for l in queued:
            self.assertRegex(l, r" nrcpt=1 size=\d+$")

    def test_debug_adds_state_changes(self):
        """-d keeps its meaning: stderr with the state changes too."""
        d = self.smtpd(config_extra='log = "syslog";\n')
        with smtplib.SMTP(d.host, d.port, timeout=10) as c:
            c.sendmail("a@example.org", ["b@example.net"], b"\r\nhi\r\n")
        d.stop()
        self.assertIn("smtp state", d.logtext())
        self.assertIn("smtp queued id=", d.logtext())

    def test_unreachable_syslog_is_said_once(self):
        prefix = ()
        if os.path.exists("/dev/log"):
            # A private mount namespace where /dev/log is no socket.
            if os.geteuid() != 0 or shutil.which("unshare") is None:
                self.skipTest("/dev/log exists; hiding it needs root")
            prefix = ("unshare", "--mount", "--", "sh", "-c",
                      'mount --bind /dev/null /dev/log && exec "$@"', "sh")
        text = self.run_daemon("", prefix)
        self.assertEqual(text.count("smtpd: syslog is not reachable "
                                    "(/dev/log: "), 1, text)
        self.assertEqual(len(text.splitlines()), 1, text)
