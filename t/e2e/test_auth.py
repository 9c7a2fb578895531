"""SMTP AUTH in smtpd (RFC 4954): PLAIN, LOGIN and CRAM-MD5 against a
secrets file with {PLAIN} and {CRYPT} accounts, the replies of every
outcome, -a and -p, relaying and auth.senders, the secrets file's life
cycle, and that no password reaches the log (the brute-force throttle:
test_auth_throttle.py)."""
import base64
import hashlib
import hmac
import os
import re
import shutil
import signal
import smtplib
import stat
import subprocess
import unittest

import certs
from certs import (CRYPT_PASS, CRYPT_USER, HOSTNAME, PLAIN_PASS, PLAIN_USER,
                   TlsAuthCase, b64)
from harness import SMTPD, parse_spool

# CRAM-MD5 is offered only when the config names it.
CRAM_ON = 'mechanisms = [ "PLAIN", "LOGIN", "CRAM-MD5" ];'

MSG = (b"From: alice@example.org\r\nTo: bob@elsewhere.example\r\n"
       b"Subject: authenticated\r\n\r\nbody\r\n.\r\n")


def need(tool):
    return unittest.skipUnless(shutil.which(tool), "%s not installed" % tool)


def auth_line(lines):
    """The AUTH keyword line of an EHLO reply, as a set of mechanisms, or
    None when AUTH is not offered."""
    for l in lines[1:]:
        if l[4:].startswith("AUTH "):
            return set(l[4:].split()[1:])
    return None


def cram_response(challenge_b64, user, secret):
    chal = base64.b64decode(challenge_b64)
    digest = hmac.new(secret.encode(), chal, hashlib.md5).hexdigest()
    return b64("%s %s" % (user, digest))


class AuthCase(TlsAuthCase):
    def cram(self, c, user, secret):
        code, lines = c.cmd("AUTH CRAM-MD5")
        self.assertEqual(code, 334, lines)
        return c.cmd(cram_response(lines[0][4:], user, secret))

    def login(self, c, user, password):
        self.assertReply(c.cmd("AUTH LOGIN"), 334)
        self.assertReply(c.cmd(b64(user)), 334)
        return c.cmd(b64(password))


class SwaksMechanisms(AuthCase):
    """swaks --auth PLAIN|LOGIN|CRAM-MD5 over STARTTLS, good and bad
    passwords, {PLAIN} and {CRYPT} accounts."""

    def swaks(self, d, mech, user, password):
        return subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(d.port),
             "--tls", "--tls-verify", "--tls-ca-path", self.certs["ca"].cert,
             "--tls-sni", HOSTNAME, "--ehlo", "swaks.example.org",
             "--auth", mech, "--auth-user", user, "--auth-password", password,
             "--from", "alice@example.org", "--to", "bob@elsewhere.example",
             "--body", "via %s" % mech],
            capture_output=True, text=True, timeout=30)

    def run_cases(self, mech, cases):
        d = self.server(extra="ournets = [];", auth_extra=CRAM_ON)
        good = 0
        for user, password, ok in cases:
            with self.subTest(mech=mech, user=user, ok=ok):
                p = self.swaks(d, mech, user, password)
                if ok:
                    good += 1
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                    self.assertIn("235 2.7.0", p.stdout)
                else:
                    self.assertNotEqual(p.returncode, 0, p.stdout)
                    self.assertIn("535 5.7.8", p.stdout)
                    self.assertNotIn("235 ", p.stdout)
        msgs = self.messages(d)
        self.assertEqual(len(msgs), good)
        self.assertEqual(sorted(e["auth"] for e, _ in msgs),
                         sorted(u for u, _, ok in cases if ok))

    @need("swaks")
    def test_plain(self):
        """AUTH PLAIN: both accounts with the right password relay (235,
        queued with their auth line); wrong passwords get 535 5.7.8."""
        self.run_cases("PLAIN", [(PLAIN_USER, PLAIN_PASS, True),
                                 (CRYPT_USER, CRYPT_PASS, True),
                                 (PLAIN_USER, "wrong-1", False),
                                 (CRYPT_USER, "wrong-2", False),
                                 ("nobody", PLAIN_PASS, False)])

    @need("swaks")
    def test_login(self):
        """AUTH LOGIN: the same for both accounts."""
        self.run_cases("LOGIN", [(PLAIN_USER, PLAIN_PASS, True),
                                 (CRYPT_USER, CRYPT_PASS, True),
                                 (PLAIN_USER, "wrong-3", False),
                                 (CRYPT_USER, PLAIN_PASS, False)])

    @need("swaks")
    def test_cram_md5(self):
        """AUTH CRAM-MD5 works for the {PLAIN} account only: the {CRYPT}
        account gets 535 5.7.8 even with its right password."""
        self.run_cases("CRAM-MD5", [(PLAIN_USER, PLAIN_PASS, True),
                                    (PLAIN_USER, "wrong-4", False),
                                    (CRYPT_USER, CRYPT_PASS, False)])


