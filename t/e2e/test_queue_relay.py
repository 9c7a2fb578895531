"""Relaying: mail accepted by smtpd and relayed by the queue runner to a
smarthost (aiosmtpd, Postfix's smtp-sink, our own smtpd with STARTTLS and
AUTH) or to the MX hosts of the recipient's domain (inside a private
network namespace with its own DNS, see dnsns.py).

Outside the namespace every relay route names its host by IP address, so
no test asks the machine's resolver anything.  DSNs come back into the
sender's Maildir and are read with Python's email package.
"""
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import unittest

import dnsns
from dnsns import inside
from harness import SMTPD, Smtpd, free_port, parse_spool
from qharness import (QueueCase, dsn_fields, maildir_files, parse_mail,
                      read_bytes, wait_for)

try:
    import asyncio
    from clientkit import Aio, Recorder, Sink, make_certs, server_tls
    HAVE_AIOSMTPD = True
except ImportError:
    HAVE_AIOSMTPD = False
    Recorder = object

FAST = "retry_min = 1; retry_max = 2; scan_interval = 1;"
PASSWORD = "correct horse"
SMTP_SINK = shutil.which("smtp-sink", path="/usr/sbin:/usr/bin")

CERTS = None
CERTDIR = None


def setUpModule():
    global CERTS, CERTDIR
    if HAVE_AIOSMTPD and shutil.which("certtool"):
        CERTDIR = tempfile.mkdtemp(prefix="relay-certs-")
        CERTS = make_certs(CERTDIR)


def tearDownModule():
    if CERTDIR:
        shutil.rmtree(CERTDIR, ignore_errors=True)


