"""The recipes of doc/recipes, run as they are shipped: each test reads
the file from doc/recipes, replaces only its @PLACEHOLDERS@ (ports,
paths, loopback addresses; see doc/recipes/README.md), checks it with
`smtpd -t` (exit 0, no warning), and drives the scenario the recipe is
for with real clients and servers: swaks, smtplib, curl, our smtp and
sendmail, aiosmtpd as the far side, postgrey, HAProxy and Dovecot.

Every test runs inside a private network namespace (dnsns.py) whose DNS
has an MX for partner.test pointing to 127.0.0.5, where an aiosmtpd
listens on port 25: mail that the recipes relay by MX goes there and
nowhere else.  127.0.0.1 is the office (or the host itself), 127.0.0.9
a client on the Internet."""
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
import unittest

import dnsns
import dovecotkit
from clientkit import SMTP, Aio, Recorder, make_certs
from harness import (BUILDDIR, HERE, SMTPD, PolicyCase, Smtpd, free_port,
                     parse_spool, wait_port)
from qharness import maildir_files, read_bytes, wait_for
from test_dkim import dkim_verify_all

RECIPES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "doc",
                       "recipes")
SMTPQ = os.path.join(BUILDDIR, "smtpq")
SENDMAIL = os.path.join(BUILDDIR, "sendmail")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
PLACEHOLDER = re.compile(r"@[A-Z][A-Z_]*@")
OUTSIDE = "127.0.0.9"
RATED = "127.0.0.10"            # the scale-out rate limit's client
HELO = "mail.isp.net"           # passes helo_checks
ZONE = dict(records=[dnsns.mx("partner.test", "mx.partner.test", 10),
                     dnsns.host("mx.partner.test", "127.0.0.5")],
            local=("test",), timeout=180)


def recipe(name, **values):
    """The text of doc/recipes/name with @KEY@ replaced by values[KEY];
    every placeholder must be given one."""
    with open(os.path.join(RECIPES, name)) as f:
        text = f.read()
    for key, value in values.items():
        mark = "@%s@" % key
        assert mark in text, "%s has no %s" % (name, mark)
        text = text.replace(mark, str(value))
    left = sorted(set(PLACEHOLDER.findall(text)))
    assert not left, "%s: no value for %s" % (name, left)
    return text


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class RecipeSmtpd(Smtpd):
    """smtpd on a recipe's text (written to dir/smtpd.conf, spool
    dir/spool), after `smtpd -t` approved it."""

    def __init__(self, case, dir, text, port, more_ports=()):
        os.makedirs(os.path.join(dir, "spool"), exist_ok=True)
        super().__init__(dir, listen=[])
        write(self.conf, text)
        self.port = port
        self.more_ports = list(more_ports)
        p = subprocess.run([SMTPD, "-t", "-C", self.conf],
                           capture_output=True, text=True, timeout=30)
        out = p.stdout + p.stderr
        case.assertEqual(p.returncode, 0, out)
        case.assertNotRegex(out, r"(?im)^smtpd: warning", out)
        case._daemons.append(self)


def message(subject, sender="bob@isp.net", to="alice@example.org",
            extra=""):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\n%s\r\n%s body\r\n" %
            (sender, to, subject, extra, subject))


class RecipeCase(PolicyCase):
    no_tarpit = False

    def partner(self):
        """The MX of partner.test (127.0.0.5:25), recording."""
        s = Aio(Recorder(), host="127.0.0.5", port=25)
        s.__enter__()
        self.addCleanup(s.__exit__)
        return s

    def aio(self, **kw):
        s = Aio(Recorder(), **kw)
        s.__enter__()
        self.addCleanup(s.__exit__)
        return s

    def etc(self, *parts):
        return os.path.join(self.workdir, "etc", *parts)

    def outside(self, d, helo=HELO):
        return self.client(d, source=OUTSIDE, helo=helo)

    def delivered(self, server, n, timeout=30):
        self.assertTrue(wait_for(lambda: len(server.messages) >= n,
                                 timeout=timeout),
                        "%d of %d messages arrived" %
                        (len(server.messages), n))
        return server.messages


