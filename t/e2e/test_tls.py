"""TLS in smtpd: STARTTLS (RFC 3207), implicit TLS listeners (RFC 8314),
the plaintext-injection guard, the Received line, and real TLS clients
(smtplib, swaks, curl, msmtp, gnutls-cli) against certificates made with
certtool (reload, client certificates and tickets: test_tls_certs.py)."""
import os
import re
import select
import shutil
import smtplib
import ssl
import subprocess
import time
import unittest

import certs
from certs import (CRYPT_PASS, CRYPT_USER, HOSTNAME, PLAIN_PASS, PLAIN_USER,
                   TlsAuthCase)
from harness import (SMTPD, Conn, daemon_status, parse_spool,
                     read_until_closed, split_replies)


def need(tool):
    return unittest.skipUnless(shutil.which(tool), "%s not installed" % tool)


MSG = (b"From: alice@example.org\r\nTo: bob@example.net\r\n"
       b"Subject: over TLS\r\n\r\nsent over TLS\r\n")


def ehlo_keywords(lines):
    """The extension keywords of an EHLO reply (without the first line)."""
    return [l[4:] for l in lines[1:]]


class StartTlsDialogue(TlsAuthCase):
    """What the server says around STARTTLS."""

    def test_ehlo_before_and_after_tls(self):
        """Before TLS, EHLO lists STARTTLS and AUTH CRAM-MD5 only (when
        configured); after the handshake STARTTLS is gone and AUTH lists
        PLAIN and LOGIN too."""
        d = self.server(auth_extra='mechanisms = [ "PLAIN", "LOGIN", '
                                   '"CRAM-MD5" ];')
        c = self.client(d, source="127.0.0.1", helo=None)
        kw = ehlo_keywords(self.ehlo(c))
        self.assertIn("STARTTLS", kw)
        self.assertIn("AUTH CRAM-MD5", kw)
        self.starttls(c)
        kw = ehlo_keywords(self.ehlo(c))
        self.assertNotIn("STARTTLS", kw)
        auth = [k for k in kw if k.startswith("AUTH ")]
        self.assertEqual(len(auth), 1, kw)
        self.assertEqual(set(auth[0].split()[1:]), {"PLAIN", "LOGIN", "CRAM-MD5"})

    def test_mail_right_after_handshake_needs_ehlo(self):
        """The client must say EHLO again after the handshake: MAIL gets
        503 5.5.1; after EHLO it gets 250."""
        d = self.server()
        c = self.client(d, source="127.0.0.1")
        self.starttls(c)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 503, "5.5.1")
        self.ehlo(c)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250, "2.1.0")

    def test_second_starttls(self):
        """STARTTLS inside TLS gets 503 5.5.1 and the session goes on."""
        d = self.server()
        c = self.tls_client(d)
        self.assertReply(c.cmd("STARTTLS"), 503, "5.5.1")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_second_starttls_on_implicit_listener(self):
        """On the implicit TLS port STARTTLS is not offered and gets
        503 5.5.1."""
        d = self.server(implicit=True)
        c = self.tls_open(d, ehlo=False)
        self.assertNotIn("STARTTLS", ehlo_keywords(self.ehlo(c)))
        self.assertReply(c.cmd("STARTTLS"), 503, "5.5.1")

    def test_starttls_with_argument(self):
        """STARTTLS takes no argument: 501 5.5.4, still in clear."""
        d = self.server()
        c = self.client(d, source="127.0.0.1")
        self.assertReply(c.cmd("STARTTLS now"), 501, "5.5.4")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_no_certificate_no_starttls(self):
        """Without tls in the config STARTTLS is neither offered nor
        accepted (502 5.5.1)."""
        d = self.server(tls=False)
        c = self.client(d, source="127.0.0.1", helo=None)
        self.assertNotIn("STARTTLS", ehlo_keywords(self.ehlo(c)))
        self.assertReply(c.cmd("STARTTLS"), 502, "5.5.1")

    def test_starttls_forgets_auth(self):
        """With -a -p, an AUTH done in clear does not survive STARTTLS:
        after the handshake MAIL gets 530 5.7.0 and EHLO offers AUTH
        again."""
        d = self.server(args=["-a", "-p"])
        c = self.client(d, source="127.0.0.1")
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        self.starttls(c)
        kw = ehlo_keywords(self.ehlo(c))
        self.assertTrue(any(k.startswith("AUTH ") for k in kw), kw)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 530, "5.7.0")

    def test_starttls_inside_transaction(self):
        """STARTTLS after MAIL gets 503 5.5.1 and the transaction goes on
        in clear."""
        d = self.server()
        c = self.client(d, source="127.0.0.1")
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250)
        self.assertReply(c.cmd("STARTTLS"), 503, "5.5.1")
        self.assertReply(c.cmd("RCPT TO:<bob@example.net>"), 250, "2.1.5")

    def test_failed_handshake_logged(self):
        """A client that says STARTTLS and then sends garbage instead of a
        ClientHello is disconnected; the log names GnuTLS's reason."""
        d = self.server()
        c = self.client(d, source="127.0.0.1")
        self.assertReply(c.cmd("STARTTLS"), 220, "2.0.0")
        c.send(b"this is not a TLS record\r\n" * 4)
        data = read_until_closed(c, timeout=10)
        self.assertNotIn(b"250", data)
        text = self.wait_log(d, "TLS handshake failed")
        self.assertRegex(text, r"smtp TLS handshake failed: \S.*")


