"""Plan 9's access verbs (allow, block, deny, dial, delay) from the config
and from access_file, and -s / saveblockedmsg: refused messages kept under
the dump directory and never in the queue."""
import os
import re
import time
import unittest

from harness import (PolicyCase, TRUSTED_ADDR, enhanced,
                     parse_spool, read_until_closed)

BASE = ('ournets = [ "127.0.0.1/32" ];\n'
        'ourdomains = [ "ours.example" ];\n')
NOSLOW = {"tarpit_delay": 0, "errors": 1000}
ACCESS_LINES = [
    "dial 127.0.0.20",
    "deny 127.0.0.21",
    "block 127.0.0.22",
    "delay 127.0.0.23",
    "allow friend.example!*",
    "deny bad.example!*",
    "deny spammer@bad2.example",
    "block spam.example!*",
    "block *.spam.example!*",
    "delay slow.example!bulk*",
    "dial dialup.example!*",
    "block *.catchall.example!*",
]
ACCESS = "access = [ %s ];\n" % ", ".join('"%s"' % l for l in ACCESS_LINES)


def msg(marker, extra=(), body_lines=1):
    head = ["From: someone@other.example", "Subject: " + marker] + list(extra)
    body = "".join("%s line %d\r\n" % (marker, i) for i in range(body_lines))
    return ("\r\n".join(head) + "\r\n\r\n" + body + ".\r\n").encode()


def dump_files(dumpdir):
    """{relative path: bytes} of every file under dumpdir."""
    out = {}
    for root, _, files in os.walk(dumpdir):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, dumpdir)] = fh.read()
    return out


