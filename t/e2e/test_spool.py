"""The spool: what a queued message file holds, when it appears, what a
refused or failed message leaves behind, the Received header, and the
per-event log lines."""
import email.utils
import os
import re
import resource
import shutil
import signal
import smtplib
import subprocess
import threading
import time
import unittest

from harness import (SMTPD, ProtoCase, Smtpd, parse_spool,
                     strip_received, wait_port)
from qharness import wait_for

ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{16}$")
DATE_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} "
                     r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                     r"\d{4} \d\d:\d\d:\d\d [+-]\d{4}$")
RECEIVED_FIELDS = re.compile(
    r"^Received: from (?P<helo>\S+) \((?P<rname>\S+) \[(?P<addr>[^\]]+)\]\)"
    r" by (?P<by>\S+) with (?P<proto>\S+) id (?P<id>\S+)"
    r"(?: for <(?P<for>[^>]+)>)?; (?P<date>.+)$")


def received_of(body):
    """The first header field, unfolded (CRLF + WSP -> one space)."""
    end = body.index(b"\r\n\r\n") if b"\r\n\r\n" in body else len(body)
    first = re.match(rb"[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", body[:end]).group(0)
    return re.sub(r"\r\n[ \t]+", " ", first.decode("utf-8"))


class QueueFiles(ProtoCase):
    def test_message_is_in_the_spool_when_250_arrives(self):
        """'250 2.0.0 Ok: queued as ID' is sent only once the message is on
        disk in the spool: as queue/ID, or as a record of the daemon's
        commit journal (doc/smtpd-spool.5) that will become queue/ID; for
        each of ten messages, the moment the reply is read."""
        d = self.smtpd()
        c = self.open(d)
        missing = []
        for i in range(10):
            self.start_mail(c)
            qid = self.queued_id(self.send_data(c, b"Subject: %d\r\n\r\nx\r\n.\r\n" % i))
            # The journal first: a record leaves it only after its queue
            # file is safely written, so looking in this order cannot miss.
            jdir = os.path.join(d.spool, "journal")
            journaled = False
            for name in os.listdir(jdir):
                if name.endswith(".j"):
                    try:
                        with open(os.path.join(jdir, name), "rb") as f:
                            journaled |= b"\nid " + qid.encode() + b"\n" in f.read()
                    except FileNotFoundError:
                        pass
            if not journaled and not os.path.exists(
                    os.path.join(d.spool, "queue", qid)):
                missing.append(qid)
        self.assertEqual(missing, [], "acknowledged messages not in the spool")
        self.assertTrue(d.settle())
        self.assertEqual(len(d.queued()), 10)

    def test_envelope_and_message(self):
        """The file holds the envelope of doc/smtpd-spool.5 (version, id,
        arrival, from, rcpt in order, helo, peer, protocol), an empty line,
        then the Received header and the data exactly as accepted."""
        d = self.smtpd()
        c = self.open(d)
        t0 = int(time.time())
        self.start_mail(c, "<alice@example.org>",
                        ["<bob@example.net>", "<carol@example.com>"])
        data = b"From: alice@example.org\r\nSubject: env\r\n\r\nHello.\r\n"
        qid = self.queued_id(self.send_data(c, data + b".\r\n"))
        t1 = int(time.time())
        raw = self.spooled(d, qid)
        self.assertTrue(raw.startswith(b"smtpd-spool 1\n"), raw[:40])
        env, body = parse_spool(raw)
        self.assertEqual(env["version"], "smtpd-spool 1")
        self.assertEqual(env["id"], qid)
        self.assertTrue(t0 - 1 <= int(env["arrival"]) <= t1 + 1, env["arrival"])
        self.assertEqual(env["from"], "<alice@example.org>")
        self.assertEqual(env["rcpt"], ["<bob@example.net>", "<carol@example.com>"])
        self.assertEqual(env["helo"], "client.example.org")
        self.assertEqual(env["peer"], "127.0.0.1")
        self.assertEqual(env["protocol"], "ESMTP")
        self.assertNotIn("smtputf8", env)
        self.assertNotIn("body", env)
        self.assertTrue(body.startswith(b"Received: "), body[:40])
        self.assertEqual(strip_received(body), data)

    def test_helo_protocol_smtp(self):
        """After HELO the envelope says protocol SMTP."""
        d = self.smtpd()
        c = self.open(d, ehlo=False)
        self.assertEqual(c.cmd("HELO old.example.org")[0], 250)
        self.start_mail(c)
        env, _ = parse_spool(self.spooled(d, self.queued_id(
            self.send_data(c, b"x\r\n.\r\n"))))
        self.assertEqual(env["protocol"], "SMTP")
        self.assertEqual(env["helo"], "old.example.org")

    def test_queue_ids(self):
        """Queue ids are 16 characters of the spool alphabet, one file
        each, and sort in arrival order."""
        d = self.smtpd()
        c = self.open(d)
        ids = []
        for i in range(5):
            self.start_mail(c)
            ids.append(self.queued_id(self.send_data(c, b"n%d\r\n.\r\n" % i)))
            time.sleep(0.002)
        for qid in ids:
            self.assertRegex(qid, ID_RE)
        self.assertEqual(sorted(ids), ids)
        self.assertEqual(len(set(ids)), 5)
        self.assertEqual(sorted(self.wait_queued(d, 5)), sorted(ids))

    def test_refusals_leave_nothing(self):
        """Messages refused for size, a bare CR, a loop, a long line or
        abandoned with RSET leave nothing in queue/ or tmp/."""
        d = self.smtpd(limits={"message_size": 200000, "line_length": 998})
        c = self.open(d)
        loops = b"".join(b"Received: from h%d.example; Tue, 1 Jan 2030 "
                         b"00:00:00 +0000\r\n" % i for i in range(101))
        for data, code in (((b"s" * 98 + b"\r\n") * 3000, 552),
                           (b"a\rb\r\n", 550), (loops + b"\r\nx\r\n", 554),
                           (b"l" * 1000 + b"\r\n", 550)):
            self.start_mail(c)
            self.assertEqual(self.send_data(c, data + b".\r\n")[0], code)
        self.start_mail(c)
        c.send(b"BDAT 150000\r\n" + (b"r" * 98 + b"\r\n") * 1500)
        self.assertEqual(c.reply()[0], 250)
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
        self.wait_log(d, r"disconnect reason=quit")
        self.assertNothingQueued(d)