class Hop(Recorder):
    """The next hop: an aiosmtpd handler that keeps what it receives
    (clientkit.Recorder) and can also refuse the first `tempfail` messages
    with 451, refuse every recipient with 550, hold the data for `delay`
    seconds (the first message only, with `first_only`), wait in RCPT
    until `release` is set, and count sessions and deliveries under way
    (`gauge`, which several handlers may share)."""

    def __init__(self, tempfail=0, refuse_all=False, delay=0.0,
                 first_only=False, hold=False, gauge=None, **kw):
        super().__init__(**kw)
        self.tempfail = tempfail
        self.refuse_all = refuse_all
        self.delay = delay
        self.first_only = first_only
        self.sessions = 0
        self.gauge = gauge if gauge is not None else {"now": 0, "max": 0}
        self.in_rcpt = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        if not getattr(session, "counted", False):
            session.counted = True
            self.sessions += 1
        return await super().handle_EHLO(server, session, envelope,
                                          hostname, responses)

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        self.in_rcpt.set()
        while not self.release.is_set():
            await asyncio.sleep(0.02)
        if self.refuse_all:
            return "550 5.1.1 no such user here"
        return await super().handle_RCPT(server, session, envelope, address,
                                          rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        g = self.gauge
        g["now"] += 1
        g["max"] = max(g["max"], g["now"])
        try:
            if self.delay and not (self.first_only and self.messages):
                await asyncio.sleep(self.delay)
            if self.tempfail > 0:
                self.tempfail -= 1
                return "451 4.3.0 try again later"
            return await super().handle_DATA(server, session, envelope)
        finally:
            g["now"] -= 1


class RelayCase(QueueCase):
    """Helpers: next hops, routes, the credentials file."""

    def aio(self, handler, **kw):
        kw.setdefault("auth_require_tls", True)
        s = Aio(handler, **kw)
        s.__enter__()
        self.addCleanup(s.__exit__)
        return s

    def sender_box(self):
        return ('{ domain = "example.org"; action = "maildir"; catchall = true; '
                'path = "%s/%%d/%%u"; create = true; }' % self.path("mail"))

    def relay(self, port, extra="", domain="*"):
        return ('%s, { domain = "%s"; action = "relay"; '
                'host = "127.0.0.1:%d"; %s }'
                % (self.sender_box(), domain, port, extra))

    def keys(self, text, mode=0o600):
        p = self.path("relay.keys")
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return 'relay_keys = "%s";' % p

    def dsns(self):
        return [parse_mail(read_bytes(f)) for f in
                maildir_files(self.path("mail", "example.org", "alice"))]

    def listing(self):
        return self.smtpq("list").stdout

    def run_all(self):
        self.d.settle()
        self.deliver()

    def reconfigure(self, routes, queue=""):
        """New routes and queue settings for the next smtpq run, with
        smtpd left running."""
        with open(self.qconf) as f:
            text = f.read()
        text = text[:text.index("routes = ( ")]
        with open(self.qconf, "w") as f:
            f.write(text + "routes = ( %s );\nqueue = { runner = false; %s };\n"
                    % (routes, queue))


@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed")
class RelayAiosmtpd(RelayCase):
    def test_relay_to_smarthost(self):
        h = Hop()
        s = self.aio(h)
        self.setup_queue(self.relay(s.port), queue=FAST)
        self.send("alice@example.org", ["bob@example.net", "carol@example.net"],
                  b"Subject: relayed\r\n\r\nover the wire\r\n.dot\r\n")
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.messages), 1)
        m = h.messages[0]
        self.assertEqual(m["from"], "alice@example.org")
        self.assertEqual(sorted(m["rcpt"]), ["bob@example.net",
                                             "carol@example.net"])
        self.assertTrue(m["data"].startswith(b"Received: from "), m["data"])
        self.assertTrue(m["data"].endswith(b"\r\n\r\nover the wire\r\n"
                                           b".dot\r\n"), m["data"])
        self.assertEqual(h.helo, ["mx.test.example"])
        log = self.log()
        self.assertIn("queue relayed to=<bob@example.net> relay=[127.0.0.1]",
                      log)
        self.assertEqual(self.dsns(), [])

    def test_log_lines_name_the_message_and_its_stored_size(self):
        h = Hop()
        s = self.aio(h)
        self.setup_queue(self.relay(s.port), queue=FAST)
        body = b"Subject: sized\r\n\r\n" + b"x" * 1000 + b"\r\n"
        with smtplib.SMTP(self.d.host, self.d.port, timeout=10) as c:
            c.ehlo()
            self.assertEqual(c.mail("alice@example.org")[0], 250)  # no SIZE
            self.assertEqual(c.rcpt("bob@example.net")[0], 250)
            self.assertEqual(c.data(body)[0], 250)
        self.send("alice@example.org", ["carol@example.net"], body)
        log = self.d.logtext()
        mails = re.findall(r"smtp mail from=<alice@example\.org>(.*)", log)
        self.assertEqual(len(mails), 2, log)
        self.assertNotIn("size=", mails[0])
        self.assertEqual(mails[1], " size=%d" % len(body))
        queued = dict(re.findall(r"smtp queued id=(\S+) .* size=(\d+)$",
                                 log, re.M))
        self.assertEqual(sorted(queued), self.queue_ids(), log)
        listing = self.listing()
        for qid, size in queued.items():
            # The size as stored: our Received: line included.
            self.assertGreater(int(size), len(body))
            self.assertRegex(listing, r"(?m)^%s +%s " % (qid, size))
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        lines = [l for l in self.log().splitlines() if "queue relay" in l]
        self.assertTrue(lines, self.log())
        for line in lines:
            self.assertRegex(line, r"smtpq\[\d+\]: (%s) queue relay "
                             % "|".join(queued), line)
        self.assertRegex(self.log(), r"smtpq\[\d+\]: (%s) queue relay "
                         r"connected to \[127\.0\.0\.1\]" % "|".join(queued))
        # An error opening the connection names the message it was for.
        keys = self.keys("key proto=pass label=isp user=alice "
                         "!password=secret\n")
        self.reconfigure(self.relay(s.port, 'auth = "other";'),
                         queue=FAST + keys)
        self.send("alice@example.org", ["dave@example.net"], body)
        (qid,) = self.queue_ids()
        self.run_all()
        self.assertRegex(self.log(), r"smtpq\[\d+\]: %s queue relay to "
                         r"127\.0\.0\.1:%d \(route 2\): no credentials: "
                         r"no key labelled \"other\"" % (qid, s.port))

    def test_4xx_then_accept_delivers_once(self):
        h = Hop(tempfail=1)
        s = self.aio(h)
        self.setup_queue(self.relay(s.port), queue=FAST)
        self.start_runner()
        self.send("alice@example.org", ["bob@example.net"])
        self.assertTrue(wait_for(lambda: self.queue_ids() == [], 20),
                        self.diag())
        self.assertEqual(len(h.messages), 1)
        self.assertIn("queue deferred to=<bob@example.net>", self.log())
        self.assertIn("451 4.3.0 try again later", self.log())

    def test_5xx_bounces_to_sender(self):
        h = Hop(refuse_all=True)
        s = self.aio(h)
        self.setup_queue(self.relay(s.port), queue=FAST)
        self.send("alice@example.org", ["bob@example.net"],
                  b"Subject: refused\r\n\r\nx\r\n")
        self.run_all()
        dsns = wait_for(self.dsns)
        self.assertEqual(len(dsns), 1, self.log())
        msg, rcpts = dsn_fields(dsns[0])
        self.assertEqual(msg["reporting-mta"], "dns; mx.test.example")
        self.assertEqual(rcpts[0]["final-recipient"], "rfc822; bob@example.net")
        self.assertEqual(rcpts[0]["action"], "failed")
        self.assertEqual(rcpts[0]["status"], "5.1.1")
        self.assertEqual(rcpts[0]["remote-mta"], "dns; [127.0.0.1]")
        self.assertEqual(rcpts[0]["diagnostic-code"],
                         "smtp; 550 5.1.1 no such user here")
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())

    def test_per_recipient_results(self):
        """One transaction, three answers: the accepted recipient gets the
        message once, the refused one bounces, the deferred one gets it on
        the next attempt, alone."""
        h = Hop(refuse={"gone@example.net": "550 5.1.1 gone",
                        "later@example.net": "450 4.2.1 mailbox busy"})
        s = self.aio(h)
        self.setup_queue(self.relay(s.port), queue=FAST)
        self.send("alice@example.org", ["ok@example.net", "gone@example.net",
                                        "later@example.net"])
        self.run_all()
        self.assertEqual([m["rcpt"] for m in h.messages],
                         [["ok@example.net"]])
        out = self.listing()
        self.assertIn("later@example.net", out)
        self.assertIn("450 4.2.1 mailbox busy", out)
        del h.refuse["later@example.net"]
        self.smtpq("flush")
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.diag())
        self.assertEqual([m["rcpt"] for m in h.messages],
                         [["ok@example.net"], ["later@example.net"]])
        dsns = self.dsns()
        self.assertEqual(len(dsns), 1)
        _, rcpts = dsn_fields(dsns[0])
        self.assertEqual([(r["final-recipient"], r["status"]) for r in rcpts],
                         [("rfc822; gone@example.net", "5.1.1")])

    def test_relayed_dsn_when_next_hop_lacks_dsn(self):
        """aiosmtpd does not offer DSN: the parameters are not sent, and a
        recipient that asked for NOTIFY=SUCCESS gets a "relayed" DSN from
        us (RFC 3461 6.2.3)."""
        h = Hop()
        s = self.aio(h)
        self.setup_queue(self.relay(s.port), queue=FAST)
        self.send("alice@example.org", ["bob@example.net", "carol@example.net"],
                  mail_options=["RET=HDRS", "ENVID=env-1"],
                  rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
        self.run_all()
        self.assertEqual(len(h.messages), 1)
        opts = h.messages[0]["mail_options"] + h.messages[0]["rcpt_options"]
        self.assertEqual([o for o in opts if o.upper().startswith(
            ("RET=", "ENVID=", "NOTIFY=", "ORCPT="))], [])
        dsns = wait_for(self.dsns)
        self.assertEqual(len(dsns), 1, self.log())
        msg, rcpts = dsn_fields(dsns[0])
        self.assertEqual(msg["original-envelope-id"], "env-1")
        self.assertEqual(sorted(r["action"] for r in rcpts),
                         ["relayed", "relayed"])
        self.assertEqual(rcpts[0]["status"], "2.0.0")

    def test_messages_share_a_connection(self):
        """Ten messages for one smarthost: one connection, RSET between
        transactions (the first message's data is held back until all are
        queued for the destination)."""
        h = Hop(delay=0.5, first_only=True)
        s = self.aio(h)
        self.setup_queue(self.relay(s.port, "concurrency = 1;"), queue=FAST)
        for i in range(10):
            self.send("alice@example.org", ["r%d@example.net" % i])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.messages), 10)
        self.assertEqual(h.sessions, 1)

    def test_session_messages_bounds_a_connection(self):
        h = Hop(delay=0.5, first_only=True)
        s = self.aio(h)
        self.setup_queue(self.relay(s.port, "concurrency = 1;"),
                         queue=FAST + " session_messages = 3;")
        for i in range(7):
            self.send("alice@example.org", ["r%d@example.net" % i])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.messages), 7)
        self.assertEqual(h.sessions, 3)

    def test_concurrency_per_destination(self):
        h = Hop(delay=0.3)
        s = self.aio(h)
        self.setup_queue(self.relay(s.port, "concurrency = 2;"), queue=FAST)
        for i in range(6):
            self.send("alice@example.org", ["r%d@example.net" % i])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.messages), 6)
        self.assertEqual(h.gauge["max"], 2)
        self.assertEqual(h.sessions, 2)

    def test_concurrency_overall(self):
        """Two destinations, five connections each allowed, but one
        delivery at a time in all."""
        gauge = {"now": 0, "max": 0}
        ha, hb = Hop(delay=0.2, gauge=gauge), Hop(delay=0.2, gauge=gauge)
        sa, sb = self.aio(ha), self.aio(hb)
        self.setup_queue(
            '%s, { domain = "a.example"; action = "relay"; '
            'host = "127.0.0.1:%d"; }, { domain = "b.example"; '
            'action = "relay"; host = "127.0.0.1:%d"; }'
            % (self.sender_box(), sa.port, sb.port),
            queue=FAST + " concurrency = 1;")
        for i in range(3):
            self.send("alice@example.org", ["x%d@a.example" % i,
                                            "y%d@b.example" % i])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual((len(ha.messages), len(hb.messages)), (3, 3))
        self.assertEqual(gauge["max"], 1)

    def test_kill_runner_mid_delivery(self):
        """kill -9 of the runner while the next hop holds the transaction:
        the message stays queued, and the next runner delivers it, once."""
        h = Hop(hold=True)
        s = self.aio(h)
        self.setup_queue(self.relay(s.port), queue=FAST)
        self.start_runner()
        self.send("alice@example.org", ["bob@example.net"],
                  b"Subject: survivor\r\n\r\nstill here\r\n")
        self.assertTrue(h.in_rcpt.wait(15), self.diag())
        self.assertEqual(self.stop_runner(signal.SIGKILL), -signal.SIGKILL)
        self.assertEqual(len(self.queue_ids()), 1)
        h.release.set()
        self.start_runner()
        self.assertTrue(wait_for(lambda: self.queue_ids() == [], 20),
                        self.diag())
        self.assertEqual(len(h.messages), 1)
        self.assertIn(b"still here", h.messages[0]["data"])

    def test_unreachable_smarthost_defers(self):
        port = free_port()
        self.setup_queue(self.relay(port), queue=FAST)
        self.send("alice@example.org", ["bob@example.net"])
        self.run_all()
        self.assertEqual(len(self.queue_ids()), 1)
        out = self.listing()
        self.assertIn("deferred", out)
        self.assertIn("Connection refused", out)
        self.assertEqual(self.dsns(), [])


