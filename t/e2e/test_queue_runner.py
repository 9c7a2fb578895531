"""The queue runner as a whole: crashes, smtpq commands while it runs,
limits, DSN parameters (RFC 3461) and damaged spool files."""
import os
import re
import resource
import signal
import subprocess

from harness import free_port
from qharness import (alive, SMTPQ, QueueCase, dsn_fields, maildir_files,
                      parse_mail, read_bytes, wait_for)

FAST = "retry_min = 1; retry_max = 2; scan_interval = 1;"


def maildir_route(base, domain="example.com"):
    return ('{ domain = "%s"; action = "maildir"; catchall = true; path = "%s/%%d/%%u"; '
            'create = true; }' % (domain, base))


class Crash(QueueCase):
    def test_kill9_during_a_delivery_loses_nothing(self):
        out = self.outdir()
        # The first run hangs (and is killed with the runner); later runs
        # deliver.
        prog = self.script("deliver", (
            'if [ ! -e %s/started ]; then\n'
            '  echo $$ > %s/started; exec sleep 60\n'
            'fi\n'
            'cat >> %s/mbox\n') % (out, out, out))
        self.setup_queue('{ domain = "example.com"; action = "pipe"; catchall = true; '
                         'command = [ "%s" ]; }' % prog, queue=FAST)
        self.send("alice@example.org", ["bob@example.com"],
                  b"Subject: survivor\r\n\r\nstill here\r\n")
        self.start_runner()
        if self.runner is None:
            self.skipTest("smtpd runs the queue runner itself")
        started = os.path.join(out, "started")
        self.assertTrue(wait_for(lambda: os.path.exists(started) and
                                 read_bytes(started).strip()), self.log())
        self.runner.send_signal(signal.SIGKILL)
        self.runner.wait()
        self.runner = None
        self.runner_out.close()
        # The delivery program went down with its runner.
        pid = int(read_bytes(started))
        self.assertTrue(wait_for(lambda: not alive(pid),
                                 5))
        self.assertEqual(len(self.queue_ids()), 1)
        self.start_runner()
        self.smtpq("flush")
        self.assertTrue(wait_for(lambda: self.queue_ids() == [], 20),
                        self.log())
        self.assertEqual(read_bytes(os.path.join(out, "mbox")).count(
            b"still here"), 1)

    def test_stopping_interrupts_a_hung_program(self):
        out = self.outdir()
        prog = self.script("deliver", (
            'if [ ! -e %s/started ]; then\n'
            '  echo $$ > %s/started; exec sleep 600\n'
            'fi\n'
            'cat >> %s/mbox\n') % (out, out, out))
        self.setup_queue('{ domain = "example.com"; action = "pipe"; catchall = true; '
                         'command = [ "%s" ]; }' % prog, queue=FAST)
        self.send("alice@example.org", ["bob@example.com"])
        self.start_runner()
        if self.runner is None:
            self.skipTest("smtpd runs the queue runner itself")
        started = os.path.join(out, "started")
        self.assertTrue(wait_for(lambda: os.path.exists(started) and
                                 read_bytes(started).strip()), self.log())
        # SIGTERM: the runner stops the program instead of waiting for it.
        self.runner.send_signal(signal.SIGTERM)
        self.assertEqual(self.runner.wait(60), 0)
        self.runner = None
        self.runner_out.close()
        self.assertFalse(alive(int(read_bytes(started))))
        self.assertIn("interrupted: the queue runner is stopping",
                      self.smtpq("list").stdout)
        self.smtpq("flush")
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(read_bytes(os.path.join(out, "mbox")).count(
            b"hello"), 1)

    def test_kill9_during_a_burst_delivers_everything(self):
        mail = self.path("mail")
        self.setup_queue(maildir_route(mail), queue=FAST)
        n = 40
        for i in range(n):
            self.send("alice@example.org", ["u%d@example.com" % (i % 4)],
                      b"Subject: burst %d\r\nMessage-ID: <burst%d@test>\r\n"
                      b"\r\nnumber %d\r\n" % (i, i, i))
        self.start_runner()
        if self.runner is None:
            self.skipTest("smtpd runs the queue runner itself")

        def delivered():
            return sum(len(maildir_files(os.path.join(mail, "example.com",
                                                      "u%d" % u)))
                       for u in range(4))
        wait_for(lambda: delivered() > 0, 10)
        self.runner.send_signal(signal.SIGKILL)
        self.runner.wait()
        self.runner = None
        self.runner_out.close()
        self.start_runner()
        self.assertTrue(wait_for(lambda: self.queue_ids() == [], 30),
                        self.log())
        seen = set()
        for u in range(4):
            for f in maildir_files(os.path.join(mail, "example.com",
                                                "u%d" % u)):
                m = re.search(rb"Message-ID: <burst(\d+)@test>",
                              read_bytes(f))
                self.assertIsNotNone(m)
                seen.add(int(m.group(1)))
        self.assertEqual(seen, set(range(n)))
        # Nothing half-written is left where a mail reader would see it.
        for u in range(4):
            for f in maildir_files(os.path.join(mail, "example.com",
                                                "u%d" % u)):
                self.assertTrue(read_bytes(f).endswith(b"\n"))