class AuthReplies(AuthCase):
    """The reply codes of RFC 4954 for each outcome (raw dialogue over
    STARTTLS)."""

    def setUp(self):
        super().setUp()
        self.d = self.server(auth_extra=CRAM_ON)
        self.c = self.tls_client(self.d)

    def test_success_plain(self):
        """AUTH PLAIN with an initial response: 235 2.7.0."""
        self.assertReply(self.auth_plain(self.c), 235, "2.7.0")

    def test_plain_without_initial_response(self):
        """AUTH PLAIN, then '334 ' and the response on its own line."""
        rep = self.c.cmd("AUTH PLAIN")
        self.assertReply(rep, 334)
        self.assertEqual(rep[1], ["334 "])
        self.assertReply(self.c.cmd(b64("\0%s\0%s" % (CRYPT_USER, CRYPT_PASS))),
                         235, "2.7.0")

    def test_login_prompts(self):
        """AUTH LOGIN asks 'Username:' and 'Password:' in base64."""
        self.assertEqual(self.c.cmd("AUTH LOGIN"), (334, ["334 VXNlcm5hbWU6"]))
        self.assertEqual(self.c.cmd(b64(PLAIN_USER)), (334, ["334 UGFzc3dvcmQ6"]))
        self.assertReply(self.c.cmd(b64(PLAIN_PASS)), 235, "2.7.0")

    def test_login_initial_response(self):
        """AUTH LOGIN with the user name as initial response goes straight
        to 'Password:'."""
        self.assertEqual(self.c.cmd("AUTH LOGIN " + b64(CRYPT_USER)),
                         (334, ["334 UGFzc3dvcmQ6"]))
        self.assertReply(self.c.cmd(b64(CRYPT_PASS)), 235, "2.7.0")

    def test_cram_md5(self):
        """CRAM-MD5: the challenge is '<...@hostname>', fresh each time; a
        right HMAC gets 235 2.7.0."""
        code, lines = self.c.cmd("AUTH CRAM-MD5")
        self.assertEqual(code, 334)
        chal = base64.b64decode(lines[0][4:]).decode()
        self.assertRegex(chal, r"^<\S+@%s>$" % re.escape(HOSTNAME))
        self.assertReply(self.c.cmd("*"), 501, "5.0.0")
        code, lines2 = self.c.cmd("AUTH CRAM-MD5")
        self.assertNotEqual(lines2[0], lines[0], "the same challenge twice")
        self.assertReply(self.c.cmd(cram_response(lines2[0][4:], PLAIN_USER,
                                                  PLAIN_PASS)), 235, "2.7.0")

    def test_cancel(self):
        """'*' cancels PLAIN and LOGIN (at either prompt): 501 5.0.0."""
        self.assertReply(self.c.cmd("AUTH PLAIN"), 334)
        self.assertReply(self.c.cmd("*"), 501, "5.0.0")
        self.assertReply(self.c.cmd("AUTH LOGIN"), 334)
        self.assertReply(self.c.cmd("*"), 501, "5.0.0")
        self.assertReply(self.c.cmd("AUTH LOGIN"), 334)
        self.assertReply(self.c.cmd(b64(PLAIN_USER)), 334)
        self.assertReply(self.c.cmd("*"), 501, "5.0.0")
        self.assertReply(self.auth_plain(self.c), 235, "2.7.0")

    def test_bad_base64(self):
        """Data that is not base64: 501 5.5.2, as initial response and as
        a continuation line."""
        self.assertReply(self.c.cmd("AUTH PLAIN !!!!"), 501, "5.5.2")
        self.assertReply(self.c.cmd("AUTH LOGIN"), 334)
        self.assertReply(self.c.cmd("not base64 at all"), 501, "5.5.2")

    def test_malformed(self):
        """PLAIN data without the two NULs: 501 5.5.2."""
        self.assertReply(self.c.cmd("AUTH PLAIN " + b64(PLAIN_USER + PLAIN_PASS)),
                         501, "5.5.2")

    def test_syntax(self):
        """AUTH without a mechanism: 501 5.5.4."""
        self.assertReply(self.c.cmd("AUTH"), 501, "5.5.4")

    def test_unknown_mechanism(self):
        """An unknown mechanism: 504 5.5.4."""
        self.assertReply(self.c.cmd("AUTH DIGEST-MD5"), 504, "5.5.4")
        self.assertReply(self.c.cmd("AUTH X-NO-SUCH"), 504, "5.5.4")

    def test_wrong_password(self):
        """A wrong password or an unknown user: 535 5.7.8, and the session
        may try again."""
        self.assertReply(self.auth_plain(self.c, password="wrong"), 535, "5.7.8")
        self.assertReply(self.auth_plain(self.c, user="mallory"), 535, "5.7.8")
        self.assertReply(self.login(self.c, CRYPT_USER, "wrong"), 535, "5.7.8")
        self.assertReply(self.auth_plain(self.c), 235, "2.7.0")

    def test_authzid(self):
        """PLAIN with an authorization identity other than the user is
        refused (535 5.7.8); the user's own name is fine."""
        self.assertReply(self.c.cmd("AUTH PLAIN " + b64(
            "%s\0%s\0%s" % (CRYPT_USER, PLAIN_USER, PLAIN_PASS))), 535, "5.7.8")
        self.assertReply(self.c.cmd("AUTH PLAIN " + b64(
            "%s\0%s\0%s" % (PLAIN_USER, PLAIN_USER, PLAIN_PASS))), 235, "2.7.0")

    def test_twice(self):
        """AUTH after a successful AUTH: 503 5.5.1; EHLO no longer offers
        AUTH."""
        self.assertReply(self.auth_plain(self.c), 235, "2.7.0")
        self.assertReply(self.auth_plain(self.c), 503, "5.5.1")
        self.assertIsNone(auth_line(self.ehlo(self.c)))

    def test_inside_transaction(self):
        """AUTH after MAIL: 503 5.5.1; after RSET it works."""
        self.assertReply(self.c.cmd("MAIL FROM:<alice@example.org>"), 250)
        self.assertReply(self.auth_plain(self.c), 503, "5.5.1")
        self.assertReply(self.c.cmd("RCPT TO:<bob@example.net>"), 250)
        self.assertReply(self.auth_plain(self.c), 503, "5.5.1")
        self.assertReply(self.c.cmd("RSET"), 250)
        self.assertReply(self.auth_plain(self.c), 235, "2.7.0")

    def test_helo_is_not_enough(self):
        """AUTH after HELO (not EHLO): 503 5.5.1."""
        self.assertReply(self.c.cmd("HELO client.example.org"), 250)
        self.assertReply(self.auth_plain(self.c), 503, "5.5.1")

    def test_envelope_and_received(self):
        """After AUTH the envelope has 'auth alice' and Received says
        ESMTPSA."""
        self.assertReply(self.auth_plain(self.c), 235, "2.7.0")
        self.start_mail(self.c, rcpts=("<bob@elsewhere.example>",))
        qid = self.queued_id(self.send_data(self.c, MSG))
        env, body = parse_spool(self.spooled(self.d, qid))
        self.assertEqual(env["auth"], PLAIN_USER)
        self.assertEqual(env["protocol"], "ESMTPSA")
        self.assertIn(b"with ESMTPSA id " + qid.encode(), body)


