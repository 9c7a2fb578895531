"""Session defences: the deadline for a whole command line, the minimum
rate and deadline of message data, session caps per client network
(IPv4 /24, IPv6 /64), the HELO argument, and the disconnect log line's
reason (who closed the connection, and why)."""
import re
import select
import socket
import time
import unittest

from harness import (BoundConn, Conn, ProtoCase, Smtpd, enhanced,
                     free_port, read_until_closed, split_replies)

BASE = ('ournets = [ "127.0.0.1/32" ];\n'
        'ourdomains = [ "ours.example" ];\n')


def trickle(conn, data, every, limit):
    """Sends data one byte every `every` seconds, at most `limit` bytes,
    and stops as soon as the server says something.  (bytes sent, what
    the server said until it closed)."""
    for i in range(min(limit, len(data))):
        try:
            conn.sock.sendall(data[i:i + 1])
        except OSError:
            break
        ready, _, _ = select.select([conn.sock], [], [], every)
        if ready:
            return i + 1, read_until_closed(conn, timeout=5)
    return limit, b""


class CommandDeadline(ProtoCase):
    def test_trickled_command_line_cut_off(self):
        """limits.command_timeout = 3: a client sending a MAIL line one
        byte a second (each byte well within the timeout) gets 421 4.4.2
        once the line has taken 3 s, and the log says command-deadline."""
        d = self.smtpd(limits={"command_timeout": 3})
        c = self.open(d)
        line = b"MAIL FROM:<" + b"a" * 40 + b"@example.org>\r\n"
        sent, data = trickle(c, line, every=1.0, limit=12)
        replies = split_replies(data)
        self.assertTrue(replies, "not cut off after %d bytes" % sent)
        self.assertReply(replies[-1], 421, "4.4.2")
        self.assertLessEqual(sent, 6)
        self.assertIn("disconnect reason=command-deadline",
                      self.wait_log(d, r"disconnect reason="))

    def test_pipelined_lines_are_not_held_to_it(self):
        """The deadline is per line: a session doing a command a second
        for longer than the deadline is not cut off."""
        d = self.smtpd(limits={"command_timeout": 2})
        c = self.open(d)
        for _ in range(4):
            self.assertReply(c.cmd("NOOP"), 250)
            time.sleep(1)
        self.assertReply(c.cmd("QUIT"), 221)


class DataRate(ProtoCase):
    def test_data_trickle_cut_off(self):
        """limits.data_rate = 200 bytes/s over 2 s windows: a client that
        sends its message a byte every half second is cut off with 421
        4.4.2 after the first window; nothing is queued."""
        d = self.smtpd(limits={"data_rate": 200, "data_rate_window": 2,
                               "data_timeout": 30})
        c = self.open(d)
        self.start_mail(c)
        self.assertEqual(c.cmd("DATA")[0], 354)
        sent, data = trickle(c, b"Subject: slow\r\n\r\n" + b"x" * 40,
                             every=0.5, limit=16)
        replies = split_replies(data)
        self.assertTrue(replies, "not cut off after %d bytes" % sent)
        self.assertReply(replies[-1], 421, "4.4.2")
        self.assertIn("too slow", replies[-1][1][-1])
        self.assertLessEqual(sent, 8)
        self.assertIn("disconnect reason=data-too-slow",
                      self.wait_log(d, r"disconnect reason="))
        self.assertNothingQueued(d)

    def test_bdat_trickle_cut_off(self):
        """The same rule over a BDAT chunk."""
        d = self.smtpd(limits={"data_rate": 200, "data_rate_window": 2,
                               "data_timeout": 30})
        c = self.open(d)
        self.start_mail(c)
        c.send("BDAT 100 LAST\r\n")
        sent, data = trickle(c, b"y" * 100, every=0.5, limit=16)
        replies = split_replies(data)
        self.assertTrue(replies, "not cut off after %d bytes" % sent)
        self.assertReply(replies[-1], 421, "4.4.2")
        self.assertIn("disconnect reason=data-too-slow",
                      self.wait_log(d, r"disconnect reason="))
        self.assertNothingQueued(d)

    def test_data_deadline(self):
        """limits.data_deadline = 2 with no rate rule: a message still
        arriving after 2 s is cut off with 421 4.4.2 (data-deadline)."""
        d = self.smtpd(limits={"data_rate": 0, "data_deadline": 2,
                               "data_timeout": 30})
        c = self.open(d)
        self.start_mail(c)
        self.assertEqual(c.cmd("DATA")[0], 354)
        sent, data = trickle(c, b"x" * 40, every=0.5, limit=12)
        replies = split_replies(data)
        self.assertTrue(replies, "not cut off after %d bytes" % sent)
        self.assertReply(replies[-1], 421, "4.4.2")
        self.assertIn("disconnect reason=data-deadline",
                      self.wait_log(d, r"disconnect reason="))

    def test_normal_message_passes(self):
        """A message sent at once is queued with the rate rule on."""
        d = self.smtpd(limits={"data_rate": 1000, "data_rate_window": 1})
        c = self.open(d)
        self.start_mail(c)
        self.queued_id(self.send_data(c, b"Subject: quick\r\n\r\nhi\r\n.\r\n"))


