"""Local delivery: mail accepted by smtpd, delivered by the queue runner
into maildirs and to pipe programs, with aliases and bounces (RFC 3464
DSNs read back with Python's email package)."""
import os
import pwd

from harness import parse_spool
from qharness import (alive, QueueCase, dsn_fields, maildir_files, parse_mail,
                      read_bytes, wait_for)

FAST = "retry_min = 1; retry_max = 2; scan_interval = 1;"


class Maildir(QueueCase):
    def routes(self, create="true"):
        return ('{ domain = "example.com"; action = "maildir"; catchall = true; '
                'path = "%s/%%d/%%u"; create = %s; }'
                % (self.path("mail"), create))

    def box(self, user, domain="example.com"):
        return self.path("mail", domain, user)

    def test_delivery_into_maildir(self):
        self.setup_queue(self.routes(), queue=FAST)
        self.send("alice@example.org", ["Bob@example.com"],
                  b"Subject: hi\r\nX-Test: one\r\n\r\nline one\r\nline two\r\n")
        self.assertEqual(len(self.queue_ids()), 1)
        self.deliver()
        files = wait_for(lambda: maildir_files(self.box("bob")))
        self.assertEqual(len(files), 1, self.log())
        raw = read_bytes(files[0])
        self.assertNotIn(b"\r", raw)
        self.assertTrue(raw.startswith(b"Return-Path: <alice@example.org>\n"
                                       b"Delivered-To: Bob@example.com\n"
                                       b"Received: from "), raw[:200])
        self.assertTrue(raw.endswith(b"\n\nline one\nline two\n"))
        name = os.path.basename(files[0])
        self.assertRegex(name, r"^\d+\.M\d+P\d+Q\d+\.mx\.test\.example,S=%d$"
                         % len(raw))
        for sub in ("tmp", "cur"):
            self.assertTrue(os.path.isdir(os.path.join(self.box("bob"), sub)))
        self.assertEqual(os.listdir(os.path.join(self.box("bob"), "tmp")), [])
        self.assertTrue(wait_for(lambda: self.queue_ids() == []))
        self.assertIn("queue delivered to=<Bob@example.com>", self.log())

    def test_aliases(self):
        self.setup_queue(self.routes(), queue=FAST, aliases=(
            '{ name = "postmaster"; to = [ "root" ]; },'
            '{ name = "root"; to = [ "root", "carol@example.com" ]; },'
            '{ name = "team@example.com"; to = [ "dave", "root" ]; }'))
        self.send("alice@example.org", ["postmaster@example.com",
                                        "team@example.com"])
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        # root is reached twice (directly and through team) but gets one copy.
        self.assertEqual(len(maildir_files(self.box("root"))), 1)
        self.assertEqual(len(maildir_files(self.box("carol"))), 1)
        self.assertEqual(len(maildir_files(self.box("dave"))), 1)
        self.assertEqual(maildir_files(self.box("postmaster")), [])
        raw = read_bytes(maildir_files(self.box("carol"))[0])
        self.assertIn(b"Delivered-To: carol@example.com\n", raw)

    def test_bare_postmaster_is_ours(self):
        """RCPT TO:<Postmaster> is queued as postmaster@hostname and goes
        by that domain's route."""
        self.setup_queue(self.routes().replace('"example.com"',
                                               '"%s"' % self.hostname),
                         queue=FAST)
        self.send("alice@example.org", ["Postmaster"],
                  b"Subject: to the postmaster\r\n\r\nhello\r\n")
        queued = list(self.d.queued().values())
        self.assertEqual(len(queued), 1)
        env, _ = parse_spool(queued[0])
        self.assertEqual(env["rcpt"], ["<postmaster@%s>" % self.hostname])
        self.assertIn("smtp rcpt to=<postmaster@%s>" % self.hostname,
                      self.log())
        self.deliver()
        box = self.box("postmaster", self.hostname)
        self.assertTrue(wait_for(lambda: maildir_files(box)), self.diag())
        raw = read_bytes(maildir_files(box)[0])
        self.assertIn(b"Delivered-To: postmaster@%s\n"
                      % self.hostname.encode(), raw)
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())

    def test_bare_postmaster_in_an_old_spool_file(self):
        # Queued unqualified (by an older smtpd): the queue qualifies it.
        self.setup_queue(self.routes().replace('"example.com"',
                                               '"%s"' % self.hostname),
                         queue=FAST, start_smtpd=False)
        self.write_spool("1PPPPPPPPPPPPPPP", "alice@example.org",
                         ["<Postmaster>"], b"Subject: old\r\n\r\nx\r\n")
        self.deliver()
        box = self.box("postmaster", self.hostname)
        self.assertTrue(wait_for(lambda: maildir_files(box)), self.diag())
        self.assertIn("queue delivered to=<postmaster@%s> reply="
                      % self.hostname, self.log())

    def test_unknown_mailbox_bounces_to_sender(self):
        self.setup_queue(self.routes(create="false"), queue=FAST)
        os.makedirs(os.path.join(self.box("alice"), "new"))
        os.makedirs(os.path.join(self.box("alice"), "tmp"))
        os.makedirs(os.path.join(self.box("alice"), "cur"))
        self.send("alice@example.com", ["nobody@example.com"],
                  b"Subject: lost letter\r\nMessage-ID: <lost@example.com>\r\n"
                  b"\r\nwhere am I\r\n")
        self.deliver()
        files = wait_for(lambda: maildir_files(self.box("alice")))
        self.assertEqual(len(files), 1, self.log())
        raw = read_bytes(files[0])
        self.assertTrue(raw.startswith(b"Return-Path: <>\n"))
        msg = parse_mail(raw)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertIn("MAILER-DAEMON@mx.test.example", msg["From"])
        self.assertEqual(msg["Auto-Submitted"], "auto-replied")
        per_msg, rcpts = dsn_fields(msg)
        self.assertEqual(per_msg["reporting-mta"], "dns; mx.test.example")
        self.assertEqual(len(rcpts), 1)
        self.assertEqual(rcpts[0]["final-recipient"],
                         "rfc822; nobody@example.com")
        self.assertEqual(rcpts[0]["action"], "failed")
        self.assertEqual(rcpts[0]["status"], "5.1.1")
        self.assertIn("no such mailbox", rcpts[0]["diagnostic-code"])
        parts = [p.get_content_type() for p in msg.walk()]
        self.assertIn("message/rfc822", parts)
        self.assertIn(b"Subject: lost letter", raw)
        self.assertTrue(wait_for(lambda: self.queue_ids() == []))

    def test_bounce_to_a_bounce_is_dropped(self):
        self.setup_queue(self.routes(create="false"), queue=FAST)
        self.send("", ["nobody@example.com"])
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertIn("queue bounced to=<nobody@example.com>", self.log())
        self.assertNotIn("queue dsn", self.log())

    def test_mail_loop_is_refused(self):
        self.setup_queue(self.routes(create="false"), queue=FAST)
        for u in ("bob", "alice"):
            for sub in ("new", "tmp", "cur"):
                os.makedirs(os.path.join(self.box(u), sub))
        self.send("alice@example.com", ["bob@example.com"],
                  b"Delivered-To: bob@example.com\r\nSubject: loop\r\n\r\nx\r\n")
        self.deliver()
        files = wait_for(lambda: maildir_files(self.box("alice")))
        self.assertEqual(maildir_files(self.box("bob")), [])
        self.assertEqual(len(files), 1, self.log())
        _, rcpts = dsn_fields(parse_mail(read_bytes(files[0])))
        self.assertEqual(rcpts[0]["status"], "5.4.6")