@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed")
class RelayTls(RelayCase):
    def setUp(self):
        super().setUp()
        if CERTS is None:
            self.skipTest("certtool (gnutls-bin) is not installed")

    def tls_hop(self, **kw):
        h = Hop(users={"alice": PASSWORD})
        s = self.aio(h, tls_context=server_tls(CERTS), **kw)
        return h, s

    def test_smarthost_with_tls_and_auth(self):
        h, s = self.tls_hop()
        keys = self.keys("key proto=pass label=isp user=alice "
                         "!password='%s'\n" % PASSWORD)
        self.setup_queue(self.relay(s.port, 'tls = "require"; auth = "isp"; '
                                    'tls_cafile = "%s";' % CERTS["ca.pem"]),
                         queue=FAST + keys)
        self.send("alice@example.org", ["bob@example.net"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.messages), 1)
        self.assertTrue(h.messages[0]["tls"])
        self.assertEqual(h.auth, [("PLAIN", "alice")])
        self.assertIn("queue relay connected to [127.0.0.1] for 127.0.0.1:%d "
                      "(route 2): TLS, authenticated with key isp" % s.port,
                      self.log())
        self.assertNotIn(PASSWORD, self.log())

    def test_required_tls_checks_the_certificate(self):
        h, s = self.tls_hop()
        # The test CA is not in the system's trust store.
        self.setup_queue(self.relay(s.port, 'tls = "require";'), queue=FAST)
        self.send("alice@example.org", ["bob@example.net"])
        self.run_all()
        self.assertEqual(h.messages, [])
        self.assertEqual(len(self.queue_ids()), 1)
        self.assertIn("certificate", self.listing())
        self.assertIn("queue relay to 127.0.0.1:%d (route 2): TLS: "
                      "certificate of 127.0.0.1 not accepted" % s.port,
                      self.log())
        # Pinned, the same certificate is accepted.
        self.reconfigure(self.relay(s.port, 'tls = "require"; tls_pin = "%s";'
                                    % CERTS["pin"]), queue=FAST)
        self.smtpq("flush")
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.messages), 1)
        # Or, for encryption only, no check at all.
        self.send("alice@example.org", ["carol@example.net"])
        self.reconfigure(self.relay(s.port, 'tls = "require"; '
                                    'tls_verify = false;'), queue=FAST)
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.messages), 2)
        self.assertTrue(h.messages[1]["tls"])

    def test_required_tls_with_a_key_pin(self):
        """tls_pin takes the key's pin-sha256 (made by openssl) too."""
        h, s = self.tls_hop()
        self.setup_queue(self.relay(s.port, 'tls = "require"; tls_pin = '
                                    '"%s";' % CERTS["spki"]), queue=FAST)
        self.send("alice@example.org", ["bob@example.net"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.messages), 1)
        self.assertTrue(h.messages[0]["tls"])

    def test_opportunistic_tls_takes_any_certificate(self):
        h, s = self.tls_hop(auth_require_tls=False)
        self.setup_queue(self.relay(s.port), queue=FAST)
        self.send("alice@example.org", ["bob@example.net"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertTrue(h.messages[0]["tls"])

    def test_required_tls_not_offered(self):
        h = Hop()
        s = self.aio(h)
        self.setup_queue(self.relay(s.port, 'tls = "require";'), queue=FAST)
        self.send("alice@example.org", ["bob@example.net"])
        self.run_all()
        self.assertEqual(h.messages, [])
        self.assertEqual(len(self.queue_ids()), 1)
        self.assertIn("does not offer STARTTLS", self.listing())
        self.assertEqual(self.dsns(), [])

    def test_opportunistic_tls_failure_falls_back_to_clear(self):
        h = Hop()
        s = self.aio(h)
        proxy = BrokenStartTls(s.port)
        self.addCleanup(proxy.close)
        self.setup_queue(self.relay(proxy.port), queue=FAST)
        self.send("alice@example.org", ["bob@example.net"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.messages), 1)
        self.assertFalse(h.messages[0]["tls"])
        self.assertEqual(proxy.starttls, 1)

    def test_refused_password_defers(self):
        h, s = self.tls_hop()
        keys = self.keys("key proto=pass label=isp user=alice "
                         "!password=wrong-one\n")
        self.setup_queue(self.relay(s.port, 'tls = "require"; auth = "isp"; '
                                    'tls_cafile = "%s";' % CERTS["ca.pem"]),
                         queue=FAST + keys)
        self.send("alice@example.org", ["bob@example.net"])
        self.run_all()
        self.assertEqual(h.messages, [])
        self.assertEqual(len(self.queue_ids()), 1)
        out = self.listing()
        self.assertIn("535", out)
        self.assertIn("authentication failed", self.log())
        self.assertNotIn("wrong-one", self.log() + out)
        self.assertEqual(self.dsns(), [])

    def test_credentials_file_must_be_private(self):
        h, s = self.tls_hop()
        route = ('tls = "require"; auth = "isp"; tls_cafile = "%s";'
                 % CERTS["ca.pem"])
        keys = self.keys("key proto=pass label=isp user=alice "
                         "!password='%s'\n" % PASSWORD, mode=0o644)
        self.setup_queue(self.relay(s.port, route), queue=FAST + keys)
        self.send("alice@example.org", ["bob@example.net"])
        self.run_all()
        self.assertEqual(h.messages, [])
        self.assertIn("chmod 600", self.listing())
        # A label the file lacks.
        keys = self.keys("key proto=pass label=other user=alice "
                         "!password=x\n")
        self.smtpq("flush")
        self.deliver()
        self.assertIn("no key labelled", self.log())
        self.assertEqual(h.messages, [])
        self.assertEqual(len(self.queue_ids()), 1)
        # Fixed: delivered.
        self.keys("key proto=pass label=isp user=alice !password='%s'\n"
                  % PASSWORD)
        self.smtpq("flush")
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.messages), 1)


