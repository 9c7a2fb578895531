"""Crash safety of the queue: the runner (smtpq run, or smtpd running it
itself) is killed with SIGKILL again and again while it relays to
Postfix's smtp-sink.  No message may be lost; a message the next hop
took but whose delivery the runner had not yet recorded is sent again
(at-least-once), so duplicates are allowed, but never more per crash than
there were deliveries in flight (the route's concurrency).  The
duplicate count is printed."""
import os
import random
import shutil
import signal
import sys
import time
import unittest

from clientkit import Sink
from qharness import QueueCase, wait_for

SMTP_SINK = shutil.which("smtp-sink", path="/usr/sbin:/usr/bin")
FAST = "retry_min = 1; retry_max = 2; scan_interval = 1;"
MESSAGES = 40
CONCURRENCY = 4
ROUNDS = 5


def dumped(sink):
    """The message numbers smtp-sink has written so far, one per copy."""
    nums = []
    for name in os.listdir(sink.dumpdir):
        try:
            with open(os.path.join(sink.dumpdir, name), "rb") as f:
                body = f.read()
        except OSError:
            continue
        for line in body.splitlines():
            if line.startswith(b"message-number "):
                nums.append(int(line.split()[1]))
                break
    return nums


@unittest.skipUnless(SMTP_SINK, "smtp-sink (Debian package postfix) is not "
                     "installed")
class KillRunner(QueueCase):
    def crash_rounds(self, in_smtpd):
        # -w 1: each transaction takes a second, so deliveries are in
        # flight whenever the runner is killed.
        with Sink(self.workdir, args=["-w", "1"]) as sink:
            self.setup_queue('{ domain = "*"; action = "relay"; '
                             'host = "%s"; concurrency = %d; }'
                             % (sink.addr(), CONCURRENCY),
                             queue=FAST, in_smtpd=in_smtpd)
            for i in range(MESSAGES):
                self.send("alice@example.org", ["r%d@example.net" % i],
                          b"Subject: %d\r\n\r\nmessage-number %d\r\n" % (i, i))
            self.d.settle()
            rng = random.Random(1)
            crashes = 0
            for _ in range(ROUNDS):
                before = len(dumped(sink))
                if before >= MESSAGES:
                    break
                if in_smtpd:
                    if self.d.proc is None:
                        self.d.start()
                else:
                    self.start_runner()
                # Let some deliveries finish and others be under way.
                wait_for(lambda: len(dumped(sink)) > before, 10)
                time.sleep(rng.uniform(0.1, 1.2))
                if in_smtpd:
                    self.assertEqual(self.d.stop(signal.SIGKILL),
                                     -signal.SIGKILL)
                else:
                    self.assertEqual(self.stop_runner(signal.SIGKILL),
                                     -signal.SIGKILL)
                crashes += 1
                wait_for(self.lock_free, 15)
            # The last runner finishes the job.
            if in_smtpd:
                if self.d.proc is None:
                    self.d.start()
            else:
                self.start_runner()
            self.assertTrue(wait_for(lambda: self.queue_ids() == [], 60),
                            self.diag())
            nums = dumped(sink)
        missing = sorted(set(range(MESSAGES)) - set(nums))
        self.assertEqual(missing, [], "lost messages")
        dups = len(nums) - MESSAGES
        sys.stderr.write("\n  %s: %d crashes, %d messages, %d duplicates "
                         "(at most %d in flight per crash)\n"
                         % ("smtpd" if in_smtpd else "smtpq run", crashes,
                            MESSAGES, dups, CONCURRENCY))
        self.assertGreater(crashes, 0)
        self.assertLessEqual(dups, crashes * CONCURRENCY)

    def test_kill_smtpq_run(self):
        """Five kill -9 of smtpq run mid-relay (40 messages, four
        deliveries in flight): every message arrives, duplicates at most
        four per crash."""
        self.crash_rounds(in_smtpd=False)

    def test_kill_smtpd_with_runner(self):
        """The same with the runner inside smtpd: smtpd itself is killed
        and restarted."""
        self.crash_rounds(in_smtpd=True)
