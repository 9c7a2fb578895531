"""HELO checks, greylisting, pcre2 rules and per-client limits, from an
untrusted loopback address (127.0.0.9) and a trusted one (127.0.0.1)."""
import math
import os
import time
import unittest

from harness import (BoundConn, PolicyCase, TRUSTED_ADDR, UNTRUSTED_ADDR,
                     enhanced, read_until_closed, split_replies)

BASE = ('ournets = [ "127.0.0.1/32" ];\n'
        'ourdomains = [ "ours.example" ];\n')
NOSLOW = {"tarpit_delay": 0, "errors": 1000}


def msg(headers, body="body line\r\n"):
    return ("".join(h + "\r\n" for h in headers) + "\r\n" + body +
            ".\r\n").encode()


class HeloChecks(PolicyCase):
    """helo_checks = true: bad HELO/EHLO names from untrusted clients get
    550 5.7.1 and the client may try again; trusted clients are exempt."""

    BAD = ["localhost", "nodot", "mx.test.example", "MX.TEST.EXAMPLE.",
           "ours.example", "192.0.2.1", "10.1.2.3.", "box.localdomain",
           "printer.local", "a.test", "www.example.com", "mail.example.org",
           "host.invalid", "[300.1.1.1]", "[IPv6:zz::1]", "[not-an-address]",
           "bad_name.isp.net"]
    GOOD = ["mail.isp.net", "MAIL.ISP.NET.", "[192.0.2.1]", "[IPv6:::1]",
            "[IPv6:2001:db8::25]", "smtp-out.customer.de"]

    def setUp(self):
        super().setUp()
        self.d = self.smtpd(config_extra=BASE + "helo_checks = true;",
                            limits=NOSLOW)

    def test_bad_names_refused(self):
        """Each bad name: 550 5.7.1 to both HELO and EHLO, logged."""
        c = self.client(self.d, helo=None)
        for name in self.BAD:
            for verb in ("EHLO", "HELO"):
                with self.subTest(verb=verb, name=name):
                    self.assertReply(c.cmd("%s %s" % (verb, name)), 550,
                                     "5.7.1")
        self.assertIn("policy helo refused name=localhost", self.d.logtext())

    def test_good_names_accepted(self):
        """Real-looking names and valid address literals are accepted."""
        for name in self.GOOD:
            with self.subTest(name=name):
                c = self.client(self.d, helo=None)
                self.assertReply(c.cmd("EHLO " + name), 250)
                self.assertReply(c.cmd("HELO " + name), 250)

    def test_client_may_retry_after_refusal(self):
        """After a refused EHLO the session goes on: a good EHLO is taken
        and a message can be sent."""
        c = self.client(self.d, helo=None)
        self.assertReply(c.cmd("EHLO localhost"), 550, "5.7.1")
        self.assertReply(c.cmd("MAIL FROM:<a@other.example>"), 503, "5.5.1")
        self.assertReply(c.cmd("EHLO mail.isp.net"), 250)
        self.start_mail(c, "<a@other.example>", ["<u@ours.example>"])
        self.queued_id(self.send_data(c, msg(["Subject: x"])))

    def test_trusted_clients_exempt(self):
        """127.0.0.1 (ournets) may say anything that parses."""
        for name in ("localhost", "nodot", "mx.test.example", "192.0.2.1"):
            with self.subTest(name=name):
                c = self.client(self.d, TRUSTED_ADDR, helo=None)
                self.assertReply(c.cmd("EHLO " + name), 250)

    def test_off_by_default(self):
        """Without helo_checks, untrusted clients may say localhost."""
        self.d.stop()   # one daemon per spool
        d = self.smtpd(config_extra=BASE)
        c = self.client(d, helo=None)
        self.assertReply(c.cmd("EHLO localhost"), 250)


