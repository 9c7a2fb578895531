"""Service extensions end to end, through smtpd, the queue and the relay:
REQUIRETLS and the TLS-Required header field (RFC 8689), SMTPUTF8 without
downgrade (RFC 6531), and LIMITS (RFC 9422).

Next hops are aiosmtpd and our own smtpd; DSNs come back into the
sender's Maildir and are read with Python's email package.
"""
import os
import shutil
import smtplib
import ssl
import tempfile
import unittest

from harness import Smtpd, parse_spool
from qharness import (QueueCase, dsn_fields, maildir_files, parse_mail,
                      read_bytes, wait_for)

try:
    from clientkit import Aio, Recorder, make_certs, server_tls
    HAVE_AIOSMTPD = True
except ImportError:
    HAVE_AIOSMTPD = False

FAST = "retry_min = 1; retry_max = 2; scan_interval = 1;"
CERTS = None
CERTDIR = None


def setUpModule():
    global CERTS, CERTDIR
    if HAVE_AIOSMTPD and shutil.which("certtool"):
        CERTDIR = tempfile.mkdtemp(prefix="ext-certs-")
        CERTS = make_certs(CERTDIR)


def tearDownModule():
    if CERTDIR:
        shutil.rmtree(CERTDIR, ignore_errors=True)


class LimitedHop(Recorder if HAVE_AIOSMTPD else object):
    """Announces LIMITS RCPTMAX=n and refuses recipients beyond it."""

    def __init__(self, n):
        super().__init__()
        self.n = n
        self.refused = 0

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        responses = await super().handle_EHLO(server, session, envelope,
                                              hostname, responses)
        return (responses[:-1] + ["250-LIMITS RCPTMAX=%d" % self.n]
                + responses[-1:])

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        if len(envelope.rcpt_tos) >= self.n:
            self.refused += 1
            return "452 4.5.3 Too many recipients"
        return await super().handle_RCPT(server, session, envelope, address,
                                          rcpt_options)


@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed")
class ExtCase(QueueCase):
    def setUp(self):
        super().setUp()
        if CERTS is None:
            self.skipTest("certtool (gnutls-bin) is not installed")

    def aio(self, handler, **kw):
        s = Aio(handler, auth_require_tls=False, **kw)
        s.__enter__()
        self.addCleanup(s.__exit__)
        return s

    def routes(self, port, extra=""):
        return ('{ domain = "example.org"; action = "maildir"; '
                'path = "%s/%%d/%%u"; create = true; catchall = true; }, '
                '{ domain = "*"; action = "relay"; host = "127.0.0.1:%d"; '
                '%s }' % (self.path("mail"), port, extra))

    def start(self, routes, queue=FAST):
        """smtpd with STARTTLS (the test CA's certificate) and the queue."""
        d = self.setup_queue(routes, queue=queue, start_smtpd=False)
        with open(d.conf, "a") as f:
            f.write('tls = { certificate = "%s"; key = "%s"; };\n'
                    % (CERTS["srv.pem"], CERTS["srv.key"]))
        d.start()
        return d

    def hop(self, tls=False, limits=None):
        """Our smtpd as the next hop, with STARTTLS if tls."""
        d = os.path.join(self.workdir, "hop")
        os.makedirs(d, exist_ok=True)
        conf = ""
        if tls:
            conf = ('tls = { certificate = "%s"; key = "%s"; };\n'
                    % (CERTS["srv.pem"], CERTS["srv.key"]))
        h = Smtpd(d, config_extra=conf, hostname="hop.test.example",
                  limits=limits)
        h.start()
        self.addCleanup(h.stop)
        return h

    def tls_client(self):
        c = smtplib.SMTP(self.d.host, self.d.port, timeout=10)
        ctx = ssl.create_default_context(cafile=CERTS["ca.pem"])
        ctx.check_hostname = False
        c.starttls(context=ctx)
        return c

    def send_tls(self, sender, rcpts, body=b"Subject: t\r\n\r\nhello\r\n",
                 mail_options=()):
        with self.tls_client() as c:
            self.assertEqual(c.sendmail(sender, rcpts, body,
                                        list(mail_options)), {})

    def dsns(self):
        return [parse_mail(read_bytes(f)) for f in
                maildir_files(self.path("mail", "example.org", "alice"))]

    def failure_dsn(self):
        self.assertTrue(wait_for(lambda: self.dsns() != []), self.log())
        dsn = self.dsns()[0]
        return dsn, dsn_fields(dsn)[1]

    def run_all(self):
        self.d.settle()
        self.deliver()