class PlaintextInjection(TlsAuthCase):
    """CVE-2011-0411: commands sent with STARTTLS in one packet."""

    def injected(self, payload):
        d = self.server()
        c = self.client(d, source="127.0.0.1")
        c.send(payload)
        data = read_until_closed(c, timeout=10)
        replies = split_replies(data)
        self.assertEqual(len(replies), 1, data)
        self.assertReply(replies[0], 554, "5.5.1")
        self.assertNotIn(b"220", data)
        self.wait_log(d, "possible injection")
        self.assertIn("disconnect reason=starttls-injection",
                      self.wait_log(d, "disconnect reason="))
        return d

    def test_rset_after_starttls(self):
        """'STARTTLS\\r\\nRSET\\r\\n' in one write: 554 5.5.1 and the
        connection is closed; no 220 for that STARTTLS."""
        self.injected(b"STARTTLS\r\nRSET\r\n")

    def test_mail_after_starttls(self):
        """'STARTTLS\\r\\nMAIL FROM:...' in one write: 554 5.5.1, closed,
        and nothing queued."""
        d = self.injected(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n"
                          b"RCPT TO:<bob@example.net>\r\nDATA\r\n")
        self.assertNothingQueued(d)

    def test_partial_line_after_starttls(self):
        """Even an incomplete line after STARTTLS in the same write is
        refused with 554 5.5.1."""
        self.injected(b"STARTTLS\r\nNOO")