FLUSHES = ("fsync", "fdatasync", "syncfs")
STRACE_LINE = re.compile(r"^(\d+) +[\d.]+ (?:(\w+)\((.*)|<\.\.\. (\w+) resumed>(.*))$")


def flushed_before_reply(trace, spool):
    """From strace -f -y output: did a flush of a spool file (a journal
    segment or a message file) complete with 0 after the client was sent
    354 and before it was sent '250 ... queued'?  Returns (bool, the
    flushes seen in that window)."""
    pending = {}	# pid -> (syscall, args) of an unfinished call
    window, seen, started = False, [], False
    for line in trace.splitlines():
        m = STRACE_LINE.match(line)
        if m is None:
            continue
        pid, name, args, rname, rest = m.groups()
        if name is not None and args.endswith("<unfinished ...>"):
            pending[pid] = (name, args)
            continue
        if rname is not None:
            name, args0 = pending.pop(pid, (rname, ""))
            args = args0 + rest
        if name == "write" and '"354 ' in args:
            started = window = True
        elif name == "write" and '"250 2.0.0 Ok: queued' in args and started:
            return bool(seen), seen
        elif window and name in FLUSHES:
            ok = re.search(r"\) += 0$", args) is not None
            # A file that holds the message, not a directory.
            if ok and re.search(re.escape(spool) + r"/(journal/\d+\.j|"
                                r"tmp/[0-9A-Z]{16}|queue/[0-9A-Z]{16})>", args):
                seen.append(name + "(" + args)
    return False, seen


