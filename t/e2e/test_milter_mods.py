"""Milters that change the message: header fields changed, deleted and
inserted at an index, the body replaced, recipients added (with and
without ESMTP parameters) and removed, the sender changed.  The milters
are real libmilter ones (python3-milter, pymilter) on a unix socket in
the test's directory; the mail goes through smtpd (smtplib) and its
queue runner into Maildirs, where the test looks at what arrived, for
whom, and with which Return-Path."""
import os
import smtplib
import subprocess
import sys
import time
import unittest

from harness import PolicyCase, TRUSTED_ADDR, parse_spool
from qharness import maildir_files, wait_for
from test_dkim import dkim_verify_all, keygen
from test_milter import BASE, Milter, milters, packet

try:
    import Milter as _pymilter  # noqa: F401
    HAVE_PYMILTER = True
except ImportError:
    HAVE_PYMILTER = False

# The milter program: what it does at the end of a message depends on
# the Subject it was shown.
PROGRAM = r'''
import os, sys
import Milter

class Edit(Milter.Base):
    def __init__(self):
        self.subject = ""

    def header(self, name, value):
        if name.lower() == "subject":
            self.subject = value
        return Milter.CONTINUE

    def eom(self):
        if self.subject == "edit":
            self.chgheader("Subject", 1, "changed subject")
            self.chgheader("X-Drop", 1, "")
            self.chgheader("X Bad", 1, "")
            self.chgheader("x-two", 2, "second changed")
            self.chgheader("X-Absent", 1, "was not there")
            self.addheader("X-At1", "inserted", 1)
            self.addheader("X-Last", "appended")
            self.replacebody(b"new body\nsecond line\n")
            self.addrcpt("<carol@ours.example>")
            self.addrcpt("<dave@ours.example>", "NOTIFY=NEVER")
            self.delrcpt("<bob@ours.example>")
            self.chgfrom("<bounces@isp.net>")
        elif self.subject == "big":
            chunk = b"x" * 1000 + b"\r\n"
            for i in range(int(sys.argv[3])):
                self.replacebody(chunk * 60)
        elif self.subject == "nobody":
            self.delrcpt("<bob@ours.example>")
        return Milter.ACCEPT

os.umask(0)
Milter.factory = Edit
Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY |
                 Milter.ADDRCPT | Milter.ADDRCPT_PAR | Milter.DELRCPT |
                 Milter.CHGFROM)
Milter.runmilter(sys.argv[1], "unix:" + sys.argv[2], 30)
'''

MSG = (b"From: Alice <alice@isp.net>\r\n"
       b"To: bob@ours.example\r\n"
       b"Subject: %s\r\n"
       b"X-Two: first\r\n"
       b"X-Drop: goes\r\n"
       b"x-two: second\r\n"
       b"\r\n"
       b"old body\r\n")