class ReceivedOverTls(TlsAuthCase):
    """The trace header and the envelope of mail received over TLS."""

    def send(self, c, rcpt="<bob@example.net>"):
        self.start_mail(c, rcpts=(rcpt,))
        return self.queued_id(self.send_data(c, MSG + b".\r\n"))

    def check_received(self, c, raw, proto):
        env, body = parse_spool(raw)
        self.assertEqual(env["protocol"], proto)
        m = re.match(rb"Received: from client\.example\.org \(unknown "
                     rb"\[127\.0\.0\.1\]\)\r\n"
                     rb"\t\(using (TLS1\.[23]) with cipher (\S+) "
                     rb"\((\d+)/(\d+) bits\)\)\r\n"
                     rb"\tby mx\.test\.example with (\S+) id ", body)
        self.assertIsNotNone(m, body[:400])
        version = c.sock.version().replace("TLSv", "TLS")
        self.assertEqual(m.group(1).decode(), version)
        if version == "TLS1.3":
            # TLS 1.3 suites have the same name in GnuTLS and OpenSSL.
            self.assertEqual(m.group(2).decode(), c.sock.cipher()[0])
        self.assertEqual(int(m.group(3)), c.sock.cipher()[2])
        self.assertEqual(m.group(5).decode(), proto)
        return env

    def test_esmtps(self):
        """Mail after STARTTLS: Received names ESMTPS and '(using TLS1.x
        with cipher ...)' matching the negotiated session; no auth line."""
        d = self.server()
        c = self.tls_client(d)
        qid = self.send(c)
        env = self.check_received(c, self.spooled(d, qid), "ESMTPS")
        self.assertNotIn("auth", env)

    def test_esmtpsa(self):
        """After STARTTLS and AUTH: ESMTPSA and an 'auth alice' envelope
        line."""
        d = self.server()
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        qid = self.send(c)
        env = self.check_received(c, self.spooled(d, qid), "ESMTPSA")
        self.assertEqual(env.get("auth"), PLAIN_USER)

    def test_utf8smtpsa(self):
        """SMTPUTF8 after STARTTLS and AUTH: UTF8SMTPSA."""
        d = self.server()
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org> SMTPUTF8"), 250)
        self.assertReply(c.cmd("RCPT TO:<b\u00f6b@example.net>"), 250)
        qid = self.queued_id(self.send_data(c, MSG + b".\r\n"))
        env, body = parse_spool(self.spooled(d, qid))
        self.assertEqual(env["protocol"], "UTF8SMTPSA")
        self.assertIn(b"with UTF8SMTPSA id ", body)

    def test_implicit_tls_esmtps(self):
        """Mail on the implicit TLS listener is ESMTPS as well."""
        d = self.server(implicit=True)
        c = self.tls_open(d)
        qid = self.send(c)
        self.check_received(c, self.spooled(d, qid), "ESMTPS")

    def test_tls12_priority(self):
        """tls.priority limited to TLS 1.2: the client gets TLS 1.2 and
        Received says TLS1.2."""
        d = self.server(tls_extra='priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2";')
        c = self.tls_client(d)
        self.assertEqual(c.sock.version(), "TLSv1.2")
        qid = self.send(c)
        body = parse_spool(self.spooled(d, qid))[1]
        self.assertIn(b"(using TLS1.2 with cipher ", body)


