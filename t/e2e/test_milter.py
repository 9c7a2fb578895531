"""Milters: content filters that speak the Sendmail/Postfix milter
protocol.  OpenDKIM, started here in sign mode with its own config and
key, signs mail passing through smtpd (checked by python3-dkim); milters
written in the test speak the protocol to choose each answer and each
way of failing."""
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import unittest

from harness import (BUILDDIR, PolicyCase, SMTPD, TRUSTED_ADDR, free_port,
                     parse_spool)

SMTPQ = os.path.join(BUILDDIR, "smtpq")
OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
BASE = ('ournets = [ "127.0.0.1/32" ];\n'
        'ourdomains = [ "ours.example", "example.com" ];\n')
MSG = (b"From: Alice <alice@example.com>\r\n"
       b"To: bob@ours.example\r\n"
       b"Subject: a folded\r\n \tsubject\r\n"
       b"Message-ID: <1@example.com>\r\n"
       b"\r\n"
       b"body line\r\n"
       b"..a dot-stuffed line\r\n"
       b".\r\n")


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def cstrings(data):
    return [x.decode() for x in data.split(b"\0")[:-1]]


class Milter:
    """A milter on 127.0.0.1.  script(cmd, data, milter) answers each
    command that takes an answer: None (continue), a list of packets, or
    "hang", "close", or raw bytes sent as they are."""

    def __init__(self, script, actions=0x1ff, pflags=0, path=None):
        self.script = script
        self.actions = actions
        self.pflags = pflags
        self.seen = []          # (command, data)
        self.macros = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.conns = []
        if path:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(path)
            # smtpd's front may run as another user (started as root).
            os.chmod(path, 0o666)
            self.port = None
        else:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
        self.sock.listen(16)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def read(self, c, n):
        buf = b""
        while len(buf) < n:
            d = c.recv(n - len(buf))
            if not d:
                raise EOFError
            buf += d
        return buf

    def serve(self, c):
        c.settimeout(30)
        try:
            while not self.stop.is_set():
                n = struct.unpack(">I", self.read(c, 4))[0]
                data = self.read(c, n)
                cmd, data = data[:1], data[1:]
                with self.lock:
                    self.seen.append((cmd, data))
                if cmd == b"D":
                    v = cstrings(data[1:])
                    with self.lock:
                        self.macros.update(zip(v[0::2], v[1::2]))
                    continue
                if cmd in (b"A", b"Q"):
                    if cmd == b"Q":
                        return
                    continue
                if cmd == b"O":
                    c.sendall(packet(b"O", struct.pack(
                        ">III", 6, self.actions, self.pflags)))
                    continue
                if cmd == b"L" and self.pflags & 0x80:
                    continue    # NR_HDR: no reply to header fields
                a = self.script(cmd, data, self)
                if a == "hang":
                    self.stop.wait(30)
                    return
                if a == "close":
                    return
                if isinstance(a, bytes):
                    c.sendall(a)
                elif a is None:
                    c.sendall(packet(b"c"))
                else:
                    c.sendall(b"".join(a))
        except (OSError, EOFError, struct.error):
            pass
        finally:
            c.close()

    def commands(self):
        with self.lock:
            return [c for c, _ in self.seen]

    def close(self):
        self.stop.set()
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def milters(*entries):
    return "milters = ( %s );\n" % ", ".join(
        "{ %s }" % " ".join("%s = %s;" % kv for kv in e.items())
        for e in entries)


