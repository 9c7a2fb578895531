"""tls.certificates: server certificates chosen by the name a client asks
for (SNI), with gnutls-cli as the client -- two names, two certificates;
no name or an unknown one, the default; an RSA and an ECDSA certificate
for one name chosen by the client's signature algorithms; wildcards and
names given in the config; reload on SIGHUP (changed file, new entry,
removed entry, a bad file keeps the old set); the front that cannot read
any key yet serves them all; load errors with file and line."""
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

import certs
from certs import HOSTNAME, TlsAuthCase
from harness import SMTPD, open_files

GNUTLS_CLI = shutil.which("gnutls-cli")
# Signature algorithms the client takes, for TLS 1.3 and for TLS 1.2.
ECDSA_ONLY = "NORMAL:-SIGN-ALL:+SIGN-ECDSA-SECP256R1-SHA256"
RSA_ONLY = "NORMAL:-SIGN-ALL:+SIGN-RSA-SHA256:+SIGN-RSA-PSS-RSAE-SHA256"
ECDSA_ONLY_12 = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-ALL:+SIGN-ECDSA-SHA256"
RSA_ONLY_12 = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-ALL:+SIGN-RSA-SHA256"
USER = "_smtpd"

_dir = None
_pairs = None


def pairs():
    """{name: Pair}: leaves signed by the test CA of certs.py, made once
    per run.  alpha_rsa and alpha_ec are both for alpha.example.org,
    beta for *.beta.example.net, gamma for a name no client asks for,
    gamma2 the same with another key, delta for delta.example.com, bare
    without any DNS name, old for old.example.com, expired in 2020."""
    global _dir, _pairs
    if _pairs is not None and all(os.path.exists(p.key)
                                  for p in _pairs.values()):
        return _pairs
    ca = certs.get()["ca"]
    _dir = tempfile.mkdtemp(prefix="e2e-sni-")
    os.chmod(_dir, 0o755)
    import atexit
    atexit.register(shutil.rmtree, _dir, True)
    specs = {
        "alpha_rsa": ("rsa", "alpha rsa", ["alpha.example.org"]),
        "alpha_ec": ("ecdsa", "alpha ecdsa", ["alpha.example.org"]),
        "beta": ("ecdsa", "beta", ["*.beta.example.net"]),
        "gamma": ("ecdsa", "gamma", ["other.example"]),
        "gamma2": ("ecdsa", "gamma two", ["other.example"]),
        "delta": ("ecdsa", "delta", ["delta.example.com"]),
        "bare": ("ecdsa", "bare", []),
        "old": ("ecdsa", "old", ["old.example.com"]),
    }
    p = {}
    for name, (kind, cn, dns) in specs.items():
        key = os.path.join(_dir, name + ".key")
        cert = os.path.join(_dir, name + ".pem")
        tmpl = os.path.join(_dir, name + ".tmpl")
        with open(tmpl, "w") as f:
            f.write('cn = "%s"\n' % cn)
            for n in dns:
                f.write('dns_name = "%s"\n' % n)
            f.write("tls_www_server\nsigning_key\nencryption_key\n")
            if name == "old":
                f.write('activation_date = "2020-01-01 00:00:00"\n'
                        'expiration_date = "2020-01-02 00:00:00"\n')
            else:
                f.write("expiration_days = 3\n")
        certs._certtool("--generate-privkey", "--key-type=" + kind,
                        "--outfile", key)
        certs._certtool("--generate-certificate", "--load-privkey", key,
                        "--load-ca-certificate", ca.cert,
                        "--load-ca-privkey", ca.key, "--template", tmpl,
                        "--outfile", cert)
        os.chmod(key, 0o600)
        p[name] = certs.Pair(cert, key)
    _pairs = p
    return p


def subject(out):
    """The CN of the server certificate gnutls-cli printed, or None."""
    m = re.search(r"- subject `CN=([^',]*)", out)
    return m.group(1) if m else None