class TlsDataPath(TlsAuthCase):
    """Commands and message data through the TLS layer."""

    def test_pipelined_commands_in_one_record(self):
        """MAIL, two RCPTs and DATA in one TLS write: four replies, none
        held back waiting for more input."""
        d = self.server()
        c = self.tls_client(d)
        c.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\n"
               "RCPT TO:<carol@example.net>\r\nDATA\r\n")
        self.assertReply(c.reply(), 250, "2.1.0")
        self.assertReply(c.reply(), 250, "2.1.5")
        self.assertReply(c.reply(), 250, "2.1.5")
        self.assertReply(c.reply(), 354)
        c.send(MSG + b".\r\nNOOP\r\n")
        self.queued_id(c.reply())
        self.assertReply(c.reply(), 250, "2.0.0")

    def test_large_message(self):
        """A message of about 1.5 MB with lines of every length up to 996
        octets arrives byte for byte."""
        d = self.server()
        c = self.tls_client(d)
        body = b"".join(b"%05d " % i + b"x" * (i % 991) + b"\r\n"
                        for i in range(3000))
        msg = b"Subject: big over TLS\r\n\r\n" + body
        self.start_mail(c)
        qid = self.queued_id(self.send_data(c, msg + b".\r\n"))
        _, stored = parse_spool(self.spooled(d, qid))
        self.assertTrue(stored.endswith(msg), "message changed on the way")

    def test_bdat_over_tls(self):
        """BDAT chunks (one of 100000 octets) over TLS are stored as
        sent."""
        d = self.server()
        c = self.tls_client(d)
        self.start_mail(c)
        part1 = b"Subject: bdat over TLS\r\n\r\n" + b"y" * 99970 + b"\r\n"
        part1 = part1[:100000]
        part2 = b"\r\nlast chunk\r\n"
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        self.assertReply(c.reply(), 250, "2.0.0")
        c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        qid = self.queued_id(c.reply())
        _, stored = parse_spool(self.spooled(d, qid))
        self.assertTrue(stored.endswith(part1 + part2))

    def test_command_timeout_under_tls(self):
        """limits.command_timeout = 1: a silent client inside TLS gets
        421 4.4.2 over TLS, then the connection closes."""
        d = self.server(limits={"command_timeout": 1, "tarpit_delay": 0})
        c = self.tls_client(d)
        c.sock.settimeout(15)
        self.assertReply(c.reply(), 421, "4.4.2")
        self.assertTrue(c.closed())

    def test_idle_sessions_resume_over_tls(self):
        """Twenty STARTTLS sessions that pause (0.4 s, longer than a
        session waits before it is set aside without a thread) before
        each command, and one whose MAIL line arrives in two records
        across such a pause: every reply comes, every message is
        queued."""
        d = self.server()
        conns = [self.tls_client(d) for _ in range(20)]
        steps = ["MAIL FROM:<alice@example.org>", "RCPT TO:<bob@example.net>",
                 "DATA"]
        for step in steps:
            time.sleep(0.4)
            for c in conns:
                c.send(step + "\r\n")
            for c in conns:
                self.assertLess(c.reply()[0], 400, step)
        time.sleep(0.4)
        for c in conns:
            c.send(MSG + b".\r\n")
        for c in conns:
            self.queued_id(c.reply())
        c = conns[0]
        time.sleep(0.4)
        c.send("MAIL FROM:<al")
        time.sleep(0.4)
        c.send("ice@example.org>\r\n")
        self.assertReply(c.reply(), 250, "2.1.0")

    def test_idle_tls_sessions_hold_no_thread(self):
        """150 STARTTLS sessions opened one after another, then idle:
        each is set aside once silent, so smtpd ends with far fewer
        threads than sessions, and every one still answers NOOP."""
        d = self.server(limits={"sessions": 400, "sessions_per_ip": 400,
                                "sessions_per_net": 400})
        conns = [self.tls_client(d) for _ in range(150)]
        time.sleep(0.5)
        _, threads = daemon_status(d.proc.pid)
        self.assertLess(threads, 75)
        for c in conns:
            c.send("NOOP\r\n")
        for c in conns:
            self.assertReply(c.reply(), 250, "2.0.0")

    def test_connection_lost_mid_data(self):
        """A TLS client that vanishes in the middle of DATA leaves nothing
        queued and nothing in tmp/."""
        d = self.server()
        c = self.tls_client(d)
        self.start_mail(c)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: cut\r\n\r\nhalf a messa")
        c.sock.close()
        self.wait_log(d, "lost connection")
        self.assertNothingQueued(d)


class ImplicitTls(TlsAuthCase):
    """tls.listen: TLS from the first byte."""

    def test_greeting_inside_tls(self):
        """The greeting comes over TLS with the configured certificate;
        EHLO lists AUTH PLAIN LOGIN and no STARTTLS."""
        d = self.server(implicit=True)
        c = self.tls_open(d, ehlo=False)
        self.assertEqual(c.sock.getpeercert(True), self.certs["server"].der())
        kw = ehlo_keywords(self.ehlo(c))
        self.assertNotIn("STARTTLS", kw)
        auth = [k for k in kw if k.startswith("AUTH ")]
        self.assertTrue(auth and "PLAIN" in auth[0].split()
                        and "LOGIN" in auth[0].split(), kw)

    def test_plaintext_client_on_tls_port(self):
        """A client speaking plain SMTP to the implicit port gets no
        greeting in clear and is disconnected; the failed handshake is
        logged."""
        d = self.server(implicit=True)
        c = self.track(Conn(d.host, d.tls_port))
        c.send(b"EHLO plain.example.org\r\n")
        data = read_until_closed(c, timeout=10)
        self.assertNotIn(b"220", data)
        self.assertNotIn(b"ESMTP", data)
        self.wait_log(d, "TLS handshake failed")

    def test_handshake_timeout(self):
        """tls.handshake_timeout = 1: a client that connects to the
        implicit port and stays silent is disconnected."""
        d = self.server(implicit=True, tls_extra="handshake_timeout = 1;")
        c = self.track(Conn(d.host, d.tls_port))
        self.assertTrue(c.closed(timeout=15), "still open after the timeout")
        self.wait_log(d, "TLS handshake failed")

    def test_plain_listener_still_plain(self):
        """With tls.listen set, the ordinary listener still greets in clear
        and offers STARTTLS."""
        d = self.server(implicit=True)
        c = self.client(d, source="127.0.0.1", helo=None)
        self.assertIn("STARTTLS", ehlo_keywords(self.ehlo(c)))