class MilterCase(PolicyCase):

    def milter(self, script, **kw):
        m = Milter(script, **kw)
        self.addCleanup(m.close)
        return m

    def daemon(self, *ms, **kw):
        entries = []
        for m in ms:
            e = {"address": '"inet:127.0.0.1:%d"' % m.port,
                 "timeout": '"2s"'}
            e.update(kw)
            entries.append(e)
        return self.smtpd(config_extra=BASE + milters(*entries),
                          limits={"tarpit_delay": 0, "errors": 1000})

    def test_stages_and_macros(self):
        """Every stage reaches the milter in order with its data and the
        macros filters rely on; the message is queued unchanged."""
        m = self.milter(lambda cmd, data, m: None)
        d = self.daemon(m)
        c = self.client(d, source=TRUSTED_ADDR, helo="mail.isp.net")
        self.start_mail(c, "<alice@example.com>", ["<bob@ours.example>"])
        qid = self.queued_id(self.send_data(c, MSG))
        c.cmd("QUIT")
        deadline = time.time() + 10
        while b"Q" not in m.commands() and time.time() < deadline:
            time.sleep(0.02)
        cmds = [x for x in m.commands() if x != b"D"]
        self.assertEqual(cmds, [b"O", b"C", b"H", b"M", b"R", b"T", b"L",
                                b"L", b"L", b"L", b"N", b"B", b"E", b"Q"])
        seen = dict((cmd, data) for cmd, data in m.seen if cmd != b"L")
        host, rest = seen[b"C"].split(b"\0", 1)
        self.assertEqual(rest[:1], b"4")
        self.assertEqual(rest[3:], b"127.0.0.1\0")
        self.assertEqual(seen[b"H"], b"mail.isp.net\0")
        self.assertEqual(seen[b"M"], b"<alice@example.com>\0")
        self.assertEqual(seen[b"R"], b"<bob@ours.example>\0")
        hdrs = [cstrings(data) for cmd, data in m.seen if cmd == b"L"]
        self.assertEqual(hdrs[0], ["From", "Alice <alice@example.com>"])
        self.assertEqual(hdrs[2], ["Subject", "a folded\n \tsubject"])
        self.assertEqual(seen[b"B"], b"body line\r\n.a dot-stuffed line\r\n")
        for k, v in (("j", None), ("{daemon_name}", "smtpd"),
                     ("{client_addr}", "127.0.0.1"),
                     ("{mail_addr}", "alice@example.com"),
                     ("{rcpt_addr}", None), ("i", qid)):
            self.assertIn(k, m.macros)
            if v is not None:
                self.assertEqual(m.macros[k], v)
        env, body = parse_spool(self.spooled(d, qid))
        self.assertIn(MSG[:-3].replace(b"\r\n..", b"\r\n."), body)

    def test_reply_codes(self):
        """SMFIR_REPLYCODE at RCPT refuses that recipient with the
        milter's text; at the end of the message it refuses the message;
        a plain reject says 550 5.7.1."""
        def script(cmd, data, m):
            if cmd == b"R" and b"nobody" in data:
                return [packet(b"y", b"550 5.1.1 no such user here\0")]
            if cmd == b"M" and b"spammer" in data:
                return [packet(b"r")]
            if cmd == b"E":
                return [packet(b"y", b"554 5.7.9 content refused\0")]
            return None
        m = self.milter(script)
        d = self.daemon(m)
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<spammer@isp.net>"), 550, "5.7.1")
        self.assertReply(c.cmd("MAIL FROM:<a@isp.net>"), 250)
        rep = c.cmd("RCPT TO:<nobody@ours.example>")
        self.assertReply(rep, 550, "5.1.1")
        self.assertIn("no such user here", rep[1][-1])
        self.assertReply(c.cmd("RCPT TO:<bob@ours.example>"), 250)
        rep = self.send_data(c, MSG)
        self.assertReply(rep, 554, "5.7.9")
        self.assertIn("content refused", rep[1][-1])
        d.settle()
        self.assertNothingQueued(d)

    def test_tempfail(self):
        """SMFIR_TEMPFAIL: 451 4.7.1 at MAIL, and at the end of data."""
        def script(cmd, data, m):
            if (cmd == b"M" and b"later" in data) or cmd == b"E":
                return [packet(b"t")]
            return None
        m = self.milter(script)
        d = self.daemon(m)
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<later@isp.net>"), 451, "4.7.1")
        self.start_mail(c, "<a@isp.net>", ["<bob@ours.example>"])
        self.assertReply(self.send_data(c, MSG), 451, "4.7.1")
        d.settle()
        self.assertNothingQueued(d)

    def test_changes(self):
        """Header fields added (at the end of the header) and inserted
        (index 0: below our Received:) are in the queued message;
        quarantine queues it on hold (smtpq list says so; its reason is
        logged on one line, a newline in it neutralised); discard says
        250 and keeps nothing."""
        def script(cmd, data, m):
            if cmd != b"E":
                return None
            subj = [cstrings(x)[1] for c, x in m.seen if c == b"L"
                    and x.startswith(b"Subject\0")][-1]
            if subj == "hold":
                # A reason that would forge a log line of its own.
                return [packet(b"q", b"looks odd\nsmtpd[1]: fake smtp "
                               b"connect address=203.0.113.9\0"),
                        packet(b"a")]
            if subj == "drop":
                return [packet(b"d")]
            if subj == "odd":
                return [packet(b"m", b"\0\0\0\1subject\0new\n\tfolded\0"),
                        packet(b"b", b"new\nbody\r"),
                        packet(b"b", b"\nin two\rpackets"),
                        packet(b"+", b"<x@ours.example>\0"),
                        packet(b"c")]
            return [packet(b"h", b"X-Scanned\0 yes\0"),
                    packet(b"i", b"\0\0\0\0X-First\0one\n\ttwo\0"),
                    packet(b"c")]

        def msg(subject):
            return (b"From: a@isp.net\r\nSubject: " + subject +
                    b"\r\n\r\nbody\r\n.\r\n")
        m = self.milter(script)
        d = self.daemon(m)
        c = self.client(d)
        self.start_mail(c, "<a@isp.net>", ["<bob@ours.example>"])
        qid = self.queued_id(self.send_data(c, msg(b"plain")))
        env, body = parse_spool(self.spooled(d, qid))
        self.assertTrue(body.startswith(b"Received: "), body)
        self.assertIn(b"\r\nX-First: one\r\n\ttwo\r\nFrom: a@isp.net\r\n"
                      b"Subject: plain\r\nX-Scanned: yes\r\n\r\nbody\r\n",
                      body)
        self.assertFalse(os.path.exists(os.path.join(d.spool, "hold", qid)))

        self.start_mail(c, "<a@isp.net>", ["<bob@ours.example>"])
        held = self.queued_id(self.send_data(c, msg(b"hold")))
        self.spooled(d, held)
        self.assertTrue(os.path.exists(os.path.join(d.spool, "hold", held)))
        q = subprocess.run([SMTPQ, "-C", d.conf, "list"], capture_output=True,
                           text=True, timeout=20)
        line = [x for x in q.stdout.splitlines() if held in x]
        self.assertTrue(line and " held " in line[0], q.stdout)
        # The reason stays on the line that quotes it.
        text = d.logtext()
        self.assertIn("quarantine: looks odd?smtpd[1]: fake", text)
        self.assertNotIn("\nsmtpd[1]: fake", text)

        self.start_mail(c, "<a@isp.net>", ["<bob@ours.example>"])
        gone = self.queued_id(self.send_data(c, msg(b"drop")))
        self.wait_log(d, "discarded id=" + gone)

        # Changed in the stored message, CRLF line ends throughout.
        self.start_mail(c, "<a@isp.net>", ["<bob@ours.example>"])
        odd = self.queued_id(self.send_data(c, msg(b"odd")))
        raw = self.spooled(d, odd)
        env, body = parse_spool(raw)
        self.assertEqual(env["rcpt"], ["<bob@ours.example>",
                                       "<x@ours.example>"])
        self.assertIn(b" id %s" % odd.encode(), body)
        self.assertTrue(body.endswith(
            b"\r\nFrom: a@isp.net\r\nsubject: new\r\n\tfolded\r\n"
            b"\r\nnew\r\nbody\r\nin two\r\npackets\r\n"), body)
        d.settle()
        self.assertEqual(sorted(d.queued()), sorted([qid, held, odd]))

    def test_end_of_message_timeout(self):
        """A milter that takes 2.5 s to answer the end of the message, with
        timeout = 1 s: within eom_timeout = 10 s the message is queued
        with its header field; with eom_timeout = 1 s the default action
        (tempfail) answers 451 4.7.1 and nothing is queued."""
        def script(cmd, data, m):
            if cmd == b"E":
                time.sleep(2.5)
                return [packet(b"h", b"X-Scanned\0slowly\0"), packet(b"c")]
            return None
        for eom, queued in (("10", True), ("1", False)):
            with self.subTest(eom_timeout=eom):
                m = self.milter(script)
                d = self.daemon(m, timeout="1", eom_timeout=eom)
                before = set(d.queued())
                c = self.client(d)
                c.sock.settimeout(30)
                self.start_mail(c, "<slow@isp.net>", ["<bob@ours.example>"])
                reply = self.send_data(c, MSG)
                if queued:
                    qid = self.queued_id(reply)
                    env, body = parse_spool(self.spooled(d, qid))
                    self.assertIn(b"X-Scanned: slowly\r\n", body)
                else:
                    self.assertReply(reply, 451, "4.7.1")
                    self.assertIn("default action", self.wait_log(
                        d, r"no reply in time"))
                    d.settle()
                    self.assertEqual(set(d.queued()), before)
                c.close()
                d.stop()

    def test_broken_milters(self):
        """A milter that hangs, talks garbage, announces a huge reply or
        closes: the default action (tempfail) within the timeout, a log
        line, and other sessions go on meanwhile."""
        def script(cmd, data, m):
            if cmd != b"M":
                return None
            if b"hang" in data:
                return "hang"
            if b"garbage" in data:
                return b"\0\0\0\3zzz"
            if b"huge" in data:
                return struct.pack(">I", 0x7fffffff) + b"y"
            if b"close" in data:
                return "close"
            return None
        for how in ("hang", "garbage", "huge", "close"):
            with self.subTest(how=how):
                m = self.milter(script)
                d = self.daemon(m, timeout="1")
                c = self.client(d)
                t0 = time.monotonic()
                c.sock.settimeout(15)
                if how == "hang":
                    # Meanwhile another session is served.
                    done = []

                    def other():
                        c2 = self.client(d)
                        self.start_mail(c2, "<ok@isp.net>",
                                        ["<bob@ours.example>"])
                        done.append(self.queued_id(self.send_data(c2, MSG)))
                        c2.close()
                    th = threading.Thread(target=other)
                    c.send(b"MAIL FROM:<%s@isp.net>\r\n" % how.encode())
                    th.start()
                    th.join(10)
                    self.assertEqual(len(done), 1)
                    rep = c.reply()
                else:
                    rep = c.cmd("MAIL FROM:<%s@isp.net>" % how)
                self.assertReply(rep, 451, "4.7.1")
                self.assertLess(time.monotonic() - t0, 10)
                self.assertReply(c.cmd("MAIL FROM:<a@isp.net>"), 451, "4.7.1")
                self.wait_log(d, "default action tempfail")
                self.assertIn("default action tempfail", d.logtext())
                c.close()
                d.stop()

    def test_default_accept(self):
        """default_action = "accept": a milter that is down, or one that
        breaks mid-message, is left out and the mail is queued."""
        d = self.daemon_down()
        c = self.client(d)
        self.start_mail(c, "<a@isp.net>", ["<bob@ours.example>"])
        qid = self.queued_id(self.send_data(c, MSG))
        self.spooled(d, qid)
        self.assertIn("cannot connect", d.logtext())
        c.close()
        d.stop()

        m = self.milter(lambda cmd, data, m: "close" if cmd == b"B" else None)
        d = self.daemon(m, default_action='"accept"')
        c = self.client(d)
        self.start_mail(c, "<a@isp.net>", ["<bob@ours.example>"])
        qid = self.queued_id(self.send_data(c, MSG))
        self.spooled(d, qid)
        self.assertIn("default action accept", d.logtext())

    def test_unix_socket_bdat(self):
        """A milter on a unix socket, a message sent with BDAT: the
        milter sees the header and body; its field is added; a milter
        that leaves out stages and replies (negotiated) is not asked."""
        def script(cmd, data, m):
            if cmd == b"E":
                return [packet(b"h", b"X-Unix\0seen\0"), packet(b"c")]
            return None
        path = os.path.join(self.workdir, "milter.sock")
        m = self.milter(script, path=path)
        # NOHELO | NORCPT | NR_HDR: no HELO, no RCPT, headers unanswered.
        m2 = self.milter(lambda cmd, data, m: None,
                         pflags=0x02 | 0x08 | 0x80)
        d = self.smtpd(config_extra=BASE + milters(
            {"address": '"unix:%s"' % path},
            {"address": '"inet:127.0.0.1:%d"' % m2.port}))
        c = self.client(d)
        self.start_mail(c, "<a@isp.net>", ["<bob@ours.example>"])
        body = MSG[:-3].replace(b"\r\n..", b"\r\n.")
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        qid = self.queued_id(c.reply())
        env, stored = parse_spool(self.spooled(d, qid))
        # Added at the end of the header (as sendmail and Postfix do).
        self.assertTrue(stored.startswith(b"Received:"))
        self.assertIn(b"\r\nMessage-ID: <1@example.com>\r\n"
                      b"X-Unix: seen\r\n\r\nbody line", stored)
        self.assertIn((b"B", b"body line\r\n.a dot-stuffed line\r\n"),
                      m.seen)
        self.assertNotIn(b"H", m2.commands())
        self.assertNotIn(b"R", m2.commands())
        self.assertIn(b"L", m2.commands())
        self.assertIn(b"E", m2.commands())

    def test_config(self):
        """Bad milters settings are refused with file:line; smtpd -t
        prints the list."""
        for extra, msg in (
                ('milters = ( { address = "127.0.0.1:1"; } );',
                 "bad address"),
                ('milters = ( { address = "inet:h:1"; '
                 'default_action = "reject"; } );', "default_action"),
                ('milters = ( { address = "inet:h:1"; timeout = "0s"; } );',
                 "timeout"),
                ('milters = ( { address = "inet:h:1"; colour = 1; } );',
                 "unknown setting colour"),
                ('milters = { address = "inet:h:1"; };', "list of groups")):
            conf = os.path.join(self.workdir, "bad.conf")
            with open(conf, "w") as f:
                f.write(extra + "\n")
            p = subprocess.run([SMTPD, "-t", "-C", conf],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
            self.assertIn(msg, p.stderr)
            self.assertRegex(p.stderr, r"bad\.conf:\d+: ")
        with open(conf, "w") as f:
            f.write('milters = ( { address = "inet:1234@127.0.0.1"; '
                    'timeout = "1m"; default_action = "accept"; } );\n')
        p = subprocess.run([SMTPD, "-t", "-C", conf], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Milter inet:1234@127.0.0.1: timeout 60s, connect "
                      "timeout 5s, end-of-message timeout 60s, "
                      "default action accept", p.stdout)

    def daemon_down(self):
        port = free_port()
        return self.smtpd(config_extra=BASE + milters(
            {"address": '"inet:127.0.0.1:%d"' % port,
             "default_action": '"accept"'}),
            limits={"tarpit_delay": 0, "errors": 1000})

    @unittest.skipUnless(os.path.exists(OPENDKIM), "opendkim not installed")
    def test_opendkim_signs(self):
        """OpenDKIM in sign mode as a milter: the queued message carries
        its DKIM-Signature, which python3-dkim verifies with the key."""
        import dkim
        work = os.path.join(self.workdir, "opendkim")
        os.makedirs(work)
        key = os.path.join(work, "sel.pem")
        p = subprocess.run([SMTPQ, "dkim-keygen", "-t", "rsa", "-b", "2048",
                            "example.com", "sel", key], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        record = "".join(p.stdout.split('"')[1::2])
        port = free_port()
        conf = os.path.join(work, "opendkim.conf")
        with open(conf, "w") as f:
            f.write("Syslog no\nSocket inet:%d@127.0.0.1\n"
                    "Domain example.com\nSelector sel\nKeyFile %s\n"
                    "Mode s\nCanonicalization relaxed/simple\n"
                    "RequireSafeKeys no\nBackground no\n"
                    "PidFile %s/opendkim.pid\n" % (port, key, work))
        od = subprocess.Popen([OPENDKIM, "-f", "-x", conf],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        def stop():
            od.terminate()
            try:
                od.wait(10)
            except subprocess.TimeoutExpired:
                od.kill()
                od.wait()
        self.addCleanup(stop)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.05)
        d = self.smtpd(config_extra=BASE + milters(
            {"address": '"inet:127.0.0.1:%d"' % port}))
        c = self.client(d, source=TRUSTED_ADDR)
        self.start_mail(c, "<alice@example.com>", ["<bob@ours.example>"])
        qid = self.queued_id(self.send_data(c, MSG))
        env, body = parse_spool(self.spooled(d, qid))
        # Inserted at index 0: the top of what the milter saw, below
        # our own Received: (which milters are not shown).
        first, rest = body.split(b"\r\n", 1)
        self.assertTrue(first.startswith(b"Received:"), body[:200])
        self.assertRegex(rest, rb"^(\t[^\r\n]*\r\n)*DKIM-Signature:")

        def dnsfunc(name, timeout=5):
            self.assertEqual(name, b"sel._domainkey.example.com.")
            return record.encode()
        self.assertTrue(dkim.verify(body, dnsfunc=dnsfunc))
        # Changed in transit: no longer verifies.
        self.assertFalse(dkim.verify(body.replace(b"body line",
                                                  b"body lime"),
                                     dnsfunc=dnsfunc))


if __name__ == "__main__":
    unittest.main()
