"""Relaying through a smarthost: to aiosmtpd and to smtp-sink, with a
destination that answers 4xx first, and one that refuses with 5xx.

These need the relay agent (the SMTP client library); until the build has
it (smtpq -V), they are skipped and test_queue_local's
test_relay_route_defers_with_a_clear_reason covers what happens instead.
"""
import shutil
import subprocess
import unittest

from harness import free_port, wait_port
from qharness import (SMTPQ, QueueCase, dsn_fields, maildir_files, parse_mail,
                      read_bytes, wait_for)

FAST = "retry_min = 1; retry_max = 2; scan_interval = 1;"


def relay_available():
    try:
        out = subprocess.run([SMTPQ, "-V"], capture_output=True, text=True,
                             timeout=10).stdout
    except OSError:
        return False
    return "relay" in out and "not available" not in out


try:
    from aiosmtpd.controller import Controller
    HAVE_AIOSMTPD = True
except ImportError:
    HAVE_AIOSMTPD = False


class Recorder:
    """An aiosmtpd handler that keeps what it receives; it can refuse the
    first `tempfail` deliveries with 451, or every one with 550."""

    def __init__(self, tempfail=0, refuse=False):
        self.tempfail = tempfail
        self.refuse = refuse
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.tempfail > 0:
            self.tempfail -= 1
            return "451 4.3.0 try again later"
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.content))
        return "250 2.0.0 accepted"


@unittest.skipUnless(relay_available(), "this build has no relay agent")
@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed")
class RelayAiosmtpd(QueueCase):
    def serve(self, handler):
        port = free_port()
        ctl = Controller(handler, hostname="127.0.0.1", port=port)
        ctl.start()
        self.addCleanup(ctl.stop)
        return port

    def routes(self, port):
        return ('{ domain = "example.org"; action = "maildir"; '
                'path = "%s/%%d/%%u"; create = true; },'
                '{ domain = "*"; action = "relay"; host = "127.0.0.1:%d"; }'
                % (self.path("mail"), port))

    def test_relay_to_smarthost(self):
        h = Recorder()
        self.setup_queue(self.routes(self.serve(h)), queue=FAST)
        self.send("alice@example.org", ["bob@example.net", "carol@example.net"],
                  b"Subject: relayed\r\n\r\nover the wire\r\n")
        self.deliver()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(h.messages), 1)
        sender, rcpts, content = h.messages[0]
        self.assertEqual(sender, "alice@example.org")
        self.assertEqual(sorted(rcpts), ["bob@example.net", "carol@example.net"])
        self.assertIn(b"over the wire", content)

    def test_4xx_then_accept_delivers_once(self):
        h = Recorder(tempfail=1)
        self.setup_queue(self.routes(self.serve(h)), queue=FAST)
        self.start_runner()
        self.send("alice@example.org", ["bob@example.net"])
        self.assertTrue(wait_for(lambda: self.queue_ids() == [], 20),
                        self.log())
        self.assertEqual(len(h.messages), 1)
        self.assertIn("queue deferred to=<bob@example.net>", self.log())

    def test_5xx_bounces_to_sender(self):
        h = Recorder(refuse=True)
        self.setup_queue(self.routes(self.serve(h)), queue=FAST)
        self.send("alice@example.org", ["bob@example.net"],
                  b"Subject: refused\r\n\r\nx\r\n")
        self.deliver()
        files = wait_for(lambda: maildir_files(self.path(
            "mail", "example.org", "alice")))
        self.assertEqual(len(files), 1, self.log())
        _, rcpts = dsn_fields(parse_mail(read_bytes(files[0])))
        self.assertEqual(rcpts[0]["action"], "failed")
        self.assertEqual(rcpts[0]["status"], "5.1.1")
        self.assertIn("no such user here", rcpts[0]["diagnostic-code"])
        self.assertIn("remote-mta", rcpts[0])


@unittest.skipUnless(relay_available(), "this build has no relay agent")
@unittest.skipUnless(shutil.which("smtp-sink", path="/usr/sbin:/usr/bin"),
                     "smtp-sink (Debian package postfix) is not installed")
class RelaySink(QueueCase):
    def test_many_messages_to_smtp_sink(self):
        port = free_port()
        n = 50
        sink = subprocess.Popen(
            [shutil.which("smtp-sink", path="/usr/sbin:/usr/bin"), "-M",
             str(n), "127.0.0.1:%d" % port, "100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (sink.poll() is None and sink.kill(),
                                 sink.wait()))
        self.assertTrue(wait_port("127.0.0.1", port))
        self.setup_queue('{ domain = "*"; action = "relay"; '
                         'host = "127.0.0.1:%d"; }' % port, queue=FAST)
        for i in range(n):
            self.send("alice@example.org", ["r%d@example.net" % i])
        self.deliver()
        # smtp-sink exits after the n-th message.
        self.assertTrue(wait_for(lambda: sink.poll() is not None, 30),
                        self.log())
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
