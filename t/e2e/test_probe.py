"""smtp -p: the probe, against our smtpd (STARTTLS and implicit TLS
ports), aiosmtpd and Postfix's smtp-sink; key lines of its report."""
import os
import shutil
import subprocess
import tempfile
import unittest

from clientkit import (ClientCase, Aio, Recorder, Sink, smtp, make_certs,
                       server_tls, EX_OK, EX_USAGE)
from harness import Smtpd, free_port

CERTS = None
CERTDIR = None
SMTP_SINK = shutil.which("smtp-sink", path="/usr/sbin:/usr/bin")


def setUpModule():
    global CERTS, CERTDIR
    CERTDIR = tempfile.mkdtemp(prefix="probe-certs-")
    CERTS = make_certs(CERTDIR)


def tearDownModule():
    shutil.rmtree(CERTDIR, ignore_errors=True)


class Probe(ClientCase):
    PREFIX = "probe-"

    def our_smtpd(self, implicit_port=None, cert=None):
        secrets = os.path.join(self.workdir, "secrets")
        with open(secrets, "w") as f:
            f.write("alice:{PLAIN}secret\n")
        os.chmod(secrets, 0o600)
        extra = ('listen = [ "127.0.0.1:%d" ];' % implicit_port
                 if implicit_port else "")
        conf = ('tls = { certificate = "%s"; key = "%s"; %s };\n'
                'auth = { secrets = "%s"; };\n' %
                (cert or CERTS["srv.pem"], CERTS["srv.key"], extra, secrets))
        d = Smtpd(self.workdir, config_extra=conf, hostname="probe.test",
                  args=["-a"])
        d.start()
        self.addCleanup(d.stop)
        return d

    def probe(self, args):
        p = smtp(["-p"] + args, data=b"")
        return p, p.stdout.decode(), p.stderr.decode()

    def ca(self):
        return ["-o", "tls_cafile=" + CERTS["ca.pem"]]

    def test_our_smtpd_starttls(self):
        d = self.our_smtpd()
        p, out, err = self.probe(self.ca() + ["127.0.0.1:%d" % d.port])
        self.assertEqual(p.returncode, EX_OK, out + err)
        self.assertIn("Server: [127.0.0.1]", out)
        self.assertRegex(out, r"(?m)^Greeting: probe.test ")
        self.assertRegex(out, r"(?m)^TLS: STARTTLS \(TLS1\.[23]\), cipher ")
        self.assertIn("Certificate chain (1 sent):", out)
        self.assertRegex(out, r"(?m)^  0 subject: .*CN=")
        self.assertRegex(out, r"(?m)^    issuer: .*CN=")
        self.assertRegex(out, r"(?m)^    valid: \d{4}-\d\d-\d\d .* to \d{4}")
        self.assertIn("Certificate check: verified (trust store and "
                      "tls_cafile), name 127.0.0.1 matches", out)
        self.assertRegex(out, r"(?m)^  REQUIRETLS$")
        self.assertRegex(out, r"(?m)^AUTH mechanisms: .*PLAIN")
        self.assertNotIn("Advice:", out)

    def test_untrusted_ca_gets_advice(self):
        d = self.our_smtpd()
        p, out, err = self.probe(["127.0.0.1:%d" % d.port])
        self.assertEqual(p.returncode, EX_OK, out + err)
        self.assertIn("Certificate check: failed", out)
        self.assertIn("is not trusted here", out)
        self.assertIn("tls_cafile=FILE", out)
        self.assertIn("-o tls_pin=pin-sha256:", out)

    def elsewhere_cert(self):
        """A certificate from the test CA for elsewhere.test only."""
        tmpl = os.path.join(self.workdir, "else.tmpl")
        with open(tmpl, "w") as f:
            f.write('cn = "elsewhere.test"\ndns_name = "elsewhere.test"\n'
                    'tls_www_server\nsigning_key\nencryption_key\n'
                    'expiration_days = 30\n')
        pem = os.path.join(self.workdir, "else.pem")
        subprocess.run(["certtool", "--generate-certificate",
                        "--load-privkey", CERTS["srv.key"],
                        "--load-ca-certificate", CERTS["ca.pem"],
                        "--load-ca-privkey", CERTS["ca.key"],
                        "--template", tmpl, "--outfile", pem],
                       check=True, capture_output=True)
        return pem

    def test_certificate_for_another_name(self):
        d = self.our_smtpd(cert=self.elsewhere_cert())
        p, out, err = self.probe(self.ca() + ["127.0.0.1:%d" % d.port])
        self.assertEqual(p.returncode, EX_OK, out + err)
        self.assertIn("    name: elsewhere.test", out)
        self.assertIn("Certificate check: failed", out)
        self.assertIn("Advice: the certificate is for other names than "
                      "127.0.0.1", out)

    def test_implicit_port(self):
        port = free_port("127.0.0.1")
        self.our_smtpd(implicit_port=port)
        p, out, err = self.probe(["-t"] + self.ca() + ["127.0.0.1:%d" % port])
        self.assertEqual(p.returncode, EX_OK, out + err)
        self.assertRegex(out, r"(?m)^TLS: implicit \(TLS1\.[23]\)")
        self.assertIn("verified", out)
        self.assertNotRegex(out, r"(?m)^  STARTTLS$")

    def test_implicit_tls_against_starttls_port(self):
        d = self.our_smtpd()
        p, out, err = self.probe(["-t"] + self.ca() +
                                 ["127.0.0.1:%d" % d.port])
        self.assertEqual(p.returncode, EX_OK, out + err)
        self.assertIn("greeted in plain text", err)
        self.assertIn("Advice: this port speaks plain SMTP first, with "
                      "STARTTLS", out)
        self.assertRegex(out, r"(?m)^TLS: STARTTLS ")

    def test_plain_against_implicit_port(self):
        port = free_port("127.0.0.1")
        self.our_smtpd(implicit_port=port)
        p, out, err = self.probe(["-o", "command_timeout=2"] + self.ca() +
                                 ["127.0.0.1:%d" % port])
        self.assertEqual(p.returncode, EX_OK, out + err)
        self.assertIn("the server may expect implicit TLS", err)
        self.assertIn("Advice: this port speaks TLS from the start", out)
        self.assertRegex(out, r"(?m)^TLS: implicit ")

    def test_aiosmtpd(self):
        with Aio(Recorder(users={"alice": "x"}),
                 tls_context=server_tls(CERTS)) as s:
            p, out, err = self.probe(self.ca() + [s.addr()])
        self.assertEqual(p.returncode, EX_OK, out + err)
        self.assertIn("Greeting: server.test", out)
        self.assertRegex(out, r"(?m)^TLS: STARTTLS ")
        self.assertIn("Certificate check: verified", out)
        self.assertRegex(out, r"(?m)^AUTH mechanisms: .*LOGIN")

    def test_aiosmtpd_without_tls(self):
        with Aio(Recorder()) as s:
            p, out, err = self.probe([s.addr()])
        self.assertEqual(p.returncode, EX_OK, out + err)
        self.assertIn("TLS: none (no STARTTLS offered)", out)
        self.assertIn("AUTH mechanisms: none offered (many servers offer "
                      "AUTH only under TLS)", out)
        self.assertIn("Advice: no TLS", out)

    @unittest.skipUnless(SMTP_SINK, "smtp-sink is not installed")
    def test_smtp_sink(self):
        with Sink(self.workdir) as sink:
            p, out, err = self.probe([sink.addr()])
        self.assertEqual(p.returncode, EX_OK, out + err)
        self.assertRegex(out, r"(?m)^  PIPELINING$")
        self.assertRegex(out, r"(?m)^  8BITMIME$")

    def test_unreachable_fails(self):
        port = free_port("127.0.0.1")
        p, out, err = self.probe(["127.0.0.1:%d" % port])
        self.assertNotEqual(p.returncode, EX_OK)
        self.assertIn("connect to", err)

    def test_usage(self):
        p = smtp(["-p", "127.0.0.1:25", "alice@example.org"], data=b"")
        self.assertEqual(p.returncode, EX_USAGE)