class Mechanisms(AuthCase):
    """auth.mechanisms and what EHLO offers."""

    def test_only_plain(self):
        """mechanisms = [ "PLAIN" ]: EHLO offers PLAIN alone; LOGIN and
        CRAM-MD5 get 534 5.7.9; PLAIN works."""
        d = self.server(auth_extra='mechanisms = [ "PLAIN" ];')
        c = self.client(d, source="127.0.0.1")
        self.starttls(c)
        self.assertEqual(auth_line(self.ehlo(c)), {"PLAIN"})
        self.assertReply(c.cmd("AUTH CRAM-MD5"), 534, "5.7.9")
        self.assertReply(c.cmd("AUTH LOGIN"), 534, "5.7.9")
        self.assertReply(self.auth_plain(c), 235, "2.7.0")

    def test_no_clear_secret_no_cram(self):
        """With only {CRYPT} accounts CRAM-MD5 is not offered: nothing
        before TLS, PLAIN LOGIN after."""
        s = self.write_secrets(["%s:{CRYPT}%s" % (CRYPT_USER, certs.crypt_hash())])
        d = self.server(secrets=s)
        c = self.client(d, source="127.0.0.1", helo=None)
        self.assertIsNone(auth_line(self.ehlo(c)))
        self.starttls(c)
        self.assertEqual(auth_line(self.ehlo(c)), {"PLAIN", "LOGIN"})

    def test_no_auth_configured(self):
        """Without an auth group AUTH is not offered and gets 502 5.5.1."""
        d = self.server(auth=False)
        c = self.tls_client(d)
        self.assertIsNone(auth_line(self.ehlo(c)))
        self.assertReply(self.auth_plain(c), 502, "5.5.1")

    def test_bad_mechanism_in_config(self):
        """An unknown name in auth.mechanisms stops smtpd -t with 78."""
        d = self.server(start=False, auth_extra='mechanisms = [ "NTLM" ];')
        p = subprocess.run([SMTPD, "-t", "-C", d.conf], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn("auth.mechanisms", p.stderr)


class Cleartext(AuthCase):
    """PLAIN and LOGIN need TLS unless -p (auth.cleartext)."""

    def test_refused_in_clear(self):
        """Without -p, before STARTTLS: EHLO offers only CRAM-MD5 (when
        configured; otherwise no AUTH at all); PLAIN and LOGIN get 538
        5.7.11 (even with the right password)."""
        d = self.server(auth_extra=CRAM_ON)
        c = self.client(d, source="127.0.0.1", helo=None)
        self.assertEqual(auth_line(self.ehlo(c)), {"CRAM-MD5"})
        self.assertReply(self.auth_plain(c), 538, "5.7.11")
        self.assertReply(c.cmd("AUTH LOGIN"), 538, "5.7.11")
        self.assertReply(c.cmd("AUTH LOGIN " + b64(PLAIN_USER)), 538, "5.7.11")

    def test_refused_in_clear_default(self):
        """By default (no CRAM-MD5) EHLO in clear offers no AUTH at all."""
        d = self.server()
        c = self.client(d, source="127.0.0.1", helo=None)
        self.assertIsNone(auth_line(self.ehlo(c)))
        self.assertReply(self.auth_plain(c), 538, "5.7.11")

    def test_cram_md5_in_clear(self):
        """CRAM-MD5 needs no TLS: 235 in clear; the message is ESMTPA with
        no TLS in Received."""
        d = self.server(auth_extra=CRAM_ON)
        c = self.client(d, source="127.0.0.1")
        self.assertReply(self.cram(c, PLAIN_USER, PLAIN_PASS), 235, "2.7.0")
        self.start_mail(c)
        qid = self.queued_id(self.send_data(c, MSG))
        env, body = self.messages(d)[0]
        self.assertEqual(env["protocol"], "ESMTPA")
        self.assertNotIn(b"(using ", body)
        self.assertIn(b"with ESMTPA id " + qid.encode(), body)

    def test_dash_p(self):
        """With -p: EHLO in clear offers PLAIN LOGIN (and CRAM-MD5 when
        configured) and PLAIN works without TLS."""
        d = self.server(args=["-p"], auth_extra=CRAM_ON)
        c = self.client(d, source="127.0.0.1", helo=None)
        self.assertEqual(auth_line(self.ehlo(c)), {"PLAIN", "LOGIN", "CRAM-MD5"})
        self.assertReply(self.auth_plain(c), 235, "2.7.0")

    def test_config_cleartext(self):
        """auth.cleartext = true does what -p does (LOGIN in clear)."""
        d = self.server(auth_extra="cleartext = true;")
        c = self.client(d, source="127.0.0.1")
        self.assertReply(self.login(c, CRYPT_USER, CRYPT_PASS), 235, "2.7.0")

    def test_smtplib_refuses_without_tls(self):
        """smtplib login() in clear without -p picks CRAM-MD5 (the only
        mechanism offered) and succeeds for the {PLAIN} account, but
        cannot log in the {CRYPT} account."""
        d = self.server(auth_extra=CRAM_ON)
        with smtplib.SMTP(d.host, d.port, timeout=10) as s:
            code, _ = s.login(PLAIN_USER, PLAIN_PASS)
            self.assertEqual(code, 235)
        with smtplib.SMTP(d.host, d.port, timeout=10) as s:
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                s.login(CRYPT_USER, CRYPT_PASS)
            self.assertEqual(cm.exception.smtp_code, 535)


class Required(AuthCase):
    """-a and auth.required: AUTH before MAIL."""

    def test_dash_a(self):
        """-a: MAIL before AUTH gets 530 5.7.0 even from 127.0.0.1; a
        failed AUTH changes nothing; after AUTH MAIL gets 250."""
        d = self.server(args=["-a"])
        c = self.tls_client(d)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 530, "5.7.0")
        self.assertReply(self.auth_plain(c, password="wrong"), 535, "5.7.8")
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 530, "5.7.0")
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250, "2.1.0")

    def test_config_required(self):
        """auth.required = true: the same 530 5.7.0."""
        d = self.server(auth_extra="required = true;")
        c = self.tls_client(d)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 530, "5.7.0")

    def test_smtplib_submission(self):
        """A submission server (-a, implicit TLS): smtplib without login
        gets SMTPSenderRefused 530; with login the message is queued."""
        d = self.server(args=["-a"], implicit=True)
        with smtplib.SMTP_SSL(d.host, d.tls_port, context=self.client_ctx(),
                              timeout=10) as s:
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                s.sendmail("alice@example.org", ["bob@elsewhere.example"], MSG[:-3])
            self.assertEqual(cm.exception.smtp_code, 530)
            s.rset()
            s.login(PLAIN_USER, PLAIN_PASS)
            s.sendmail("alice@example.org", ["bob@elsewhere.example"], MSG[:-3])
        self.assertEqual(self.messages(d)[0][0]["auth"], PLAIN_USER)