class Greylisting(PolicyCase):
    """greylist = { delay = 2; }: the first attempt of a triplet gets 451
    4.7.1 at RCPT and the session goes on; a retry after the delay passes."""

    DELAY = 2

    def setUp(self):
        super().setUp()
        # In the spool: smtpd started as root writes it as its own user.
        self.grey = os.path.join(self.workdir, "spool", "grey.db")
        self.d = self.smtpd(config_extra=BASE + (
            'greylist = { delay = %d; file = "%s"; };' % (self.DELAY,
                                                          self.grey)),
            limits=NOSLOW)

    def attempt(self, source, sender="<a@sender.example>",
                rcpt="<u@ours.example>"):
        """A fresh session's RCPT reply for one triplet; the session."""
        c = self.client(self.d, source)
        self.assertReply(c.cmd("MAIL FROM:" + sender), 250, "2.1.0")
        return c.cmd("RCPT TO:" + rcpt), c

    def wait_delay(self, after):
        """Sleeps until whole seconds since `after` reach the delay."""
        target = math.floor(after) + self.DELAY + 0.05
        while time.time() < target:
            time.sleep(min(0.2, max(0.0, target - time.time())))

    def test_first_attempt_then_retry(self):
        """451 4.7.1 first (session goes on: other RCPT, RSET, QUIT work);
        an early retry still 451; after the delay the retry passes and
        the message is queued; the next time it passes at once."""
        rep, c = self.attempt(UNTRUSTED_ADDR)
        t_first = time.time()
        self.assertReply(rep, 451, "4.7.1")
        self.assertIn("Greylisted", rep[1][-1])
        self.assertReply(c.cmd("RCPT TO:<v@ours.example>"), 451, "4.7.1")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
        rep, c = self.attempt(UNTRUSTED_ADDR)
        self.assertReply(rep, 451, "4.7.1", "retry before the delay passed")
        self.wait_delay(t_first)
        rep, c = self.attempt(UNTRUSTED_ADDR)
        self.assertReply(rep, 250, "2.1.5")
        self.queued_id(self.send_data(c, msg(["Subject: grey"])))
        # Same /24: a neighbouring address counts as the same client.
        rep, c = self.attempt("127.0.0.10")
        self.assertReply(rep, 250, "2.1.5")
        self.assertIn("policy greylisted to=<u@ours.example>",
                      self.d.logtext())

    def test_others_unaffected(self):
        """Trusted clients are never greylisted; another sender, recipient
        or client network is a new triplet."""
        rep, _ = self.attempt(TRUSTED_ADDR)
        self.assertReply(rep, 250, "2.1.5")
        rep, _ = self.attempt(UNTRUSTED_ADDR)
        self.assertReply(rep, 451, "4.7.1")
        for source, sender, rcpt in (
                (UNTRUSTED_ADDR, "<b@sender.example>", "<u@ours.example>"),
                (UNTRUSTED_ADDR, "<a@sender.example>", "<w@ours.example>"),
                ("127.0.1.9", "<a@sender.example>", "<u@ours.example>")):
            with self.subTest(source=source, sender=sender, rcpt=rcpt):
                rep, _ = self.attempt(source, sender, rcpt)
                self.assertReply(rep, 451, "4.7.1")
        rep, _ = self.attempt(TRUSTED_ADDR)
        self.assertReply(rep, 250, "2.1.5")

    def test_state_file_after_stop(self):
        """The daemon writes the greylist file when it stops; it names the
        triplet (client /24, sender, recipient)."""
        rep, c = self.attempt(UNTRUSTED_ADDR)
        self.assertReply(rep, 451, "4.7.1")
        c.cmd("QUIT")
        read_until_closed(c, timeout=5)
        self.assertEqual(self.d.stop(), 0)
        self.assertTrue(os.path.exists(self.grey), "no greylist file")
        with open(self.grey) as f:
            text = f.read()
        self.assertIn("127.0.0.0|a@sender.example|u@ours.example", text)

    def test_state_survives_restart(self):
        """A triplet seen by one daemon passes in the next one after the
        delay: the file is read back."""
        rep, c = self.attempt(UNTRUSTED_ADDR)
        t_first = time.time()
        self.assertReply(rep, 451, "4.7.1")
        c.close()
        self.d.stop()
        self.d.start()
        self.wait_delay(t_first)
        rep, _ = self.attempt(UNTRUSTED_ADDR)
        self.assertReply(rep, 250, "2.1.5")