class CorporateRelay(RecipeCase):
    @dnsns.inside(**ZONE)
    def test_office_relays_world_reaches_employees_only(self):
        partner = self.partner()
        store = self.aio()
        write(self.etc("relay-recipients"),
              "alice@corp.example\nbob@sales.corp.example\n")
        port = free_port()
        d = RecipeSmtpd(self, self.workdir, recipe(
            "corporate-relay.conf", ADDR="127.0.0.1", PORT_SMTP=port,
            SPOOL=os.path.join(self.workdir, "spool"), ETC=self.etc(),
            MAILSTORE=store.addr()), port).start()
        # The office sends anywhere: delivered by MX (swaks as the PC).
        p = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(port),
             "--ehlo", "pc7.corp.example", "--from", "alice@corp.example",
             "--to", "carol@partner.test", "--header", "Subject: quote"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        got = self.delivered(partner, 1)[0]
        self.assertEqual(got["rcpt"], ["carol@partner.test"])
        self.assertIn(b"Subject: quote", got["data"])
        # The world may not relay, nor reach unknown employees.
        c = self.outside(d)
        self.assertReply(c.cmd("MAIL FROM:<x@isp.net>"), 250)
        self.assertReply(c.cmd("RCPT TO:<carol@partner.test>"), 554, "5.7.1")
        self.assertReply(c.cmd("RCPT TO:<nobody@corp.example>"), 550,
                         "5.1.1")
        # ... but reaches the employees, and a forged company From: is
        # tagged on the way to the mail store.
        self.assertReply(c.cmd("RCPT TO:<alice@corp.example>"), 250)
        self.assertReply(c.cmd("RCPT TO:<bob@sales.corp.example>"), 250)
        self.queued_id(self.send_data(c, message(
            "urgent", sender="ceo@corp.example",
            to="alice@corp.example").encode() + b".\r\n"))
        got = self.delivered(store, 1)[0]
        self.assertEqual(sorted(got["rcpt"]),
                         ["alice@corp.example", "bob@sales.corp.example"])
        self.assertIn(b"X-warning: suspect From: domain", got["data"])
        self.assertEqual(len(partner.messages), 1)
        # An outsider greeting with our own name is refused.
        c2 = self.outside(d, helo=None)
        self.assertReply(c2.cmd("EHLO relay.corp.example"), 550, "5.7.1")