class TlsConfig(TlsAuthCase):
    """Start-up checks of the tls group and the certificate chain."""

    def check(self, **kw):
        d = self.server(start=False, **kw)
        p = subprocess.run([SMTPD, "-t", "-C", d.conf], capture_output=True,
                           text=True, timeout=20)
        return p

    def test_good_config_checks(self):
        """smtpd -t accepts a matching certificate and key (exit 0)."""
        p = self.check(implicit=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_key_not_matching(self):
        """A key that does not belong to the certificate: exit 78, and the
        message names tls.key."""
        pair = certs.Pair(self.certs["server"].cert, self.certs["server2"].key)
        p = self.check(server_cert=pair)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn("tls.key", p.stderr)

    def test_missing_certificate_file(self):
        """A certificate file that does not exist: exit 78 naming it."""
        pair = certs.Pair(os.path.join(self.workdir, "nope.pem"),
                          self.certs["server"].key)
        p = self.check(server_cert=pair)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn("nope.pem", p.stderr)

    def test_bad_priority(self):
        """An invalid priority string: exit 78 and the place it went
        wrong."""
        p = self.check(tls_extra='priority = "NORMAL:+NO-SUCH-THING";')
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn("tls.priority", p.stderr)
        self.assertIn("NO-SUCH-THING", p.stderr)

    def test_listen_without_certificate(self):
        """tls.listen without certificate and key: exit 78."""
        d = self.server(start=False, tls=False, extra='tls = { listen = [ "127.0.0.1:1" ]; };')
        p = subprocess.run([SMTPD, "-t", "-C", d.conf], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn("tls", p.stderr)

    def test_chain_file_is_sent(self):
        """A leaf signed by an intermediate, with tls.chain: a client that
        trusts only the root verifies the server."""
        d = self.server(server_cert="server_ica",
                        tls_extra='chain = "%s";' % self.certs["ica"].cert)
        c = self.tls_client(d)
        self.assertEqual(c.sock.getpeercert(True), self.certs["server_ica"].der())

    def test_without_chain_not_verifiable(self):
        """The same leaf without tls.chain: the client cannot verify it
        (the intermediate is missing), so the chain test above can fail."""
        d = self.server(server_cert="server_ica")
        c = self.client(d, source="127.0.0.1")
        self.assertReply(c.cmd("STARTTLS"), 220, "2.0.0")
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.client_ctx().wrap_socket(c.sock, server_hostname=HOSTNAME)


class Smtplib(TlsAuthCase):
    """Python's smtplib as a TLS client that checks the certificate."""

    def test_starttls_login_send(self):
        """smtplib starttls() with a context that trusts the test CA and
        checks the host name (an IP address SAN), then login() and a
        relayed message: queued with 'auth alice' and ESMTPSA."""
        d = self.server(extra="ournets = [];")
        with smtplib.SMTP(d.host, d.port, local_hostname="smtplib.example.org",
                          timeout=10) as s:
            s.starttls(context=self.client_ctx())
            self.assertEqual(s.sock.getpeercert(True), self.certs["server"].der())
            s.login(PLAIN_USER, PLAIN_PASS)
            s.sendmail("alice@example.org", ["bob@example.net"], MSG)
        env, body = self.messages(d)[0]
        self.assertEqual(env["auth"], PLAIN_USER)
        self.assertEqual(env["protocol"], "ESMTPSA")
        self.assertIn(b"with ESMTPSA id", body)

    def test_login_crypt_account(self):
        """login() for the {CRYPT} account works over STARTTLS."""
        d = self.server()
        with smtplib.SMTP(d.host, d.port, timeout=10) as s:
            s.starttls(context=self.client_ctx())
            code, _ = s.login(CRYPT_USER, CRYPT_PASS)
            self.assertEqual(code, 235)

    def test_wrong_password(self):
        """login() with a wrong password raises SMTPAuthenticationError
        535."""
        d = self.server()
        with smtplib.SMTP(d.host, d.port, timeout=10) as s:
            s.starttls(context=self.client_ctx())
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                s.login(PLAIN_USER, "not-the-password")
            self.assertEqual(cm.exception.smtp_code, 535)

    def test_smtp_ssl(self):
        """SMTP_SSL against the implicit listener: login and a message."""
        d = self.server(implicit=True)
        with smtplib.SMTP_SSL(d.host, d.tls_port, context=self.client_ctx(),
                              local_hostname="ssl.example.org",
                              timeout=10) as s:
            s.login(PLAIN_USER, PLAIN_PASS)
            s.sendmail("alice@example.org", ["bob@example.net"], MSG)
        env, body = self.messages(d)[0]
        self.assertEqual(env["helo"], "ssl.example.org")
        self.assertEqual(env["auth"], PLAIN_USER)
        self.assertIn(b"with ESMTPSA id", body)


class Swaks(TlsAuthCase):
    """swaks with --tls (STARTTLS) and --tlsc (implicit TLS)."""

    def swaks(self, d, *args):
        return subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--ehlo", "swaks.example.org",
             "--from", "alice@example.org", "--to", "bob@example.net",
             "--tls-verify", "--tls-ca-path", self.certs["ca"].cert,
             "--tls-sni", HOSTNAME, "--body", "swaks over TLS"] + list(args),
            capture_output=True, text=True, timeout=30)

    @need("swaks")
    def test_starttls(self):
        """swaks --tls verifying the certificate: queued, ESMTPS."""
        d = self.server()
        p = self.swaks(d, "--port", str(d.port), "--tls")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("220 2.0.0 Ready to start TLS", p.stdout)
        env, body = self.messages(d)[0]
        self.assertEqual(env["protocol"], "ESMTPS")
        self.assertIn(b"swaks over TLS", body)

    @need("swaks")
    def test_implicit(self):
        """swaks --tlsc on the tls.listen port: queued, ESMTPS."""
        d = self.server(implicit=True)
        p = self.swaks(d, "--port", str(d.tls_port), "--tlsc")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        env, _ = self.messages(d)[0]
        self.assertEqual(env["protocol"], "ESMTPS")

    @need("swaks")
    def test_starttls_auth(self):
        """swaks --tls --auth PLAIN: ESMTPSA with the auth line."""
        d = self.server()
        p = self.swaks(d, "--port", str(d.port), "--tls", "--auth", "PLAIN",
                       "--auth-user", PLAIN_USER, "--auth-password", PLAIN_PASS)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        env, _ = self.messages(d)[0]
        self.assertEqual(env["protocol"], "ESMTPSA")
        self.assertEqual(env["auth"], PLAIN_USER)