class RelayConfig(RelayCase):
    def test_check_shows_relay_settings(self):
        keys = self.keys("key proto=pass label=isp user=u !password=p\n")
        pin = "sha256:" + ":".join(["AB"] * 32)
        self.setup_queue(self.relay(2525, 'tls = "require"; auth = "isp"; '
                                    'tls_pin = "%s";' % pin) +
                         ', { domain = "mx.example"; action = "relay"; '
                         'tls = "require"; tls_verify = false; }',
                         queue=keys, start_smtpd=False)
        p = self.smtpq("check")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("-> relay 127.0.0.1:2525 tls=require (certificate "
                      "checked) tls_pin=%s auth=isp (from %s)"
                      % (pin, self.path("relay.keys")), p.stdout)
        self.assertIn("mx.example -> relay by MX tls=require (certificate "
                      "not checked)", p.stdout)

    def test_auth_without_relay_keys_is_a_config_error(self):
        self.setup_queue(self.relay(2525, 'auth = "isp";'), queue=FAST,
                         start_smtpd=False)
        p = self.smtpq("check")
        self.assertEqual(p.returncode, 78)
        self.assertIn("auth needs queue.relay_keys", p.stderr)
        # smtpd refuses the same file.
        p = subprocess.run([SMTPD, "-t", "-C", self.qconf],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 78)
        self.assertIn("auth needs queue.relay_keys", p.stdout + p.stderr)


