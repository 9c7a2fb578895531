"""Nothing acknowledged is lost: the daemon's commit journal survives a
kill -9 in the middle of a load, and a torn record is never delivered."""
import os
import re
import signal
import smtplib
import struct
import sys
import threading
import time
import zlib

import subprocess

from harness import SMTPD, SmtpdCase, free_port, parse_spool, wait_port

QUEUED = re.compile(rb"queued as ([0-9A-Z]{16})")
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def record(qid, body):
    """One journal record (doc/smtpd-spool.5) holding a queue file."""
    payload = (b"smtpd-spool 1\nid %s\narrival 1\nfrom <a@example.org>\n"
               b"rcpt <b@example.net>\n\n" % qid.encode()) + body
    return b"SJR1" + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def fake_ids(n, prefix="0J"):
    """n distinct queue ids in the spool alphabet."""
    out = []
    for i in range(n):
        tail = ""
        for _ in range(14):
            tail = ALPHABET[i % 32] + tail
            i //= 32
        out.append(prefix + tail)
    return out


def journal_locked(spool):
    """True once a daemon holds the spool's journal lock."""
    import fcntl
    try:
        fd = os.open(os.path.join(spool, "journal", "lock"), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def send_until_error(host, port, count, acked, stop):
    """Sends messages one per session; records each acknowledged queue id."""
    for i in range(count):
        if stop.is_set():
            return
        try:
            with smtplib.SMTP(host, port, timeout=5) as c:
                c.ehlo("client.example")
                c.mail("a@example.org")
                c.rcpt("b@example.net")
                code, msg = c.data(b"Subject: %d\r\n\r\n" % i + b"x" * 3000 + b"\r\n")
                if code == 250:
                    m = QUEUED.search(msg)
                    if m:
                        acked.append(m.group(1).decode())
        except (OSError, smtplib.SMTPException):
            return


class Journal(SmtpdCase):
    def test_kill9_loses_nothing_acknowledged(self):
        """kill -9 under load; after a restart every acknowledged id is queued, whole."""
        d = self.smtpd(limits={"sessions": 200, "sessions_per_ip": 200,
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
        d.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(10)
        self.assertGreater(len(acked), 50, "the load never got going")
        d.start()
        self.assertTrue(d.settle(), "journal not written out after restart")
        q = d.queued()
        missing = [i for i in acked if i not in q]
        self.assertEqual(missing, [], "acknowledged but lost")
        for qid, raw in q.items():
            env, body = parse_spool(raw)
            self.assertEqual(env["id"], qid)
            self.assertTrue(body.endswith(b"x" * 3000 + b"\r\n"), qid)
        self.assertEqual(d.stop(), 0)

    def test_torn_record_is_dropped(self):
        """A whole record is replayed at start-up; a torn one after it is not."""
        d = self.smtpd(start=False)
        jdir = os.path.join(d.spool, "journal")
        os.makedirs(jdir)
        payload = (b"smtpd-spool 1\nid 01234567890ABCDE\narrival 1\n"
                   b"from <a@example.org>\nrcpt <b@example.net>\n\n"
                   b"Subject: replayed\r\n\r\nbody\r\n")
        rec = b"SJR1" + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
        torn = b"SJR1" + struct.pack("<II", 1000, 0) + b"partial"
        with open(os.path.join(jdir, "000000000007.j"), "wb") as f:
            f.write(rec + torn)
        d.start()
        self.assertTrue(d.settle())
        q = d.queued()
        self.assertEqual(list(q), ["01234567890ABCDE"])
        env, body = parse_spool(q["01234567890ABCDE"])
        self.assertEqual(body, b"Subject: replayed\r\n\r\nbody\r\n")
        self.assertFalse(os.path.exists(os.path.join(jdir, "000000000007.j")))
        self.assertIn("recovered 1 messages from the journal", d.logtext())

    def test_second_daemon_on_same_spool_refused(self):
        """Only one daemon may own a spool's journal: the second exits 73."""
        d = self.smtpd()
        conf = os.path.join(self.workdir, "second.conf")
        with open(conf, "w") as f:
            f.write('spool = "%s";\nlisten = [ "127.0.0.1:%d" ];\n'
                    'reverse_lookup = false;\nhostname = "b.example";\n'
                    % (d.spool, free_port()))
        p = subprocess.run([SMTPD, "-d", "-C", conf], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(p.returncode, 73)
        self.assertIn("in use by another smtpd", p.stderr)

    def test_sighup_during_replay(self):
        """SIGHUP sent again and again while smtpd replays a journal at
        start-up (from the moment it holds the journal lock until it
        listens): in 30 starts smtpd never dies of it, every record is
        replayed, and SIGTERM then stops it with exit 0."""
        d = self.smtpd(start=False)
        jdir = os.path.join(d.spool, "journal")
        body = b"Subject: replay\r\n\r\n" + b"r" * 2000 + b"\r\n"
        deaths = []
        for round_ in range(30):
            d.move_port()
            ids = fake_ids(300, prefix="0%s" % ALPHABET[round_])
            os.makedirs(jdir, exist_ok=True)
            with open(os.path.join(jdir, "000000000001.j"), "wb") as f:
                f.write(b"".join(record(i, body) for i in ids))
            d.log = open(d.logfile, "ab")
            d.proc = subprocess.Popen([SMTPD, "-d", "-C", d.conf],
                                      stdin=subprocess.DEVNULL,
                                      stdout=d.log, stderr=d.log)
            deadline = time.time() + 10
            while (not journal_locked(d.spool) and d.proc.poll() is None
                   and time.time() < deadline):
                time.sleep(0.001)
            sent = 0
            while d.proc.poll() is None and time.time() < deadline:
                d.proc.send_signal(signal.SIGHUP)
                sent += 1
                if wait_port(d.host, d.port, timeout=0.005):
                    break
            if d.proc.poll() is not None:
                deaths.append((round_, d.proc.returncode, sent))
                d.proc = None
                d.log.close()
                continue
            self.assertEqual(d.stop(), 0)
            missing = [i for i in ids if i not in os.listdir(
                os.path.join(d.spool, "queue"))]
            self.assertEqual(missing, [], "round %d" % round_)
        self.assertEqual(deaths, [], "(round, exit, SIGHUPs sent) of "
                         "each start that died")


def message_ids(maildir):
    """Message-ID of every message delivered into maildir/new."""
    out = []
    new = os.path.join(maildir, "new")
    for name in os.listdir(new) if os.path.isdir(new) else []:
        with open(os.path.join(new, name), "rb") as f:
            m = re.search(rb"^Message-ID: <([^>]+)>", f.read(), re.M | re.I)
        out.append(m.group(1).decode() if m else None)
    return out


def send_tokens(host, port, prefix, acked, stop, limit=None):
    """One message per session, each with its own Message-ID, until stop
    or limit messages; records the Message-IDs acknowledged with 250."""
    i = 0
    while not stop.is_set() and (limit is None or i < limit):
        token = "%s.%d@load.example" % (prefix, i)
        i += 1
        try:
            with smtplib.SMTP(host, port, timeout=10) as c:
                c.ehlo("client.example")
                c.mail("a@example.org")
                c.rcpt("box@example.com")
                code, _ = c.data(b"Message-ID: <%s>\r\nSubject: load\r\n\r\n"
                                 % token.encode() + b"y" * 2000 + b"\r\n")
                if code == 250:
                    acked.append(token)
        except (OSError, smtplib.SMTPException):
            time.sleep(0.05)


class Replay(SmtpdCase):
    ROUNDS = 5
    SESSIONS = 4
    # Load in a round before the kill: the clients are still sending then,
    # but thousands of messages each round would only make the test long.
    LOAD_SECONDS = 1.0
    # Messages one client sends in a round at most: what the queue runner
    # must deliver afterwards stays bounded however fast the build is.
    PER_ROUND = 150
    # Deliveries at once: a crash can repeat at most these.
    DELIVERIES = 8

    def test_kill9_rounds_duplicates_bounded(self):
        """Five rounds of a second of load (four clients, one message
        per session) ended by kill -9, with smtpd's queue runner delivering
        into a maildir: afterwards every acknowledged message was delivered,
        and a message is delivered twice only if its delivery was under
        way at a crash (at most DELIVERIES per crash), not because a
        journal replay brought back messages already delivered."""
        os.chmod(self.workdir, 0o755)
        mail = os.path.join(self.workdir, "mail")
        d = self.smtpd(
            limits={"sessions": 100, "sessions_per_ip": 100},
            config_extra='routes = ( { domain = "example.com"; '
            'action = "maildir"; catchall = true; path = "%s/%%d/%%u"; create = true; } );\n'
            'queue = { runner = true; retry_min = 1; scan_interval = 1; '
            'concurrency = %d; };'
            % (mail, self.DELIVERIES))
        acked = []
        for round_ in range(self.ROUNDS):
            stop = threading.Event()
            threads = [threading.Thread(target=send_tokens, args=(
                d.host, d.port, "r%dc%d" % (round_, i), acked, stop,
                self.PER_ROUND))
                for i in range(self.SESSIONS)]
            for t in threads:
                t.start()
            time.sleep(self.LOAD_SECONDS)
            d.stop(signal.SIGKILL)
            stop.set()
            for t in threads:
                t.join(20)
            d.start()
        box = os.path.join(mail, "example.com", "box")
        # Thousands of Maildir deliveries, each in a child that takes the
        # mailbox owner's identity: slow under the sanitizers and on a
        # loaded machine.  Wait as long as the queue keeps shrinking.
        queue = os.path.join(d.spool, "queue")
        left = len(os.listdir(queue))
        progress = time.time()
        while left and time.time() - progress < 60:
            time.sleep(0.5)
            now = len(os.listdir(queue))
            if now < left:
                progress = time.time()
            left = now
        log = d.logtext()
        self.assertEqual(d.stop(), 0)
        self.assertEqual(left, 0, "the queue stopped draining; the log's "
                         "queue lines end with:\n" + "\n".join(
                             [l for l in log.splitlines() if " queue " in l
                              or "runner" in l][-15:]))
        ids = message_ids(box)
        counts = {}
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
        dups = sum(n - 1 for n in counts.values())
        lost = [t for t in acked if t not in counts]
        sys.stderr.write("\n%d acknowledged, %d delivered, %d duplicates, "
                         "%d lost\n" % (len(acked), len(ids), dups, len(lost)))
        self.assertGreater(len(acked), 100, "the load never got going")
        self.assertEqual(lost, [], "acknowledged but never delivered")
        self.assertLessEqual(dups, self.ROUNDS * self.DELIVERIES)