class Curl(TlsAuthCase):
    """curl smtps:// and smtp:// --ssl-reqd with --cacert and --user."""

    def curl(self, url, port, *extra):
        path = os.path.join(self.workdir, "mail.txt")
        with open(path, "wb") as f:
            f.write(MSG)
        return subprocess.run(
            ["curl", "-sS", "--max-time", "20",
             "--resolve", "%s:%d:127.0.0.1" % (HOSTNAME, port),
             "--cacert", self.certs["ca"].cert,
             "--user", "%s:%s" % (PLAIN_USER, PLAIN_PASS),
             "--mail-from", "alice@example.org",
             "--mail-rcpt", "bob@example.net", "-T", path] + list(extra)
            + ["--", url], capture_output=True, text=True, timeout=30)

    def check(self, d):
        env, body = self.messages(d)[0]
        self.assertEqual(env["auth"], PLAIN_USER)
        self.assertEqual(env["protocol"], "ESMTPSA")
        self.assertEqual(env["helo"], "curl.example.org")
        self.assertTrue(body.endswith(MSG), body)

    @need("curl")
    def test_smtps(self):
        """curl smtps:// to the implicit listener, verifying the name:
        exit 0, queued with the auth line."""
        d = self.server(implicit=True)
        p = self.curl("smtps://%s:%d/curl.example.org" % (HOSTNAME, d.tls_port),
                      d.tls_port)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check(d)

    @need("curl")
    def test_starttls_ssl_reqd(self):
        """curl smtp:// --ssl-reqd (STARTTLS), verifying the name: exit 0,
        queued with the auth line."""
        d = self.server()
        p = self.curl("smtp://%s:%d/curl.example.org" % (HOSTNAME, d.port),
                      d.port, "--ssl-reqd")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check(d)