class Durability(ProtoCase):
    def test_flush_before_250(self):
        """Under strace, between the 354 and the '250 2.0.0 Ok: queued'
        written to the client, smtpd completes an fdatasync, fsync or
        syncfs of a file in the spool (the journal segment the message
        went into, or its queue file): a missing flush is seen here even
        though nothing else would notice it."""
        if shutil.which("strace") is None:
            self.skipTest("strace is not installed")
        d = self.smtpd(start=False)
        trace = os.path.join(self.workdir, "strace.out")
        d.log = open(d.logfile, "ab")
        d.proc = subprocess.Popen(
            ["strace", "-f", "-y", "-ttt", "-s", "64", "-o", trace,
             "-e", "trace=fdatasync,fsync,syncfs,write",
             SMTPD, "-d", "-C", d.conf],
            stdin=subprocess.DEVNULL, stdout=d.log, stderr=d.log,
            # LeakSanitizer cannot work under ptrace (sanitizer builds).
            env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
        self.assertTrue(wait_port(d.host, d.port, timeout=30), d.logtext())
        c = self.open(d)
        self.start_mail(c)
        self.queued_id(self.send_data(c, b"Subject: flush\r\n\r\nx\r\n.\r\n"))
        c.cmd("QUIT")
        # SIGTERM to smtpd itself (strace's child); strace exits with it.
        with open("/proc/%d/task/%d/children" % (d.proc.pid, d.proc.pid)) as f:
            os.kill(int(f.read().split()[0]), signal.SIGTERM)
        self.assertEqual(d.proc.wait(30), 0)
        with open(trace, errors="replace") as f:
            text = f.read()
        ok, seen = flushed_before_reply(text, d.spool)
        self.assertTrue(ok, "no flush of a spool file before the 250 reply; "
                        "flushes in the window: %r" % seen)


class StartupCleanup(ProtoCase):
    def test_tmp_leftovers_removed(self):
        """Files left in spool/tmp by a crash are removed at start-up;
        queue/ is left alone."""
        d = self.smtpd(start=False)
        os.makedirs(os.path.join(d.spool, "tmp"))
        os.makedirs(os.path.join(d.spool, "queue"))
        for name in ("1K0000000000AAAAA", "partial"):
            with open(os.path.join(d.spool, "tmp", name), "wb") as f:
                f.write(b"smtpd-spool 1\nid x\n")
        keep = os.path.join(d.spool, "queue", "1K00000000000000")
        with open(keep, "wb") as f:
            f.write(b"smtpd-spool 1\nid 1K00000000000000\narrival 0\nfrom <>\n"
                    b"rcpt <a@example.net>\n\nSubject: old\r\n\r\nold\r\n")
        d.start()
        left = [n for n in d.tmpfiles()]
        self.assertEqual(left, [], "tmp/ after start-up")
        self.assertTrue(os.path.exists(keep))
        # And it still works.
        c = self.open(d)
        self.start_mail(c)
        self.queued_id(self.send_data(c, b"x\r\n.\r\n"))


class NamespaceSmtpd(Smtpd):
    """smtpd with its spool on a small tmpfs of its own (a private mount
    namespace), so the disk can really fill up.  Paths are read through
    /proc/PID/root."""

    def start(self, size="512k", options=""):
        os.makedirs(self.spool, exist_ok=True)
        self.log = open(self.logfile, "ab")
        script = ('mount -t tmpfs -o size=%s%s tmpfs "$1" && shift && '
                  'exec "$@"' % (size, options))
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script,
             "sh", self.spool, SMTPD, "-d", "-C", self.conf] + self.args,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        if not wait_port(self.host, self.port):
            self.stop()
            raise unittest.SkipTest("cannot run smtpd on a private tmpfs:\n" +
                                    self.logtext())
        return self

    def path(self, *parts):
        return "/proc/%d/root%s" % (self.proc.pid, os.path.join(self.spool, *parts))

    def queued(self):
        out = {}
        for name in os.listdir(self.path("queue")):
            with open(self.path("queue", name), "rb") as f:
                out[name] = f.read()
        return out

    def tmpfiles(self):
        return os.listdir(self.path("tmp")) if os.path.isdir(self.path("tmp")) else []