class Submission(RecipeCase):
    """submission.conf, and smarthost-client.conf sending through it."""

    def start_submission(self):
        self.partner_mx = self.partner()
        certs = make_certs(self.workdir)
        os.makedirs(self.etc("dkim"), exist_ok=True)
        shutil.copy(certs["srv.pem"], self.etc("fullchain.pem"))
        shutil.copy(certs["srv.key"], self.etc("key.pem"))
        os.chmod(self.etc("key.pem"), 0o600)
        self.ca = certs["ca.pem"]
        p = subprocess.run([SMTPQ, "dkim-keygen", "example.org", "s1",
                            self.etc("dkim", "s1.pem")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = re.match(r'(\S+)\._domainkey\.example\.org\. IN TXT \((.*)\)$',
                     p.stdout.strip())
        self.assertIsNotNone(m, p.stdout)
        self.dkim_records = {"s1": "".join(re.findall(r'"([^"]*)"',
                                                      m.group(2)))}
        self.p587, self.p465 = free_port(), free_port()
        text = recipe("submission.conf", ADDR="127.0.0.1",
                      PORT_SUBMISSION=self.p587, PORT_SUBMISSIONS=self.p465,
                      SPOOL=os.path.join(self.workdir, "spool"),
                      ETC=self.etc())
        write(self.etc("secrets"), "", 0o600)
        conf = write(os.path.join(self.workdir, "smtpd.conf"), text)
        # Passwords as the recipe says: smtpq passwd, a yescrypt hash.
        for user, pw in (("alice", "wonderland"), ("lists", "robot")):
            p = subprocess.run([SMTPQ, "-C", conf, "passwd", user],
                               input=pw + "\n", capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.etc("secrets")) as f:
            self.assertIn("alice:{CRYPT}$y$", f.read())
        return RecipeSmtpd(self, self.workdir, text, self.p587,
                           [self.p465]).start()

    def tls(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        return ctx

    @dnsns.inside(**ZONE)
    def test_587_and_465_auth_senders_dkim(self):
        self.start_submission()
        # 587: STARTTLS, AUTH, then mail out by MX, DKIM-signed.
        p = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(self.p587),
             "--tls", "--auth", "PLAIN", "--auth-user", "alice",
             "--auth-password", "wonderland", "--ehlo", "laptop.isp.net",
             "--from", "alice@example.org", "--to", "carol@partner.test",
             "--header", "Subject: via 587"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        got = self.delivered(self.partner_mx, 1)[0]
        self.assertEqual(got["from"], "alice@example.org")
        body = got["data"]
        self.assertRegex(body, rb"(?m)^DKIM-Signature: .*d=example\.org")
        self.assertEqual(dkim_verify_all(body, self.dkim_records), [True])
        self.assertRegex(body, rb"with ESMTPSA")
        # No AUTH, no mail; a login uses only its own senders; no
        # password before TLS.
        with smtplib.SMTP("127.0.0.1", self.p587, timeout=20) as s:
            s.ehlo("laptop.isp.net")
            self.assertNotIn("auth", s.esmtp_features)
            s.starttls(context=self.tls_noverify())
            s.ehlo("laptop.isp.net")
            self.assertEqual(s.mail("alice@example.org")[0], 530)
            s.rset()
            s.login("alice", "wonderland")
            code, text = s.mail("bob@example.org")
            self.assertEqual(code, 553, text)
            self.assertIn(b"5.7.1", text)
        # 465: implicit TLS, certificate checked by the client.
        with smtplib.SMTP_SSL("localhost", self.p465, timeout=20,
                              context=self.tls()) as s:
            s.login("lists", "robot")
            s.sendmail("news@lists.example.org", ["dave@partner.test"],
                       message("via 465", sender="news@lists.example.org",
                               to="dave@partner.test"))
        got = self.delivered(self.partner_mx, 2)[1]
        self.assertEqual(got["rcpt"], ["dave@partner.test"])

    def tls_noverify(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    @dnsns.inside(**ZONE)
    def test_smarthost_client_smtp_and_sendmail(self):
        self.start_submission()
        home = os.path.join(self.workdir, "home")
        cfg = os.path.join(home, ".config", "smtp")
        queue = os.path.join(home, "queue")
        write(os.path.join(cfg, "smtp.conf"), recipe(
            "smarthost-client.conf", SMARTHOST="localhost",
            PORT_SUBMISSION=self.p587, PORT_SUBMISSIONS=self.p465,
            CAFILE=self.ca, QUEUE=queue))
        write(os.path.join(cfg, "keys"),
              "proto=pass service=smtp server=localhost user=alice "
              "!password=wonderland\n"
              "proto=pass service=smtp server=localhost user=lists "
              "!password=robot\n", 0o600)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "HOME": home, "LANG": "C"}
        none = os.path.join(self.workdir, "no-smtpd.conf")

        def sendmail(args, data):
            return subprocess.run([SENDMAIL, "-C", none] + args,
                                  input=data, capture_output=True,
                                  env=env, timeout=60)
        # sendmail -t: the "work" account by From:, 587 with STARTTLS.
        p = sendmail(["-t", "-i"], b"From: alice@example.org\n"
                     b"To: carol@partner.test\nSubject: from cron\n\nhi\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        # sendmail -f: the "lists" account, 465.
        p = sendmail(["-f", "news@lists.example.org", "dave@partner.test"],
                     b"Subject: list mail\n\nhi\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        # smtp(1), with the keys and the CA of the same smtp.conf.
        p = subprocess.run(
            [SMTP, "-s", "-a", "-u", "alice",
             "tcp!localhost!%d" % self.p587, "alice@example.org",
             "erin@partner.test"],
            input=message("by smtp", sender="alice@example.org",
                          to="erin@partner.test").encode(),
            capture_output=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = self.delivered(self.partner_mx, 3)
        by_rcpt = {m["rcpt"][0]: m for m in got}
        self.assertEqual(sorted(by_rcpt), ["carol@partner.test",
                                           "dave@partner.test",
                                           "erin@partner.test"])
        self.assertEqual(by_rcpt["dave@partner.test"]["from"],
                         "news@lists.example.org")
        for m in got:
            self.assertRegex(m["data"], rb"with ESMTPSA")
        # Nothing waited in the offline queue.
        self.assertFalse(os.path.isdir(queue) and
                         [f for f in os.listdir(queue)
                          if not f.startswith(".")])


class InboundMx(RecipeCase):
    @dnsns.inside(**ZONE)
    def test_greylisting_recipients_and_maildir(self):
        write(self.etc("users"), "alice\n")
        mail = os.path.join(self.workdir, "mail")
        port = free_port()
        d = RecipeSmtpd(self, self.workdir, recipe(
            "inbound-mx.conf", ADDR="127.0.0.1", PORT_SMTP=port,
            SPOOL=os.path.join(self.workdir, "spool"), ETC=self.etc(),
            MAIL=mail, GREYLIST_DELAY=2), port).start()
        c = self.outside(d)
        self.assertReply(c.cmd("MAIL FROM:<bob@isp.net>"), 250)
        self.assertReply(c.cmd("RCPT TO:<nobody@example.org>"), 550, "5.1.1")
        self.assertReply(c.cmd("RCPT TO:<carol@partner.test>"), 554, "5.7.1")
        self.assertReply(c.cmd("RCPT TO:<alice+lists@example.org>"), 451,
                         "4.7.1")
        c.cmd("QUIT")
        # A bogus greeting is refused.
        c = self.outside(d, helo=None)
        self.assertReply(c.cmd("EHLO localhost"), 550, "5.7.1")
        # The retry after the delay passes and lands in alice's Maildir.
        time.sleep(2.5)
        c = self.outside(d)
        self.start_mail(c, "<bob@isp.net>", ["<alice+lists@example.org>"])
        self.queued_id(self.send_data(
            c, message("greylisted once").encode() + b".\r\n"))
        box = os.path.join(mail, "example.org", "alice")
        self.assertTrue(wait_for(lambda: maildir_files(box)), d.logtext())
        raw = read_bytes(maildir_files(box)[0])
        self.assertIn(b"Delivered-To: alice+lists@example.org", raw)
        self.assertIn(b"Subject: greylisted once", raw)
        # The host itself is not greylisted; abuse@ reaches alice through
        # the aliases.
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
            s.sendmail("cron@mx1.example.org", ["abuse@example.org"],
                       message("disk full", sender="cron@mx1.example.org",
                               to="abuse@example.org"))
        self.assertTrue(wait_for(lambda: len(maildir_files(box)) == 2),
                        d.logtext())


@unittest.skipUnless(os.path.exists(HAPROXY), "haproxy is not installed")
@unittest.skipUnless(shutil.which("postgrey"), "postgrey is not installed")
@unittest.skipUnless(shutil.which("postfwd2"), "postfwd is not installed")
@unittest.skipIf(dovecotkit.usable(), dovecotkit.usable())
class ScaleOut(RecipeCase):
    """Two nodes of scale-out-node.conf behind scale-out-haproxy.cfg,
    sharing postgrey and postfwd (scale-out-postfwd.cf), delivering to
    Dovecot by LMTP."""

    def start_postfwd(self):
        # postfwd2 forks into the background; -k with its pid file stops
        # it and its children.
        run = tempfile.mkdtemp(prefix="postfwd-")
        os.chmod(run, 0o777)
        self.addCleanup(shutil.rmtree, run, True)
        rules = write(os.path.join(run, "rules.cf"),
                      recipe("scale-out-postfwd.cf"))
        port = free_port()
        pidfile = os.path.join(run, "pid")
        p = subprocess.run(
            ["postfwd2", "-f", rules, "--server_socket",
             "tcp:127.0.0.1:%d" % port, "--cache_socket",
             "unix::" + os.path.join(run, "cache.sock"),
             "--pidfile", pidfile, "-u", "nobody", "-g", "nogroup",
             "--nodns"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.addCleanup(subprocess.run, ["postfwd2", "-k", "--pidfile",
                                         pidfile, "-f", rules],
                        capture_output=True, timeout=30)
        self.assertTrue(wait_port("127.0.0.1", port, 30), "postfwd")
        return port

    def start_postgrey(self):
        # Outside the work directory (mode 700): postgrey runs as nobody.
        db = tempfile.mkdtemp(prefix="postgrey-")
        os.chmod(db, 0o777)
        self.addCleanup(shutil.rmtree, db, True)
        port = free_port()
        args = ["postgrey", "--inet=127.0.0.1:%d" % port, "--dbdir=" + db,
                "--delay=2", "--user=nobody", "--group=nogroup"]
        log = open(os.path.join(db, "log"), "wb")
        self.addCleanup(log.close)
        pg = subprocess.Popen(args, stdout=log, stderr=log,
                              stdin=subprocess.DEVNULL)
        self.addCleanup(self.stop_proc, pg)
        self.assertTrue(wait_port("127.0.0.1", port, 30), "postgrey")
        return port

    @staticmethod
    def stop_proc(p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def node(self, name, postgrey, postfwd, lmtp_port):
        d = os.path.join(self.workdir, name)
        smtp, proxy, metrics = free_port(), free_port(), free_port()
        text = recipe("scale-out-node.conf", NODE=name, ADDR="127.0.0.1",
                      PORT_SMTP=smtp, PORT_PROXY=proxy,
                      BALANCER="127.0.0.1/32",
                      SPOOL=os.path.join(d, "spool"),
                      POSTGREY="127.0.0.1:%d" % postgrey,
                      POSTFWD="127.0.0.1:%d" % postfwd,
                      MAILSTORE="127.0.0.1:%d" % lmtp_port,
                      PORT_METRICS=metrics)
        n = RecipeSmtpd(self, d, text, smtp, [proxy, metrics]).start()
        n.proxy_port, n.metrics_port = proxy, metrics
        return n

    def start_haproxy(self, a, b):
        port = free_port()
        cfg = write(os.path.join(self.workdir, "haproxy.cfg"), recipe(
            "scale-out-haproxy.cfg", BALANCER_ADDR="127.0.0.1",
            PORT_SMTP=port, NODE_A="127.0.0.1:%d" % a.proxy_port,
            NODE_B="127.0.0.1:%d" % b.proxy_port))
        p = subprocess.run([HAPROXY, "-c", "-f", cfg], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        log = open(os.path.join(self.workdir, "haproxy.log"), "wb")
        self.addCleanup(log.close)
        h = subprocess.Popen([HAPROXY, "-f", cfg, "-db"],
                             stdin=subprocess.DEVNULL, stdout=log,
                             stderr=log)
        self.addCleanup(self.stop_proc, h)
        self.assertTrue(wait_port("127.0.0.1", port), "haproxy")
        return port

    def send(self, port, subject):
        with smtplib.SMTP("127.0.0.1", port, timeout=20,
                          source_address=(OUTSIDE, 0)) as s:
            s.ehlo(HELO)
            s.sendmail("bob@isp.net", ["alice@example.org"],
                       message(subject))

    def queue_ids(self, n):
        q = os.path.join(n.spool, "queue")
        return sorted(os.listdir(q)) if os.path.isdir(q) else []

    @dnsns.inside(**ZONE)
    def test_shared_greylisting_and_a_lost_node(self):
        postgrey = self.start_postgrey()
        postfwd = self.start_postfwd()
        # Dovecot's auth process (user dovecot) reads its files in here.
        os.chmod(self.workdir, 0o755)
        dv = dovecotkit.Dovecot(self.workdir, {"alice": ("pw", ""),
                                               "bob": ("pw", "")})
        self.addCleanup(dv.stop)
        a = self.node("mx-a", postgrey, postfwd, dv.lmtp_port)
        b = self.node("mx-b", postgrey, postfwd, dv.lmtp_port)
        front = self.start_haproxy(a, b)
        # Greylisted by node A; the retry after the delay passes at node
        # B: the greylist is postgrey's, shared.
        c = self.outside(a)
        self.assertReply(c.cmd("MAIL FROM:<bob@isp.net>"), 250)
        rep = c.cmd("RCPT TO:<alice@example.org>")
        self.assertIn(rep[0], (450, 451), rep)
        self.assertReply(rep, rep[0], "4.7.1")
        self.assertIn("Greylisted", rep[1][-1])
        c.cmd("QUIT")
        time.sleep(2.5)
        c = self.outside(b)
        self.start_mail(c, "<bob@isp.net>", ["<alice@example.org>"])
        self.assertReply(c.cmd("RSET"), 250)
        c.cmd("QUIT")
        # Rate limits over both nodes: another client of that network
        # (greylisting passed already) sends three sessions of 40
        # recipients through the balancer.  Each node sees at most 80,
        # but the 101st recipient of the minute is refused.  (Two
        # refusals are enough: from the fourth error on, each reply is
        # slowed down by the tarpit.)
        replies = []
        for _ in range(3):
            with smtplib.SMTP("127.0.0.1", front, timeout=20,
                              source_address=(RATED, 0)) as s:
                s.ehlo(HELO)
                self.assertEqual(s.mail("bob@isp.net")[0], 250)
                for _ in range(40):
                    replies.append(s.rcpt("alice@example.org"))
                    if [r[0] for r in replies[-2:]] == [450, 450]:
                        break
                s.rset()
        codes = [r[0] for r in replies]
        self.assertEqual(codes, [250] * 100 + [450] * 2, replies[95:105])
        self.assertIn(b"4.7.1 Too many recipients from 127.0.0.10",
                      replies[100][1])
        for n in (a, b):
            self.assertIn("address=%s " % RATED, n.logtext())
        # Through the balancer, with the mail store down: the nodes take
        # turns, see the real client, and keep the mail queued.
        for i in range(4):
            self.send(front, "balanced-%d" % i)
        self.assertTrue(wait_for(lambda: len(self.queue_ids(a)) == 2 and
                                 len(self.queue_ids(b)) == 2),
                        (self.queue_ids(a), self.queue_ids(b)))
        for n in (a, b):
            for raw in n.queued().values():
                env, body = parse_spool(raw)
                self.assertIn(b"[127.0.0.9]", body.split(b"\r\n\t")[0])
        # Each node has tried its messages and deferred them.
        state = os.path.join(a.spool, "state")
        self.assertTrue(wait_for(lambda: os.path.isdir(state) and sorted(
            os.listdir(state)) == self.queue_ids(a), timeout=30),
            a.logtext())
        self.assertTrue(a.settle())
        metrics = subprocess.run(
            ["curl", "-sS", "http://127.0.0.1:%d/metrics" % a.metrics_port],
            capture_output=True, text=True, timeout=20)
        self.assertRegex(metrics.stdout,
                         r'smtpd_queue_messages\{state="deferred"\} 2')
        # Node A is lost; its spool is copied to node B as README.md says.
        a.proc.kill()
        a.proc.wait()
        moved = self.queue_ids(a)
        p = subprocess.run(["sh", os.path.join(RECIPES, "move-queue.sh"),
                            a.spool, b.spool], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("moved 2 messages", p.stdout)
        self.assertEqual(sorted(set(moved) - set(self.queue_ids(b))), [])
        # The mail store is back; B delivers its own and A's, once each.
        dv.start()
        p = subprocess.run([SMTPQ, "-C", b.conf, "flush"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        want = ["balanced-%d" % i for i in range(4)]
        self.assertTrue(wait_for(lambda: dv.subjects("alice") == want,
                                 timeout=60),
                        "%s\n%s" % (dv.subjects("alice"), b.logtext()))
        self.assertTrue(wait_for(lambda: self.queue_ids(b) == []),
                        b.logtext())


class MoveQueue(unittest.TestCase):
    """move-queue.sh on its own: what it copies, what it leaves alone,
    and that it will not run past journal segments not yet replayed."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="move-queue-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.old = os.path.join(self.dir, "old")
        self.new = os.path.join(self.dir, "new")
        for d in ("queue", "state", "hold", "tmp", "journal"):
            os.makedirs(os.path.join(self.new, d))
            os.makedirs(os.path.join(self.old, d))

    def put(self, spool, sub, name, text):
        return write(os.path.join(spool, sub, name), text, 0o640)

    def move(self):
        return subprocess.run(["sh", os.path.join(RECIPES, "move-queue.sh"),
                               self.old, self.new], capture_output=True,
                              text=True, timeout=30)

    def test_copies_queue_state_hold_and_keeps_what_is_there(self):
        self.put(self.old, "queue", "AAAAAAAAAAAAAAAA", "message a")
        self.put(self.old, "state", "AAAAAAAAAAAAAAAA", "state a")
        self.put(self.old, "queue", "BBBBBBBBBBBBBBBB", "message b")
        self.put(self.old, "hold", "BBBBBBBBBBBBBBBB", "")
        self.put(self.old, "state", "CCCCCCCCCCCCCCCC.tmp", "torn")
        self.put(self.old, "queue", "DDDDDDDDDDDDDDDD", "old copy")
        self.put(self.new, "queue", "DDDDDDDDDDDDDDDD", "live copy")
        # Segments wait for smtpd's replay: nothing is moved.
        self.put(self.old, "journal", "000000000001.j", "segment")
        p = self.move()
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertIn("journal holds segments", p.stderr)
        self.assertEqual(os.listdir(os.path.join(self.new, "state")), [])
        os.unlink(os.path.join(self.old, "journal", "000000000001.j"))
        p = self.move()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("moved 2 messages", p.stdout)
        ls = {d: sorted(os.listdir(os.path.join(self.new, d)))
              for d in ("queue", "state", "hold", "tmp")}
        self.assertEqual(ls, {
            "queue": ["AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBB",
                      "DDDDDDDDDDDDDDDD"],
            "state": ["AAAAAAAAAAAAAAAA"], "hold": ["BBBBBBBBBBBBBBBB"],
            "tmp": []})
        with open(os.path.join(self.new, "queue", "DDDDDDDDDDDDDDDD")) as f:
            self.assertEqual(f.read(), "live copy")
        with open(os.path.join(self.new, "state", "AAAAAAAAAAAAAAAA")) as f:
            self.assertEqual(f.read(), "state a")

    def test_not_a_spool(self):
        shutil.rmtree(os.path.join(self.new, "tmp"))
        p = self.move()
        self.assertEqual(p.returncode, 66, p.stderr)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)


if __name__ == "__main__":
    unittest.main()
