"""Nothing acknowledged is lost: the daemon's commit journal survives a
kill -9 in the middle of a load, and a torn record is never delivered."""
import os
import re
import signal
import smtplib
import struct
import threading
import time
import zlib

import subprocess

from harness import SMTPD, SmtpdCase, free_port, parse_spool

QUEUED = re.compile(rb"queued as ([0-9A-Z]{16})")


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
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        stop.set()
        for t in threads:
            t.join(10)
        self.assertGreater(len(acked), 50, "the load never got going")
        d.proc = None
        d.log.close()
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