class WriteErrors(ProtoCase):
    def namespaced(self, size="512k", limits=None, options=""):
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            self.skipTest("needs root and unshare for a private tmpfs")
        d = NamespaceSmtpd(self.workdir, limits=dict(limits or {},
                                                     tarpit_delay=0))
        self._daemons.append(d)
        return d.start(size=size, options=options)

    def fill(self, d):
        """Fills the spool's filesystem; returns the filler's path."""
        path = d.path("filler")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (65536, 512):
                for _ in range(100000):
                    try:
                        os.write(fd, b"\0" * size)
                    except OSError:
                        break
        finally:
            os.close(fd)
        return path

    def test_disk_full(self):
        """On a full filesystem a message gets 452 4.3.1 and nothing
        half-written is left in queue/ or tmp/; once there is room again,
        mail is accepted.  Both a large message (written to a file as it
        arrives) and a small one are tried."""
        d = self.namespaced()
        c = self.open(d)
        self.start_mail(c)
        ok1 = self.queued_id(self.send_data(c, b"Subject: before\r\n\r\nfits\r\n.\r\n"))

        self.start_mail(c)
        big = (b"B" * 1022 + b"\r\n") * 1024
        self.assertReply(self.send_data(c, b"Subject: big\r\n\r\n" + big + b".\r\n"),
                         452, "4.3.1")
        self.assertEqual(d.tmpfiles(), [])

        filler = self.fill(d)
        self.start_mail(c)
        small = (b"s" * 78 + b"\r\n") * 250
        self.assertReply(self.send_data(c, b"Subject: small\r\n\r\n" + small + b".\r\n"),
                         452, "4.3.1")
        self.assertEqual(d.tmpfiles(), [])

        os.unlink(filler)
        self.start_mail(c)
        ok2 = self.queued_id(self.send_data(c, b"Subject: after\r\n\r\nroom again\r\n.\r\n"))
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
        deadline = time.time() + 10
        while len(d.queued()) < 2 and time.time() < deadline:
            time.sleep(0.05)
        q = d.queued()
        self.assertEqual(sorted(q), sorted([ok1, ok2]))
        for qid, raw in q.items():
            env, body = parse_spool(raw)
            self.assertEqual(env["id"], qid)
            self.assertTrue(body.endswith(b"fits\r\n") or body.endswith(b"room again\r\n"))

    def test_queue_writer_out_of_inodes(self):
        """When the journal can take a message but its queue file cannot
        be written (the last free inode went to a new journal segment),
        the message acknowledged is kept; further commits get 452 4.3.1
        at once, without waiting for the journal; once files can be made
        again, mail is accepted and every acknowledged message reaches
        queue/ whole."""
        d = self.namespaced(size="8m", options=",nr_inodes=64")
        c = self.open(d)
        self.start_mail(c)
        first = self.queued_id(self.send_data(
            c, b"Subject: first\r\n\r\nbefore\r\n.\r\n"))
        # Written out, its segment deleted: the next commit makes one.
        self.assertTrue(wait_for(lambda: first in d.queued() and not any(
            n.endswith(".j") for n in os.listdir(d.path("journal")))),
            d.logtext())
        fillers = []
        for i in range(1000):
            p = d.path("fill%d" % i)
            try:
                os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o600))
            except OSError:
                break
            fillers.append(p)
        self.assertLess(len(fillers), 1000)
        os.unlink(fillers.pop())        # one inode: the new segment's

        self.start_mail(c)
        kept = self.queued_id(self.send_data(
            c, b"Subject: kept\r\n\r\njournaled only\r\n.\r\n"))
        self.assertTrue(wait_for(lambda: "spool: writing queue files: No "
                                 "space left on device" in d.logtext()),
                        d.logtext())
        for _ in range(3):
            self.start_mail(c)
            t0 = time.monotonic()
            self.assertReply(self.send_data(
                c, b"Subject: refused\r\n\r\nno room\r\n.\r\n"),
                452, "4.3.1")
            # At once: not after the journal's 120-second deadline.
            self.assertLess(time.monotonic() - t0, 20)
        self.assertNotIn(kept, d.queued())

        for p in fillers:
            os.unlink(p)
        self.assertTrue(wait_for(lambda: "spool: writing queue files again"
                                 in d.logtext()), d.logtext())
        self.start_mail(c)
        after = self.queued_id(self.send_data(
            c, b"Subject: after\r\n\r\nroom again\r\n.\r\n"))
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
        self.assertTrue(wait_for(lambda: sorted(d.queued()) ==
                                 sorted([first, kept, after])),
                        "%r\n%s" % (sorted(d.queued()), d.logtext()))
        for qid, raw in d.queued().items():
            env, body = parse_spool(raw)
            self.assertEqual(env["id"], qid)
            self.assertNotIn(b"no room", body)
        self.assertIn(b"journaled only\r\n", d.queued()[kept])
        self.assertEqual(os.listdir(d.path("journal", "tmp")), [])
        self.assertEqual(d.tmpfiles(), [])

    def test_file_size_limit(self):
        """With RLIMIT_FSIZE on smtpd (writes fail with EFBIG) a large
        message gets 452 4.3.1, nothing is left, smtpd keeps running and
        takes a small message."""
        d = self.smtpd(start=False)

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

        d.log = open(d.logfile, "ab")
        d.proc = subprocess.Popen([SMTPD, "-d", "-C", d.conf],
                                  stdin=subprocess.DEVNULL, stdout=d.log,
                                  stderr=d.log, preexec_fn=limit)
        self.assertTrue(wait_port(d.host, d.port), d.logtext())
        c = self.open(d)
        self.start_mail(c)
        big = (b"F" * 1022 + b"\r\n") * 1024
        self.assertReply(self.send_data(c, b"Subject: big\r\n\r\n" + big + b".\r\n"),
                         452, "4.3.1")
        self.assertEqual(d.tmpfiles(), [])
        self.assertEqual(d.queued(), {})
        self.start_mail(c)
        qid = self.queued_id(self.send_data(c, b"Subject: s\r\n\r\nsmall\r\n.\r\n"))
        self.assertTrue(self.spooled(d, qid).endswith(b"small\r\n"))
        self.assertIsNone(d.proc.poll())


    def test_disk_fills_under_load(self):
        """Eight clients send small messages while the spool's 64 MB
        filesystem is filled up and later freed: every client hears a
        prompt answer (none of them times out), the full disk gets
        452 4.3.1, nothing is left in tmp/ or journal/tmp/, every
        acknowledged message is in queue/ whole, and mail is accepted
        again once there is room, without a restart."""
        d = self.namespaced(size="64m", limits={"sessions": 100,
                                               "sessions_per_ip": 100})
        body = b"z" * 2000 + b"\r\n"
        phase = ["before"]
        results, lock, stop = [], threading.Lock(), threading.Event()

        def client(n):
            i = 0
            while not stop.is_set():
                token = "c%d.%d" % (n, i)
                i += 1
                when = phase[0]
                t0 = time.time()
                try:
                    with smtplib.SMTP(d.host, d.port, timeout=60) as c:
                        c.ehlo("client.example")
                        c.mail("a@example.org")
                        c.rcpt("b@example.net")
                        code, msg = c.data(b"Subject: %s\r\n\r\n"
                                           % token.encode() + body)
                        r = (when, token, code, msg.decode()[:5])
                except smtplib.SMTPResponseException as e:
                    r = (when, token, e.smtp_code, e.smtp_error.decode()[:5])
                except (OSError, smtplib.SMTPException) as e:
                    r = (when, token, None, repr(e))
                with lock:
                    results.append(r + (time.time() - t0,))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            filler = self.fill(d)
            phase[0] = "full"
            time.sleep(3)
            os.unlink(filler)
            phase[0] = "freed"
            deadline = time.time() + 20
            while time.time() < deadline:
                with lock:
                    if any(r[0] == "freed" and r[2] == 250 for r in results):
                        break
                time.sleep(0.1)
        finally:
            stop.set()
            for t in threads:
                t.join(90)
        broken = [r for r in results if r[2] is None]
        self.assertEqual(broken, [], "clients without an answer")
        full = [r for r in results if r[0] == "full"]
        self.assertIn((452, "4.3.1"), [(r[2], r[3]) for r in full], full[:20])
        odd = [r for r in results if r[2] not in (250, 452)]
        self.assertEqual(odd, [], "neither queued nor 452")
        summary = {}
        for r in results:
            summary[(r[0], r[2], r[3])] = summary.get((r[0], r[2], r[3]), 0) + 1
        self.assertTrue(any(r[0] == "freed" and r[2] == 250 for r in results),
                        "no message accepted after the disk was freed: %r\n%s"
                        % (summary, d.logtext()[-3000:]))
        acked = {r[1] for r in results if r[2] == 250}
        deadline = time.time() + 20
        while time.time() < deadline and any(
                n.endswith(".j") for n in os.listdir(d.path("journal"))):
            time.sleep(0.1)
        self.assertEqual(d.tmpfiles(), [])
        self.assertEqual(os.listdir(d.path("journal", "tmp")), [])
        subjects = {}
        for qid, raw in d.queued().items():
            env, msg = parse_spool(raw)
            self.assertEqual(env["id"], qid)
            self.assertTrue(msg.endswith(body), qid)
            subjects[re.search(rb"Subject: (\S+)", msg).group(1).decode()] = qid
        self.assertEqual(sorted(acked - set(subjects)), [],
                         "acknowledged but not in queue/")