class Pipe(QueueCase):
    def pipe_route(self, script, extra=""):
        return ('{ domain = "example.com"; action = "pipe"; catchall = true; '
                'command = [ "%s", "-f", "%%s", "--", "%%r" ]; %s }'
                % (script, extra))

    def sender_box(self):
        return ('{ domain = "example.org"; action = "maildir"; catchall = true; '
                'path = "%s/%%d/%%u"; create = true; }' % self.path("mail"))

    def test_pipe_gets_envelope_and_message(self):
        out = self.outdir()
        prog = self.script("deliver", (
            'id -un > %s/user\n'
            'printf "%%s\\n" "$@" > %s/args\n'
            'printf "%%s %%s %%s\\n" "$SENDER" "$RECIPIENT" "$QUEUE_ID" > %s/env\n'
            'cat > %s/msg\n') % (out, out, out, out))
        self.setup_queue(self.pipe_route(prog), queue=FAST)
        self.send("alice@example.org", ["bob@example.com"],
                  b"Subject: piped\r\n\r\nbody\r\n")
        qid = self.queue_ids()[0]
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(read_bytes(os.path.join(out, "user")).strip(),
                         pwd.getpwnam("nobody").pw_name.encode())
        self.assertEqual(read_bytes(os.path.join(out, "args")).decode(),
                         "-f\nalice@example.org\n--\nbob@example.com\n")
        self.assertEqual(read_bytes(os.path.join(out, "env")).decode(),
                         "alice@example.org bob@example.com %s\n" % qid)
        msg = read_bytes(os.path.join(out, "msg"))
        self.assertNotIn(b"\r", msg)
        self.assertTrue(msg.endswith(b"Subject: piped\n\nbody\n"))
        self.assertTrue(msg.startswith(b"Received: from "))

    def test_user_tag_and_local_part(self):
        """With recipient_delimiter "+", %u is the user without the tag
        (as in Maildir paths and Postfix's ${user}), %t the tag
        (${extension}, empty when there is none) and %l the whole local
        part; a tag that starts with '-' never reaches the program."""
        out = self.outdir()
        prog = self.script("deliver", 'printf "[%%s]" "$@" >> %s/args\n'
                           'echo >> %s/args\ncat > /dev/null\n' % (out, out))
        route = ('{ domain = "example.com"; action = "pipe"; catchall = true; '
                 'command = [ "%s", "%%u", "%%t", "%%l", "%%d" ]; }' % prog)
        self.setup_queue(route + "," + self.sender_box(), queue=FAST,
                         start_smtpd=False)
        with open(self.qconf, "a") as f:
            f.write('recipient_delimiter = "+";\n')
        self.d.start()
        for r in ("bob+lists@example.com", "carol@example.com",
                  "dave+-x@example.com"):
            self.send("alice@example.org", [r])
            self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(read_bytes(os.path.join(out, "args")).decode(),
                         "[bob][lists][bob+lists][example.com]\n"
                         "[carol][][carol][example.com]\n")
        files = wait_for(lambda: maildir_files(self.path("mail", "example.org",
                                                         "alice")))
        self.assertEqual(len(files), 1, self.log())
        _, rcpts = dsn_fields(parse_mail(read_bytes(files[0])))
        self.assertEqual(rcpts[0]["status"], "5.1.3")

    def test_no_control_characters_reach_the_program(self):
        """A CR LF in the sender's ORCPT (xtext +0D+0A) is not passed on
        into the program's environment."""
        out = self.outdir()
        prog = self.script("deliver", (
            'printf "%%s" "$ORIGINAL_RECIPIENT" > %s/orcpt\n'
            'cat > /dev/null\n') % out)
        self.setup_queue(self.pipe_route(prog), queue=FAST)
        self.send("alice@example.org", ["bob@example.com"],
                  rcpt_options=["ORCPT=rfc822;a+0D+0AX-Injected:+20yes@x"])
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        orcpt = read_bytes(os.path.join(out, "orcpt"))
        self.assertNotIn(b"\r", orcpt)
        self.assertNotIn(b"\n", orcpt)
        self.assertEqual(orcpt, b"a??X-Injected: yes@x")

    def test_recipient_that_looks_like_an_option_bounces(self):
        """A program whose command puts %r where an option could be never
        sees a recipient starting with '-': it bounces (5.1.3)."""
        out = self.outdir()
        prog = self.script("deliver", 'printf "%%s\\n" "$@" >> %s/args\n'
                           'cat > /dev/null\n' % out)
        route = ('{ domain = "example.com"; action = "pipe"; catchall = true; '
                 'command = [ "%s", "%%r" ]; }' % prog)
        self.setup_queue(route + "," + self.sender_box(), queue=FAST)
        self.send("alice@example.org", ["-oQ/tmp/x@example.com",
                                        "bob@example.com"])
        self.deliver()
        files = wait_for(lambda: maildir_files(self.path("mail", "example.org",
                                                         "alice")))
        self.assertEqual(len(files), 1, self.log())
        _, rcpts = dsn_fields(parse_mail(read_bytes(files[0])))
        self.assertEqual(len(rcpts), 1)
        self.assertEqual(rcpts[0]["status"], "5.1.3")
        self.assertIn("would be an option", rcpts[0]["diagnostic-code"])
        self.assertEqual(read_bytes(os.path.join(out, "args")),
                         b"bob@example.com\n")
        self.assertTrue(wait_for(lambda: self.queue_ids() == []))

    def test_thousand_failures_make_one_bounded_bounce(self):
        """1,000 recipients that all fail permanently: one DSN listing the
        first ones and counting the rest, and the message leaves."""
        prog = self.script("refuse", 'cat >/dev/null\n'
                           'echo "%s" >&2\nexit 1\n' % ("no " * 120))
        route = ('{ domain = "example.com"; action = "pipe"; catchall = true; batch = true; '
                 'command = [ "%s", "--", "%%r" ]; }' % prog)
        self.setup_queue(route + "," + self.sender_box(), queue=FAST)
        rcpts = ["<user%04d@example.com>" % i for i in range(1000)]
        self.write_spool("2AAAAAAAAAAAAAAA", "alice@example.org", rcpts,
                         b"Subject: to many\r\n\r\nhello\r\n")
        self.deliver()
        box = self.path("mail", "example.org", "alice")
        files = wait_for(lambda: maildir_files(box))
        self.assertEqual(len(files), 1, self.diag())
        raw = read_bytes(files[0])
        self.assertLess(len(raw), 256 * 1024)
        self.assertIn(b"... and 950 more recipients", raw)
        _, fields = dsn_fields(parse_mail(raw))
        self.assertEqual(len(fields), 50)
        self.assertEqual(fields[0]["final-recipient"],
                         "rfc822; user0000@example.com")
        self.assertTrue(wait_for(lambda: self.queue_ids() == []),
                        self.diag())
        self.assertIn("queue dsn id=", self.log())

    def test_thousand_member_alias_among_other_mail(self):
        """A 1,000-member alias, its members given twice in other cases,
        reaches each member once while other mail is delivered too."""
        out = self.outdir()
        prog = self.script("list", 'cat > /dev/null\n'
                           'printf "%%s\\n" "$@" >> %s/rcpts\n' % out)
        route = ('{ domain = "lists.example.com"; action = "pipe"; catchall = true; '
                 'batch = true; command = [ "%s", "%%r" ]; }' % prog)
        big = ", ".join('"m%d"' % i for i in range(1000))
        again = ", ".join('"M%d@Lists.Example.COM"' % i for i in range(1000))
        self.setup_queue(route + "," + self.sender_box(), queue=FAST,
                         aliases=('{ name = "big@lists.example.com"; '
                                  'to = [ %s ]; }, '
                                  '{ name = "again@lists.example.com"; '
                                  'to = [ %s ]; }' % (big, again)))
        self.start_runner()
        self.send("alice@example.org", ["big@lists.example.com",
                                        "again@lists.example.com"])
        self.send("carol@example.org", ["alice@example.org"],
                  b"Subject: meanwhile\r\n\r\nstill flowing\r\n")
        self.assertTrue(wait_for(lambda: self.queue_ids() == [], 60),
                        self.diag())
        got = read_bytes(os.path.join(out, "rcpts")).decode().split()
        self.assertEqual(len(got), 1000)
        self.assertEqual(sorted(got), sorted("m%d@lists.example.com" % i
                                             for i in range(1000)))
        files = maildir_files(self.path("mail", "example.org", "alice"))
        self.assertEqual(len(files), 1)
        self.assertIn(b"still flowing", read_bytes(files[0]))

    def test_tempfail_is_retried_and_delivered_once(self):
        out = self.outdir()
        prog = self.script("flaky", (
            'if [ ! -e %s/tried ]; then\n'
            '  touch %s/tried; echo "mailbox busy" >&2; exit 75\n'
            'fi\n'
            'cat >> %s/mbox\n') % (out, out, out))
        self.setup_queue(self.pipe_route(prog), queue=FAST)
        self.start_runner()
        self.send("alice@example.org", ["bob@example.com"],
                  b"Subject: once\r\n\r\nonly once\r\n")
        self.assertTrue(wait_for(lambda: self.queue_ids() == [], 20),
                        self.log())
        mbox = read_bytes(os.path.join(out, "mbox"))
        self.assertEqual(mbox.count(b"only once"), 1)
        log = self.log()
        self.assertIn("queue deferred to=<bob@example.com>", log)
        self.assertIn("mailbox busy", log)
        self.assertIn("queue delivered to=<bob@example.com>", log)

    def test_permanent_failure_bounces_with_stderr(self):
        prog = self.script("refuse", 'cat >/dev/null\n'
                           'echo "user bob is unknown here" >&2\nexit 67\n')
        self.setup_queue(self.pipe_route(prog) + "," + self.sender_box(),
                         queue=FAST)
        self.send("alice@example.org", ["bob@example.com"],
                  b"Subject: to bob\r\n\r\nhello\r\n")
        self.deliver()
        files = wait_for(lambda: maildir_files(self.path("mail", "example.org",
                                                         "alice")))
        self.assertEqual(len(files), 1, self.log())
        msg = parse_mail(read_bytes(files[0]))
        _, rcpts = dsn_fields(msg)
        self.assertEqual(rcpts[0]["action"], "failed")
        self.assertEqual(rcpts[0]["status"], "5.1.1")
        self.assertIn("user bob is unknown here", rcpts[0]["diagnostic-code"])
        text = msg.get_body(preferencelist=("plain",)).get_content()
        self.assertIn("user bob is unknown here", text)
        self.assertTrue(wait_for(lambda: self.queue_ids() == []))

    def test_expiry_bounces_after_the_lifetime(self):
        prog = self.script("busy", 'cat >/dev/null\necho "try later" >&2\n'
                           'exit 75\n')
        self.setup_queue(self.pipe_route(prog) + "," + self.sender_box(),
                         queue=FAST + " lifetime = 3;")
        self.start_runner()
        self.send("alice@example.org", ["bob@example.com"])
        box = self.path("mail", "example.org", "alice")
        files = wait_for(lambda: maildir_files(box), 30)
        self.assertEqual(len(files), 1, self.log())
        _, rcpts = dsn_fields(parse_mail(read_bytes(files[0])))
        self.assertEqual(rcpts[0]["action"], "failed")
        self.assertTrue(rcpts[0]["status"].startswith("4."), rcpts[0])
        self.assertIn("try later", rcpts[0]["diagnostic-code"])
        self.assertTrue(wait_for(lambda: self.queue_ids() == []))
        self.assertIn("queue expired to=<bob@example.com>", self.log())

    def test_delay_warning(self):
        prog = self.script("busy", 'cat >/dev/null\nexit 75\n')
        self.setup_queue(self.pipe_route(prog) + "," + self.sender_box(),
                         queue=FAST + " delay_warning = 1; lifetime = 3600;")
        self.start_runner()
        self.send("alice@example.org", ["bob@example.com"])
        box = self.path("mail", "example.org", "alice")
        files = wait_for(lambda: maildir_files(box), 20)
        self.assertEqual(len(files), 1, self.diag())
        msg = parse_mail(read_bytes(files[0]))
        self.assertIn("Delayed", msg["Subject"])
        _, rcpts = dsn_fields(msg)
        self.assertEqual(rcpts[0]["action"], "delayed")
        self.assertIn("will-retry-until", rcpts[0])
        # Still queued, and warned only once.
        self.assertEqual(len(self.queue_ids()), 1)
        self.assertIn("delay warning: sent",
                      self.smtpq("show", self.queue_ids()[0]).stdout)
        self.assertEqual(len(maildir_files(box)), 1)

    def test_timeout_kills_the_program(self):
        out = self.outdir()
        prog = self.script("slow", 'echo $$ > %s/pid\nexec sleep 60\n' % out)
        self.setup_queue(self.pipe_route(prog, "timeout = 1;"), queue=FAST)
        self.send("alice@example.org", ["bob@example.com"])
        self.deliver()
        self.assertIn("timed out", self.smtpq("list").stdout)
        pid = int(read_bytes(os.path.join(out, "pid")))
        self.assertTrue(wait_for(lambda: not alive(pid),
                                 5))

    def test_missing_program_is_a_temporary_error(self):
        self.setup_queue(self.pipe_route("/nonexistent/deliver"), queue=FAST)
        self.send("alice@example.org", ["bob@example.com"])
        self.deliver()
        self.assertEqual(len(self.queue_ids()), 1)
        self.assertIn("No such file or directory", self.smtpq("list").stdout)

    def test_big_expansion_does_not_hold_up_other_mail(self):
        """1,000 recipients that each expand through a 1,000-member alias
        (a million addresses to weigh) are worked out by a worker: a
        message queued after it, for another route, is delivered before
        that expansion is done, and the list still gets one copy each."""
        out = self.outdir()
        prog = self.script("list", 'cat > /dev/null\n'
                           'printf "%%s\\n" "$@" >> %s/rcpts\n' % out)
        routes = ('{ domain = "lists.example.com"; action = "pipe"; '
                  'batch = true; command = [ "%s", "%%r" ]; }, '
                  '{ domain = "*.example.com"; action = "maildir"; '
                  'path = "%s/%%d/%%u"; create = true; }, %s'
                  % (prog, self.path("mail"), self.sender_box()))
        members = ", ".join('"m%d@lists.example.com"' % i
                            for i in range(1000))
        self.setup_queue(routes, queue=FAST, aliases=(
            '{ name = "big"; to = [ %s ]; }' % members))
        self.start_runner()
        big = "2BBBBBBBBBBBBBBB"
        self.write_spool(big, "alice@example.org",
                         ["<big@l%d.example.com>" % i for i in range(1000)],
                         b"Subject: to the list\r\n\r\nhello\r\n")
        self.send("carol@example.org", ["alice@example.org"],
                  b"Subject: meanwhile\r\n\r\nstill flowing\r\n")
        self.assertTrue(wait_for(lambda: self.queue_ids() == [], 120),
                        self.diag())
        log = self.log()
        expanded = log.find("%s queue expanded nrcpt=1000 aliases=1000 "
                            "addresses=1000" % big)
        other = log.find("queue delivered to=<alice@example.org>")
        self.assertNotEqual(expanded, -1, log)
        self.assertNotEqual(other, -1, log)
        self.assertLess(other, expanded, log)
        got = read_bytes(os.path.join(out, "rcpts")).decode().split()
        self.assertEqual(sorted(got), sorted("m%d@lists.example.com" % i
                                             for i in range(1000)))
