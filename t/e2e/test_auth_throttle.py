"""The SMTP AUTH brute-force throttle (auth.throttle): failures counted
per client address across sessions and mechanisms, the delay and the
block, the daemon-wide limit, SIGHUP, and in stdio mode the counts
shared through a file."""
import os
import re
import signal
import time
import unittest

from certs import HOSTNAME, PLAIN_PASS, PLAIN_USER, b64
from test_auth import CRAM_ON, AuthCase


class Throttle(AuthCase):
    """auth.throttle: failures, delay, block (no timing assertions)."""

    THROTTLE = "failures = 3; delay = 100; max_delay = 200; block = 60;"

    def setUp(self):
        super().setUp()
        self.d = self.server(throttle=self.THROTTLE, auth_extra=CRAM_ON)

    def wrong_password(self, c, expect=535):
        rep = self.auth_plain(c, password="Guess-%d" % id(c))
        if expect == 535:
            self.assertReply(rep, 535, "5.7.8")
        else:
            self.assertReply(rep, 421, "4.7.0")
            self.assertTrue(c.closed(), "still open after 421")

    def test_blocked_after_failures(self):
        """Three bad passwords: 535, 535, then 421 4.7.0 and the connection
        closes; a new session from that address gets 421 even with the
        right password; another address is not affected."""
        c = self.tls_client(self.d, source="127.0.0.21")
        self.wrong_password(c)
        self.wrong_password(c)
        self.wrong_password(c, expect=421)
        c = self.tls_client(self.d, source="127.0.0.21")
        self.assertReply(self.auth_plain(c), 421, "4.7.0")
        self.assertTrue(c.closed())
        c = self.tls_client(self.d, source="127.0.0.22")
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        self.wait_log(self.d, "too many failures from 127.0.0.21")
        # Both blocked sessions were closed by the server, not by QUIT.
        log = self.wait_log(self.d, "disconnect reason=auth-blocked", 2)
        self.assertEqual(log.count("disconnect reason=auth-blocked"), 2)

    def test_blocked_client_may_still_send_without_auth(self):
        """The block is on AUTH: the blocked client still gets a greeting
        and may send to us without AUTH."""
        c = self.tls_client(self.d, source="127.0.0.25")
        for expect in (535, 535, 421):
            self.wrong_password(c, expect)
        c = self.tls_client(self.d, source="127.0.0.25")
        self.start_mail(c, rcpts=("<postmaster@%s>" % HOSTNAME,))

    def test_failures_count_across_sessions(self):
        """Failures of one address add up over sessions."""
        for expect in (535, 535, 421):
            c = self.tls_client(self.d, source="127.0.0.23")
            self.wrong_password(c, expect)

    def test_every_mechanism_counts(self):
        """Failed LOGIN and CRAM-MD5 count like PLAIN."""
        c = self.tls_client(self.d, source="127.0.0.26")
        self.assertReply(self.login(c, PLAIN_USER, "nope"), 535, "5.7.8")
        self.assertReply(self.cram(c, PLAIN_USER, "nope"), 535, "5.7.8")
        self.wrong_password(c, expect=421)

    def test_success_resets_count(self):
        """Two failures, a success, then two more failures: all 535, and
        the right password still works afterwards."""
        c = self.tls_client(self.d, source="127.0.0.24")
        self.wrong_password(c)
        self.wrong_password(c)
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        c = self.tls_client(self.d, source="127.0.0.24")
        self.wrong_password(c)
        self.wrong_password(c)
        c = self.tls_client(self.d, source="127.0.0.24")
        self.assertReply(self.auth_plain(c), 235, "2.7.0")

    def test_exchange_started_before_block(self):
        """An AUTH exchange counts from its start: one left open holds one
        of the three tries, so the second failure of another session
        blocks the address; the open one's right password then gets 421
        4.7.0, not 235, and is logged as answered like a failure."""
        early = self.tls_client(self.d, source="127.0.0.27")
        self.assertReply(early.cmd("AUTH PLAIN"), 334)
        c = self.tls_client(self.d, source="127.0.0.27")
        for expect in (535, 421):
            self.wrong_password(c, expect)
        rep = early.cmd(b64("\0%s\0%s" % (PLAIN_USER, PLAIN_PASS)))
        self.assertReply(rep, 421, "4.7.0")
        self.assertTrue(early.closed())
        self.wait_log(self.d, "right password, answered as a failure")

    def test_parallel_guesses_limited(self):
        """50 sessions from one address send a wrong password at once:
        only 'failures' (3) of the passwords are checked (3 'auth failed'
        lines); every other session gets 421 4.7.0 without a check."""
        conns = [self.tls_client(self.d, source="127.0.0.28")
                 for _ in range(50)]
        for i, c in enumerate(conns):
            c.send("AUTH PLAIN %s\r\n" % b64("\0%s\0Guess-%d" % (PLAIN_USER, i)))
        codes = [c.reply()[0] for c in conns]
        self.assertNotIn(235, codes)
        self.assertEqual(codes.count(421) + codes.count(535), 50, codes)
        self.assertGreaterEqual(codes.count(421), 47, codes)
        text = self.wait_log(self.d, "too many failures from 127.0.0.28",
                             count=47)
        self.assertEqual(len(re.findall(
            r"auth failed user=\S+ mechanism=PLAIN address=127\.0\.0\.28 ",
            text)), 3, text)

    def test_blocked_success_answered_as_failure(self):
        """A right password from a client blocked while its exchange ran
        gets what a failure gets at that point: 421 4.7.0 after the
        failure delay (max_delay here, 200 ms), not a quick reply."""
        early = self.tls_client(self.d, source="127.0.0.30")
        self.assertReply(early.cmd("AUTH PLAIN"), 334)
        c = self.tls_client(self.d, source="127.0.0.30")
        self.wrong_password(c)
        t0 = time.monotonic()
        self.wrong_password(c, expect=421)
        failure_took = time.monotonic() - t0
        t0 = time.monotonic()
        rep = early.cmd(b64("\0%s\0%s" % (PLAIN_USER, PLAIN_PASS)))
        success_took = time.monotonic() - t0
        self.assertReply(rep, 421, "4.7.0")
        # The delay is a lower bound that holds however slow the host.
        self.assertGreaterEqual(failure_took, 0.19)
        self.assertGreaterEqual(success_took, 0.19)

    def test_reload_applies_new_limit(self):
        """SIGHUP with failures = 2: a client with one failure is blocked
        at its second."""
        c = self.tls_client(self.d, source="127.0.0.29")
        self.wrong_password(c)
        with open(self.d.conf) as f:
            conf = f.read()
        with open(self.d.conf, "w") as f:
            f.write(conf.replace("failures = 3;", "failures = 2;"))
        self.d.proc.send_signal(signal.SIGHUP)
        self.wait_log(self.d, "reloaded")
        self.wrong_password(c, expect=421)