class SessionsPerNet(ProtoCase):
    def test_slash24_cap(self):
        """limits.sessions_per_net = 3: three sessions from three
        addresses of 127.0.0.0/24 get 220, a fourth from yet another
        address of it gets 421 4.7.0 at once, while 127.0.1.0/24 is still
        served; when one closes, the /24 may connect again."""
        d = self.smtpd(limits={"sessions_per_net": 3, "sessions_per_ip": 10})
        held = []
        for i in range(2, 5):
            c = self.track(BoundConn(d.host, d.port, "127.0.0.%d" % i))
            self.assertReply(c.reply(), 220)
            held.append(c)
        c = self.track(BoundConn(d.host, d.port, "127.0.0.5"))
        rep = c.reply()
        self.assertReply(rep, 421, "4.7.0")
        self.assertIn("network", rep[1][-1])
        self.assertTrue(c.closed())
        other = self.track(BoundConn(d.host, d.port, "127.0.1.2"))
        self.assertReply(other.reply(), 220)
        self.assertRegex(d.logtext(), r"refused 127\.0\.0\.5: 3 sessions "
                         r"per client network")
        self.assertReply(held[0].cmd("QUIT"), 221)
        self.assertTrue(held[0].closed())
        deadline = time.time() + 10
        while True:
            c = self.track(BoundConn(d.host, d.port, "127.0.0.6"))
            rep = c.reply()
            if rep[0] == 220 or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertReply(rep, 220)

    def test_ipv6_loopback_per_ip(self):
        """sessions_per_ip = 2 on [::1]: the third session gets 421 4.7.0
        (an IPv6 client is counted by its /64)."""
        try:
            port = free_port("::1")
        except OSError:
            self.skipTest("no IPv6 loopback")
        d = self.smtpd(start=False, listen=["[::1]:%d" % port],
                       limits={"sessions_per_ip": 2})
        d.host, d.port = "::1", port
        d.start()
        for _ in range(2):
            c = self.track(Conn("::1", port))
            self.assertReply(c.reply(), 220)
        c = self.track(Conn("::1", port))
        self.assertReply(c.reply(), 421, "4.7.0")
        self.assertRegex(d.logtext(), r"refused ::1: 2 sessions per client")


class HeloArgument(ProtoCase):
    def test_control_characters_refused(self):
        """HELO/EHLO with an escape sequence or another control character
        anywhere in the argument: 501 5.5.4, and the session stays in its
        state (MAIL still needs a HELO)."""
        d = self.smtpd()
        c = self.open(d, ehlo=False)
        for line in (b"HELO \x1b[31mred", b"EHLO \x1b", b"EHLO a\x01b.example",
                     b"HELO mx.example.org \x07", b"EHLO \x7f"):
            c.send(line + b"\r\n")
            self.assertReply(c.reply(), 501, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1")
        self.assertReply(c.cmd("EHLO client.example.org"), 250)
        self.assertNotRegex(d.logtext(), r"smtp (helo|ehlo) name=\s*$")


class DisconnectReason(ProtoCase):
    """The disconnect line says who closed the connection and why."""

    def assertReason(self, d, want):
        """want is in the log, and no other reason but the harness's
        readiness probe (a connection it closes at once)."""
        log = self.wait_log(d, r"disconnect reason=%s " % want)
        got = re.findall(r"disconnect reason=(\S+)", log)
        self.assertIn(want, got)
        self.assertEqual([r for r in got if r not in
                          (want, "client-closed", "io-error")], [], got)

    def test_quit(self):
        d = self.smtpd()
        c = self.open(d)
        self.assertReply(c.cmd("QUIT"), 221)
        self.assertReason(d, "quit")

    def test_client_closed(self):
        d = self.smtpd()
        c = self.open(d)
        c.close()
        self.assertReason(d, "client-closed")

    def test_too_many_errors(self):
        d = self.smtpd(limits={"errors": 2})
        c = self.open(d)
        c.cmd("XYZZY")
        self.assertReply(c.cmd("XYZZY"), 500, "5.5.2")
        self.assertReply(c.reply(), 421, "4.7.0")
        self.assertReason(d, "too-many-errors")

    def test_policy_drop(self):
        d = self.smtpd(config_extra=BASE + 'rules = ( { helo = "^evil"; '
                       'action = "drop"; } );\n')
        c = self.track(BoundConn(d.host, d.port, "127.0.0.9"))
        self.assertReply(c.reply(), 220)
        c.send("EHLO evil.example\r\n")
        self.assertTrue(c.closed())
        self.assertReason(d, "policy-drop")

    def test_policy_refused_by_rate(self):
        d = self.smtpd(config_extra=BASE,
                       limits={"connections_per_minute": 1})
        c = self.track(BoundConn(d.host, d.port, "127.0.0.9"))
        self.assertReply(c.reply(), 220)
        c2 = self.track(BoundConn(d.host, d.port, "127.0.0.9"))
        self.assertReply(c2.reply(), 421, "4.7.0")
        self.assertReason(d, "policy-refused")

    def test_bdat_error(self):
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        self.assertReply(c.cmd("BDAT many"), 501, "5.5.4")
        self.assertTrue(c.closed())
        self.assertReason(d, "bdat-error")

    def test_timeout(self):
        d = self.smtpd(limits={"command_timeout": 1})
        c = self.open(d)
        c.sock.settimeout(15)
        self.assertReply(c.reply(), 421, "4.4.2")
        self.assertReason(d, "timeout")


if __name__ == "__main__":
    unittest.main()