@unittest.skipUnless(HAVE_PYMILTER, "python3-milter is not installed")
class MilterModsCase(PolicyCase):

    def pymilter(self, name="edit", chunks=0):
        path = os.path.join(self.workdir, name + ".sock")
        prog = os.path.join(self.workdir, "editor_milter.py")
        with open(prog, "w") as f:
            f.write(PROGRAM)
        logpath = os.path.join(self.workdir, name + ".log")
        log = open(logpath, "ab")
        self.addCleanup(log.close)
        p = subprocess.Popen([sys.executable, prog, name, path, str(chunks)],
                             stdout=log, stderr=log)

        def stop():
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.addCleanup(stop)
        if not wait_for(lambda: os.path.exists(path), 10):
            with open(logpath) as f:
                self.fail("the milter did not start: " + path + f.read())
        return path

    def daemon(self, *addresses, limits=None, **kw):
        mail = os.path.join(self.workdir, "mail")
        extra = (BASE + milters(*[dict({"address": '"%s"' % a,
                                        "timeout": '"5s"'}, **kw)
                                  for a in addresses]) +
                 'routes = ( { domain = "ours.example"; action = "maildir"; '
                 'catchall = true; path = "%s/%%d/%%u"; create = true; } );\n'
                 'queue = { runner = true; retry_min = 1; scan_interval = 1; '
                 '};\n' % mail)
        lim = {"tarpit_delay": 0, "errors": 1000}
        lim.update(limits or {})
        return self.smtpd(config_extra=extra, limits=lim)

    def assertLogged(self, d, needle):
        self.assertIn(needle, self.wait_log(d, needle))

    def box(self, user):
        return maildir_files(os.path.join(self.workdir, "mail",
                                          "ours.example", user))

    def send(self, d, subject, rcpts=("bob@ours.example",), sender=None):
        with smtplib.SMTP(d.host, d.port, timeout=30) as c:
            return c.sendmail(sender or "alice@isp.net", list(rcpts),
                              MSG % subject)

    def test_header_body_and_envelope_changed(self):
        """One milter changes Subject, deletes X-Drop, changes the second
        x-two (case does not matter), adds a field that is not there,
        inserts at index 1, appends, replaces the body (LF lines made
        CRLF), adds carol, adds dave with NOTIFY=NEVER, removes bob and
        changes the sender: carol and dave get the changed message with
        the new Return-Path, bob nothing; one log line per change.  Its
        deletion of a field whose name has a space is not done, and
        logged."""
        d = self.daemon("unix:" + self.pymilter())
        self.assertEqual(self.send(d, b"edit", ["bob@ours.example",
                                                "erin@ours.example"]), {})
        self.assertTrue(wait_for(lambda: self.box("carol") and
                                 self.box("dave") and self.box("erin"), 20),
                        d.logtext())
        self.assertEqual(self.box("bob"), [])
        for user in ("carol", "dave", "erin"):
            [path] = self.box(user)
            # A Maildir has LF lines (the spool's CRLF: test_milter.py).
            with open(path, "rb") as f:
                got = f.read()
            head, body = got.split(b"\n\n", 1)
            self.assertIn(b"Return-Path: <bounces@isp.net>\n", head)
            self.assertEqual(body, b"new body\nsecond line\n")
            # Below our Received: the fields the milter saw, changed.
            fields = head.split(b"\nReceived: ", 1)[1]
            fields = fields.split(b"\n", 1)[1]
            while fields.startswith((b"\t", b" ")):
                fields = fields.split(b"\n", 1)[1]
            self.assertEqual(fields,
                             b"From: Alice <alice@isp.net>\n"
                             b"X-At1: inserted\n"
                             b"To: bob@ours.example\n"
                             b"Subject: changed subject\n"
                             b"X-Two: first\n"
                             b"x-two: second changed\n"
                             b"X-Absent: was not there\n"
                             b"X-Last: appended", got)
        text = d.logtext()
        for what in ("header field Subject (1) changed",
                     "header field X-Drop (1) deleted",
                     "header field x-two (2) changed",
                     "header field X-Absent (1) not there; added",
                     "header field X-At1 inserted",
                     "header field X-Last added",
                     "body replaced (23 bytes)",
                     "recipient <carol@ours.example> added",
                     "recipient <dave@ours.example> added notify=NEVER",
                     "recipient <bob@ours.example> removed",
                     "sender changed to <bounces@isp.net>",
                     "header field X Bad to delete is malformed; "
                     "not done"):
            self.assertIn("milter unix:", text)
            self.assertRegex(text, r"milter unix:\S+: " + what.replace(
                "(", r"\(").replace(")", r"\)"))

    def assertBodyOverLimit(self, d, subject):
        """The message is refused with the milter's default action
        (451 4.7.1) for a replaced body over the limit of 100000, logged,
        and nothing is queued."""
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.send(d, subject)
        self.assertEqual(cm.exception.smtp_code, 451)
        self.assertIn(b"4.7.1", cm.exception.smtp_error)
        self.assertLogged(d, "replaced body exceeds the message size limit "
                          "(100000); default action tempfail")
        d.settle()
        self.assertNothingQueued(d)

    def test_body_over_the_size_limit(self):
        """A replaced body larger than limits.message_size: the milter's
        default action (tempfail: 451), nothing queued, a log line."""
        d = self.daemon("unix:" + self.pymilter("big", chunks=3),
                        limits={"message_size": 100000})
        self.assertBodyOverLimit(d, b"big")
        self.assertEqual(os.listdir(os.path.join(d.spool, "tmp")), [])

    def test_body_under_the_size_limit(self):
        """The same milter, a body within the limit: delivered as
        replaced (its chunks in order)."""
        d = self.daemon("unix:" + self.pymilter("big", chunks=1),
                        limits={"message_size": 100000})
        self.assertEqual(self.send(d, b"big"), {})
        self.assertTrue(wait_for(lambda: self.box("bob"), 20), d.logtext())
        with open(self.box("bob")[0], "rb") as f:
            body = f.read().split(b"\n\n", 1)[1]
        self.assertEqual(body, (b"x" * 1000 + b"\n") * 60)

    def test_body_over_the_size_limit_once_crlf(self):
        """A replaced body under limits.message_size as sent (bare LF
        line ends) but over it as kept (CRLF): the milter's default
        action, 451 4.7.1, nothing queued."""
        def script(cmd, data, m):
            if cmd == b"E":
                return [packet(b"b", b"line\n" * 18000), packet(b"c")]
            return None
        m = Milter(script)
        self.addCleanup(m.close)
        d = self.daemon("inet:127.0.0.1:%d" % m.port,
                        limits={"message_size": 100000})
        self.assertBodyOverLimit(d, b"plain")

    def test_all_recipients_removed(self):
        """Every recipient removed: the client hears 250, the message is
        discarded (logged), nobody gets it."""
        d = self.daemon("unix:" + self.pymilter())
        self.assertEqual(self.send(d, b"nobody"), {})
        self.assertLogged(d, "no recipients left; message discarded")
        d.settle()
        self.assertNothingQueued(d)

    def test_action_not_negotiated(self):
        """A milter that asked only to add header fields but replaces the
        body: a protocol error, its default action (tempfail: 451 4.7.1;
        accept: queued unchanged), a log line."""
        def script(cmd, data, m):
            if cmd == b"E":
                return [packet(b"b", b"other body\r\n"), packet(b"c")]
            return None
        for default in ("tempfail", "accept"):
            with self.subTest(default=default):
                m = Milter(script, actions=0x01)
                self.addCleanup(m.close)
                d = self.daemon("inet:127.0.0.1:%d" % m.port,
                                default_action='"%s"' % default)
                c = self.client(d)
                self.start_mail(c, "<alice@isp.net>", ["<bob@ours.example>"])
                rep = self.send_data(c, MSG % b"plain" + b".\r\n")
                self.assertLogged(d, "replaces the body without having "
                                  "negotiated it; default action " + default)
                if default == "tempfail":
                    self.assertReply(rep, 451, "4.7.1")
                    d.settle()
                    self.assertNothingQueued(d)
                else:
                    self.assertReply(rep, 250)
                    self.assertTrue(wait_for(lambda: self.box("bob"), 20))
                    with open(self.box("bob")[0], "rb") as f:
                        self.assertTrue(f.read().endswith(
                            b"\n\nold body\n"))
                c.close()
                d.stop()

    def test_two_milters(self):
        """Two milters in a row: the second is shown the message as the
        client sent it; the changes are made in the order of the list,
        each on the result of the first's (its index counts the field
        the first inserted)."""
        def first(cmd, data, m):
            if cmd == b"E":
                return [packet(b"m", b"\0\0\0\1Subject\0one\0"),
                        packet(b"i", b"\0\0\0\0X-First\0yes\0"),
                        packet(b"+", b"<carol@ours.example>\0"),
                        packet(b"c")]
            return None

        def second(cmd, data, m):
            if cmd == b"E":
                return [packet(b"m", b"\0\0\0\1subject\0two\0"),
                        packet(b"i", b"\0\0\0\1X-Second\0yes\0"),
                        packet(b"-", b"<carol@ours.example>\0"),
                        packet(b"c")]
            return None
        m1, m2 = Milter(first), Milter(second)
        self.addCleanup(m1.close)
        self.addCleanup(m2.close)
        d = self.smtpd(config_extra=BASE + milters(
            {"address": '"inet:127.0.0.1:%d"' % m1.port},
            {"address": '"inet:127.0.0.1:%d"' % m2.port}),
            limits={"tarpit_delay": 0})
        c = self.client(d)
        self.start_mail(c, "<alice@isp.net>", ["<bob@ours.example>"])
        qid = self.queued_id(self.send_data(c, MSG % b"plain" + b".\r\n"))
        env, body = parse_spool(self.spooled(d, qid))
        self.assertIn((b"L", b"Subject\0plain\0"), m2.seen)
        self.assertEqual(env["rcpt"], ["<bob@ours.example>"])
        self.assertIn(b"\r\nX-First: yes\r\nX-Second: yes\r\n"
                      b"From: Alice <alice@isp.net>\r\nTo: bob@ours.example"
                      b"\r\nsubject: two\r\n", body)
        text = d.logtext()
        self.assertLess(text.index("Subject (1) changed"),
                        text.index("subject (1) changed"))

    def test_large_message_changed(self):
        """A message too large for the journal (written as a file) is
        changed too: the new file takes the old one's place, the same
        queue id, nothing left in tmp/."""
        def script(cmd, data, m):
            if cmd == b"E":
                return [packet(b"m", b"\0\0\0\1X-Drop\0\0"),
                        packet(b"h", b"X-Seen\0big\0"), packet(b"c")]
            return None
        m = Milter(script)
        self.addCleanup(m.close)
        d = self.smtpd(config_extra=BASE + milters(
            {"address": '"inet:127.0.0.1:%d"' % m.port}),
            limits={"tarpit_delay": 0})
        c = self.client(d)
        self.start_mail(c, "<alice@isp.net>", ["<bob@ours.example>"])
        tail = b"a long body line\r\n" * 12000
        qid = self.queued_id(self.send_data(c, MSG % b"plain" + tail +
                                            b".\r\n"))
        env, body = parse_spool(self.spooled(d, qid))
        self.assertIn(b" id %s\r\n" % qid.encode(), body)
        self.assertNotIn(b"X-Drop", body)
        self.assertIn(b"\r\nx-two: second\r\nX-Seen: big\r\n\r\nold body"
                      b"\r\n" + tail, body)
        self.assertTrue(body.endswith(tail))
        d.settle()
        self.assertEqual(d.tmpfiles(), [])
        self.assertEqual(list(d.queued()), [qid])

    def test_rewrite_fails(self):
        """The changed message cannot be written (its name in tmp/ is
        taken): 451 4.3.0, a log line, nothing queued, nothing left."""
        where = {}

        def script(cmd, data, m):
            if cmd == b"E":
                os.mkdir(os.path.join(where["spool"], "tmp",
                                      m.macros["i"] + ".r"))
                return [packet(b"m", b"\0\0\0\1Subject\0changed\0"),
                        packet(b"c")]
            return None
        m = Milter(script)
        self.addCleanup(m.close)
        d = self.smtpd(config_extra=BASE + milters(
            {"address": '"inet:127.0.0.1:%d"' % m.port}),
            limits={"tarpit_delay": 0})
        where["spool"] = d.spool
        c = self.client(d)
        self.start_mail(c, "<alice@isp.net>", ["<bob@ours.example>"])
        big = MSG % b"plain" + b"a long body line\r\n" * 12000
        self.assertReply(self.send_data(c, big + b".\r\n"), 451, "4.3.0")
        self.assertLogged(d, "the changes cannot be made: File exists")
        d.settle()
        taken = os.listdir(os.path.join(d.spool, "tmp"))
        self.assertEqual(len(taken), 1)
        self.assertTrue(taken[0].endswith(".r"))
        os.rmdir(os.path.join(d.spool, "tmp", taken[0]))
        self.assertNothingQueued(d)

    def test_own_signature_covers_the_changes(self):
        """smtpd's own DKIM signature (dkim { }) is made over the message
        as the milter changed it: python3-dkim verifies it."""
        def script(cmd, data, m):
            if cmd == b"E":
                return [packet(b"m", b"\0\0\0\1Subject\0changed\0"),
                        packet(b"b", b"a new body\n"), packet(b"c")]
            return None
        m = Milter(script)
        self.addCleanup(m.close)
        key, record = keygen(self.workdir, "ed25519", "s2")
        d = self.smtpd(config_extra=BASE + milters(
            {"address": '"inet:127.0.0.1:%d"' % m.port}) +
            'dkim = { keys = ( { domain = "isp.net"; selector = "s2"; '
            'key = "%s"; } ); };\n' % key, limits={"tarpit_delay": 0})
        c = self.client(d, source=TRUSTED_ADDR)
        self.start_mail(c, "<alice@isp.net>", ["<bob@ours.example>"])
        qid = self.queued_id(self.send_data(c, MSG % b"plain" + b".\r\n"))
        env, body = parse_spool(self.spooled(d, qid))
        self.assertTrue(body.startswith(b"DKIM-Signature:"), body)
        self.assertIn(b"\r\nSubject: changed\r\n", body)
        self.assertTrue(body.endswith(b"\r\n\r\na new body\r\n"), body)
        self.assertEqual(dkim_verify_all(body, {"s2": record}), [True])


if __name__ == "__main__":
    unittest.main()