class Msmtp(TlsAuthCase):
    """msmtp with TLS (STARTTLS and implicit) and AUTH from a config file."""

    def run_msmtp(self, port, starttls):
        rc = os.path.join(self.workdir, "msmtprc")
        with open(rc, "w") as f:
            f.write("account test\nhost 127.0.0.1\nport %d\n"
                    "domain msmtp.example.org\nfrom alice@example.org\n"
                    "tls on\ntls_starttls %s\ntls_trust_file %s\n"
                    "tls_host_override %s\nauth plain\nuser %s\npassword %s\n"
                    "account default : test\n"
                    % (port, "on" if starttls else "off",
                       self.certs["ca"].cert, HOSTNAME, PLAIN_USER, PLAIN_PASS))
        os.chmod(rc, 0o600)
        return subprocess.run(["msmtp", "-C", rc, "--", "bob@example.net"],
                              input=b"Subject: msmtp\n\nmsmtp body\n",
                              capture_output=True, timeout=30)

    @need("msmtp")
    def test_starttls_auth(self):
        """msmtp with tls_starttls on and auth plain: queued, ESMTPSA."""
        d = self.server()
        p = self.run_msmtp(d.port, True)
        self.assertEqual(p.returncode, 0, p.stderr)
        env, body = self.messages(d)[0]
        self.assertEqual(env["auth"], PLAIN_USER)
        self.assertEqual(env["protocol"], "ESMTPSA")
        self.assertIn(b"msmtp body\r\n", body)

    @need("msmtp")
    def test_implicit_auth(self):
        """msmtp with tls_starttls off on the implicit port: queued."""
        d = self.server(implicit=True)
        p = self.run_msmtp(d.tls_port, False)
        self.assertEqual(p.returncode, 0, p.stderr)
        env, _ = self.messages(d)[0]
        self.assertEqual(env["auth"], PLAIN_USER)