class Rules(PolicyCase):
    """rules = ( ... ): pcre2 regexes on helo, sender, rcpt and header
    lines with reject, defer, accept, drop and tag."""

    RULES = r'''
rules = (
  { helo = "^bad\\.helo\\.example$"; action = "reject"; code = 554;
    status = "5.7.1"; text = "Go away, helo"; },
  { sender = "@spammer\\.example$"; action = "reject"; code = 553;
    status = "5.7.1"; text = "Sender refused here"; },
  { sender = "@later\\.example$"; action = "defer"; },
  { sender = "^vanish@"; action = "drop"; },
  { rcpt = "^noone@"; action = "reject"; text = "No such person"; },
  { rcpt = "^busy@"; action = "defer"; code = 452; status = "4.2.2";
    text = "Mailbox full"; },
  { rcpt = "^blackhole@"; action = "drop"; },
  { header = "^Subject:.*lottery"; action = "reject"; code = 554;
    status = "5.7.1"; text = "No lotteries"; },
  { header = "^Subject:.*tomorrow"; action = "defer"; text = "Come back"; },
  { header = "^X-Mailer: bulk"; action = "tag"; text = "X-Bulk: yes"; },
  { header = "^X-Drop: yes"; action = "drop"; },
  { header = "^X-Evil: (a|aa)+$"; action = "reject"; text = "Evil"; }
);
'''

    def setUp(self):
        super().setUp()
        self.d = self.smtpd(config_extra=BASE + self.RULES, limits=NOSLOW)

    def test_helo_rule(self):
        """A helo rule's reject uses its code, status and text; the client
        may try another name."""
        c = self.client(self.d, helo=None)
        self.assertEqual(c.cmd("EHLO BAD.helo.example"),
                         (554, ["554 5.7.1 Go away, helo"]))
        self.assertReply(c.cmd("EHLO good.helo.example"), 250)

    def test_sender_rules(self):
        """reject with a custom code, defer with the default 451 4.7.1."""
        c = self.client(self.d)
        self.assertEqual(c.cmd("MAIL FROM:<x@spammer.example>"),
                         (553, ["553 5.7.1 Sender refused here"]))
        self.assertEqual(c.cmd("MAIL FROM:<x@later.example>"),
                         (451, ["451 4.7.1 Try again later"]))
        self.assertReply(c.cmd("MAIL FROM:<x@fine.example>"), 250, "2.1.0")

    def test_rcpt_rules(self):
        """reject with the default code and a custom text; defer with a
        custom 452 4.2.2; other recipients are accepted."""
        c = self.client(self.d)
        self.assertReply(c.cmd("MAIL FROM:<x@fine.example>"), 250, "2.1.0")
        self.assertEqual(c.cmd("RCPT TO:<noone@ours.example>"),
                         (550, ["550 5.7.1 No such person"]))
        self.assertEqual(c.cmd("RCPT TO:<busy@ours.example>"),
                         (452, ["452 4.2.2 Mailbox full"]))
        self.assertReply(c.cmd("RCPT TO:<u@ours.example>"), 250, "2.1.5")

    def test_drop_closes_without_reply(self):
        """drop on a sender, a recipient or a header line: the connection
        is closed and nothing more is said; nothing queued."""
        c = self.client(self.d)
        c.send("MAIL FROM:<vanish@fine.example>\r\n")
        self.assertEqual(read_until_closed(c), b"")
        c = self.client(self.d)
        self.assertReply(c.cmd("MAIL FROM:<x@fine.example>"), 250, "2.1.0")
        c.send("RCPT TO:<blackhole@ours.example>\r\n")
        self.assertEqual(read_until_closed(c), b"")
        c = self.client(self.d)
        self.start_mail(c, "<x@fine.example>", ["<u@ours.example>"])
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(msg(["X-Drop: yes", "Subject: d"]))
        self.assertEqual(read_until_closed(c), b"")
        self.assertNothingQueued(self.d)
        self.assertEqual(self.d.logtext().count("dropped by policy"), 3)

    def test_header_reject_and_defer(self):
        """Header rules act at the end of the data; a folded Subject is
        matched unfolded."""
        c = self.client(self.d)
        self.start_mail(c, "<x@fine.example>", ["<u@ours.example>"])
        rep = self.send_data(c, msg(["Subject: you have won", " the LOTTERY"]))
        self.assertEqual(rep, (554, ["554 5.7.1 No lotteries"]))
        self.start_mail(c, "<x@fine.example>", ["<u@ours.example>"])
        rep = self.send_data(c, msg(["Subject: see you tomorrow"]))
        self.assertEqual(rep, (451, ["451 4.7.1 Come back"]))
        self.assertNothingQueued(self.d)

    def test_runaway_regex_defers(self):
        """A rule whose matching exceeds pcre2's limits cannot decide: the
        message gets 451 4.3.0, not a pass and not a hang."""
        c = self.client(self.d)
        self.start_mail(c, "<x@fine.example>", ["<u@ours.example>"])
        rep = self.send_data(c, msg(["X-Evil: " + "a" * 60 + "b",
                                     "Subject: evil"]))
        self.assertReply(rep, 451, "4.3.0")
        self.assertNothingQueued(self.d)
        self.assertIn("match error", self.d.logtext())

    def test_tag_adds_header(self):
        """tag: the message is queued with the rule's header line added."""
        c = self.client(self.d)
        self.start_mail(c, "<x@fine.example>", ["<u@ours.example>"])
        qid = self.queued_id(self.send_data(
            c, msg(["X-Mailer: BULK sender 2.0", "Subject: tagged"])))
        [(env, body)] = self.messages(self.d)
        head = body.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        self.assertEqual(head.count(b"X-Bulk: yes"), 1, head)
        self.assertIn(b"X-Mailer: BULK sender 2.0", head)
        self.assertIn(qid, self.d.queued())

    def test_untagged_when_no_match(self):
        c = self.client(self.d)
        self.start_mail(c, "<x@fine.example>", ["<u@ours.example>"])
        self.queued_id(self.send_data(c, msg(["X-Mailer: mutt",
                                               "Subject: plain"])))
        [(env, body)] = self.messages(self.d)
        self.assertNotIn(b"X-Bulk", body)

    def test_trusted_clients_skip_rules(self):
        """127.0.0.1 is not checked by any rule."""
        c = self.client(self.d, TRUSTED_ADDR, helo="bad.helo.example")
        self.start_mail(c, "<x@spammer.example>", ["<noone@ours.example>"])
        self.queued_id(self.send_data(c, msg(["Subject: lottery",
                                               "X-Mailer: bulk"])))
        [(env, body)] = self.messages(self.d)
        self.assertNotIn(b"X-Bulk", body)


