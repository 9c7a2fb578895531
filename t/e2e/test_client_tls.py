"""smtp's STARTTLS, implicit TLS, certificate checks and AUTH with stored
credentials, against aiosmtpd (and a few hand-made misbehaving servers)."""
import base64
import os
import shutil
import socket
import tempfile
import threading
import unittest

from clientkit import (ClientCase, Aio, Recorder, smtp, make_certs, server_tls, EX_OK,
                       EX_UNAVAILABLE, EX_TEMPFAIL, EX_PROTOCOL, EX_NOPERM,
                       EX_CONFIG, EX_USAGE)
from harness import Smtpd, free_port, parse_spool

CERTS = None
CERTDIR = None


def setUpModule():
    global CERTS, CERTDIR
    CERTDIR = tempfile.mkdtemp(prefix="client-certs-")
    CERTS = make_certs(CERTDIR)


def tearDownModule():
    shutil.rmtree(CERTDIR, ignore_errors=True)


PASSWORD = "correct horse"


class Base(ClientCase):
    PREFIX = "client-tls-"

    def setUp(self):
        super().setUp()
        self.home = os.path.join(self.workdir, "home")
        os.makedirs(os.path.join(self.home, ".config", "smtp"))

    def keyfile(self, text, mode=0o600):
        path = os.path.join(self.home, ".config", "smtp", "keys")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def run_smtp(self, args, **kw):
        kw.setdefault("home", self.home)
        return smtp(args, **kw)

    def server(self, **kw):
        handler = kw.pop("handler", None) or Recorder(
            users={"alice": PASSWORD}, token="tok-123")
        kw.setdefault("tls_context", server_tls(CERTS))
        return Aio(handler, **kw)

    def ca(self):
        return ["-o", "tls_cafile=" + CERTS["ca.pem"]]


