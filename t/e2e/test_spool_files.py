"""spool_durability = "files": every message its own queue file, flushed,
renamed into queue/, the directory flushed (shared by the sessions that
renamed meanwhile) before the 250; nothing acknowledged is lost to a
kill -9; a journal left behind is replayed; the spool's lock is held."""
import os
import re
import shutil
import signal
import struct
import subprocess
import threading
import time
import zlib

from harness import SMTPD, ProtoCase, free_port, parse_spool, wait_port
from test_journal import send_until_error
import test_spool
from test_spool import NamespaceSmtpd

FILES = 'spool_durability = "files";'
STRACE_LINE = re.compile(r"^(\d+) +[\d.]+ (?:(\w+)\((.*)|<\.\.\. (\w+) resumed>(.*))$")


def commit_steps(trace, spool):
    """From strace -f -y output: the spool operations that completed with
    0 between the 354 sent to the client and its '250 ... queued', as
    (kind, path) in the order they completed: ("data", tmp/ID) for an
    fdatasync or fsync of the message file, ("rename", queue/ID),
    ("dir", queue) for an fsync of the queue directory, ("journal", seg)
    for a flush of a journal segment."""
    pending, steps, window = {}, [], False
    sp = re.escape(spool)
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
            args = args0.replace("<unfinished ...>", "") + rest
        if name == "write" and '"354 ' in args:
            window, steps = True, []
        elif name == "write" and '"250 2.0.0 Ok: queued' in args and window:
            return steps
        elif not window or re.search(r"\) += 0$", args) is None:
            continue
        elif name in ("fdatasync", "fsync") and \
                re.search(sp + r"/tmp/[0-9A-Z]{16}>", args):
            steps.append(("data", "tmp"))
        elif name in ("fdatasync", "fsync", "syncfs") and \
                re.search(sp + r"/journal/\d+\.j>", args):
            steps.append(("journal", "segment"))
        elif name == "fsync" and re.search(sp + r"/queue>", args):
            steps.append(("dir", "queue"))
        elif name.startswith("rename") and \
                re.search(sp + r'/queue/[0-9A-Z]{16}"', args):
            steps.append(("rename", "queue"))
    return None