@unittest.skipUnless(GNUTLS_CLI, "gnutls-cli (gnutls-bin) not installed")
class SniCase(TlsAuthCase):
    def setUp(self):
        super().setUp()
        self.p = pairs()

    def copy(self, name, dest):
        """Copies pair name to dest.pem/dest.key in the work directory
        (each replaced in one rename); the Pair of the copies."""
        base = os.path.join(self.workdir, dest)
        for src, ext in ((self.p[name].cert, ".pem"),
                         (self.p[name].key, ".key")):
            shutil.copyfile(src, base + ext + ".new")
            os.chmod(base + ext + ".new", 0o600 if ext == ".key" else 0o644)
            os.replace(base + ext + ".new", base + ext)
        return certs.Pair(base + ".pem", base + ".key")

    @staticmethod
    def entry(pair, names=None):
        e = 'certificate = "%s"; key = "%s";' % (pair.cert, pair.key)
        if names is not None:
            e += " names = ( %s );" % ", ".join('"%s"' % n for n in names)
        return "{ %s }" % e

    def sni_server(self, entries=None, **kw):
        """smtpd with the default certificate of certs.py and entries
        (default: alpha RSA, alpha ECDSA, beta, gamma named
        gamma.example.com in the config)."""
        if entries is None:
            entries = [self.entry(self.p["alpha_rsa"]),
                       self.entry(self.p["alpha_ec"]),
                       self.entry(self.p["beta"]),
                       self.entry(self.p["gamma"], ["Gamma.Example.COM"])]
        return self.server(tls_extra="certificates = ( %s );"
                           % ", ".join(entries), **kw)

    def cli(self, port, name=None, priority=None, starttls=True,
            verify=True):
        """gnutls-cli's output for one handshake: with name as SNI (none
        without), the name checked against the certificate when verify.
        Stdin is empty, so that it ends once the handshake is done."""
        cmd = [GNUTLS_CLI, "--x509cafile", self.certs["ca"].cert,
               "-p", str(port)]
        if starttls:
            cmd.append("--starttls-proto=smtp")
        if name is None:
            cmd += ["--disable-sni", "--verify-hostname", HOSTNAME]
        else:
            cmd += ["--sni-hostname", name]
            if verify:
                cmd += ["--verify-hostname", name]
        if priority is not None:
            cmd += ["--priority", priority]
        cmd.append("127.0.0.1")
        p = subprocess.run(cmd, input=b"", stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode(errors="replace")
        if verify:
            self.assertIn("The certificate is trusted", out, out)
            self.assertIn("Handshake was completed", out, out)
        return out

    def served(self, d, name=None, **kw):
        return subject(self.cli(d.port, name, **kw))


class Selection(SniCase):
    def test_two_names_two_certificates(self):
        """STARTTLS: alpha.example.org and x.beta.example.net each get a
        certificate with their name, checked by gnutls-cli."""
        d = self.sni_server()
        self.assertIn(self.served(d, "alpha.example.org"),
                      ("alpha rsa", "alpha ecdsa"))
        self.assertEqual(self.served(d, "x.beta.example.net"), "beta")

    def test_no_sni_or_unknown_name_gets_default(self):
        """Without SNI, and for a name no entry has, the default
        certificate (tls.certificate) is served."""
        d = self.sni_server()
        self.assertEqual(self.served(d, None), HOSTNAME)
        out = self.cli(d.port, "unknown.example.com", verify=False)
        self.assertEqual(subject(out), HOSTNAME, out)

    def test_names_from_config_any_case(self):
        """names = ( "Gamma.Example.COM" ) chooses gamma, whose
        certificate has another name, for gamma.example.com in any case
        and with a final dot."""
        d = self.sni_server()
        for name in ("gamma.example.com", "GAMMA.example.Com",
                     "gamma.example.com."):
            out = self.cli(d.port, name, verify=False)
            self.assertEqual(subject(out), "gamma", name + ": " + out)

    def test_wildcard_is_one_label(self):
        """*.beta.example.net (in the certificate) covers one label:
        beta.example.net and a.b.beta.example.net get the default."""
        d = self.sni_server()
        self.assertEqual(self.served(d, "mx.beta.example.net"), "beta")
        for name in ("beta.example.net", "a.b.beta.example.net"):
            out = self.cli(d.port, name, verify=False)
            self.assertEqual(subject(out), HOSTNAME, name + ": " + out)

    def test_rsa_and_ecdsa_by_signature_algorithms(self):
        """One name, an RSA and an ECDSA certificate: a client that only
        takes ECDSA signatures gets the ECDSA one, one that only takes RSA
        the RSA one, with TLS 1.3 and with TLS 1.2."""
        d = self.sni_server()
        for vers, ecdsa, rsa in (("TLS1.3", ECDSA_ONLY, RSA_ONLY),
                                 ("TLS1.2", ECDSA_ONLY_12, RSA_ONLY_12)):
            out = self.cli(d.port, "alpha.example.org", priority=ecdsa)
            self.assertEqual(subject(out), "alpha ecdsa", out)
            self.assertIn("(%s-" % vers, out)
            out = self.cli(d.port, "alpha.example.org", priority=rsa)
            self.assertEqual(subject(out), "alpha rsa", out)
            self.assertIn("(%s-" % vers, out)

    def test_implicit_tls(self):
        """On a tls.listen port the name chooses the certificate too."""
        d = self.sni_server(implicit=True)
        for name, want in (("x.beta.example.net", "beta"),
                           (None, HOSTNAME)):
            out = self.cli(d.tls_port, name, starttls=False)
            self.assertEqual(subject(out), want, out)
            self.assertIn("220 %s ESMTP" % HOSTNAME, out)


class Reload(SniCase):
    def hup(self, d, count):
        d.proc.send_signal(signal.SIGHUP)
        self.wait_log(d, "reloaded %s" % d.conf, count=count)

    def test_changed_new_and_removed_entries(self):
        """After SIGHUP: a certificate file replaced in place is served
        anew, a new entry is served, a removed one no longer is."""
        g = self.copy("gamma", "g")
        d = self.sni_server([self.entry(g, ["gamma.example.com"]),
                             self.entry(self.p["beta"])])
        self.assertEqual(self.served(d, "gamma.example.com",
                                     verify=False), "gamma")
        self.assertEqual(self.served(d, "x.beta.example.net"), "beta")
        self.copy("gamma2", "g")
        with open(d.conf) as f:
            conf = f.read()
        conf = conf.replace(self.entry(self.p["beta"]),
                            self.entry(self.p["delta"]))
        with open(d.conf + ".new", "w") as f:
            f.write(conf)
        os.replace(d.conf + ".new", d.conf)
        self.hup(d, 1)
        self.assertEqual(self.served(d, "gamma.example.com",
                                     verify=False), "gamma two")
        self.assertEqual(self.served(d, "delta.example.com"), "delta")
        out = self.cli(d.port, "x.beta.example.net", verify=False)
        self.assertEqual(subject(out), HOSTNAME, out)

    def test_bad_file_keeps_old_set(self):
        """A key that no longer matches its certificate at SIGHUP: one
        line names the entry's file and line, and every certificate
        stays as it was, the changed entry's too."""
        g = self.copy("gamma", "g")
        d = self.sni_server([self.entry(self.p["beta"]),
                             self.entry(g, ["gamma.example.com"])])
        shutil.copyfile(self.p["gamma2"].cert, g.cert)
        self.hup(d, 1)
        log = d.logtext()
        bad = [l for l in log.splitlines() if "not the key of" in l]
        self.assertEqual(len(bad), 1, log[-3000:])
        self.assertRegex(bad[0], r"%s:\d+: tls\.certificates: key %s"
                         % (re.escape(d.conf), re.escape(g.key)))
        self.assertIn("keeping the old certificate", bad[0])
        self.assertEqual(self.served(d, "gamma.example.com",
                                     verify=False), "gamma")
        self.assertEqual(self.served(d, "x.beta.example.net"), "beta")
        self.assertEqual(self.served(d, None), HOSTNAME)


@unittest.skipUnless(os.geteuid() == 0, "privilege separation needs root")
class KeyProcess(SniCase):
    def test_front_cannot_read_keys_yet_serves_all(self):
        """The front runs as _smtpd, which cannot open any of the keys
        (root's, mode 0600), has none open, and still completes
        handshakes with each certificate: the key process signs."""
        try:
            pw = pwd.getpwnam(USER)
        except KeyError:
            self.fail("user %s does not exist" % USER)
        d = self.sni_server()
        m = re.search(r"started the front, pid (\d+)",
                      self.wait_log(d, "started the front"))
        self.assertIsNotNone(m, d.logtext())
        front = int(m.group(1))
        with open("/proc/%d/status" % front) as f:
            uid = re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1)
        self.assertEqual(int(uid), pw.pw_uid)
        keys = [self.certs["server"].key] + [
            self.p[n].key for n in ("alpha_rsa", "alpha_ec", "beta",
                                    "gamma")]
        for key in keys:
            p = subprocess.run(["setpriv", "--reuid=%d" % pw.pw_uid,
                                "--regid=%d" % pw.pw_gid, "--clear-groups",
                                "cat", key], capture_output=True,
                               text=True, timeout=10)
            self.assertNotEqual(p.returncode, 0, key)
            self.assertIn("Permission denied", p.stderr)
        before = d.logtext().count("key: sign request")
        got = {self.served(d, "alpha.example.org", priority=ECDSA_ONLY),
               self.served(d, "alpha.example.org", priority=RSA_ONLY),
               self.served(d, "x.beta.example.net"),
               self.served(d, None),
               self.served(d, "gamma.example.com", verify=False)}
        self.assertEqual(got, {"alpha ecdsa", "alpha rsa", "beta",
                               HOSTNAME, "gamma"})
        self.assertGreaterEqual(d.logtext().count("key: sign request"),
                                before + 5, d.logtext()[-3000:])
        opened = open_files(front)
        for key in keys:
            self.assertNotIn(key, opened)