class ReceivedHeader(ProtoCase):
    def received(self, d, c, rcpts, utf8=False):
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>" +
                               (" SMTPUTF8" if utf8 else "")), 250, "2.1.0")
        for r in rcpts:
            self.assertReply(c.cmd("RCPT TO:" + r), 250, "2.1.5")
        qid = self.queued_id(self.send_data(c, b"Subject: r\r\n\r\nx\r\n.\r\n"))
        _, body = parse_spool(self.spooled(d, qid))
        line = received_of(body)
        m = RECEIVED_FIELDS.match(line)
        self.assertIsNotNone(m, "Received header not in RFC 5321 4.4 form: %r" % line)
        self.assertEqual(m.group("id"), qid)
        return m

    def check_date(self, date):
        self.assertRegex(date, DATE_RE)
        when = email.utils.parsedate_to_datetime(date)
        self.assertIsNotNone(when.tzinfo)
        self.assertLess(abs(when.timestamp() - time.time()), 600)

    def test_single_recipient(self):
        """After EHLO, one recipient: 'from HELO (unknown [127.0.0.1]) by
        HOST with ESMTP id ID for <rcpt>; DATE'."""
        d = self.smtpd()
        c = self.open(d, ehlo=False)
        self.ehlo(c, "sender.example.org")
        m = self.received(d, c, ["<bob@example.net>"])
        self.assertEqual(m.group("helo"), "sender.example.org")
        self.assertEqual(m.group("rname"), "unknown")
        self.assertEqual(m.group("addr"), "127.0.0.1")
        self.assertEqual(m.group("by"), "mx.test.example")
        self.assertEqual(m.group("proto"), "ESMTP")
        self.assertEqual(m.group("for"), "bob@example.net")
        self.check_date(m.group("date"))

    def test_several_recipients_no_for(self):
        """With several recipients there is no 'for' clause."""
        d = self.smtpd()
        c = self.open(d)
        m = self.received(d, c, ["<bob@example.net>", "<carol@example.net>"])
        self.assertIsNone(m.group("for"))
        self.check_date(m.group("date"))

    def test_helo_says_smtp(self):
        """After HELO the protocol is SMTP."""
        d = self.smtpd()
        c = self.open(d, ehlo=False)
        self.assertEqual(c.cmd("HELO plain.example.org")[0], 250)
        m = self.received(d, c, ["<bob@example.net>"])
        self.assertEqual(m.group("proto"), "SMTP")
        self.assertEqual(m.group("helo"), "plain.example.org")

    def test_smtputf8_says_utf8smtp(self):
        """An SMTPUTF8 transaction is received 'with UTF8SMTP'."""
        d = self.smtpd()
        c = self.open(d)
        m = self.received(d, c, ["<bob@example.net>"], utf8=True)
        self.assertEqual(m.group("proto"), "UTF8SMTP")

    def test_one_received_per_message(self):
        """smtpd adds exactly one Received header, before the client's own."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c)
        data = b"Received: from earlier.example by x; Tue, 1 Jan 2030 00:00:00 +0000\r\nSubject: r\r\n\r\nx\r\n"
        _, body = parse_spool(self.spooled(d, self.queued_id(self.send_data(c, data + b".\r\n"))))
        self.assertEqual(strip_received(body), data)
        self.assertIn("by mx.test.example", received_of(body))


class Logging(ProtoCase):
    SID = r"[0-9a-f]{16}"

    def test_one_line_per_event(self):
        """The -d log has connect, ehlo, mail, rcpt, queued and disconnect
        lines (with counts) for a session, all with the same session id."""
        d = self.smtpd()
        c = self.open(d)
        self.start_mail(c, "<alice@example.org>", ["<bob@example.net>", "<carol@example.net>"])
        qid = self.queued_id(self.send_data(c, b"Subject: l\r\n\r\nx\r\n.\r\n"))
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
        log = self.wait_log(d, r"disconnect reason=quit")
        m = re.search(r"(%s) smtp queued id=%s" % (self.SID, qid), log)
        self.assertIsNotNone(m, log)
        sid = m.group(1)
        lines = [l for l in log.splitlines() if sid in l]
        events = [re.search(sid + r" smtp (\w+)", l).group(1) for l in lines]
        events = [e for e in events if e != "state"]
        self.assertEqual(events, ["connect", "ehlo", "mail", "rcpt", "rcpt",
                                  "queued", "disconnect"], lines)
        text = "\n".join(lines)
        self.assertRegex(text, r"connect address=127\.0\.0\.1 ")
        self.assertRegex(text, r"mail from=<alice@example\.org>")
        self.assertRegex(text, r"rcpt to=<bob@example\.net>")
        self.assertRegex(text, r"rcpt to=<carol@example\.net>")
        self.assertRegex(text, r"disconnect reason=quit commands=6 messages=1 "
                               r"recipients=2 errors=0")

    def test_sessions_have_distinct_ids(self):
        """Two sessions at once log under different ids; error replies are
        logged too."""
        d = self.smtpd()
        a = self.open(d)
        b = self.open(d)
        self.assertReply(a.cmd("FROB"), 500, "5.5.2")
        self.assertReply(b.cmd("RCPT TO:<x@example.net>"), 503, "5.5.1")
        a.cmd("QUIT")
        b.cmd("QUIT")
        log = self.wait_log(d, r"disconnect reason=quit", count=2)
        ids = re.findall(r"(%s) smtp disconnect reason=quit" % self.SID, log)
        self.assertEqual(len(set(ids)), 2)
        self.assertRegex(log, r"%s smtp reply code=500 status=5\.5\.2" % self.SID)
        self.assertRegex(log, r"%s smtp reply code=503 status=5\.5\.1" % self.SID)
        for sid in ids:
            self.assertRegex(log, r"%s smtp disconnect reason=quit commands=3 "
                                  r"messages=0 recipients=0 errors=1" % sid)