class Relay(AuthCase):
    """Relaying: refused to unauthenticated untrusted clients, allowed
    after AUTH."""

    def relay_server(self, **kw):
        return self.server(extra='ournets = []; ourdomains = [ "%s" ];' % HOSTNAME,
                           auth_extra=CRAM_ON, **kw)

    def test_refused_without_auth(self):
        """ournets = []: RCPT to another domain gets 554 5.7.1; to our
        domain 250."""
        d = self.relay_server()
        c = self.tls_client(d)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<bob@elsewhere.example>"), 554, "5.7.1")
        self.assertReply(c.cmd("RCPT TO:<postmaster@%s>" % HOSTNAME), 250, "2.1.5")

    def test_refused_after_failed_auth(self):
        """A failed AUTH does not allow relaying."""
        d = self.relay_server()
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c, password="wrong"), 535, "5.7.8")
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<bob@elsewhere.example>"), 554, "5.7.1")

    def test_allowed_after_auth(self):
        """After AUTH the same RCPT gets 250 and the message is queued with
        the auth line."""
        d = self.relay_server()
        c = self.tls_client(d)
        self.assertReply(self.login(c, CRYPT_USER, CRYPT_PASS), 235, "2.7.0")
        self.start_mail(c, sender="<bob@example.org>",
                        rcpts=("<bob@elsewhere.example>",))
        self.queued_id(self.send_data(c, MSG))
        env, _ = self.messages(d)[0]
        self.assertEqual(env["auth"], CRYPT_USER)
        self.assertEqual(env["rcpt"], ["<bob@elsewhere.example>"])

    def test_allowed_after_cram_in_clear(self):
        """CRAM-MD5 in clear grants relaying too."""
        d = self.relay_server()
        c = self.client(d, source="127.0.0.9")
        self.assertReply(self.cram(c, PLAIN_USER, PLAIN_PASS), 235, "2.7.0")
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<bob@elsewhere.example>"), 250, "2.1.5")

    def test_auth_in_clear_forgotten_by_starttls(self):
        """AUTH (CRAM-MD5) in clear, then STARTTLS: the new EHLO offers
        AUTH again and relaying is refused until the client authenticates
        again."""
        d = self.relay_server()
        c = self.client(d, source="127.0.0.9")
        self.assertReply(self.cram(c, PLAIN_USER, PLAIN_PASS), 235, "2.7.0")
        self.starttls(c)
        self.assertIsNotNone(auth_line(self.ehlo(c)))
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<bob@elsewhere.example>"), 554, "5.7.1")
        self.assertReply(c.cmd("RSET"), 250)
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<bob@elsewhere.example>"), 250, "2.1.5")

    def test_auth_does_not_outlive_session(self):
        """A new session of the same client is not authenticated: 554."""
        d = self.relay_server()
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c), 235)
        self.assertReply(c.cmd("QUIT"), 221)
        c = self.tls_client(d)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<bob@elsewhere.example>"), 554, "5.7.1")