class Commands(QueueCase):
    def setUp(self):
        super().setUp()
        self.mail = self.path("mail")
        # Relayed mail waits: nobody listens where the route points (an
        # address, so that no DNS is asked).
        self.setup_queue(maildir_route(self.mail) + ","
                         '{ domain = "*"; action = "relay"; '
                         'host = "127.0.0.1:%d"; }' % free_port(), queue=FAST)

    def box(self, user):
        return os.path.join(self.mail, "example.com", user)

    def test_list_show_stats(self):
        self.send("alice@example.org", ["bob@example.net", "carol@example.net"],
                  b"Subject: listed\r\n\r\nbody\r\n")
        qid = self.queue_ids()[0]
        out = self.smtpq("list").stdout
        self.assertRegex(out, r"(?m)^%s +\d+ +\d+s queued +<alice@example.org>$"
                         % qid)
        self.assertIn("    <bob@example.net> pending", out)
        self.deliver()
        out = self.smtpq("list").stdout
        self.assertRegex(out, r"(?m)^%s .* deferred +<alice@example.org>$" % qid)
        self.assertIn("attempts=1", out)
        show = self.smtpq("show", qid.lower())
        self.assertEqual(show.returncode, 0, show.stderr)
        self.assertIn("from: <alice@example.org>", show.stdout)
        self.assertIn("rcpt: <carol@example.net>", show.stdout)
        self.assertIn("Subject: listed\n", show.stdout)
        stats = self.smtpq("stats").stdout
        self.assertIn("messages: 1 (deferred 1, held 0, damaged 0)", stats)
        self.assertIn("recipients: 2 pending", stats)
        self.assertRegex(stats, r"example\.net +2")
        self.assertIn("runner: not running", stats)
        r = self.smtpq("show", "0000000000000000")
        self.assertEqual(r.returncode, 66)

    def test_hold_release_remove_while_running(self):
        self.send("alice@example.org", ["bob@example.com"],
                  b"Subject: held\r\n\r\nheld body\r\n")
        self.send("alice@example.org", ["carol@example.net"])
        local_id, relay_id = self.queue_ids()
        for qid in (local_id, relay_id):
            r = self.smtpq("hold", qid)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("%s: held" % qid, r.stdout)
        self.start_runner()
        if self.runner is None:
            self.skipTest("smtpd runs the queue runner itself")
        self.smtpq("flush")
        self.assertTrue(wait_for(lambda: "%s queue on hold" % local_id in
                                 self.log()), self.log())
        self.assertEqual(maildir_files(self.box("bob")), [])
        out = self.smtpq("list").stdout
        self.assertRegex(out, r"(?m)^%s .* held " % local_id)
        self.assertRegex(out, r"(?m)^%s .* held " % relay_id)

        r = self.smtpq("release", relay_id)
        self.assertIn("%s: released" % relay_id, r.stdout)
        self.assertTrue(wait_for(lambda: "attempts=" in self.smtpq(
            "show", relay_id).stdout), self.log())
        r = self.smtpq("remove", relay_id)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(relay_id, self.queue_ids())
        self.assertFalse(os.path.exists(os.path.join(self.spool, "state",
                                                     relay_id)))
        self.assertEqual(self.smtpq("remove", relay_id).returncode, 66)

        self.smtpq("release", local_id)
        self.assertTrue(wait_for(lambda: maildir_files(self.box("bob"))),
                        self.log())
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertFalse(os.path.exists(os.path.join(self.spool, "hold",
                                                     local_id)))

    def test_flush_domain_and_id(self):
        self.send("alice@example.org", ["x@example.net"])
        self.send("alice@example.org", ["y@example.org"])
        self.deliver()
        r = self.smtpq("flush", "example.net")
        self.assertIn("flushed 1 message", r.stdout)
        self.assertIn("no queue runner is running", r.stderr)
        r = self.smtpq("flush", "nowhere.example")
        self.assertIn("flushed 0 messages", r.stdout)
        qid = self.queue_ids()[0]
        r = self.smtpq("flush", qid)
        self.assertEqual(r.returncode, 0)
        self.assertIn("%s: flushed" % qid, r.stdout)
        self.assertIn("next=now", self.smtpq("show", qid).stdout)

    def test_flush_skips_held_messages(self):
        self.send("alice@example.org", ["x@example.net"])
        self.send("alice@example.org", ["y@example.net"])
        self.deliver()
        held, other = self.queue_ids()
        self.assertEqual(self.smtpq("hold", held).returncode, 0)
        state = os.path.join(self.spool, "state", held)
        before = read_bytes(state)
        for arg in ((), ("example.net",)):
            r = self.smtpq("flush", *arg)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("flushed 1 message, skipped 1 held", r.stdout)
            self.assertIn("next=now", self.smtpq("show", other).stdout)
            # The held message's schedule is left alone.
            self.assertEqual(read_bytes(state), before)
        r = self.smtpq("flush", held)
        self.assertEqual(r.returncode, 65)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, "smtpq: %s: held, not flushed (release it "
                         "to deliver it)\n" % held)

    def test_release_of_a_message_not_held(self):
        self.send("alice@example.org", ["x@example.net"])
        qid = self.queue_ids()[0]
        r = self.smtpq("release", qid)
        self.assertEqual(r.returncode, 65)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, "smtpq: %s: not held\n" % qid)
        self.assertEqual(self.smtpq("hold", qid).stdout, "%s: held\n" % qid)
        r = self.smtpq("hold", qid)
        self.assertEqual((r.returncode, r.stdout), (0, "%s: already held\n"
                                                    % qid))
        r = self.smtpq("release", qid)
        self.assertEqual((r.returncode, r.stdout), (0, "%s: released\n"
                                                    % qid))
        self.assertEqual(self.smtpq("release", qid).returncode, 65)

    def test_only_one_runner_per_spool(self):
        self.start_runner()
        p = subprocess.run([SMTPQ, "-C", self.qconf, "run", "-o"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 75)
        self.assertIn("another queue runner", p.stderr)

    def test_new_mail_is_picked_up_by_a_running_runner(self):
        self.start_runner()
        self.send("alice@example.org", ["bob@example.com"])
        self.assertTrue(wait_for(lambda: maildir_files(self.box("bob")), 10),
                        self.log())

    def test_bad_config_is_reported_with_its_line(self):
        bad = self.path("bad.conf")
        with open(bad, "w") as f:
            f.write('spool = "%s";\nroutes = (\n  { domain = "x.example"; '
                    'action = "teleport"; }\n);\n' % self.spool)
        p = subprocess.run([SMTPQ, "-C", bad, "list"], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 78)
        self.assertIn("bad.conf:3: unknown action", p.stderr)


class MissingSpool(QueueCase):
    """A spool that does not exist is an error, not an empty queue; only
    the runner makes one."""

    def test_commands_on_a_missing_spool(self):
        self.setup_queue(maildir_route(self.path("mail")), start_smtpd=False)
        missing = self.path("nowhere", "spool")
        conf = self.path("missing.conf")
        with open(self.qconf) as f:
            text = f.read().replace('"%s"' % self.spool, '"%s"' % missing)
        with open(conf, "w") as f:
            f.write(text)
        qid = "1K1375QXW1J630BV"
        for args in (["list"], ["show", qid], ["stats"], ["flush"],
                     ["flush", qid], ["hold", qid], ["release", qid],
                     ["remove", qid]):
            p = subprocess.run([SMTPQ, "-C", conf] + args,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 66, (args, p.stderr))
            self.assertEqual(p.stdout, "", args)
            self.assertEqual(p.stderr, "smtpq: %s: No such file or directory"
                             "\n" % missing, args)
            self.assertFalse(os.path.exists(self.path("nowhere")), args)
        p = subprocess.run([SMTPQ, "-C", conf, "check"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(self.path("nowhere")))
        # A directory that is no spool is named by its queue/.
        os.makedirs(missing)
        p = subprocess.run([SMTPQ, "-C", conf, "list"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((p.returncode, p.stderr), (66, "smtpq: %s/queue: No "
                         "such file or directory\n" % missing))
        os.rmdir(missing)
        p = subprocess.run([SMTPQ, "-C", conf, "run", "-o"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([SMTPQ, "-C", conf, "list"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout), (0, "queue is empty\n"))


class Limits(QueueCase):
    def test_destination_concurrency(self):
        out = self.outdir()
        # Each run records how many runs are under way at its start.
        prog = self.script("count", (
            'mkdir %s/run.$$\n'
            'ls -d %s/run.* | wc -l >> %s/seen\n'
            'sleep 0.3\ncat > /dev/null\nrmdir %s/run.$$\n')
            % (out, out, out, out))
        self.setup_queue('{ domain = "example.com"; action = "pipe"; catchall = true; '
                         'command = [ "%s" ]; concurrency = 2; }' % prog,
                         queue=FAST + " concurrency = 8;")
        for i in range(8):
            self.send("alice@example.org", ["u%d@example.com" % i])
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == [], 30),
                        self.log())
        seen = [int(x) for x in read_bytes(os.path.join(out, "seen")).split()]
        self.assertEqual(len(seen), 8)
        self.assertLessEqual(max(seen), 2)


    def test_one_pass_tries_each_message_once(self):
        # run -o is one pass: a message deferred early in it is not tried
        # again in it, though its retry comes due while another message
        # still holds the pass open.
        out = self.outdir()
        prog = self.script("slowfail", (
            'echo "$RECIPIENT" >> %s/tries\n'
            'case "$RECIPIENT" in carol@*) sleep 3;; esac\n'
            'cat > /dev/null\necho "try later" >&2\nexit 75\n') % out)
        self.setup_queue('{ domain = "example.com"; action = "pipe"; '
                         'catchall = true; command = [ "%s" ]; }' % prog,
                         queue="retry_min = 1; retry_max = 1; "
                         "scan_interval = 1;")
        self.send("alice@example.org", ["bob@example.com"])
        self.send("alice@example.org", ["carol@example.com"])
        self.deliver()
        tries = sorted(read_bytes(os.path.join(out, "tries")).split())
        self.assertEqual(tries, [b"bob@example.com", b"carol@example.com"],
                         self.log())
        self.assertEqual(len(self.queue_ids()), 2)

    def test_backlog_larger_than_the_open_files_limit(self):
        # Every message in delivery keeps its file open: a backlog far
        # beyond the descriptor limit must wait its turn, not fail.
        mail = self.path("mail")
        self.setup_queue(maildir_route(mail), queue=FAST, start_smtpd=False)
        n = 300
        for i in range(n):
            self.write_spool("1E%014d" % i, "alice@example.org",
                             ["<u%d@example.com>" % (i % 3)],
                             b"Subject: backlog %d\r\n\r\nx\r\n" % i)

        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
        p = subprocess.run([SMTPQ, "-d", "-C", self.qconf, "run", "-o"],
                           capture_output=True, text=True, timeout=120,
                           preexec_fn=low_limit)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertFalse("Too many open files" in p.stderr, p.stderr[-2000:])
        got = sum(len(maildir_files(os.path.join(mail, "example.com",
                                                 "u%d" % u)))
                  for u in range(3))
        self.assertEqual(got, n, p.stderr[-2000:])
        self.assertEqual(self.queue_ids(), [])


class DsnParameters(QueueCase):
    """RFC 3461 parameters as smtpd stores them in the envelope."""

    def setUp(self):
        super().setUp()
        self.mail = self.path("mail")
        self.prog = self.script("refuse", 'cat >/dev/null\n'
                                'echo "no thanks" >&2\nexit 1\n')
        self.setup_queue(
            '{ domain = "fail.example"; action = "pipe"; catchall = true; command = [ "%s" ]; },'
            % self.prog + maildir_route(self.mail, "*"), queue=FAST)

    def sender_files(self):
        return maildir_files(os.path.join(self.mail, "example.org", "alice"))

    def test_orcpt_envid_ret_hdrs(self):
        self.write_spool("1AAAAAAAAAAAAAAA", "alice@example.org",
                         ["<bob@fail.example> notify=FAILURE "
                          "orcpt=rfc822;Bob+2BTag@fail.example"],
                         b"Subject: params\r\n\r\nsecret body\r\n",
                         ["ret HDRS", "envid ABC+2B123"])
        self.deliver()
        files = wait_for(self.sender_files)
        self.assertEqual(len(files), 1, self.log())
        raw = read_bytes(files[0])
        msg = parse_mail(raw)
        per_msg, rcpts = dsn_fields(msg)
        self.assertEqual(per_msg["original-envelope-id"], "ABC+123")
        self.assertEqual(rcpts[0]["original-recipient"],
                         "rfc822; Bob+Tag@fail.example")
        self.assertIn("no thanks", rcpts[0]["diagnostic-code"])
        parts = [p.get_content_type() for p in msg.walk()]
        self.assertIn("text/rfc822-headers", parts)
        self.assertIn(b"Subject: params", raw)
        self.assertNotIn(b"secret body", raw)

    def test_notify_never_and_success(self):
        self.write_spool("1BBBBBBBBBBBBBBB", "alice@example.org",
                         ["<bob@fail.example> notify=NEVER",
                          "<carol@example.com> notify=SUCCESS"],
                         b"Subject: quiet\r\n\r\nbody\r\n")
        self.deliver()
        files = wait_for(self.sender_files)
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(self.sender_files()), 1, self.log())
        msg = parse_mail(read_bytes(files[0]))
        _, rcpts = dsn_fields(msg)
        self.assertEqual([r["final-recipient"] for r in rcpts],
                         ["rfc822; carol@example.com"])
        self.assertEqual(rcpts[0]["action"], "delivered")
        self.assertEqual(len(maildir_files(os.path.join(
            self.mail, "example.com", "carol"))), 1)

    def test_big_message_returns_headers_only(self):
        body = b"Subject: big\r\n\r\n" + (b"z" * 500 + b"\r\n") * 300
        self.write_spool("1CCCCCCCCCCCCCCC", "alice@example.org",
                         ["<bob@fail.example>"], body)
        self.deliver()
        files = wait_for(self.sender_files)
        self.assertEqual(len(files), 1, self.log())
        raw = read_bytes(files[0])
        self.assertLess(len(raw), 100000)
        self.assertIn(b"text/rfc822-headers", raw)
        self.assertIn(b"larger than", raw)


class Damaged(QueueCase):
    def test_damaged_files_are_set_aside(self):
        mail = self.path("mail")
        self.setup_queue(maildir_route(mail), queue=FAST)
        os.makedirs(os.path.join(self.spool, "queue"), exist_ok=True)
        with open(os.path.join(self.spool, "queue", "1DDDDDDDDDDDDDDD"),
                  "wb") as f:
            f.write(b"smtpd-spool 1\nid 1DDDDDDDDDDDDDDD\nfrom <broken\n\n"
                    b"\x00\xff garbage")
        self.send("alice@example.org", ["bob@example.com"])
        # A damaged state file is discarded: delivery starts over.
        good = [i for i in self.queue_ids() if i != "1DDDDDDDDDDDDDDD"][0]
        os.makedirs(os.path.join(self.spool, "state"), exist_ok=True)
        with open(os.path.join(self.spool, "state", good), "wb") as f:
            f.write(b"smtpq-state 1\nrcpt pending x y\n")
        self.assertIn("damaged", self.smtpq("list").stdout)
        self.deliver()
        self.assertTrue(wait_for(lambda: maildir_files(os.path.join(
            mail, "example.com", "bob"))), self.log())
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertTrue(os.path.exists(os.path.join(
            self.spool, "corrupt", "1DDDDDDDDDDDDDDD")))
        self.assertIn("damaged message moved to corrupt/", self.log())
        self.assertIn("damaged state discarded", self.log())


class InSmtpd(QueueCase):
    """The runner in smtpd's own threads (queue.runner = true)."""

    def test_first_failure_is_one_attempt_and_retried_after_retry_min(self):
        # The spool's hook and inotify both tell the runner of a new
        # message: it must still be tried once, and retried only after
        # retry_min (60 s, +-25 %).
        out = self.outdir()
        prog = self.script("busy", 'cat > /dev/null\necho try >> %s/tries\n'
                           'echo "mailbox busy" >&2\nexit 75\n' % out)
        self.setup_queue('{ domain = "example.com"; action = "pipe"; catchall = true; '
                         'command = [ "%s" ]; }' % prog,
                         queue="retry_min = 60; retry_max = 600;",
                         in_smtpd=True)
        tries = os.path.join(out, "tries")
        for n in range(3):
            self.send("alice@example.org", ["u%d@example.com" % n])
        self.assertTrue(wait_for(lambda: os.path.exists(tries) and
                                 read_bytes(tries).count(b"try") >= 3),
                        self.log())
        # Long enough for a second attempt to show, were there one.
        wait_for(lambda: False, 1.5)
        self.assertEqual(read_bytes(tries).count(b"try"), 3, self.log())
        log = self.log()
        for n in range(3):
            self.assertEqual(log.count("queue deferred to=<u%d@example.com>"
                                       % n), 1, log)
        for qid in self.queue_ids():
            show = self.smtpq("show", qid).stdout
            m = re.search(r"attempts=(\d+) next=(\d+)s ", show)
            self.assertIsNotNone(m, show)
            self.assertEqual(m.group(1), "1", show)
            self.assertGreaterEqual(int(m.group(2)), 45 - 3, show)
            self.assertLessEqual(int(m.group(2)), 75, show)
            m = re.search(r"attempts=1 next=(\d+)s", log)
            self.assertIsNotNone(m, log)
            self.assertTrue(45 <= int(m.group(1)) <= 75, log)