class LoadErrors(SniCase):
    def check(self, entries):
        """smtpd -t on a config whose tls.certificates has entries, one a
        line from line 5 on: (exit code, stderr, config file)."""
        conf = os.path.join(self.workdir, "smtpd.conf")
        spool = os.path.join(self.workdir, "spool")
        with open(conf, "w") as f:
            f.write('hostname = "%s";\nspool = "%s";\n' % (HOSTNAME, spool))
            f.write('tls = { certificate = "%s"; key = "%s";\n'
                    "certificates = (\n" % (self.certs["server"].cert,
                                            self.certs["server"].key))
            f.write(",\n".join(entries) + "\n); };\n")
        p = subprocess.run([SMTPD, "-t", "-C", conf], capture_output=True,
                           text=True, timeout=30)
        self.stdout = p.stdout
        return p.returncode, p.stderr, conf

    def test_missing_file(self):
        """A certificate file that does not exist: exit 78, the entry's
        file:line and the path in one line."""
        missing = os.path.join(self.workdir, "nowhere.pem")
        rc, err, conf = self.check([
            self.entry(self.p["beta"]),
            self.entry(certs.Pair(missing, self.p["beta"].key))])
        self.assertEqual(rc, 78, err)
        self.assertRegex(err, r"^smtpd: %s:6: tls\.certificates: "
                         r"certificate %s: No such file or directory\n$"
                         % (re.escape(conf), re.escape(missing)))

    def test_key_not_matching(self):
        """A key of another certificate: exit 78, file:line, both paths."""
        rc, err, conf = self.check([
            self.entry(certs.Pair(self.p["gamma"].cert,
                                  self.p["gamma2"].key))])
        self.assertEqual(rc, 78, err)
        self.assertIn("%s:5: tls.certificates: key %s: not the key of "
                      "certificate %s" % (conf, self.p["gamma2"].key,
                                          self.p["gamma"].cert), err)

    def test_bad_names(self):
        """Names that are not host names: a config error with file:line."""
        for bad in ("mx..example.org", "*", "a*.example.org",
                    "mx.example.org:25", "-mx.example.org", "x" * 64 + ".org",
                    "*.*.example.org", ""):
            rc, err, conf = self.check([
                self.entry(self.p["beta"]),
                self.entry(self.p["gamma"], ["ok.example.org", bad])])
            self.assertEqual(rc, 78, bad + ": " + err)
            self.assertRegex(err, r"%s:6: bad name" % re.escape(conf), bad)

    def test_no_names_anywhere(self):
        """An entry without names whose certificate has no DNS name."""
        rc, err, conf = self.check([self.entry(self.p["bare"])])
        self.assertEqual(rc, 78, err)
        self.assertIn("%s:5: tls.certificates: certificate %s has no DNS "
                      "names" % (conf, self.p["bare"].cert), err)

    def test_expired_is_warned_about(self):
        """An expired certificate in an entry loads (it is served) but
        smtpd -t warns about it, with the entry's place."""
        rc, err, conf = self.check([self.entry(self.p["beta"]),
                                    self.entry(self.p["old"])])
        self.assertEqual(rc, 0, err)
        self.assertIn("%s:6: tls.certificates: certificate %s expired on "
                      "2020-01-02 00:00:00 UTC" % (conf, self.p["old"].cert),
                      err)
        self.assertNotIn(self.p["beta"].cert, err)

    def test_needs_default(self):
        """tls.certificates without tls.certificate is an error."""
        conf = os.path.join(self.workdir, "smtpd.conf")
        with open(conf, "w") as f:
            f.write('spool = "%s";\ntls = { certificates = ( %s ); };\n'
                    % (os.path.join(self.workdir, "spool"),
                       self.entry(self.p["beta"])))
        p = subprocess.run([SMTPD, "-t", "-C", conf], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("tls.certificates needs tls.certificate", p.stderr)

    def test_good_config_printed(self):
        """smtpd -t lists each entry with its names."""
        rc, err, conf = self.check([
            self.entry(self.p["beta"]),
            self.entry(self.p["gamma"], ["Gamma.Example.COM"])])
        self.assertEqual(rc, 0, err)
        self.assertIn("TLS by name: certificate %s, key %s, for the names "
                      "in the certificate\n" % (self.p["beta"].cert,
                                                self.p["beta"].key),
                      self.stdout)
        self.assertIn("TLS by name: certificate %s, key %s, for "
                      "gamma.example.com\n" % (self.p["gamma"].cert,
                                               self.p["gamma"].key),
                      self.stdout)


if __name__ == "__main__":
    unittest.main()