class AccessVerbs(PolicyCase):
    """The verbs from the access list, first match wins."""

    def setUp(self):
        super().setUp()
        self.d = self.smtpd(config_extra=BASE + ACCESS, limits=NOSLOW)

    def transaction(self, c, sender, rcpt="<u@ours.example>"):
        """MAIL (must pass) and RCPT; the DATA reply."""
        self.assertReply(c.cmd("MAIL FROM:" + sender), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:" + rcpt), 250, "2.1.5")
        return self.send_data(c, msg("m"))

    def test_deny_client_address(self):
        """deny <ip>: MAIL gets the two-line 554 naming the sender and
        postmaster@<hostname>; nothing queued."""
        c = self.client(self.d, "127.0.0.21")
        code, lines = c.cmd("MAIL FROM:<joe@somewhere.example>")
        self.assertEqual(code, 554, lines)
        self.assertEqual(lines, [
            "554-5.7.1 We don't accept mail from joe@somewhere.example.",
            "554 5.7.1 Contact postmaster@mx.test.example for more "
            "information."])
        self.assertReply(c.cmd("RCPT TO:<u@ours.example>"), 503, "5.5.1")
        self.assertNothingQueued(self.d)
        self.assertIn("policy denied sender=<joe@somewhere.example>",
                      self.d.logtext())

    def test_deny_sender_patterns(self):
        """deny domain!* and deny user@domain, in any case; another sender
        in the same session is then accepted."""
        c = self.client(self.d)
        for sender in ("<x@bad.example>", "<X@BAD.Example>",
                       "<spammer@bad2.example>"):
            with self.subTest(sender=sender):
                code, lines = c.cmd("MAIL FROM:" + sender)
                self.assertEqual(code, 554, lines)
                self.assertEqual(len(lines), 2, lines)
                self.assertEqual(enhanced(lines), "5.7.1")
                self.assertIn("We don't accept mail from %s." % sender[1:-1],
                              lines[0])
                self.assertIn("postmaster@mx.test.example", lines[1])
        self.assertReply(c.cmd("MAIL FROM:<other@bad2.example>"), 250, "2.1.0")
        self.assertReply(c.cmd("RSET"), 250)
        self.queued_id(self.transaction(c, "<ok@fine.example>"))

    def test_dial_client_address(self):
        """dial <ip>: every command but QUIT gets 554 5.7.1 "We don't accept
        mail from dial-up ports.", and QUIT still says goodbye."""
        c = self.client(self.d, "127.0.0.20", helo=None)
        for cmd in ("EHLO mail.isp.net", "HELO mail.isp.net",
                    "MAIL FROM:<a@other.example>", "RCPT TO:<u@ours.example>",
                    "DATA", "RSET", "NOOP", "VRFY u"):
            with self.subTest(cmd=cmd):
                code, lines = c.cmd(cmd)
                self.assertEqual((code, lines[-1]), (
                    554, "554 5.7.1 We don't accept mail from dial-up ports."))
        self.assertReply(c.cmd("QUIT"), 221)
        self.assertNothingQueued(self.d)

    def test_dial_sender(self):
        """dial domain!*: refused at MAIL, and from then on every command
        (a new EHLO, MAIL, RCPT) gets the same 554."""
        c = self.client(self.d)
        dial = "554 5.7.1 We don't accept mail from dial-up ports."
        code, lines = c.cmd("MAIL FROM:<pc17@dialup.example>")
        self.assertEqual((code, lines[-1]), (554, dial))
        for cmd in ("RCPT TO:<u@ours.example>", "EHLO mail.isp.net",
                    "MAIL FROM:<a@other.example>"):
            with self.subTest(cmd=cmd):
                code, lines = c.cmd(cmd)
                self.assertEqual((code, lines[-1]), (554, dial))

    def test_block_client_and_sender(self):
        """block <ip> and block *.dom!*: the message is read, then 554 5.7.1
        "we believe this is spam."; nothing queued."""
        c = self.client(self.d, "127.0.0.22")
        code, lines = self.transaction(c, "<a@other.example>")
        self.assertEqual(lines, ["554 5.7.1 we believe this is spam."])
        c = self.client(self.d)
        for sender in ("<a@spam.example>", "<a@x.y.spam.example>"):
            with self.subTest(sender=sender):
                self.assertReply(self.transaction(c, sender), 554, "5.7.1")
        self.assertNothingQueued(self.d)

    def test_delay_client_and_sender(self):
        """delay <ip> and delay dom!prefix*: the message is read, then 450
        4.3.0 "There will be a delay in delivery of this message."; a user
        outside the prefix is not delayed."""
        c = self.client(self.d, "127.0.0.23")
        code, lines = self.transaction(c, "<a@other.example>")
        self.assertEqual(lines, ["450 4.3.0 There will be a delay in "
                                 "delivery of this message."])
        c = self.client(self.d)
        self.assertReply(self.transaction(c, "<bulk7@slow.example>"),
                         450, "4.3.0")
        self.assertNothingQueued(self.d)
        self.queued_id(self.transaction(c, "<person@slow.example>"))

    def test_block_with_bdat(self):
        """The verdict is the same when the message comes with BDAT."""
        c = self.client(self.d)
        self.assertReply(c.cmd("MAIL FROM:<a@spam.example>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<u@ours.example>"), 250, "2.1.5")
        data = msg("bdat")[:-3]
        c.send(b"BDAT %d LAST\r\n" % len(data) + data)
        self.assertEqual(c.reply(), (554, ["554 5.7.1 we believe this is "
                                           "spam."]))
        self.assertNothingQueued(self.d)

    def test_allow_wins_when_first(self):
        """allow friend.example!* is listed before block *.catchall...: an
        allowed sender passes, while the block still catches others."""
        c = self.client(self.d)
        self.queued_id(self.transaction(c, "<x@friend.example>"))
        self.assertReply(self.transaction(c, "<x@a.catchall.example>"),
                         554, "5.7.1")
        self.assertEqual(len(self.messages(self.d)), 1)

    def test_allow_does_not_open_relay(self):
        """allow skips MAIL checks only: relaying is still refused."""
        c = self.client(self.d)
        self.assertReply(c.cmd("MAIL FROM:<x@friend.example>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<u@other.example>"), 554, "5.7.1")

    def test_trusted_clients_not_checked(self):
        """Access rules do not apply to ournets: a denied sender from
        127.0.0.1 is accepted."""
        c = self.client(self.d, TRUSTED_ADDR)
        self.queued_id(self.transaction(c, "<x@bad.example>"))
        self.queued_id(self.transaction(c, "<x@spam.example>"))


class AccessFile(PolicyCase):
    """access_file: the same verbs, one rule a line, # comments."""

    def test_access_file_rules(self):
        path = os.path.join(self.workdir, "access")
        with open(path, "w") as f:
            f.write("# Plan 9 style blocked list\n\n")
            for line in ACCESS_LINES:
                f.write("  %s   # comment\n" % line)
        d = self.smtpd(config_extra=BASE + 'access_file = "%s";\n' % path,
                       limits=NOSLOW)
        c = self.client(d, "127.0.0.21")
        code, lines = c.cmd("MAIL FROM:<joe@somewhere.example>")
        self.assertEqual(code, 554)
        self.assertEqual(len(lines), 2, lines)
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<x@bad.example>"), 554, "5.7.1")
        self.assertReply(c.cmd("MAIL FROM:<x@spam.example>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<u@ours.example>"), 250, "2.1.5")
        self.assertReply(self.send_data(c, msg("f")), 554, "5.7.1")
        c = self.client(d, "127.0.0.20", helo=None)
        self.assertReply(c.cmd("EHLO mail.isp.net"), 554, "5.7.1")
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<x@friend.example>"), 250, "2.1.0")
        self.assertNothingQueued(d)


class SaveBlocked(PolicyCase):
    """-s / saveblockedmsg: a message refused after its data is kept in
    dump/YYYYMMDD/ID in the spool's format, cut at limits.dump_size."""

    RULES = ('rules = ( { header = "^Subject:.*lottery"; action = "reject"; '
             'code = 554; status = "5.7.1"; text = "No lotteries"; } );\n')

    def refuse_three(self, d):
        """A block, a delay and a header-rule refusal; the markers of the
        two refused (5xx) ones, which alone are saved."""
        c = self.client(d)
        out = []
        for sender, subject, code, ecode in (
                ("<a@x.spam.example>", "blocked-%d" % time.time_ns(), 554,
                 "5.7.1"),
                ("<bulk1@slow.example>", "delayed-%d" % time.time_ns(), 450,
                 "4.3.0"),
                ("<b@other.example>", "lottery-%d" % time.time_ns(), 554,
                 "5.7.1")):
            self.assertReply(c.cmd("MAIL FROM:" + sender), 250, "2.1.0")
            self.assertReply(c.cmd("RCPT TO:<u@ours.example>"), 250, "2.1.5")
            rep = self.send_data(c, msg(subject))
            self.assertReply(rep, code, ecode)
            if code >= 500:
                out.append((sender, subject))
        if any(s.startswith("lottery") for _, s in out):
            self.assertIn("No lotteries", rep[1][-1])
        return out

    def check_dump(self, dumpdir, refused, log):
        files = dump_files(dumpdir)
        self.assertEqual(len(files), len(refused), sorted(files))
        today = {time.strftime("%Y%m%d", time.localtime(time.time() + o))
                 for o in (-86400, 0)}
        by_subject = {}
        for rel, raw in files.items():
            day, name = rel.split(os.sep)
            self.assertIn(day, today)
            self.assertRegex(name, r"^[A-Za-z0-9]+$")
            self.assertIn(os.path.join(dumpdir, rel), log)
            env, body = parse_spool(raw)
            m = re.search(rb"^Subject: (\S+)", body, re.M)
            by_subject[m.group(1).decode()] = env
            self.assertTrue(body.startswith(b"Received: from mail.isp.net"),
                            body[:80])
        for sender, subject in refused:
            self.assertIn(subject, by_subject)
            self.assertEqual(by_subject[subject]["from"], sender)
            self.assertEqual(by_subject[subject]["rcpt"], ["<u@ours.example>"])

    def test_s_flag_saves_refused_messages(self):
        """-s: block (554) and a header rule's reject are each saved under
        spool/dump/YYYYMMDD/ID, a delay (450) is not (the client sends it
        again); the queue stays empty."""
        d = self.smtpd(config_extra=BASE + ACCESS + self.RULES, args=["-s"])
        refused = self.refuse_three(d)
        self.assertNothingQueued(d)
        self.check_dump(os.path.join(d.spool, "dump"), refused,
                        self.wait_log(d, "refused message saved", 2))

    def test_saveblockedmsg_and_dump_directory(self):
        """saveblockedmsg = true with dump = "dir" saves there instead."""
        dump = os.path.join(self.workdir, "kept")
        d = self.smtpd(config_extra=BASE + ACCESS + self.RULES +
                       'saveblockedmsg = true;\ndump = "%s";\n' % dump)
        refused = self.refuse_three(d)
        self.assertNothingQueued(d)
        self.check_dump(dump, refused,
                        self.wait_log(d, "refused message saved", 2))
        self.assertFalse(os.path.exists(os.path.join(d.spool, "dump")))

    def test_delayed_message_not_saved(self):
        """-s: a message answered 450 (delay) leaves nothing in dump/."""
        d = self.smtpd(config_extra=BASE + ACCESS, args=["-s"])
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<bulk1@slow.example>"), 250)
        self.assertReply(c.cmd("RCPT TO:<u@ours.example>"), 250)
        self.assertReply(self.send_data(c, msg("delayed")), 450, "4.3.0")
        self.assertReply(c.cmd("NOOP"), 250)
        self.assertEqual(dump_files(os.path.join(d.spool, "dump")), {})
        self.assertNotIn("refused message saved", d.logtext())

    def old_dump_file(self, dumpdir, day, name, size, age):
        """A saved message of size bytes, last written age seconds ago."""
        os.makedirs(os.path.join(dumpdir, day), exist_ok=True)
        path = os.path.join(dumpdir, day, name)
        with open(path, "wb") as f:
            f.write(b"x" * size)
        t = time.time() - age
        os.utime(path, (t, t))
        return path

    def block_one(self, d):
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<a@spam.example>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<u@ours.example>"), 250, "2.1.5")
        self.assertReply(self.send_data(c, msg("new-%d" % time.time_ns())),
                         554, "5.7.1")
        self.wait_log(d, "refused message saved")

    def test_dump_pruned_by_age(self):
        """limits.dump_max_age = 1 day: saving a message removes one saved
        8 days ago (and its emptied day directory), keeps one of an hour
        ago, and leaves a file that is not in a day directory alone."""
        dumpdir = os.path.join(self.workdir, "spool", "dump")
        old = self.old_dump_file(dumpdir, "20000101", "OLD", 100, 8 * 86400)
        recent = self.old_dump_file(dumpdir, "20000102", "RECENT", 100, 3600)
        os.makedirs(dumpdir, exist_ok=True)
        other = os.path.join(dumpdir, "README")
        with open(other, "w") as f:
            f.write("not a saved message\n")
        os.utime(other, (0, 0))
        d = self.smtpd(config_extra=BASE + ACCESS, args=["-s"],
                       limits={"dump_max_age": 86400})
        self.block_one(d)
        self.assertFalse(os.path.exists(old))
        self.assertFalse(os.path.exists(os.path.dirname(old)))
        self.assertTrue(os.path.exists(recent))
        self.assertTrue(os.path.exists(other))
        self.assertEqual(len(dump_files(dumpdir)), 3)

    def test_dump_pruned_by_total_size(self):
        """limits.dump_max_total = 5000 with 2 x 2400 bytes saved before:
        the new message pushes the total over, the oldest goes first and
        the newer old one and the new one stay."""
        dumpdir = os.path.join(self.workdir, "spool", "dump")
        oldest = self.old_dump_file(dumpdir, "20000101", "A", 2400, 7200)
        newer = self.old_dump_file(dumpdir, "20000101", "B", 2400, 3600)
        d = self.smtpd(config_extra=BASE + ACCESS, args=["-s"],
                       limits={"dump_max_total": 5000})
        self.block_one(d)
        self.assertFalse(os.path.exists(oldest))
        self.assertTrue(os.path.exists(newer))
        files = dump_files(dumpdir)
        self.assertEqual(len(files), 2, sorted(files))
        self.assertLessEqual(sum(len(v) for v in files.values()), 5000)

    def test_nothing_saved_without_s(self):
        """Without -s the same refusals leave no file in the dump
        directory (and nothing in the queue)."""
        d = self.smtpd(config_extra=BASE + ACCESS + self.RULES)
        self.refuse_three(d)
        self.assertNothingQueued(d)
        self.assertEqual(dump_files(os.path.join(d.spool, "dump")), {})
        self.assertNotIn("refused message saved", d.logtext())

    def test_dump_size_bounds_the_copy(self):
        """limits.dump_size = 4096: a 200 KB blocked message is kept as
        its first 4096 bytes at most, starting with the envelope."""
        d = self.smtpd(config_extra=BASE + ACCESS, args=["-s"],
                       limits={"dump_size": 4096})
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<a@spam.example>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<u@ours.example>"), 250, "2.1.5")
        rep = self.send_data(c, msg("big", body_lines=10000))
        self.assertReply(rep, 554, "5.7.1")
        files = dump_files(os.path.join(d.spool, "dump"))
        self.assertEqual(len(files), 1)
        raw = next(iter(files.values()))
        self.assertGreater(len(raw), 0)
        self.assertLessEqual(len(raw), 4096)
        env, _ = parse_spool(raw)
        self.assertEqual(env["from"], "<a@spam.example>")
        self.assertNothingQueued(d)

    def test_rule_save_keeps_without_s(self):
        """A rule with save = true keeps its refused message even without
        -s; a rule without it does not."""
        d = self.smtpd(config_extra=BASE + (
            'rules = ( { header = "^Subject: keep"; action = "reject"; '
            'save = true; },\n'
            '          { header = "^Subject: lose"; action = "reject"; } );'))
        c = self.client(d)
        for subject in ("keep-1", "lose-1"):
            self.start_mail(c, "<x@other.example>", ["<u@ours.example>"])
            self.assertReply(self.send_data(c, msg(subject)), 550, "5.7.1")
        files = dump_files(os.path.join(d.spool, "dump"))
        self.assertEqual(len(files), 1, files)
        self.assertIn(b"Subject: keep-1", next(iter(files.values())))
        self.assertNothingQueued(d)

    def test_deny_is_not_saved(self):
        """deny refuses at MAIL: there is no message, so nothing is saved."""
        d = self.smtpd(config_extra=BASE + ACCESS, args=["-s"])
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<x@bad.example>"), 554, "5.7.1")
        c.cmd("QUIT")
        read_until_closed(c, timeout=5)
        self.assertEqual(dump_files(os.path.join(d.spool, "dump")), {})


if __name__ == "__main__":
    unittest.main()