class StartTls(Base):
    def test_starttls_verified(self):
        with self.server() as s:
            p = self.run_smtp(["-d", "-s"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertTrue(s.messages[0]["tls"])
        t = p.stderr.decode()
        self.assertIn("-> STARTTLS", t)
        self.assertIn("certificate verified", t)
        # RFC 3207: EHLO again after the handshake.
        self.assertEqual(t.count("-> EHLO"), 2)

    def test_opportunistic_without_starttls(self):
        with Aio() as s:
            p = self.run_smtp(["-s", s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertFalse(s.messages[0]["tls"])

    def test_untrusted_certificate(self):
        with self.server() as s:
            p = self.run_smtp(["-s", s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_UNAVAILABLE)
            self.assertEqual(s.messages, [])
        err = p.stderr.decode()
        self.assertIn("certificate", err)
        self.assertIn("not accepted", err)
        self.assertIn("issuer", err)
        self.assertEqual(err.count("\n"), 1, err)
        # What to do about it, with the key's pin to check and use.
        self.assertIn("issuer is unknown; give its CA with -o "
                      "tls_cafile=FILE, or check the server's key and pin "
                      "it with -o tls_pin=%s\n" % CERTS["spki"], err)

    def test_wrong_ca(self):
        with self.server() as s:
            p = self.run_smtp(["-s", "-o", "tls_cafile=" + CERTS["other.pem"],
                               s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_UNAVAILABLE)

    def test_bad_ca_file(self):
        bad = os.path.join(self.workdir, "nothing.pem")
        with open(bad, "w") as f:
            f.write("not a certificate\n")
        with self.server() as s:
            p = self.run_smtp(["-s", "-o", "tls_cafile=" + bad, s.addr(),
                               "a@x.test", "b@x.test"])
            self.assertExit(p, EX_CONFIG)
        self.assertIn(b"CA file", p.stderr)

    def test_name_mismatch(self):
        # The certificate names 127.0.0.1, not 127.0.0.2.
        with self.server(host="127.0.0.2") as s:
            p = self.run_smtp(["-s"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_UNAVAILABLE)
        self.assertIn(b"does not match", p.stderr)

    def test_skip_verification_explicitly(self):
        with self.server() as s:
            p = self.run_smtp(["-d", "-s", "-o", "tls_verify=no", s.addr(),
                               "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertTrue(s.messages[0]["tls"])
        self.assertIn(b"certificate not checked", p.stderr)

    def test_pin(self):
        with self.server() as s:
            p = self.run_smtp(["-s", "-o", "tls_pin=" + CERTS["pin"], s.addr(),
                               "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            wrong = "sha256:" + "00" * 32
            p = self.run_smtp(["-s", "-o", "tls_pin=" + wrong, s.addr(),
                               "a@x.test", "b@x.test"])
            self.assertExit(p, EX_UNAVAILABLE)
            self.assertEqual(len(s.messages), 1)
        self.assertIn(CERTS["pin"][7:].encode(), p.stderr)
        self.assertIn(b"not the pinned one", p.stderr)

    def test_spki_pin(self):
        """pin-sha256 (made by openssl, not by us) pins the key: the
        certificate renewed with the same key still passes, where its
        old fingerprint no longer does."""
        args = ["a@x.test", "b@x.test"]
        for cert in ("srv.pem", "renewed.pem"):
            with self.server(tls_context=server_tls(CERTS, cert)) as s:
                p = self.run_smtp(["-s", "-o", "tls_pin=" + CERTS["spki"],
                                   s.addr()] + args)
                self.assertExit(p, EX_OK)
                # curl's spelling of the same pin.
                curl = "sha256//" + CERTS["spki"][len("pin-sha256:"):]
                p = self.run_smtp(["-s", "-o", "tls_pin=" + curl,
                                   s.addr()] + args)
                self.assertExit(p, EX_OK)
                self.assertEqual(len(s.messages), 2)
        with self.server(tls_context=server_tls(CERTS, "renewed.pem")) as s:
            p = self.run_smtp(["-s", "-o", "tls_pin=" + CERTS["pin"],
                               s.addr()] + args)
            self.assertExit(p, EX_UNAVAILABLE)
            self.assertIn(b"not the pinned one", p.stderr)
            # A list: the old certificate's fingerprint or the key.
            p = self.run_smtp(["-s", "-o", "tls_pin=%s, %s" %
                               (CERTS["pin"], CERTS["spki"]),
                               s.addr()] + args)
            self.assertExit(p, EX_OK)

    def test_wrong_spki_pin(self):
        wrong = "pin-sha256:" + base64.b64encode(b"\x01" * 32).decode()
        with self.server() as s:
            p = self.run_smtp(["-s", "-o", "tls_pin=" + wrong, s.addr(),
                               "a@x.test", "b@x.test"])
            self.assertExit(p, EX_UNAVAILABLE)
            self.assertEqual(s.messages, [])
        err = p.stderr.decode()
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn("has public key %s, not the pinned one" %
                      CERTS["spki"], err)
        # Not a pin at all: a usage error before anything is sent.
        for bad in ("pin-sha256:abc=", "pin-sha256:" + "A" * 44,
                    CERTS["spki"] + ",", "sha256:" + "0" * 63):
            p = self.run_smtp(["-s", "-o", "tls_pin=" + bad, "127.0.0.1:1",
                               "a@x.test", "b@x.test"])
            self.assertExit(p, EX_USAGE)
            self.assertIn(b"pin-sha256:", p.stderr)

    def test_pin_in_config_host_section(self):
        conf = os.path.join(self.home, ".config", "smtp", "smtp.conf")
        with open(conf, "w") as f:
            f.write('tls_pin = "sha256:%s";\nhosts = ( { host = "127.0.0.1";'
                    ' tls_pin = "%s"; } );\n' % ("11" * 32, CERTS["pin"]))
        with self.server() as s:
            p = self.run_smtp(["-s", s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)

    def test_handshake_failure_says_why(self):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)

        def serve():
            c, _ = ls.accept()
            f = c.makefile("rb")
            c.sendall(b"220 liar.test ESMTP\r\n")
            f.readline()
            c.sendall(b"250-liar.test\r\n250 STARTTLS\r\n")
            f.readline()
            c.sendall(b"220 go ahead\r\n")
            f.read(5)
            c.sendall(b"this is not TLS at all\r\n" * 4)
            c.close()
        t = threading.Thread(target=serve)
        t.start()
        p = self.run_smtp(["-s", "127.0.0.1:%d" % ls.getsockname()[1],
                           "a@x.test", "b@x.test"])
        t.join(10)
        ls.close()
        self.assertIn(p.returncode, (EX_PROTOCOL, EX_TEMPFAIL))
        self.assertIn(b"TLS handshake failed: ", p.stderr)

    def test_starttls_refused_when_required(self):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)

        def serve():
            c, _ = ls.accept()
            f = c.makefile("rb")
            c.sendall(b"220 busy.test ESMTP\r\n")
            f.readline()
            c.sendall(b"250-busy.test\r\n250 STARTTLS\r\n")
            f.readline()
            c.sendall(b"454 4.7.0 TLS not available right now\r\n")
            f.readline()
            c.sendall(b"221 bye\r\n")
            c.close()
        t = threading.Thread(target=serve)
        t.start()
        self.keyfile("proto=pass user=alice !password=x\n")
        p = self.run_smtp(["-a", "-u", "alice", "127.0.0.1:%d" %
                           ls.getsockname()[1], "a@x.test", "b@x.test"])
        t.join(10)
        ls.close()
        self.assertExit(p, EX_TEMPFAIL)
        self.assertIn(b"454 4.7.0 TLS not available", p.stderr)


class ImplicitTls(Base):
    def test_dash_t(self):
        ctx = server_tls(CERTS)
        with Aio(Recorder(), ssl_context=ctx) as s:
            p = self.run_smtp(["-t"] + self.ca() + [s.addr(), "a@x.test",
                                                   "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertTrue(s.messages[0]["tls"])

    def test_plain_server_with_dash_t(self):
        with Aio() as s:
            p = self.run_smtp(["-t", "-o", "command_timeout=5"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
        self.assertIn(p.returncode, (EX_PROTOCOL, EX_TEMPFAIL))
        err = p.stderr.decode()
        self.assertIn("TLS handshake failed", err)
        self.assertIn("greeted in plain text (\"220\"); try without -t "
                      "(with -s for STARTTLS)", err)
        self.assertEqual(err.count("\n"), 1, err)


class Auth(Base):
    def test_plain_with_key_file_and_redaction(self):
        self.keyfile("# smtp keys\nkey proto=pass service=smtp "
                     "server=127.0.0.1 user=alice !password='%s'\n" % PASSWORD)
        with self.server() as s:
            p = self.run_smtp(["-d", "-a", "-u", "alice"] + self.ca() +
                              [s.addr(), "alice@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual(s.handler.auth, [("PLAIN", "alice")])
            self.assertTrue(s.messages[0]["tls"])
        t = p.stderr.decode()
        self.assertIn("-> AUTH PLAIN ********", t)
        self.assertIn("from the key file", t)
        self.assertNotIn(PASSWORD, t)
        secret = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()
        self.assertNotIn(secret, t)

    def test_login_and_cram_md5(self):
        self.keyfile("proto=pass user=alice !password='%s'\n" % PASSWORD)
        with self.server() as s:
            for mech, name in (("login", "LOGIN"), ("cram-md5", "CRAM-MD5")):
                p = self.run_smtp(["-d", "-a", "-u", "alice", "-o",
                                   "auth_mechanism=" + mech] + self.ca() +
                                  [s.addr(), "a@x.test", "b@x.test"])
                self.assertExit(p, EX_OK)
                self.assertNotIn(PASSWORD.encode(), p.stderr)
                self.assertNotIn(base64.b64encode(PASSWORD.encode()),
                                 p.stderr)
            self.assertEqual(s.handler.auth, [("LOGIN", "alice"),
                                              ("CRAM-MD5", "alice")])

    def test_bad_password(self):
        self.keyfile("proto=pass user=alice !password=wrong\n")
        with self.server() as s:
            p = self.run_smtp(["-a", "-u", "alice"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_NOPERM)
            self.assertEqual(s.messages, [])
        err = p.stderr.decode()
        self.assertIn("535 5.7.8", err)
        self.assertIn("[127.0.0.1]", err)
        self.assertEqual(err.count("\n"), 1)

    def test_xoauth2_token(self):
        self.keyfile("proto=oauth2 user=alice !token=tok-123\n")
        with self.server() as s:
            p = self.run_smtp(["-d", "-a", "-u", "alice"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual(s.handler.auth, [("XOAUTH2", "alice")])
            self.assertIn(b"AUTH XOAUTH2 ********", p.stderr)
            self.assertNotIn(b"tok-123", p.stderr)
            self.keyfile("proto=oauth2 user=alice !token=expired\n")
            p = self.run_smtp(["-a", "-u", "alice"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_NOPERM)
            self.assertIn(b"535 5.7.8 token rejected", p.stderr)

    def test_token_from_password_command(self):
        with self.server() as s:
            p = self.run_smtp(["-d", "-a", "-u", "alice", "-o",
                               "password_command=echo tok-123", "-o",
                               "auth_mechanism=xoauth2"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual(s.handler.auth, [("XOAUTH2", "alice")])
        self.assertNotIn(b"tok-123", p.stderr)

    def test_netrc_and_password_command(self):
        with open(os.path.join(self.home, ".netrc"), "w") as f:
            f.write("machine 127.0.0.1 login alice password '%s'\n" % "x")
        os.chmod(os.path.join(self.home, ".netrc"), 0o600)
        with open(os.path.join(self.home, ".netrc"), "w") as f:
            f.write('machine 127.0.0.1 login alice password "%s"\n' % PASSWORD)
        with self.server() as s:
            p = self.run_smtp(["-d", "-a", "-u", "alice"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertIn(b"from the netrc", p.stderr)
            os.unlink(os.path.join(self.home, ".netrc"))
            cmd = "test \"$SMTP_SERVER\" = 127.0.0.1 && echo '%s'" % PASSWORD
            p = self.run_smtp(["-d", "-a", "-u", "alice", "-o",
                               "password_command=" + cmd] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertIn(b"from the password command", p.stderr)
            self.assertEqual(len(s.handler.auth), 2)

    def test_user_from_the_key_file(self):
        """Without -u: the user of the one key for the server; with two
        keys for it, the login name, and the error says so."""
        self.keyfile("key proto=pass service=smtp server=127.0.0.1 "
                     "user=alice !password='%s'\n"
                     "key proto=pass server=other.test user=bob "
                     "!password=x\n" % PASSWORD)
        with self.server() as s:
            p = self.run_smtp(["-d", "-a"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual(s.handler.auth, [("PLAIN", "alice")])
            self.assertIn(b"* user alice from the key file", p.stderr)
            self.keyfile("proto=pass server=127.0.0.1 user=alice "
                         "!password=x\nproto=pass server=127.0.0.1 "
                         "user=carol !password=y\n")
            p = self.run_smtp(["-a"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_CONFIG)
            self.assertIn(b"(the login name; -u names another user)",
                          p.stderr)
            self.assertEqual(len(s.messages), 1)

    def test_credential_problems_are_config_errors(self):
        with self.server() as s:
            # No secret anywhere.
            p = self.run_smtp(["-a", "-u", "alice"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_CONFIG)
            self.assertIn(b"no password for alice", p.stderr)
            # A key file others can read.
            self.keyfile("proto=pass user=alice !password=x\n", mode=0o644)
            p = self.run_smtp(["-a", "-u", "alice"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_CONFIG)
            self.assertIn(b"chmod 600", p.stderr)
            # A failing password command.
            os.unlink(os.path.join(self.home, ".config", "smtp", "keys"))
            p = self.run_smtp(["-a", "-u", "alice", "-o",
                               "password_command=exit 4"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_CONFIG)
            self.assertIn(b"status 4", p.stderr)
            self.assertEqual(s.messages, [])

    def test_auth_needs_tls_by_default(self):
        self.keyfile("proto=pass user=alice !password='%s'\n" % PASSWORD)
        with Aio(Recorder(users={"alice": PASSWORD}),
                 auth_require_tls=False) as s:
            # No STARTTLS offered: -a refuses to go on in the clear.
            p = self.run_smtp(["-a", "-u", "alice", s.addr(), "a@x.test",
                               "b@x.test"])
            self.assertExit(p, EX_UNAVAILABLE)
            self.assertIn(b"STARTTLS", p.stderr)
            # Allowed explicitly: CRAM-MD5 first (it hides the password).
            p = self.run_smtp(["-d", "-a", "-u", "alice", "-o",
                               "auth_cleartext=yes", s.addr(), "a@x.test",
                               "b@x.test"])
            self.assertExit(p, EX_OK)
            self.assertEqual(s.handler.auth, [("CRAM-MD5", "alice")])

    def test_plain_refused_in_clear(self):
        self.keyfile("proto=pass user=alice !password='%s'\n" % PASSWORD)
        h = Recorder(users={"alice": PASSWORD})
        with Aio(h, auth_require_tls=False,
                 auth_exclude_mechanism=["CRAM-MD5", "XOAUTH2"]) as s:
            p = self.run_smtp(["-s", "-a", "-u", "alice", "-o",
                               "auth_cleartext=no", s.addr(), "a@x.test",
                               "b@x.test"])
            # No STARTTLS to be had, so no AUTH: nothing in the clear.
            self.assertExit(p, EX_UNAVAILABLE)
            self.assertEqual(h.auth, [])
            self.assertEqual(s.messages, [])

    def test_server_without_auth(self):
        self.keyfile("proto=pass user=alice !password=x\n")
        with self.server(auth_exclude_mechanism=["PLAIN", "LOGIN",
                                                 "CRAM-MD5", "XOAUTH2"]) as s:
            p = self.run_smtp(["-a", "-u", "alice"] + self.ca() +
                              [s.addr(), "a@x.test", "b@x.test"])
            self.assertExit(p, EX_NOPERM)
        self.assertIn(b"does not offer authentication", p.stderr)


class OwnSmtpd(Base):
    """Our client against our server: submission with STARTTLS and AUTH,
    and implicit TLS."""

    def smtpd(self, extra=""):
        secrets = os.path.join(self.workdir, "secrets")
        with open(secrets, "w") as f:
            f.write("alice:{PLAIN}%s\n" % PASSWORD)
        os.chmod(secrets, 0o600)
        conf = ('tls = { certificate = "%s"; key = "%s"; %s };\n'
                'auth = { secrets = "%s"; };\n' %
                (CERTS["srv.pem"], CERTS["srv.key"], extra, secrets))
        d = Smtpd(os.path.join(self.workdir), config_extra=conf, args=["-a"])
        d.start()
        self.addCleanup(d.stop)
        return d

    def test_submission_with_starttls_and_auth(self):
        d = self.smtpd()
        self.keyfile("proto=pass service=smtp server=127.0.0.1 user=alice "
                     "!password='%s'\n" % PASSWORD)
        p = self.run_smtp(["-d", "-a", "-u", "alice"] + self.ca() +
                          ["127.0.0.1:%d" % d.port, "alice@example.org",
                           "bob@example.net"])
        self.assertExit(p, EX_OK)
        t = p.stderr.decode()
        self.assertIn("-> AUTH PLAIN ********", t)
        self.assertNotIn(PASSWORD, t)
        q = d.queued()
        self.assertEqual(len(q), 1)
        env, body = parse_spool(next(iter(q.values())))
        self.assertEqual(env["rcpt"], ["<bob@example.net>"])
        self.assertRegex(body.split(b"\r\n\r\n")[0].decode(),
                         r"with ESMTPSA")
        # A wrong password: refused, nothing queued, 77.
        self.keyfile("proto=pass user=alice !password=wrong\n")
        p = self.run_smtp(["-a", "-u", "alice"] + self.ca() +
                          ["127.0.0.1:%d" % d.port, "alice@example.org",
                           "bob@example.net"])
        self.assertExit(p, EX_NOPERM)
        self.assertIn(b"535", p.stderr)
        self.assertEqual(len(d.queued()), 1)

    def test_plain_smtp_to_implicit_tls_port(self):
        """No -t against our implicit-TLS listener: no greeting comes,
        and the line says to try -t; -t against its plain listener
        says to try without."""
        port = free_port()
        d = self.smtpd('listen = [ "127.0.0.1:%d" ];' % port)
        p = self.run_smtp(["-o", "command_timeout=2", "127.0.0.1:%d" % port,
                           "alice@example.org", "bob@example.net"])
        self.assertExit(p, EX_TEMPFAIL)
        err = p.stderr.decode()
        self.assertIn("no greeting: ", err)
        self.assertIn("; the server may expect implicit TLS: try -t", err)
        self.assertEqual(err.count("\n"), 1, err)
        p = self.run_smtp(["-t"] + self.ca() +
                          ["127.0.0.1:%d" % d.port, "alice@example.org",
                           "bob@example.net"])
        self.assertIn(p.returncode, (EX_PROTOCOL, EX_TEMPFAIL))
        self.assertIn(b"try without -t", p.stderr)
        self.assertEqual(d.queued(), {})

    def test_login_from_netrc(self):
        """smtp -a without -u takes the login from ~/.netrc, as curl and
        msmtp do: the machine entry for the host, else the default."""
        d = self.smtpd()
        netrc = os.path.join(self.home, ".netrc")
        for text in ("machine other.test login bob password x\n"
                     "machine 127.0.0.1 login alice password \"%s\"\n"
                     "default login carol password y\n",
                     "machine other.test login bob password x\n"
                     "default login alice password \"%s\"\n"):
            with open(netrc, "w") as f:
                f.write(text % PASSWORD)
            os.chmod(netrc, 0o600)
            p = self.run_smtp(["-d", "-a"] + self.ca() +
                              ["127.0.0.1:%d" % d.port, "alice@example.org",
                               "bob@example.net"])
            self.assertExit(p, EX_OK)
            t = p.stderr.decode()
            self.assertIn("* user alice from the netrc", t)
            self.assertIn("235 ", t)
            self.assertNotIn(PASSWORD, t)
        self.assertEqual(len(d.queued()), 2)

    def test_implicit_tls(self):
        port = free_port()
        d = self.smtpd('listen = [ "127.0.0.1:%d" ];' % port)
        self.keyfile("proto=pass user=alice !password='%s'\n" % PASSWORD)
        p = self.run_smtp(["-d", "-a", "-u", "alice", "-t"] + self.ca() +
                          ["127.0.0.1:%d" % port, "alice@example.org",
                           "bob@example.net"])
        self.assertExit(p, EX_OK)
        t = p.stderr.decode()
        # TLS first, then the greeting; no STARTTLS.
        self.assertLess(t.index("* TLS"), t.index("<- 220"))
        self.assertNotIn("-> STARTTLS", t)
        self.assertEqual(len(d.queued()), 1)


if __name__ == "__main__":
    unittest.main()