class Senders(AuthCase):
    """auth.senders: which MAIL FROM each login may use."""

    SENDERS = ('senders = ( { login = "alice"; senders = [ "alice@example.org", '
               '"@lists.example.org" ]; }, { login = "carol"; senders = '
               '[ "*" ]; }, { login = "dave"; senders = [ "<>" ]; } );')

    def setUp(self):
        super().setUp()
        self.d = self.server(auth_extra=self.SENDERS, secrets=self.write_secrets([
            "alice:{PLAIN}%s" % PLAIN_PASS,
            "%s:{CRYPT}%s" % (CRYPT_USER, certs.crypt_hash()),
            "carol:{PLAIN}carol-pw", "dave:{PLAIN}dave-pw"]))

    def check(self, user, password, allowed, refused):
        c = self.tls_client(self.d)
        self.assertReply(self.auth_plain(c, user, password), 235, "2.7.0")
        for s in allowed:
            self.assertReply(c.cmd("MAIL FROM:" + s), 250, "2.1.0", s)
            self.assertReply(c.cmd("RSET"), 250)
        for s in refused:
            self.assertReply(c.cmd("MAIL FROM:" + s), 553, "5.7.1", s)
        return c

    def test_listed_login(self):
        """alice may use her address (any case) and any address of
        @lists.example.org; anything else, <> included, gets 553 5.7.1."""
        self.check("alice", PLAIN_PASS,
                   ["<alice@example.org>", "<ALICE@Example.Org>",
                    "<news@lists.example.org>"],
                   ["<eve@example.org>", "<alice@example.net>",
                    "<x@sub.lists.example.org>", "<>"])

    def test_unlisted_login(self):
        """A login not in the map may use only itself as sender."""
        self.check(CRYPT_USER, CRYPT_PASS, ["<bob@example.org>"],
                   ["<alice@example.org>", "<>"])

    def test_star_and_null(self):
        """'*' allows any sender; '<>' allows the null sender alone."""
        self.check("carol", "carol-pw", ["<anyone@anywhere.example>", "<>"], [])
        self.check("dave", "dave-pw", ["<>"], ["<dave@example.org>"])

    def test_refused_then_allowed(self):
        """After a 553 the session goes on: an allowed sender is queued."""
        c = self.check("alice", PLAIN_PASS, [], ["<eve@example.org>"])
        self.start_mail(c, sender="<alice@example.org>")
        self.queued_id(self.send_data(c, MSG))

    def test_unauthenticated_not_limited(self):
        """The map applies to authenticated sessions only: a trusted client
        without AUTH may use any sender."""
        c = self.tls_client(self.d)
        self.assertReply(c.cmd("MAIL FROM:<eve@example.org>"), 250, "2.1.0")