class BrokenStartTls:
    """A proxy in front of an SMTP server without TLS: it adds STARTTLS to
    the EHLO reply, and answers STARTTLS with 220 and then hangs up, the
    way a server with broken TLS does."""

    def __init__(self, backend_port):
        self.backend = backend_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.starttls = 0
        self.done = False
        threading.Thread(target=self.accept, daemon=True).start()

    def close(self):
        self.done = True
        self.sock.close()

    def accept(self):
        while not self.done:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.backend))
            threading.Thread(target=self.upstream, args=(c, b),
                             daemon=True).start()
            threading.Thread(target=self.downstream, args=(c, b),
                             daemon=True).start()

    def upstream(self, c, b):
        f = c.makefile("rb")
        try:
            for line in f:
                if line.strip().upper() == b"STARTTLS":
                    self.starttls += 1
                    c.sendall(b"220 2.0.0 go ahead\r\n")
                    break
                b.sendall(line)
        except OSError:
            pass
        for s in (c, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def downstream(self, c, b):
        f = b.makefile("rb")
        try:
            for line in f:
                if line.startswith(b"250 HELP"):
                    c.sendall(b"250-STARTTLS\r\n")
                c.sendall(line)
        except OSError:
            pass


@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed")
class RelayOwnSmtpd(RelayCase):
    """Our smtpd as the next hop: a submission server (smtpd -a with
    STARTTLS) as the smarthost, and a plain one that keeps the DSN
    parameters it is given."""

    def hop(self, args=(), tls=False):
        d = os.path.join(self.workdir, "hop")
        os.makedirs(d, exist_ok=True)
        conf = ""
        if tls:
            secrets = os.path.join(d, "secrets")
            with open(secrets, "w") as f:
                f.write("alice:{PLAIN}%s\n" % PASSWORD)
            os.chmod(secrets, 0o600)
            conf = ('tls = { certificate = "%s"; key = "%s"; };\n'
                    'auth = { secrets = "%s"; };\n'
                    % (CERTS["srv.pem"], CERTS["srv.key"], secrets))
        h = Smtpd(d, config_extra=conf, hostname="hop.test.example",
                  args=list(args))
        h.start()
        self.addCleanup(h.stop)
        return h

    def submission(self):
        if CERTS is None:
            self.skipTest("certtool (gnutls-bin) is not installed")
        return self.hop(args=["-a"], tls=True)

    def test_smarthost_is_our_submission_server(self):
        h = self.submission()
        keys = self.keys("key proto=pass label=sub user=alice "
                         "!password='%s'\n" % PASSWORD)
        self.setup_queue(self.relay(h.port, 'tls = "require"; auth = "sub"; '
                                    'tls_cafile = "%s";' % CERTS["ca.pem"]),
                         queue=FAST + keys)
        self.send("alice@example.org", ["bob@example.net"],
                  b"Subject: via submission\r\n\r\nhello\r\n")
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        q = h.queued()
        self.assertEqual(len(q), 1, h.logtext())
        env, body = parse_spool(next(iter(q.values())))
        self.assertEqual(env["rcpt"], ["<bob@example.net>"])
        self.assertEqual(env["from"], "<alice@example.org>")
        self.assertRegex(body.decode(), r"with ESMTPSA")
        self.assertIn(b"Subject: via submission", body)
        self.assertNotIn(PASSWORD, self.log())

    def test_auth_demanded_but_not_configured(self):
        """A route without auth to a smarthost that demands it: deferred
        with a reason that says so, logged as an error, never dropped and
        never bounced; once auth is configured, delivered."""
        h = self.submission()
        route = 'tls = "require"; tls_cafile = "%s";' % CERTS["ca.pem"]
        self.setup_queue(self.relay(h.port, route), queue=FAST)
        self.send("alice@example.org", ["bob@example.net"])
        self.run_all()
        self.assertEqual(len(self.queue_ids()), 1)
        self.assertEqual(h.queued(), {})
        out = self.listing()
        self.assertIn("deferred", out)
        self.assertIn("demands authentication and the route has no "
                      "credentials (auth): 530", out)
        self.assertIn("demands authentication (530), but the route has no "
                      "auth label", self.log())
        self.assertEqual(self.dsns(), [])
        keys = self.keys("key proto=pass label=sub user=alice "
                         "!password='%s'\n" % PASSWORD)
        self.reconfigure(self.relay(h.port, route + ' auth = "sub";'),
                         queue=FAST + keys)
        self.smtpq("flush")
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.queued()), 1)

    def test_dsn_parameters_passed_on(self):
        """A next hop with DSN gets NOTIFY, ORCPT (also one made up for an
        alias), RET and ENVID, and reports from then on: no "relayed" DSN
        from us."""
        h = self.hop()
        self.setup_queue(self.relay(h.port, domain="example.net"), queue=FAST,
                         aliases='{ name = "team@example.org"; '
                                 'to = [ "carol@example.net" ]; }')
        self.send("alice@example.org", ["bob@example.net", "team@example.org"],
                  mail_options=["RET=HDRS", "ENVID=env+2Bone"],
                  rcpt_options=["NOTIFY=SUCCESS,DELAY"])
        self.send("alice@example.org", ["dave@example.net"],
                  rcpt_options=["NOTIFY=NEVER",
                                "ORCPT=rfc822;Dave+40example.net"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        envs = [parse_spool(raw)[0] for raw in h.queued().values()]
        self.assertEqual(len(envs), 2, h.logtext())
        first = [e for e in envs if len(e["rcpt"]) == 2][0]
        second = [e for e in envs if len(e["rcpt"]) == 1][0]
        self.assertEqual(first["ret"], "HDRS")
        self.assertEqual(first["envid"], "env+2Bone")
        self.assertEqual(sorted(first["rcpt"]), [
            "<bob@example.net> notify=SUCCESS,DELAY",
            "<carol@example.net> notify=SUCCESS,DELAY "
            "orcpt=rfc822;team@example.org"])
        self.assertEqual(second["rcpt"], [
            "<dave@example.net> notify=NEVER orcpt=rfc822;Dave+40example.net"])
        self.assertNotIn("ret", second)
        self.assertIn("queue relayed to=<carol@example.net> "
                      "orig=<team@example.org>", self.log())
        self.assertEqual(self.dsns(), [])


@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed")
@unittest.skipUnless(SMTP_SINK, "smtp-sink (Debian package postfix) is not "
                     "installed")
class RelaySink(QueueCase):
    def test_many_messages_to_smtp_sink(self):
        n = 50
        with Sink(self.workdir) as sink:
            self.setup_queue('{ domain = "*"; action = "relay"; '
                             'host = "%s"; }' % sink.addr(), queue=FAST)
            for i in range(n):
                self.send("alice@example.org", ["r%d@example.net" % i],
                          b"Subject: %d\r\n\r\nmessage %d\r\n" % (i, i))
            self.d.settle()
            self.deliver()
            self.assertTrue(wait_for(lambda: self.queue_ids() == []),
                            self.log())
            got = sink.messages(want=n)
        self.assertEqual(len(got), n)
        # smtp-sink writes LF line ends and headers of its own.
        bodies = sorted(m.split(b"\n\n", 1)[1].strip() for m in got)
        self.assertEqual(bodies, sorted(b"message %d" % i for i in range(n)))
        self.assertEqual(self.log().count("queue relayed to="), n)


# MX hosts listen on 127.0.0.x:25 inside the namespace; an MX host that
# is "down" is an address nobody listens on.
ZONE = dict(
    records=[
        dnsns.mx("a.test", "mx1.a.test", 10),
        dnsns.mx("a.test", "mx2.a.test", 20),
        dnsns.host("mx1.a.test", "127.0.0.9"),
        dnsns.host("mx2.a.test", "127.0.0.3"),
        dnsns.mx("down.test", "mx.down.test", 10),
        dnsns.host("mx.down.test", "127.0.0.20"),
        dnsns.host("nomx.test", "127.0.0.4"),
        dnsns.null_mx("null.test"),
        dnsns.mx("ghost.test", "mx.ghost.test", 10),
        # We (mx.test.example) are an MX host of these.
        dnsns.mx("loop.test", "mx.test.example", 10),
        dnsns.mx("loop.test", "backup.loop.test", 20),
        dnsns.host("backup.loop.test", "127.0.0.6"),
        dnsns.mx("via.test", "best.via.test", 5),
        dnsns.mx("via.test", "mx.test.example", 10),
        dnsns.host("best.via.test", "127.0.0.7"),
    ],
    local=("test",),
)


@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed")
class RelayMx(RelayCase):
    def by_mx(self):
        return '%s, { domain = "*"; action = "relay"; }' % self.sender_box()

    def failed(self, domain):
        """The DSN about <bob@domain>: its per-recipient fields."""
        dsns = wait_for(self.dsns)
        self.assertEqual(len(dsns), 1, self.log())
        _, rcpts = dsn_fields(dsns[0])
        self.assertEqual(rcpts[0]["final-recipient"], "rfc822; bob@%s" % domain)
        self.assertEqual(rcpts[0]["action"], "failed")
        return rcpts[0]

    @inside(**ZONE)
    def test_mx_hosts_in_order(self):
        h = Hop()
        self.aio(h, host="127.0.0.3", port=25)
        h4 = Hop()
        self.aio(h4, host="127.0.0.4", port=25)
        self.setup_queue(self.by_mx(), queue=FAST)
        self.send("alice@example.org", ["bob@a.test", "carol@nomx.test"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.diag())
        # mx1 (preference 10) is down: mx2 took it.
        self.assertEqual([m["rcpt"] for m in h.messages], [["bob@a.test"]])
        # No MX: the domain's own address.
        self.assertEqual([m["rcpt"] for m in h4.messages],
                         [["carol@nomx.test"]])
        self.assertIn("relay=mx2.a.test", self.log())

    @inside(**ZONE)
    def test_every_mx_down_defers(self):
        self.setup_queue(self.by_mx(), queue=FAST)
        self.send("alice@example.org", ["bob@down.test"])
        self.run_all()
        self.assertEqual(len(self.queue_ids()), 1)
        out = self.listing()
        self.assertIn("deferred", out)
        self.assertIn("Connection refused", out)
        self.assertEqual(self.dsns(), [])

    @inside(**ZONE)
    def test_dns_failure_defers(self):
        # dnsmasq refuses names outside .test: a temporary DNS failure.
        self.setup_queue(self.by_mx(), queue=FAST)
        self.send("alice@example.org", ["bob@elsewhere.invalid"])
        self.run_all()
        self.assertEqual(len(self.queue_ids()), 1)
        self.assertIn("DNS", self.listing())
        self.assertEqual(self.dsns(), [])

    @inside(**ZONE)
    def test_null_mx_bounces(self):
        self.setup_queue(self.by_mx(), queue=FAST)
        self.send("alice@example.org", ["bob@null.test"])
        self.run_all()
        r = self.failed("null.test")
        self.assertEqual(r["status"], "5.1.10")
        self.assertIn("null MX", r["diagnostic-code"])
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())

    @inside(**ZONE)
    def test_no_such_domain_bounces(self):
        self.setup_queue(self.by_mx(), queue=FAST)
        self.send("alice@example.org", ["bob@nosuch.test"])
        self.run_all()
        self.assertEqual(self.failed("nosuch.test")["status"], "5.1.2")

    @inside(**ZONE)
    def test_mail_host_without_address_bounces(self):
        self.setup_queue(self.by_mx(), queue=FAST)
        self.send("alice@example.org", ["bob@ghost.test"])
        self.run_all()
        self.assertEqual(self.failed("ghost.test")["status"], "5.1.2")

    @inside(**ZONE)
    def test_we_are_the_best_mx(self):
        """RFC 5321 5.1: as the best MX we may not relay (a loop); as a
        lesser one, only hosts preferred to us are tried."""
        backup, best = Hop(), Hop()
        self.aio(backup, host="127.0.0.6", port=25)
        self.aio(best, host="127.0.0.7", port=25)
        self.setup_queue(self.by_mx(), queue=FAST)
        self.send("alice@example.org", ["bob@loop.test", "carol@via.test"])
        self.run_all()
        r = self.failed("loop.test")
        self.assertEqual(r["status"], "5.4.6")
        self.assertIn("loops back to myself", r["diagnostic-code"])
        self.assertEqual(backup.messages, [])
        self.assertEqual([m["rcpt"] for m in best.messages],
                         [["carol@via.test"]])


if __name__ == "__main__":
    unittest.main()