class SpoolFiles(ProtoCase):
    def files_smtpd(self, **kw):
        return self.smtpd(config_extra=FILES, **kw)

    def test_flush_rename_dirsync_before_250(self):
        """Under strace, between the 354 and the '250 2.0.0 Ok: queued':
        the message file is flushed in tmp/, renamed into queue/, and the
        queue directory flushed, in that order, each returning 0; no
        journal segment is involved."""
        if shutil.which("strace") is None:
            self.skipTest("strace is not installed")
        d = self.smtpd(start=False, config_extra=FILES)
        trace = os.path.join(self.workdir, "strace.out")
        d.log = open(d.logfile, "ab")
        d.proc = subprocess.Popen(
            ["strace", "-f", "-y", "-ttt", "-s", "200", "-o", trace,
             "-e", "trace=fdatasync,fsync,syncfs,write,rename,renameat,"
             "renameat2", SMTPD, "-d", "-C", d.conf],
            stdin=subprocess.DEVNULL, stdout=d.log, stderr=d.log,
            # LeakSanitizer cannot work under ptrace (sanitizer builds).
            env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
        self.assertTrue(wait_port(d.host, d.port, timeout=30), d.logtext())
        c = self.open(d)
        self.start_mail(c)
        qid = self.queued_id(self.send_data(
            c, b"Subject: flush\r\n\r\nx\r\n.\r\n"))
        c.cmd("QUIT")
        with open("/proc/%d/task/%d/children" % (d.proc.pid, d.proc.pid)) as f:
            os.kill(int(f.read().split()[0]), signal.SIGTERM)
        self.assertEqual(d.proc.wait(30), 0)
        with open(trace, errors="replace") as f:
            steps = commit_steps(f.read(), d.spool)
        self.assertEqual(steps, [("data", "tmp"), ("rename", "queue"),
                                 ("dir", "queue")])
        self.assertTrue(os.path.exists(os.path.join(d.spool, "queue", qid)))
        self.assertFalse(os.path.exists(os.path.join(d.spool, "journal",
                                                     "000000000000.j")))

    def test_kill9_loses_nothing_acknowledged(self):
        """kill -9 under load: at once, before any restart, every
        acknowledged id is in queue/ whole, queue/ holds nothing partial;
        the restart clears tmp/."""
        d = self.files_smtpd(limits={"sessions": 200, "sessions_per_ip": 200,
                                     "sessions_per_net": 200})
        acked, stop = [], threading.Event()
        threads = [threading.Thread(target=send_until_error,
                                    args=(d.host, d.port, 200, acked, stop))
                   for _ in range(8)]
        for t in threads:
            t.start()
        deadline = time.time() + 20
        while len(acked) < 150 and time.time() < deadline:
            time.sleep(0.01)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        stop.set()
        for t in threads:
            t.join(10)
        self.assertGreater(len(acked), 50, "the load never got going")
        q = d.queued()
        missing = [i for i in acked if i not in q]
        self.assertEqual(missing, [], "acknowledged but not in queue/")
        for qid, raw in q.items():
            env, body = parse_spool(raw)
            self.assertEqual(env["id"], qid)
            self.assertTrue(body.endswith(b"x" * 3000 + b"\r\n"), qid)
        jdir = os.path.join(d.spool, "journal")
        self.assertEqual([n for n in os.listdir(jdir) if n.endswith(".j")],
                         [], "journal segments in files mode")
        d.proc = None
        d.log.close()
        d.start()
        self.assertEqual(d.tmpfiles(), [], "tmp/ not cleared at start-up")
        self.assertEqual(sorted(d.queued()), sorted(q))
        self.assertEqual(d.stop(), 0)

    def test_journal_left_behind_is_replayed(self):
        """A journal of an earlier run (spool_durability was "journal")
        is put into queue/ at start-up in files mode, then removed."""
        d = self.smtpd(start=False, config_extra=FILES)
        jdir = os.path.join(d.spool, "journal")
        os.makedirs(jdir)
        payload = (b"smtpd-spool 1\nid 01234567890ABCDE\narrival 1\n"
                   b"from <a@example.org>\nrcpt <b@example.net>\n\n"
                   b"Subject: replayed\r\n\r\nbody\r\n")
        rec = (b"SJR1" + struct.pack("<II", len(payload), zlib.crc32(payload))
               + payload)
        with open(os.path.join(jdir, "000000000003.j"), "wb") as f:
            f.write(rec)
        d.start()
        q = d.queued()
        self.assertEqual(list(q), ["01234567890ABCDE"])
        self.assertEqual(parse_spool(q["01234567890ABCDE"])[1],
                         b"Subject: replayed\r\n\r\nbody\r\n")
        self.assertFalse(os.path.exists(os.path.join(jdir, "000000000003.j")))
        self.assertIn("recovered 1 messages from the journal", d.logtext())
        # And new mail goes on as files.
        c = self.open(d)
        self.start_mail(c)
        qid = self.queued_id(self.send_data(c, b"Subject: new\r\n\r\nx\r\n.\r\n"))
        self.assertIn(qid, d.queued())

    def spares(self, jdir):
        """{name: inode} of the journal's spare segments."""
        return {n: os.stat(os.path.join(jdir, n)).st_ino
                for n in os.listdir(jdir) if n.startswith("spare.")}

    def test_spent_segment_becomes_the_next(self):
        """A segment whose messages are all in queue/ is kept as
        journal/spare.0 with a new header (SJH2, a salt, no mark), and the
        next message's segment is made from that very file; files mode
        deletes spares at start-up (doc/smtpd-spool.5)."""
        d = self.smtpd()
        jdir = os.path.join(d.spool, "journal")
        if subprocess.run(["stat", "-f", "-c", "%T", jdir],
                          capture_output=True, text=True).stdout.strip() in (
                              "tmpfs", "ramfs"):
            self.skipTest("no spares on tmpfs")
        sent = []
        for n in range(2):
            c = self.open(d)
            self.start_mail(c)
            sent.append(self.queued_id(self.send_data(
                c, b"Subject: %d\r\n\r\nx\r\n.\r\n" % n)))
            self.assertTrue(d.settle())
            deadline = time.time() + 10
            while not self.spares(jdir) and time.time() < deadline:
                time.sleep(0.02)
            if n == 0:
                first = self.spares(jdir)
                self.assertEqual(list(first), ["spare.0"])
                with open(os.path.join(jdir, "spare.0"), "rb") as f:
                    hdr = f.read(64)
                self.assertEqual(hdr[:4], b"SJH2")
                self.assertNotEqual(struct.unpack("<I", hdr[4:8])[0], 0)
                self.assertEqual(hdr[8:], bytes(56), "a mark in a spare")
        # The second message went through the first one's file, back again.
        self.assertEqual(self.spares(jdir), first)
        self.assertEqual(sorted(d.queued()), sorted(sent))
        self.assertEqual(d.stop(), 0)
        self.assertEqual(self.spares(jdir), first, "spares kept at stop")

        f = self.smtpd(start=False, config_extra=FILES)
        fj = os.path.join(f.spool, "journal")
        os.makedirs(fj, exist_ok=True)
        with open(os.path.join(fj, "spare.1"), "wb") as out:
            out.write(bytes(4096))
        f.start()
        self.assertEqual(self.spares(fj), {}, "spares left in files mode")

    def test_second_daemon_refused_either_mode(self):
        """One daemon per spool: with a files-mode daemon running, a second
        one (files or journal) exits 73."""
        d = self.files_smtpd()
        for mode in ("files", "journal"):
            conf = os.path.join(self.workdir, "second-%s.conf" % mode)
            with open(conf, "w") as f:
                f.write('spool = "%s";\nlisten = [ "127.0.0.1:%d" ];\n'
                        'reverse_lookup = false;\nhostname = "b.example";\n'
                        'spool_durability = "%s";\n'
                        % (d.spool, free_port(), mode))
            p = subprocess.run([SMTPD, "-d", "-C", conf], capture_output=True,
                               text=True, timeout=10)
            self.assertEqual(p.returncode, 73, mode)
            self.assertIn("in use by another smtpd", p.stderr)

    def test_large_and_small_messages(self):
        """A message over 128 KiB (already on disk while it arrives) and a
        small one (in memory until the end of DATA) both end up whole in
        queue/ with nothing left in tmp/."""
        d = self.files_smtpd()
        c = self.open(d)
        ids = []
        for size in (100, 300 * 1024):
            self.start_mail(c)
            body = b"Subject: s\r\n\r\n" + (b"y" * 998 + b"\r\n") * (size // 1000 + 1)
            ids.append((self.queued_id(self.send_data(c, body + b".\r\n")), body))
        q = d.queued()
        for qid, body in ids:
            # After the Received field smtpd puts on top.
            self.assertTrue(parse_spool(q[qid])[1].endswith(body), qid)
        self.assertEqual(d.tmpfiles(), [])

    def test_bad_value_refused(self):
        """spool_durability other than journal or files: smtpd -t says so
        and exits 78."""
        d = self.smtpd(start=False, config_extra='spool_durability = "fast";')
        p = subprocess.run([SMTPD, "-t", "-C", d.conf], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn('spool_durability must be "journal" or "files"',
                      p.stderr)


class FilesDiskFull(ProtoCase):
    """The disk-full test of test_spool.py, with every message a file."""
    fill = test_spool.WriteErrors.fill
    test_disk_full = test_spool.WriteErrors.test_disk_full

    def namespaced(self, size="512k"):
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            self.skipTest("needs root and unshare for a private tmpfs")
        d = NamespaceSmtpd(self.workdir, config_extra=FILES,
                           limits={"tarpit_delay": 0})
        self._daemons.append(d)
        return d.start(size=size)
