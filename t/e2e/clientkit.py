"""Pieces for the smtp client's end-to-end tests: run the smtp binary,
and the independent servers it talks to (aiosmtpd with STARTTLS and
AUTH, Postfix's smtp-sink), and test certificates made with certtool.
"""
import base64
import hashlib
import hmac
import os
import shutil
import ssl
import subprocess
import tempfile
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

import unittest

from harness import BUILDDIR, free_port, sanitizer_report, wait_port

SMTP = os.path.join(BUILDDIR, "smtp")
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"

# sysexits.h
EX_OK, EX_USAGE, EX_DATAERR, EX_NOUSER, EX_NOHOST = 0, 64, 65, 67, 68
EX_UNAVAILABLE, EX_IOERR, EX_TEMPFAIL, EX_PROTOCOL = 69, 74, 75, 76
EX_NOPERM, EX_CONFIG = 77, 78

MESSAGE = (b"From: alice@example.test\r\nTo: bob@example.test\r\n"
           b"Subject: test\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n"
           b"Message-ID: <t1@example.test>\r\n\r\nhello\r\n")


def smtp(args, data=MESSAGE, env=None, timeout=60, home=None):
    """Runs our smtp with a clean environment; a CompletedProcess."""
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
         "HOME": home or "/nonexistent", "site": "client.test",
         "LANG": "C"}
    if env:
        e.update(env)
    p = subprocess.run([SMTP] + list(args), input=data,
                       capture_output=True, timeout=timeout, env=e)
    report = sanitizer_report(p.stderr.decode("utf-8", "replace"))
    if report is not None:
        raise AssertionError("smtp: " + report)
    return p


class Recorder:
    """An aiosmtpd handler that keeps what it receives and answers as
    told: refuse = {addr: reply} for RCPT, mail_reply, data_reply."""

    def __init__(self, refuse=None, mail_reply=None, data_reply=None,
                 users=None, token=None):
        self.refuse = refuse or {}
        self.mail_reply = mail_reply
        self.data_reply = data_reply
        self.users = users or {}        # login -> password
        self.token = token              # accepted XOAUTH2 token
        self.messages = []
        self.auth = []                  # (mechanism, login) that passed
        self.helo = []

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        self.helo.append(hostname)
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.messages.append({
            "from": envelope.mail_from,
            "rcpt": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "data": envelope.original_content or envelope.content,
            "tls": (session.ssl is not None or
                    server.transport.get_extra_info("ssl_object") is not None),
            "auth": session.auth_data,
        })
        return "250 2.0.0 Ok: queued as T%d" % len(self.messages)

    def authenticator(self, server, session, envelope, mechanism, data):
        if isinstance(data, LoginPassword):
            login = data.login.decode()
            ok = self.users.get(login) == data.password.decode()
            if ok:
                self.auth.append((mechanism, login))
            # handled=False: let aiosmtpd send the 535 itself.
            return AuthResult(success=ok, handled=False, auth_data=data)
        return AuthResult(success=False, handled=False)

    async def auth_CRAM__MD5(self, server, args):
        challenge = b"<12345.6789@server.test>"
        resp = await server.challenge_auth(challenge)
        if not isinstance(resp, bytes) or b" " not in resp:
            return AuthResult(success=False, handled=False)
        login, digest = resp.decode().rsplit(" ", 1)
        pw = self.users.get(login)
        if pw is None:
            return AuthResult(success=False, handled=False)
        want = hmac.new(pw.encode(), challenge, hashlib.md5).hexdigest()
        ok = hmac.compare_digest(want, digest)
        if ok:
            self.auth.append(("CRAM-MD5", login))
        return AuthResult(success=ok, handled=False,
                          auth_data=LoginPassword(login.encode(), b""))

    async def auth_XOAUTH2(self, server, args):
        if len(args) < 2:
            return AuthResult(success=False, handled=False)
        raw = base64.b64decode(args[1]).decode()
        parts = dict(p.split("=", 1) for p in raw.split("\x01") if "=" in p)
        user = parts.get("user", "")
        ok = parts.get("auth") == "Bearer %s" % self.token
        if ok:
            self.auth.append(("XOAUTH2", user))
            return AuthResult(success=True,
                              auth_data=LoginPassword(user.encode(), b""))
        # RFC 7628-style: an error challenge, then the client's empty line.
        await server.challenge_auth(b'{"status":"401"}')
        await server.push("535 5.7.8 token rejected")
        return AuthResult(success=False, handled=True)


class Aio:
    """An aiosmtpd server on loopback; use as a context manager."""

    def __init__(self, handler=None, host="127.0.0.1", port=None, **kw):
        self.handler = handler or Recorder()
        self.host = host
        self.port = port or free_port(host)
        if "authenticator" not in kw and "auth_callback" not in kw:
            kw["authenticator"] = self.handler.authenticator
        kw.setdefault("auth_require_tls", True)
        kw.setdefault("enable_SMTPUTF8", False)
        kw.setdefault("server_hostname", "server.test")
        self.ctl = Controller(self.handler, hostname=host, port=self.port,
                              **kw)

    def __enter__(self):
        self.ctl.start()
        return self

    def __exit__(self, *exc):
        self.ctl.stop()

    @property
    def messages(self):
        return self.handler.messages

    def addr(self):
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)