class RequireTls(ExtCase):
    def test_offered_and_accepted_only_under_tls(self):
        self.start(self.routes(9))      # nothing is relayed here
        with smtplib.SMTP(self.d.host, self.d.port, timeout=10) as c:
            c.ehlo()
            self.assertNotIn("requiretls", c.esmtp_features)
            code, msg = c.mail("alice@example.org", ["REQUIRETLS"])
            self.assertEqual(code, 530)
            self.assertTrue(msg.startswith(b"5.7.10 "), msg)
        with self.tls_client() as c:
            c.ehlo()
            self.assertIn("requiretls", c.esmtp_features)
            self.assertEqual(c.mail("alice@example.org", ["REQUIRETLS"])[0],
                             250)
            self.assertEqual(c.rcpt("bob@example.net")[0], 250)
            self.assertEqual(c.data(b"Subject: x\r\n\r\nhi\r\n")[0], 250)
        env, _ = parse_spool(next(iter(self.d.queued().values())))
        self.assertIn("requiretls", env)
        self.assertIn("smtp mail from=<alice@example.org> requiretls",
                      self.d.logtext())

    def test_bounced_without_verified_tls(self):
        """A next hop in the clear: 5.7.30 and a DSN without the body."""
        hop = Recorder()
        s = self.aio(hop)
        self.start(self.routes(s.port))
        self.send_tls("alice@example.org", ["bob@example.net"],
                      b"Subject: secret\r\n\r\nthe body stays here\r\n",
                      mail_options=["REQUIRETLS"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(hop.messages, [])
        dsn, fields = self.failure_dsn()
        self.assertEqual(fields[0]["action"], "failed", fields)
        self.assertEqual(fields[0]["status"], "5.7.30", fields)
        self.assertIn("REQUIRETLS", fields[0].get("diagnostic-code", ""))
        self.assertNotIn(b"the body stays here", dsn.as_bytes())

    def test_bounced_when_tls_is_not_verified(self):
        """STARTTLS with a certificate nobody checked is not enough."""
        h = self.hop(tls=True)
        self.start(self.routes(h.port, 'tls = "encrypt";'))
        self.send_tls("alice@example.org", ["bob@example.net"],
                      mail_options=["REQUIRETLS"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(h.queued(), {})
        _, fields = self.failure_dsn()
        self.assertEqual(fields[0]["status"], "5.7.30", fields)

    def test_bounced_when_the_hop_lacks_requiretls(self):
        """Verified TLS to aiosmtpd, which does not offer REQUIRETLS."""
        hop = Recorder()
        s = self.aio(hop, tls_context=server_tls(CERTS))
        self.start(self.routes(s.port, 'tls = "verify"; tls_cafile = "%s";'
                               % CERTS["ca.pem"]))
        self.send_tls("alice@example.org", ["bob@example.net"],
                      mail_options=["REQUIRETLS"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(hop.messages, [])
        _, fields = self.failure_dsn()
        self.assertEqual(fields[0]["status"], "5.7.30", fields)
        self.assertIn("does not offer REQUIRETLS",
                      fields[0].get("diagnostic-code", ""))

    def test_relayed_over_verified_tls(self):
        h = self.hop(tls=True)
        self.start(self.routes(h.port, 'tls = "verify"; tls_cafile = "%s";'
                               % CERTS["ca.pem"]))
        self.send_tls("alice@example.org", ["bob@example.net"],
                      mail_options=["REQUIRETLS"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        q = h.queued()
        self.assertEqual(len(q), 1, h.logtext())
        env, body = parse_spool(next(iter(q.values())))
        self.assertIn("requiretls", env)
        self.assertRegex(h.logtext(), r"smtp mail from=<alice@example.org> "
                         r"size=\d+ requiretls")
        self.assertEqual(self.dsns(), [])

    def test_tls_required_no_goes_in_the_clear(self):
        """A route that wants verified TLS to a hop without STARTTLS: a
        message marked "TLS-Required: No" goes in the clear; one that is
        not waits."""
        hop = Recorder()
        s = self.aio(hop)
        self.start(self.routes(s.port, 'tls = "verify"; tls_cafile = "%s";'
                               % CERTS["ca.pem"]))
        self.send("alice@example.org", ["bob@example.net"],
                  b"Subject: strict\r\n\r\nwaits\r\n")
        self.send("alice@example.org", ["carol@example.net"],
                  b"Subject: relaxed\r\nTLS-Required: No\r\n\r\ngoes\r\n")
        self.run_all()
        self.assertTrue(wait_for(lambda: len(hop.messages) == 1), self.log())
        self.assertEqual(hop.messages[0]["rcpt"], ["carol@example.net"])
        self.assertFalse(hop.messages[0]["tls"])
        self.assertNotIn("REQUIRETLS", hop.messages[0]["mail_options"])
        self.assertEqual(len(self.queue_ids()), 1)
        self.assertIn("deferred", self.smtpq("list").stdout)


class Utf8(ExtCase):
    RCPT = "b\u00fccher@example.net"

    def test_relayed_with_smtputf8(self):
        hop = Recorder()
        s = self.aio(hop, enable_SMTPUTF8=True)
        self.start(self.routes(s.port))
        self.send("alice@example.org", [self.RCPT],
                  mail_options=["SMTPUTF8"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(len(hop.messages), 1)
        self.assertEqual(hop.messages[0]["rcpt"], [self.RCPT])
        self.assertIn("SMTPUTF8", hop.messages[0]["mail_options"])

    def test_bounced_when_the_hop_lacks_smtputf8(self):
        hop = Recorder()
        s = self.aio(hop)               # enable_SMTPUTF8=False
        self.start(self.routes(s.port))
        self.send("alice@example.org", [self.RCPT],
                  mail_options=["SMTPUTF8"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(hop.messages, [])
        _, fields = self.failure_dsn()
        self.assertEqual(fields[0]["action"], "failed", fields)
        self.assertEqual(fields[0]["status"], "5.6.7", fields)
        self.assertIn("SMTPUTF8", fields[0].get("diagnostic-code", ""))

    def test_ascii_message_goes_without_smtputf8(self):
        """SMTPUTF8 asked for, but nothing in the envelope or header needs
        it: no downgrade is needed, so it goes as it is; a UTF-8 header
        does need it and bounces."""
        hop = Recorder()
        s = self.aio(hop)               # enable_SMTPUTF8=False
        self.start(self.routes(s.port))
        self.send("alice@example.org", ["bob@example.net"],
                  b"Subject: plain\r\n\r\nhello\r\n",
                  mail_options=["SMTPUTF8"])
        self.send("alice@example.org", ["carol@example.net"],
                  "Subject: gr\u00fc\u00dfe\r\n\r\nhello\r\n".encode(),
                  mail_options=["SMTPUTF8"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual([m["rcpt"] for m in hop.messages],
                         [["bob@example.net"]])
        self.assertNotIn("SMTPUTF8", hop.messages[0]["mail_options"])
        _, fields = self.failure_dsn()
        self.assertEqual(fields[0]["status"], "5.6.7", fields)

    def test_local_delivery_keeps_the_local_part(self):
        self.start(self.routes(9))
        self.send("alice@example.org", ["\u00e9l\u00e8ve@example.org"],
                  mail_options=["SMTPUTF8"])
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        box = self.path("mail", "example.org", "\u00e9l\u00e8ve")
        self.assertEqual(len(maildir_files(box)), 1, self.log())


class Limits(ExtCase):
    def test_advertised(self):
        d = self.smtpd(limits={"recipients": 150})
        with smtplib.SMTP(d.host, d.port, timeout=10) as c:
            c.ehlo()
            self.assertEqual(c.esmtp_features.get("limits"), "RCPTMAX=150")

    def test_recipients_split_by_rcptmax(self):
        """aiosmtpd announcing RCPTMAX=3 and refusing a fourth recipient:
        7 recipients go in 3 transactions, each recipient once."""
        hop = LimitedHop(3)
        s = self.aio(hop)
        self.start(self.routes(s.port))
        rcpts = ["r%d@example.net" % i for i in range(7)]
        self.send("alice@example.org", rcpts)
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        self.assertEqual(sorted(len(m["rcpt"]) for m in hop.messages),
                         [1, 3, 3])
        got = sorted(r for m in hop.messages for r in m["rcpt"])
        self.assertEqual(got, rcpts)
        self.assertEqual(hop.refused, 0)
        self.assertEqual(self.dsns(), [])

    def test_our_smtpd_as_the_limited_hop(self):
        """Our smtpd (recipients = 100, the least RFC 5321 allows) as the
        next hop of a 250-recipient message."""
        h = self.hop(limits={"recipients": 100})
        self.start(self.routes(h.port))
        rcpts = ["r%d@example.net" % i for i in range(250)]
        self.send("alice@example.org", rcpts)
        self.run_all()
        self.assertTrue(wait_for(lambda: self.queue_ids() == []), self.log())
        envs = [parse_spool(raw)[0] for raw in h.queued().values()]
        self.assertEqual(sorted(len(e["rcpt"]) for e in envs),
                         [50, 100, 100], h.logtext())
        got = sorted(r for e in envs for r in e["rcpt"])
        self.assertEqual(got, sorted("<%s>" % r for r in rcpts))
        self.assertNotIn("Too many recipients", h.logtext())