class NoPasswordsInLog(AuthCase):
    """Neither passwords nor AUTH data reach the -d log."""

    def test_log_has_no_secrets(self):
        """After PLAIN, LOGIN and CRAM-MD5 exchanges, good and bad, the log
        names users and outcomes but holds no password in clear or in
        base64, and no client AUTH line."""
        d = self.server(args=["-p"], auth_extra=CRAM_ON)
        wrong = ["Wrong-Guess-%d-xyzzy" % i for i in range(4)]
        sent = []

        def cmd(c, line):
            sent.append(line)
            return c.cmd(line)

        c = self.tls_client(d)
        self.assertReply(cmd(c, "AUTH PLAIN " + b64("\0%s\0%s" % (PLAIN_USER, wrong[0]))), 535)
        self.assertReply(cmd(c, "AUTH LOGIN"), 334)
        self.assertReply(cmd(c, b64(CRYPT_USER)), 334)
        self.assertReply(cmd(c, b64(wrong[1])), 535)
        self.assertReply(cmd(c, "AUTH LOGIN"), 334)
        self.assertReply(cmd(c, b64(CRYPT_USER)), 334)
        self.assertReply(cmd(c, b64(CRYPT_PASS)), 235)
        c = self.client(d, source="127.0.0.1")   # in clear, with -p
        self.assertReply(cmd(c, "AUTH PLAIN " + b64("\0%s\0%s" % (CRYPT_USER, wrong[2]))), 535)
        self.assertReply(cmd(c, "AUTH PLAIN"), 334)
        self.assertReply(cmd(c, b64("\0%s\0%s" % (PLAIN_USER, PLAIN_PASS))), 235)
        c = self.client(d, source="127.0.0.1")
        code, lines = c.cmd("AUTH CRAM-MD5")
        self.assertEqual(code, 334)
        self.assertReply(cmd(c, cram_response(lines[0][4:], PLAIN_USER, wrong[3])), 535)
        self.assertReply(cmd(c, "QUIT"), 221)
        text = self.wait_log(d, "auth failed", count=4)
        self.assertIn("auth ok user=%s" % CRYPT_USER, text)
        self.assertIn("auth ok user=%s" % PLAIN_USER, text)
        self.assertIn("auth failed user=%s" % PLAIN_USER, text)
        for pw in [PLAIN_PASS, CRYPT_PASS] + wrong:
            for form in (pw, b64(pw), b64("\0%s\0%s" % (PLAIN_USER, pw)),
                         b64("\0%s\0%s" % (CRYPT_USER, pw))):
                self.assertNotIn(form, text)
            # and no long piece of the base64 forms either
            self.assertNotIn(b64(pw)[:12], text)
        for line in sent:
            if len(line) > 12 and not line.startswith("AUTH LOGIN"):
                self.assertNotIn(line.split()[-1], text)

    def test_control_characters_in_user_name(self):
        """A user name with CR LF in PLAIN is logged without starting a
        new log line."""
        d = self.server()
        c = self.tls_client(d)
        self.assertReply(c.cmd("AUTH PLAIN " + b64(
            "\0mallory\r\nsmtpd[1]: auth ok user=root\0x")), 535, "5.7.8")
        text = self.wait_log(d, "auth failed")
        for line in text.splitlines():
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\S+ smtpd\[\d+\]: ")
        self.assertNotIn("smtpd[1]: auth ok", text.replace(
            "mallory\\x0d\\x0asmtpd[1]: auth ok", ""))


class SecretsFile(AuthCase):
    """The secrets file: checks at start, changes at run time."""

    def check_start(self, secrets):
        d = self.server(start=False, secrets=secrets)
        p = subprocess.run([SMTPD, "-d", "-C", d.conf], capture_output=True,
                           text=True, timeout=20, stdin=subprocess.DEVNULL)
        return p

    def test_world_readable_refused_at_start(self):
        """Mode 0644: smtpd does not start (exit 78) and names the file."""
        s = self.write_secrets(mode=0o644)
        p = self.check_start(s)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(s, p.stderr)

    def test_group_writable_refused(self):
        """Mode 0620 is refused as well."""
        s = self.write_secrets(mode=0o620)
        p = self.check_start(s)
        self.assertEqual(p.returncode, 78, p.stderr)

    def test_missing_at_start(self):
        """A secrets file that does not exist: exit 78 naming it."""
        s = os.path.join(self.workdir, "no-such-secrets")
        p = self.check_start(s)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(s, p.stderr)

    def test_bad_line_refused(self):
        """A line with an unknown scheme refuses the file with
        'file:line:'."""
        s = self.write_secrets(["alice:{PLAIN}x", "bob:{ROT13}k"])
        p = self.check_start(s)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("%s:2:" % s, p.stderr)

    def test_change_picked_up_without_sighup(self):
        """A new file with another password works at the next AUTH, with no
        signal; the old password no longer does."""
        d = self.server()
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c), 235)
        self.write_secrets(["%s:{PLAIN}New-Pass-1" % PLAIN_USER])
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c), 535, "5.7.8")
        self.assertReply(self.auth_plain(c, password="New-Pass-1"), 235, "2.7.0")
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c, CRYPT_USER, CRYPT_PASS), 535, "5.7.8")

    def test_in_place_edit_same_size(self):
        """Rewriting the file in place with a password of the same length
        (same inode, same size) is noticed too."""
        d = self.server()
        path = os.path.join(self.workdir, "secrets")
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c), 235)
        with open(path, "r+") as f:
            text = f.read()
            f.seek(0)
            f.write(text.replace(PLAIN_PASS, PLAIN_PASS[:-1] + "X"))
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c, password=PLAIN_PASS[:-1] + "X"),
                         235, "2.7.0")

    def test_broken_at_runtime_keeps_last_good(self):
        """A file made world-readable at run time is refused and logged
        once; AUTH goes on with the last good table; a fixed file is
        taken again."""
        d = self.server()
        path = os.path.join(self.workdir, "secrets")
        os.chmod(path, 0o644)
        for _ in range(2):
            c = self.tls_client(d)
            self.assertReply(self.auth_plain(c), 235, "2.7.0")
        text = self.wait_log(d, path)
        self.assertEqual(len(re.findall(r"auth: .*" + re.escape(path), text)), 1,
                         text)
        self.write_secrets(["%s:{PLAIN}Fixed-Pass" % PLAIN_USER])
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c, password="Fixed-Pass"), 235, "2.7.0")

    def test_refused_version_taken_once_fixed(self):
        """New contents written with mode 0644 are refused (the old
        password still works); chmod 0600 alone then makes them current."""
        d = self.server()
        path = self.write_secrets(["%s:{PLAIN}Next-Pass" % PLAIN_USER], mode=0o644)
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        os.chmod(path, 0o600)
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c, password="Next-Pass"), 235, "2.7.0")

    def test_deleted_at_runtime_keeps_last_good(self):
        """A deleted file: AUTH still works with the last good table."""
        d = self.server()
        os.unlink(os.path.join(self.workdir, "secrets"))
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c, CRYPT_USER, CRYPT_PASS), 235, "2.7.0")

    def test_never_loaded_454(self):
        """AUTH turned on by SIGHUP with a secrets file that does not
        exist: the reload is logged and AUTH answers 454 4.7.0; once the
        file appears AUTH works, without another signal."""
        d = self.server(auth=False)
        path = os.path.join(self.workdir, "late-secrets")
        with open(d.conf, "a") as f:
            f.write('auth = { secrets = "%s"; throttle = { delay = 10; '
                    'max_delay = 20; }; %s };\n' % (path, CRAM_ON))
        d.proc.send_signal(signal.SIGHUP)
        self.wait_log(d, "reloaded")
        self.assertIn("reload: AUTH secrets", d.logtext())
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c), 454, "4.7.0")
        self.assertReply(c.cmd("AUTH CRAM-MD5"), 454, "4.7.0")
        self.write_secrets(name="late-secrets")
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c), 235, "2.7.0")

    def test_never_loaded_no_cram_advertised(self):
        """With no secrets table at all no account has a {PLAIN} secret,
        so CRAM-MD5 is not advertised (smtpd.conf(5), auth.mechanisms)."""
        d = self.server(auth=False)
        with open(d.conf, "a") as f:
            f.write('auth = { secrets = "%s"; %s };\n'
                    % (os.path.join(self.workdir, "late-secrets"), CRAM_ON))
        d.proc.send_signal(signal.SIGHUP)
        self.wait_log(d, "reloaded")
        c = self.client(d, source="127.0.0.1", helo=None)
        mechs = auth_line(self.ehlo(c)) or set()
        self.assertNotIn("CRAM-MD5", mechs)

    def test_user_removed(self):
        """A user removed from the file can no longer log in."""
        d = self.server()
        self.write_secrets(["%s:{CRYPT}%s" % (CRYPT_USER, certs.crypt_hash())])
        c = self.tls_client(d)
        self.assertReply(self.auth_plain(c), 535, "5.7.8")
        self.assertReply(self.auth_plain(c, CRYPT_USER, CRYPT_PASS), 235, "2.7.0")