class Sink:
    """Postfix's smtp-sink, dumping each message to a directory."""

    def __init__(self, workdir, args=(), host="127.0.0.1", port=None):
        self.host = host
        self.port = port or free_port(host)
        self.dumpdir = tempfile.mkdtemp(prefix="sink-", dir=workdir)
        os.chmod(self.dumpdir, 0o777)
        cmd = [SMTP_SINK]
        if os.geteuid() == 0:
            cmd += ["-u", "root"]
        cmd += ["-d", os.path.join(self.dumpdir, "m")] + list(args)
        cmd += ["%s:%d" % (host if ":" not in host else "[%s]" % host,
                           self.port), "64"]
        self.cmd = cmd
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        if not wait_port(self.host, self.port):
            self.proc.kill()
            raise RuntimeError("smtp-sink did not start: %r" %
                               self.proc.stderr.read())
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stderr.close()

    def addr(self):
        return "%s:%d" % (self.host, self.port)

    def messages(self, want=1, timeout=5.0):
        """The dumped messages (bytes), waiting a little for want of them."""
        deadline = time.time() + timeout
        while True:
            names = sorted(os.listdir(self.dumpdir))
            if len(names) >= want or time.time() > deadline:
                break
            time.sleep(0.02)
        out = []
        for n in names:
            with open(os.path.join(self.dumpdir, n), "rb") as f:
                out.append(f.read())
        return out


_CA_TMPL = """cn = "Test CA %s"
ca
cert_signing_key
expiration_days = 30
"""
_SRV_TMPL = """cn = "localhost"
dns_name = "localhost"
dns_name = "mx1.a.test"
dns_name = "mx2.a.test"
dns_name = "mail.a.test"
dns_name = "smarthost.test"
ip_address = "127.0.0.1"
ip_address = "::1"
tls_www_server
encryption_key
signing_key
expiration_days = 30
"""


def _certtool(*args):
    subprocess.run(["certtool"] + list(args), check=True,
                   capture_output=True)


def spki_pin(cert):
    """The RFC 7469 pin of a certificate's public key, made by openssl
    as HPKP and curl users make it: pin-sha256:BASE64."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey",
                          "-noout"], check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"],
                         input=pub, check=True, capture_output=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"],
                            input=der, check=True,
                            capture_output=True).stdout
    return "pin-sha256:" + base64.b64encode(digest).decode()


def make_certs(d):
    """A CA, a server certificate it signs (localhost, 127.0.0.1, ::1,
    mx1/mx2/mail.a.test), the same certificate renewed (new serial, same
    key), and a second CA that signed nothing we use.  Returns a dict of
    paths, plus 'pin' (sha256 of the server cert) and 'spki' (the
    pin-sha256 of its key)."""
    p = {k: os.path.join(d, k) for k in
         ("ca.key", "ca.pem", "srv.key", "srv.pem", "other.key", "other.pem",
          "ca.tmpl", "srv.tmpl", "other.tmpl", "renewed.pem")}
    with open(p["ca.tmpl"], "w") as f:
        f.write(_CA_TMPL % "one")
    with open(p["other.tmpl"], "w") as f:
        f.write(_CA_TMPL % "two")
    with open(p["srv.tmpl"], "w") as f:
        f.write(_SRV_TMPL)
    for key in ("ca.key", "srv.key", "other.key"):
        _certtool("--generate-privkey", "--key-type=ecdsa", "--outfile",
                  p[key])
    _certtool("--generate-self-signed", "--load-privkey", p["ca.key"],
              "--template", p["ca.tmpl"], "--outfile", p["ca.pem"])
    _certtool("--generate-self-signed", "--load-privkey", p["other.key"],
              "--template", p["other.tmpl"], "--outfile", p["other.pem"])
    _certtool("--generate-certificate", "--load-privkey", p["srv.key"],
              "--load-ca-certificate", p["ca.pem"], "--load-ca-privkey",
              p["ca.key"], "--template", p["srv.tmpl"], "--outfile",
              p["srv.pem"])
    _certtool("--generate-certificate", "--load-privkey", p["srv.key"],
              "--load-ca-certificate", p["ca.pem"], "--load-ca-privkey",
              p["ca.key"], "--template", p["srv.tmpl"], "--outfile",
              p["renewed.pem"])
    p["spki"] = spki_pin(p["srv.pem"])
    with open(p["srv.pem"]) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    digest = hashlib.sha256(der).hexdigest().upper()
    p["pin"] = "sha256:" + ":".join(digest[i:i + 2]
                                    for i in range(0, len(digest), 2))
    return p


def server_tls(certs, cert="srv.pem"):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs[cert], certs["srv.key"])
    return ctx


class ClientCase(unittest.TestCase):
    """A test of the smtp program with a fresh work directory."""
    PREFIX = "client-e2e-"

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix=self.PREFIX)

    def tearDown(self):
        shutil.rmtree(self.workdir, ignore_errors=True)

    def assertExit(self, p, want):
        self.assertEqual(p.returncode, want,
                         "exit %d, want %d; stderr:\n%s" %
                         (p.returncode, want, p.stderr.decode()))