class GlobalThrottle(AuthCase):
    """auth.throttle.global_failures: a block for everyone."""

    def test_global_block(self):
        """global_failures = 3: one failure each from three networks
        (/24s) blocks AUTH for all, even a fresh address with the right
        password; the start of the lock-out is logged, and its end."""
        d = self.server(throttle="failures = 50; delay = 10; max_delay = 20; "
                                 "global_failures = 3; global_block = 2;")
        for i, expect in ((31, 535), (32, 535), (33, 421)):
            c = self.tls_client(d, source="127.0.%d.1" % i)
            rep = self.auth_plain(c, password="wrong")
            self.assertEqual(rep[0], expect, rep)
        c = self.tls_client(d, source="127.0.34.1")
        self.assertReply(self.auth_plain(c), 421, "4.7.0")
        self.wait_log(d, "global lock-out started: failures from 3 networks")
        time.sleep(3)
        c = self.tls_client(d, source="127.0.34.1")
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        self.wait_log(d, "global lock-out ended")

    def test_one_network_is_one(self):
        """Failures from 20 addresses of one /24 weigh as one network:
        global_failures = 3 is not reached."""
        d = self.server(throttle="failures = 50; delay = 10; max_delay = 20; "
                                 "global_failures = 3; global_block = 60;")
        for i in range(1, 21):
            c = self.tls_client(d, source="127.0.41.%d" % i)
            self.assertReply(self.auth_plain(c, password="wrong"), 535, "5.7.8")
        c = self.tls_client(d, source="127.0.42.1")
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        self.assertNotIn("global lock-out", d.logtext())

    def test_global_off(self):
        """failures = 0 and global_failures = 0: never blocked."""
        d = self.server(throttle="failures = 0; delay = 0; max_delay = 0; "
                                 "global_failures = 0;")
        c = self.tls_client(d, source="127.0.0.35")
        for _ in range(6):
            self.assertReply(self.auth_plain(c, password="wrong"), 535, "5.7.8")
        self.assertReply(self.auth_plain(c), 235, "2.7.0")


class StdioThrottle(AuthCase):
    """stdio mode (one process per session) shares the AUTH throttle in
    a file."""

    def session(self, d, n_guesses, env_ip="192.0.2.77"):
        env = dict(os.environ, TCPREMOTEIP=env_ip)
        lines = ["EHLO client.example.org"]
        lines += ["AUTH PLAIN " + b64("\0%s\0Wrong-%d" % (PLAIN_USER, i))
                  for i in range(n_guesses)]
        lines.append("QUIT")
        rc, out, err = d.stdio(("\r\n".join(lines) + "\r\n").encode(),
                               env=env, extra_args=["-p"])
        self.assertEqual(rc, 0, err)
        return [int(l[:3]) for l in out.decode().split("\r\n")
                if l[:3] in ("535", "421", "454")], err.decode()

    def test_sessions_share_counts(self):
        """10 sessions of 4 wrong passwords each from one address: the
        first 4 get 535, the fifth blocks (421), and every later session
        is refused at its first AUTH, without a password check."""
        d = self.server(start=False,
                        throttle="failures = 5; delay = 10; max_delay = 20; "
                                 "block = 600;")
        runs = [self.session(d, 4) for _ in range(10)]
        codes = [r[0] for r in runs]
        self.assertEqual(codes[0], [535] * 4)
        # The fifth password is checked, fails and blocks.
        self.assertEqual(codes[1], [421])
        self.assertIn("auth failed", runs[1][1])
        for c, err in runs[2:]:
            self.assertEqual(c, [421])
            self.assertIn("auth refused: too many failures", err)
            self.assertNotIn("auth failed", err)
        self.assertTrue(os.path.exists(os.path.join(d.spool, "auth-throttle")))
        # Another address is not affected.
        self.assertEqual(self.session(d, 1, env_ip="192.0.2.78")[0], [535])

    def test_unusable_file_refuses_auth(self):
        """When the shared file cannot be opened, AUTH gets 454 4.7.0 and
        the reason is logged, rather than guesses going uncounted."""
        d = self.server(start=False, throttle='file = "%s";' % os.path.join(
            self.workdir, "no-such-dir", "auth-throttle"))
        codes, err = self.session(d, 2)
        self.assertEqual(codes, [454, 454])
        self.assertIn("AUTH throttle state", err)
        self.assertIn("No such file or directory", err)


if __name__ == "__main__":
    unittest.main()