class GnutlsCli(TlsAuthCase):
    """gnutls-cli as the client: handshake, EHLO inside TLS, old versions."""

    def cli(self, port, *extra, starttls=True):
        """Runs gnutls-cli: EHLO once the handshake is done, QUIT once the
        EHLO reply is complete, and stdin is closed only after the
        server's 221 (or when the client gives up).  (rc, output)."""
        cmd = ["gnutls-cli", "--x509cafile", self.certs["ca"].cert,
               "-p", str(port)]
        if starttls:
            cmd.append("--starttls-proto=smtp")
        cmd += list(extra) + ["127.0.0.1"]
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        out = b""
        try:
            for send, until in ((b"EHLO gnutls.example.org\r\n",
                                 rb"(?m)^250 "),
                                (b"QUIT\r\n", rb"(?m)^221 ")):
                if not re.search(rb"Handshake was completed", out):
                    out += self.read_until(p, rb"Handshake was completed")
                if b"Handshake was completed" not in out:
                    break
                p.stdin.write(send)
                p.stdin.flush()
                out += self.read_until(p, until)
            p.stdin.close()
            out += self.read_until(p, None)
            rc = p.wait(timeout=20)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            p.kill()
            rc = p.wait()
        finally:
            p.stdout.close()
        return rc, out.decode(errors="replace")

    @staticmethod
    def read_until(p, pattern, timeout=15):
        """What p prints until pattern matches it or p's output ends."""
        buf = b""
        deadline = time.time() + timeout
        fd = p.stdout.fileno()
        while time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            if pattern is not None and re.search(pattern, buf):
                break
        return buf

    @need("gnutls-cli")
    def test_starttls_ehlo(self):
        """--starttls-proto=smtp: the certificate is trusted, and EHLO is
        answered inside TLS (no STARTTLS, AUTH PLAIN offered)."""
        d = self.server()
        rc, out = self.cli(d.port)
        self.assertEqual(rc, 0, out)
        self.assertIn("The certificate is trusted", out)
        self.assertIn("Handshake was completed", out)
        after = out.split("Handshake was completed", 1)[1]
        self.assertIn("250-%s Hello gnutls.example.org" % HOSTNAME, after)
        self.assertIn("PLAIN", after)
        self.assertNotIn("STARTTLS", after)
        self.assertIn("221 2.0.0", after)

    @need("gnutls-cli")
    def test_implicit_with_sni(self):
        """Implicit TLS with the host name as SNI and verified name."""
        d = self.server(implicit=True)
        rc, out = self.cli(d.tls_port, "--sni-hostname", HOSTNAME,
                           "--verify-hostname", HOSTNAME, starttls=False)
        self.assertEqual(rc, 0, out)
        self.assertIn("The certificate is trusted", out)
        self.assertIn("220 %s ESMTP" % HOSTNAME, out)
        self.assertIn("250-%s Hello gnutls.example.org" % HOSTNAME, out)

    @need("gnutls-cli")
    def test_old_versions_refused(self):
        """TLS 1.1 and TLS 1.0 are refused by the default priority: the
        handshake fails, no EHLO is answered, the failure is logged."""
        d = self.server()
        for n, vers in enumerate(("TLS1.1", "TLS1.0"), 1):
            rc, out = self.cli(d.port, "--priority", "NORMAL:-VERS-ALL:+VERS-" + vers)
            self.assertNotEqual(rc, 0, vers + ": " + out)
            self.assertNotIn("Handshake was completed", out)
            self.assertNotIn("250-%s Hello gnutls" % HOSTNAME, out)
            self.wait_log(d, "TLS handshake failed", count=n)

    @need("gnutls-cli")
    def test_tls12_and_13_accepted(self):
        """TLS 1.2 alone and TLS 1.3 alone both complete."""
        d = self.server()
        for vers in ("TLS1.2", "TLS1.3"):
            rc, out = self.cli(d.port, "--priority", "NORMAL:-VERS-ALL:+VERS-" + vers)
            self.assertEqual(rc, 0, vers + ": " + out)
            self.assertIn("(%s-X.509)" % vers, out)
            self.assertIn("250-%s Hello" % HOSTNAME, out)


class StdioTls(TlsAuthCase):
    """STARTTLS in stdio mode (smtpd -i under inetd), over a pipe."""

    @need("swaks")
    def test_swaks_pipe_starttls(self):
        """swaks --pipe 'smtpd -i' --tls --auth PLAIN: the handshake runs
        over the two pipe ends and the message is queued with ESMTPSA."""
        d = self.server(start=False, listen=[])
        p = subprocess.run(
            ["swaks", "--pipe", "%s -i -C %s" % (SMTPD, d.conf), "--tls",
             "--ehlo", "pipe.example.org",
             "--auth", "PLAIN", "--auth-user", PLAIN_USER,
             "--auth-password", PLAIN_PASS,
             "--from", "alice@example.org", "--to", "bob@example.net",
             "--body", "TLS over a pipe"],
            capture_output=True, text=True, timeout=30,
            env=dict(os.environ, TCPREMOTEIP="127.0.0.1"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("235 2.7.0", p.stdout)
        env, body = parse_spool(next(iter(d.queued().values())))
        self.assertEqual(env["protocol"], "ESMTPSA")
        self.assertEqual(env["auth"], PLAIN_USER)
        self.assertIn(b"TLS over a pipe", body)


if __name__ == "__main__":
    unittest.main()
