"""Throwaway certificates for the TLS and AUTH tests, made with GnuTLS's
certtool once per test run and shared by every test of that run, and a
test case base that starts smtpd with TLS and AUTH configured.

    ca            the test CA (what clients trust)
    server        leaf for HOSTNAME (and 127.0.0.1), signed by ca
    server2       another leaf for HOSTNAME, own key, signed by ca
    ica           an intermediate CA signed by ca
    server_ica    leaf for HOSTNAME signed by ica (needs tls.chain)
    client        a TLS client certificate signed by ca
    client_expired  the same kind, but expired in 2020
    rogue_ca      a CA nobody trusts
    rogue_client  a client certificate signed by rogue_ca

Each is a Pair with .cert and .key paths (PEM).  The files are shared:
a test that changes one copies it into its own work directory first.
"""
import atexit
import base64
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile

from harness import Conn, PolicyCase, free_port

HOSTNAME = "mx.test.example"
CERTTOOL = shutil.which("certtool")

_dir = None
_pairs = None


class Pair:
    def __init__(self, cert, key):
        self.cert = cert
        self.key = key

    def der(self):
        """The certificate in DER form (as getpeercert(True) gives it)."""
        with open(self.cert) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    def sha256(self):
        return hashlib.sha256(self.der()).hexdigest()


def _certtool(*args):
    p = subprocess.run([CERTTOOL] + list(args), capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("certtool %s failed:\n%s%s" % (
            " ".join(args), p.stdout, p.stderr))


def _make(name, template, signer=None):
    key = os.path.join(_dir, name + ".key")
    cert = os.path.join(_dir, name + ".pem")
    tmpl = os.path.join(_dir, name + ".tmpl")
    with open(tmpl, "w") as f:
        if "expiration_date" not in template:
            template += "expiration_days = 3\n"
        f.write(template)
    _certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", key)
    if signer is None:
        _certtool("--generate-self-signed", "--load-privkey", key,
                  "--template", tmpl, "--outfile", cert)
    else:
        _certtool("--generate-certificate", "--load-privkey", key,
                  "--load-ca-certificate", signer.cert,
                  "--load-ca-privkey", signer.key,
                  "--template", tmpl, "--outfile", cert)
    os.chmod(key, 0o600)
    return Pair(cert, key)


CA_TMPL = 'cn = "%s"\nca\ncert_signing_key\ncrl_signing_key\n'
SERVER_TMPL = ('cn = "%s"\ndns_name = "%s"\nip_address = "127.0.0.1"\n'
               'tls_www_server\nsigning_key\nencryption_key\n'
               % (HOSTNAME, HOSTNAME))
CLIENT_TMPL = 'cn = "%s"\ntls_www_client\nsigning_key\n'


def available():
    return CERTTOOL is not None


def _intact(pairs):
    return all(os.path.exists(p.cert) and os.path.exists(p.key)
               for p in pairs.values())


def get():
    """{name: Pair}, made on first use (and made again should something
    have removed the files meanwhile)."""
    global _dir, _pairs
    if _pairs is not None and _intact(_pairs):
        return _pairs
    _dir = tempfile.mkdtemp(prefix="e2e-tlscerts-")
    # Certificates are public (smtpd's front reads them as its own user);
    # the keys stay 0600 root's.
    os.chmod(_dir, 0o755)
    atexit.register(shutil.rmtree, _dir, True)
    p = {}
    p["ca"] = _make("ca", CA_TMPL % "smtpd e2e test CA")
    p["server"] = _make("server", SERVER_TMPL, p["ca"])
    p["server2"] = _make("server2", SERVER_TMPL, p["ca"])
    p["ica"] = _make("ica", CA_TMPL % "smtpd e2e intermediate CA", p["ca"])
    p["server_ica"] = _make("server_ica", SERVER_TMPL, p["ica"])
    p["client"] = _make("client", CLIENT_TMPL % "client.test.example", p["ca"])
    p["client_expired"] = _make(
        "client_expired", CLIENT_TMPL % "expired.test.example"
        + 'activation_date = "2020-01-01 00:00:00"\n'
        'expiration_date = "2020-01-02 00:00:00"\n', p["ca"])
    p["rogue_ca"] = _make("rogue_ca", CA_TMPL % "rogue CA")
    p["rogue_client"] = _make("rogue_client", CLIENT_TMPL % "rogue.test.example",
                              p["rogue_ca"])
    _pairs = p
    return p


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def sha512_crypt(password):
    """A '$6$' crypt(3) hash of password, from Python's crypt module or,
    without it, from openssl passwd -6."""
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
        if h and h.startswith("$6$"):
            return h
    except ImportError:
        pass
    p = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                       input=password, capture_output=True, text=True,
                       timeout=30, check=True)
    return p.stdout.strip()