class FirstTry(AuthCase):
    """With the default mechanisms (PLAIN, LOGIN) independent clients log
    in on their first try, {CRYPT} account included: one AUTH exchange,
    no failure logged (so no failure delay either)."""

    def assertOneExchange(self, d, user):
        text = self.wait_log(d, "auth ok user=%s" % user)
        self.assertEqual(text.count(" auth "), 1, text)
        self.assertNotIn("auth failed", text)
        self.assertNotIn("auth unusable", text)

    @need("curl")
    def test_curl(self):
        """curl --user over STARTTLS sends a message as the {CRYPT}
        account."""
        d = self.server(extra="ournets = [];")
        p = subprocess.run(
            ["curl", "-sS", "--url", "smtp://127.0.0.1:%d" % d.port,
             "--ssl-reqd", "--cacert", self.certs["ca"].cert,
             "--user", "%s:%s" % (CRYPT_USER, CRYPT_PASS),
             "--mail-from", "bob@example.org",
             "--mail-rcpt", "carol@elsewhere.example", "--upload-file", "-"],
            input=b"Subject: curl\r\n\r\nbody\r\n", capture_output=True,
            timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertOneExchange(d, CRYPT_USER)

    def test_smtplib(self):
        """/usr/bin/python3 smtplib login() after starttls(), both
        accounts."""
        d = self.server()
        for user, pw in ((CRYPT_USER, CRYPT_PASS), (PLAIN_USER, PLAIN_PASS)):
            with smtplib.SMTP(d.host, d.port, timeout=30) as s:
                s.starttls(context=self.client_ctx())
                code, _ = s.login(user, pw)
                self.assertEqual(code, 235)
        text = self.wait_log(d, "auth ok", count=2)
        self.assertNotIn("auth failed", text)
        self.assertEqual(text.count(" auth "), 2, text)

    @need("swaks")
    def test_swaks(self):
        """swaks --auth without a mechanism picks one that works."""
        d = self.server(extra="ournets = [];")
        p = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(d.port),
             "--tls", "--tls-ca-path", self.certs["ca"].cert,
             "--auth", "--auth-user", CRYPT_USER, "--auth-password",
             CRYPT_PASS, "--from", "bob@example.org",
             "--to", "carol@elsewhere.example"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertOneExchange(d, CRYPT_USER)


class CramUnusable(AuthCase):
    """CRAM-MD5, when configured, for an account without a {PLAIN}
    secret: 535 5.7.8, logged as such, not counted as a failure."""

    def test_not_counted(self):
        """failures = 2: three CRAM-MD5 attempts of the {CRYPT} account
        all get 535 (never 421) and the log says why; PLAIN then works."""
        d = self.server(auth_extra=CRAM_ON,
                        throttle="failures = 2; delay = 10; max_delay = 20;")
        c = self.tls_client(d, source="127.0.0.51")
        for _ in range(3):
            self.assertReply(self.cram(c, CRYPT_USER, CRYPT_PASS), 535, "5.7.8")
        text = self.wait_log(d, "auth unusable", count=3)
        self.assertIn('reason="CRAM-MD5 needs a {PLAIN} secret"', text)
        self.assertNotIn("auth failed", text)
        self.assertReply(self.auth_plain(c, CRYPT_USER, CRYPT_PASS), 235, "2.7.0")


class ConfigCheck(AuthCase):
    """smtpd -t shows the AUTH settings and warns about the TLS key."""

    def check(self, d):
        p = subprocess.run([SMTPD, "-t", "-C", d.conf], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def test_auth_printed(self):
        """Mechanisms, the senders map and the throttle settings."""
        d = self.server(start=False, auth_extra=CRAM_ON +
                        ' senders = ( { login = "alice"; senders = '
                        '[ "alice@example.org", "@example.net" ]; } );',
                        throttle="failures = 7; block = 120; "
                                 "global_failures = 40;")
        out = self.check(d).stdout
        self.assertIn("AUTH mechanisms (auth.mechanisms): PLAIN LOGIN "
                      "CRAM-MD5", out)
        self.assertIn("AUTH senders: alice may use alice@example.org, "
                      "@example.net", out)
        self.assertIn("blocked for 120 s after 7 failures", out)
        self.assertIn("when 40 networks", out)
        self.assertIn("auth-throttle", out)
        d = self.server(start=False)
        out = self.check(d).stdout
        self.assertIn("AUTH mechanisms (auth.mechanisms): PLAIN LOGIN\n", out)
        self.assertIn("no map; a login may use any sender", out)

    def test_empty_mechanisms_refused(self):
        """auth.mechanisms = [] is a configuration error (78)."""
        d = self.server(start=False, auth_extra="mechanisms = [];")
        p = subprocess.run([SMTPD, "-t", "-C", d.conf], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn("auth.mechanisms", p.stderr)

    def test_tls_key_readable_warned(self):
        """A key that others may read is used, but warned about in -t and
        in the daemon's log; a 0600 key draws no warning."""
        key = os.path.join(self.workdir, "key.pem")
        shutil.copy(self.certs["server"].key, key)
        os.chmod(key, 0o644)
        pair = certs.Pair(self.certs["server"].cert, key)
        d = self.server(start=False, server_cert=pair)
        p = self.check(d)
        self.assertIn("tls.key %s: group or others have access (mode 0644)"
                      % key, p.stderr)
        d.start()
        self.wait_log(d, "group or others have access (mode 0644)")
        d.stop()
        os.chmod(key, 0o600)
        self.assertNotIn("group or others", self.check(d).stderr)


class SmtpqPasswdSafety(AuthCase):
    """smtpq passwd: exit statuses and the temporary file."""

    def passwd(self, secrets, pw, user="carol"):
        return subprocess.run(
            [os.path.join(os.path.dirname(SMTPD), "smtpq"), "passwd", "-f",
             secrets, user], input=pw, capture_output=True, text=True,
            timeout=30)

    def test_empty_password_65(self):
        """An empty password is a data error (65), not 70; nothing is
        written."""
        secrets = os.path.join(self.workdir, "secrets")
        p = self.passwd(secrets, "\n")
        self.assertEqual(p.returncode, 65, p.stderr)
        self.assertFalse(os.path.exists(secrets))
        self.assertFalse(os.path.exists(secrets + ".new"))

    def test_symlink_at_new_not_followed(self):
        """A symlink planted at SECRETS.new is neither followed nor
        replaced: the target stays as it was, the secrets file too, and
        smtpq exits 73; without it the result is a 0600 file."""
        secrets = self.write_secrets()
        with open(secrets) as f:
            before = f.read()
        victim = os.path.join(self.workdir, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        os.chmod(victim, 0o666)
        os.symlink(victim, secrets + ".new")
        p = self.passwd(secrets, "new password\n")
        self.assertEqual(p.returncode, 73, p.stderr)
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertEqual(stat.S_IMODE(os.stat(victim).st_mode), 0o666)
        self.assertTrue(os.path.islink(secrets + ".new"))
        with open(secrets) as f:
            self.assertEqual(f.read(), before)
        os.unlink(secrets + ".new")
        os.chmod(secrets, 0o600)
        old = os.umask(0)
        try:
            p = self.passwd(secrets, "new password\n")
        finally:
            os.umask(old)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(secrets).st_mode), 0o600)
        self.assertFalse(os.path.exists(secrets + ".new"))
        with open(secrets) as f:
            text = f.read()
        self.assertIn("carol:{CRYPT}$y$", text)
        self.assertIn("%s:{PLAIN}%s" % (PLAIN_USER, PLAIN_PASS), text)


if __name__ == "__main__":
    unittest.main()