class Limits(PolicyCase):
    """messages_per_minute, connections_per_minute, tarpit and errors."""

    def test_messages_per_minute(self):
        """Over 2 MAILs a minute: 451 4.7.1 for that client only; other
        and trusted clients go on."""
        d = self.smtpd(config_extra=BASE,
                       limits=dict(NOSLOW, messages_per_minute=2))
        c = self.client(d)
        for _ in range(2):
            self.assertReply(c.cmd("MAIL FROM:<a@other.example>"), 250,
                             "2.1.0")
            self.assertReply(c.cmd("RSET"), 250)
        rep = c.cmd("MAIL FROM:<a@other.example>")
        self.assertReply(rep, 451, "4.7.1")
        self.assertIn("Too many messages", rep[1][-1])
        c2 = self.client(d)
        self.assertReply(c2.cmd("MAIL FROM:<a@other.example>"), 451, "4.7.1")
        c3 = self.client(d, "127.0.0.10")
        self.assertReply(c3.cmd("MAIL FROM:<a@other.example>"), 250, "2.1.0")
        t = self.client(d, TRUSTED_ADDR)
        for _ in range(5):
            self.assertReply(t.cmd("MAIL FROM:<a@other.example>"), 250,
                             "2.1.0")
            self.assertReply(t.cmd("RSET"), 250)

    def test_connections_per_minute(self):
        """The third connection in a minute from 127.0.0.9 gets 421 4.7.0
        and is closed; other and trusted clients are served."""
        d = self.smtpd(config_extra=BASE,
                       limits={"connections_per_minute": 2})
        for _ in range(2):
            self.client(d, helo=None)
        c = self.track(BoundConn(d.host, d.port, UNTRUSTED_ADDR))
        replies = split_replies(read_until_closed(c))
        self.assertEqual(len(replies), 1, replies)
        self.assertEqual(replies[0][0], 421)
        self.assertEqual(enhanced(replies[0][1]), "4.7.0")
        self.client(d, "127.0.0.10", helo=None)
        for _ in range(4):
            self.client(d, TRUSTED_ADDR, helo=None)

    def test_tarpit_then_error_limit(self):
        """With tarpit_after = 1 each error reply still comes (slower), and
        at limits.errors = 5 the server says 421 4.7.0 and closes."""
        d = self.smtpd(config_extra=BASE, limits={
            "tarpit_after": 1, "tarpit_delay": 50, "errors": 5})
        c = self.client(d, helo=None)
        for i in range(4):
            self.assertReply(c.cmd("BOGUS %d" % i), 500, "5.5.2")
        c.send("BOGUS 4\r\n")
        replies = split_replies(read_until_closed(c, timeout=20))
        self.assertEqual([r[0] for r in replies], [500, 421], replies)
        self.assertEqual(enhanced(replies[1][1]), "4.7.0")


if __name__ == "__main__":
    unittest.main()