# Accounts every TLS/AUTH test server knows.
PLAIN_USER, PLAIN_PASS = "alice", "Plain-Secret-4711"
CRYPT_USER, CRYPT_PASS = "bob@example.org", "Crypt-Secret-0815"
_crypt_hash = None


def crypt_hash():
    global _crypt_hash
    if _crypt_hash is None:
        _crypt_hash = sha512_crypt(CRYPT_PASS)
    return _crypt_hash


class TlsAuthCase(PolicyCase):
    """PolicyCase with smtpd started with a certificate from get() and a
    secrets file with a {PLAIN} and a {CRYPT} account."""

    def setUp(self):
        if not available():
            self.skipTest("certtool not installed")
        super().setUp()
        self.certs = get()

    def write_secrets(self, lines=None, name="secrets", mode=0o600):
        """Writes a secrets file into the work directory; returns its path."""
        if lines is None:
            lines = ["%s:{PLAIN}%s" % (PLAIN_USER, PLAIN_PASS),
                     "%s:{CRYPT}%s" % (CRYPT_USER, crypt_hash())]
        path = os.path.join(self.workdir, name)
        tmp = path + ".new"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        return path

    def server(self, tls=True, implicit=False, auth=True, secrets=None,
               server_cert="server", tls_extra="", auth_extra="",
               throttle="delay = 10; max_delay = 20; failures = 50;",
               extra="", args=(), start=True, **kw):
        """Starts smtpd; d.tls_port is the implicit TLS port (or None)."""
        parts = []
        tls_port = None
        if tls:
            pair = self.certs[server_cert] if isinstance(server_cert, str) \
                else server_cert
            t = 'certificate = "%s"; key = "%s"; ' % (pair.cert, pair.key)
            if implicit:
                tls_port = free_port()
                t += 'listen = [ "127.0.0.1:%d" ]; ' % tls_port
            parts.append("tls = { %s%s };" % (t, tls_extra))
        if auth:
            if secrets is None:
                secrets = self.write_secrets()
            parts.append('auth = { secrets = "%s"; throttle = { %s }; %s };'
                         % (secrets, throttle, auth_extra))
        parts.append(extra)
        d = self.smtpd(start=False, config_extra="\n".join(parts),
                       args=list(args), **kw)
        d.tls_port = tls_port
        if tls_port is not None:
            d.more_ports.append(tls_port)
        return d.start() if start else d

    def client_ctx(self, cert=None, check_hostname=True, ca="ca"):
        """An SSLContext that trusts the test CA and checks the name;
        with cert (a Pair name) it presents that client certificate."""
        ctx = ssl.create_default_context(cafile=self.certs[ca].cert)
        ctx.check_hostname = check_hostname
        if cert is not None:
            ctx.load_cert_chain(self.certs[cert].cert, self.certs[cert].key)
        return ctx

    def starttls(self, c, ctx=None, hostname=HOSTNAME):
        """STARTTLS on Conn c (its greeting read): 220 2.0.0, then the
        handshake; c then speaks over TLS."""
        self.assertReply(c.cmd("STARTTLS"), 220, "2.0.0")
        self.assertEqual(c.buf, b"")
        c.sock = (ctx or self.client_ctx()).wrap_socket(
            c.sock, server_hostname=hostname)
        return c

    def tls_open(self, d, ctx=None, source=None, hostname=HOSTNAME,
                 ehlo=True):
        """A Conn to d's implicit TLS port, handshake done, greeting read."""
        c = TlsConn(d.host, d.tls_port, ctx or self.client_ctx(),
                    hostname, source=source)
        self.track(c)
        rep = c.reply()
        self.assertEqual(rep[0], 220, rep)
        if ehlo:
            self.ehlo(c)
        return c

    def tls_client(self, d, source="127.0.0.1", ctx=None):
        """A STARTTLS session from source, EHLO done before and after."""
        c = self.client(d, source=source, helo="client.example.org")
        self.starttls(c, ctx)
        self.assertReply(c.cmd("EHLO client.example.org"), 250)
        return c

    def auth_plain(self, c, user=PLAIN_USER, password=PLAIN_PASS):
        """AUTH PLAIN with an initial response; the reply."""
        return c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, password)))


class TlsConn(Conn):
    """A Conn with TLS from the first byte (implicit TLS, RFC 8314)."""

    def __init__(self, host, port, ctx, hostname, source=None, timeout=10):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(timeout)
        if source:
            raw.bind((source, 0))
        raw.connect((host, port))
        self.sock = ctx.wrap_socket(raw, server_hostname=hostname)
        self.buf = b""

