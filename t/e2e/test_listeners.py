"""Listeners with their own settings (listen groups in smtpd.conf(5)): one
daemon and one spool serving an MX port without AUTH, a submission port
with STARTTLS and AUTH required, and an implicit TLS port -- driven with
swaks, curl and Python's smtplib -- plus PROXY on one listener, -a and -p
as every listener's default, smtpd -t, and the config errors."""
import os
import smtplib
import subprocess

from certs import HOSTNAME, PLAIN_PASS, PLAIN_USER, TlsAuthCase
from harness import (SMTPD, UNTRUSTED_ADDR, Conn, free_port,
                     read_until_closed)
from test_auth import auth_line, need

MSG = (b"From: alice@example.org\r\nTo: bob@elsewhere.example\r\n"
       b"Subject: per listener\r\n\r\nbody\r\n.\r\n")
# Relaying is for ournets and authenticated clients only.
RELAY = 'ournets = [ "127.0.0.1" ]; ourdomains = [ "%s" ];' % HOSTNAME


class ListenerCase(TlsAuthCase):
    def three_ports(self, args=(), extra_listeners="", extra=""):
        """A daemon with port a (plain entry), b (STARTTLS, AUTH required),
        c (implicit TLS, AUTH required) and any extra listener groups."""
        self.a, self.b, self.c = free_port(), free_port(), free_port()
        listen = ('listen = ( "127.0.0.1:%d",\n'
                  ' { address = "127.0.0.1:%d"; name = "submission";'
                  ' tls = "starttls"; auth = "required"; },\n'
                  ' { address = "127.0.0.1:%d"; tls = "implicit";'
                  ' auth = "required"; }%s );' % (self.a, self.b, self.c,
                                                 extra_listeners))
        d = self.server(listen=[], extra=RELAY + "\n" + listen + "\n" + extra,
                        args=args, start=False)
        d.port = self.a
        return d.start()

    def on(self, d, port):
        """Daemon d seen on another of its ports (d.port is what
        self.client() connects to)."""
        d.port = port
        return d


class ThreePorts(ListenerCase):
    def test_port_a_mx(self):
        """The plain entry: STARTTLS offered, AUTH optional, so MAIL
        without AUTH is taken; relaying from outside (127.0.0.9) is
        refused, our domain is taken."""
        d = self.three_ports()
        c = self.client(d, source=UNTRUSTED_ADDR, helo=None)
        lines = self.ehlo(c)
        self.assertIn("250-STARTTLS", lines)
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<bob@elsewhere.example>"), 554,
                         "5.7.1")
        self.assertReply(c.cmd("RCPT TO:<postmaster@%s>" % HOSTNAME), 250)

    @need("swaks")
    def test_port_a_swaks_relay_refused(self):
        """swaks from 127.0.0.9 on port a: the relay is refused (554)."""
        d = self.three_ports()
        p = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(self.a),
             "--local-interface", UNTRUSTED_ADDR, "--from",
             "alice@example.org", "--to", "bob@elsewhere.example"],
            capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("554 5.7.1", p.stdout)
        self.assertEqual(self.messages(d), [])

    def test_port_b_auth_required(self):
        """Port b: MAIL before AUTH gets 530 5.7.0, even from 127.0.0.1;
        AUTH PLAIN before STARTTLS gets 538 5.7.11 (no cleartext); after
        STARTTLS and AUTH the relay is taken."""
        d = self.three_ports()
        self.on(d, self.b)
        c = self.client(d, source="127.0.0.1", helo=None)
        lines = self.ehlo(c)
        self.assertIn("250-STARTTLS", lines)
        self.assertIsNone(auth_line(lines))
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 530, "5.7.0")
        self.assertReply(self.auth_plain(c), 538, "5.7.11")
        self.starttls(c)
        self.assertEqual(auth_line(self.ehlo(c)), {"PLAIN", "LOGIN"})
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 530, "5.7.0")
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        self.start_mail(c)
        self.queued_id(self.send_data(c, MSG))
        self.assertEqual(self.messages(d)[0][0]["auth"], PLAIN_USER)

    @need("swaks")
    def test_port_b_swaks(self):
        """swaks on port b: without AUTH the sender is refused with 530;
        with --tls --auth the message is queued."""
        d = self.three_ports()
        base = ["swaks", "--server", "127.0.0.1", "--port", str(self.b),
                "--from", "alice@example.org", "--to",
                "bob@elsewhere.example"]
        p = subprocess.run(base, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("530 5.7.0", p.stdout)
        p = subprocess.run(
            base + ["--tls", "--tls-verify", "--tls-ca-path",
                    self.certs["ca"].cert, "--tls-sni", HOSTNAME,
                    "--auth", "PLAIN", "--auth-user", PLAIN_USER,
                    "--auth-password", PLAIN_PASS],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(len(self.messages(d)), 1)

    def test_port_b_smtplib(self):
        """smtplib on port b: starttls(), login(), sendmail()."""
        d = self.three_ports()
        with smtplib.SMTP("127.0.0.1", self.b, timeout=10) as s:
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                s.sendmail("alice@example.org", ["bob@elsewhere.example"],
                           MSG[:-3])
            self.assertEqual(cm.exception.smtp_code, 530)
            s.rset()
            s.starttls(context=self.client_ctx())
            s.login(PLAIN_USER, PLAIN_PASS)
            s.sendmail("alice@example.org", ["bob@elsewhere.example"],
                       MSG[:-3])
        self.assertEqual(len(self.messages(d)), 1)

    def test_port_c_smtplib(self):
        """smtplib.SMTP_SSL on port c: TLS from the first byte; 530 before
        login, queued after."""
        d = self.three_ports()
        with smtplib.SMTP_SSL("127.0.0.1", self.c, context=self.client_ctx(),
                              timeout=10) as s:
            code, msg = s.ehlo()
            self.assertNotIn(b"STARTTLS", msg)
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                s.sendmail("alice@example.org", ["bob@elsewhere.example"],
                           MSG[:-3])
            self.assertEqual(cm.exception.smtp_code, 530)
            s.rset()
            s.login(PLAIN_USER, PLAIN_PASS)
            s.sendmail("alice@example.org", ["bob@elsewhere.example"],
                       MSG[:-3])
        self.assertEqual(self.messages(d)[0][0]["auth"], PLAIN_USER)

    @need("curl")
    def test_port_c_curl(self):
        """curl smtps:// on port c: refused without a user (530), sent
        with --user."""
        d = self.three_ports()
        path = os.path.join(self.workdir, "msg.eml")
        with open(path, "wb") as f:
            f.write(MSG[:-3])
        base = ["curl", "-sS", "--max-time", "20",
                "--url", "smtps://%s:%d" % (HOSTNAME, self.c),
                "--resolve", "%s:%d:127.0.0.1" % (HOSTNAME, self.c),
                "--cacert", self.certs["ca"].cert,
                "--mail-from", "alice@example.org",
                "--mail-rcpt", "bob@elsewhere.example", "--upload-file", path]
        p = subprocess.run(base, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertIn("530", p.stderr)
        p = subprocess.run(base + ["--user", "%s:%s" % (PLAIN_USER,
                                                        PLAIN_PASS)],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.messages(d)[0][0]["auth"], PLAIN_USER)

    def test_one_spool(self):
        """Mail through a, b and c lands in the one spool."""
        d = self.three_ports()
        c = self.client(d, source="127.0.0.1")
        self.start_mail(c)
        self.queued_id(self.send_data(c, MSG))
        with smtplib.SMTP("127.0.0.1", self.b, timeout=10) as s:
            s.starttls(context=self.client_ctx())
            s.login(PLAIN_USER, PLAIN_PASS)
            s.sendmail("alice@example.org", ["bob@elsewhere.example"],
                       MSG[:-3])
        with smtplib.SMTP_SSL("127.0.0.1", self.c, context=self.client_ctx(),
                              timeout=10) as s:
            s.login(PLAIN_USER, PLAIN_PASS)
            s.sendmail("alice@example.org", ["bob@elsewhere.example"],
                       MSG[:-3])
        self.assertEqual(len(self.messages(d)), 3)


class OtherSettings(ListenerCase):
    def test_tls_none_cleartext(self):
        """tls = "none" with auth { cleartext = true; }: no STARTTLS
        offered (502 if tried), PLAIN and LOGIN offered in clear, AUTH
        works; port a of the same daemon still refuses PLAIN in clear."""
        d4 = free_port()
        d = self.three_ports(extra_listeners=(
            ',\n { address = "127.0.0.1:%d"; tls = "none";'
            ' auth = { required = true; cleartext = true; }; }' % d4))
        self.on(d, d4)
        c = self.client(d, source="127.0.0.1", helo=None)
        lines = self.ehlo(c)
        self.assertNotIn("250-STARTTLS", lines)
        self.assertEqual(auth_line(lines), {"PLAIN", "LOGIN"})
        self.assertReply(c.cmd("STARTTLS"), 502, "5.5.1")
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 530, "5.7.0")
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        self.on(d, self.a)
        c = self.client(d, source="127.0.0.1")
        self.assertReply(self.auth_plain(c), 538, "5.7.11")

    def test_auth_off(self):
        """auth = "off": AUTH is not offered and answers 502."""
        p = free_port()
        d = self.three_ports(extra_listeners=(
            ',\n { address = "127.0.0.1:%d"; auth = "off"; }' % p))
        self.on(d, p)
        c = self.client(d, source="127.0.0.1", helo=None)
        self.ehlo(c)
        self.starttls(c)
        self.assertIsNone(auth_line(self.ehlo(c)))
        self.assertReply(self.auth_plain(c), 502, "5.5.1")

    def test_dash_a_is_the_default(self):
        """With -a the plain entry requires AUTH too, but a listener with
        auth = "optional" does not."""
        p = free_port()
        d = self.three_ports(args=["-a"], extra_listeners=(
            ',\n { address = "127.0.0.1:%d"; auth = "optional"; }' % p))
        c = self.client(d, source="127.0.0.1")
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 530, "5.7.0")
        self.on(d, p)
        c = self.client(d, source="127.0.0.1")
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250)

    def test_dash_p_is_the_default(self):
        """With -p PLAIN works in clear on port b; a listener with
        auth { cleartext = false; } still refuses it."""
        p = free_port()
        d = self.three_ports(args=["-p"], extra_listeners=(
            ',\n { address = "127.0.0.1:%d";'
            ' auth = { cleartext = false; }; }' % p))
        self.on(d, self.b)
        c = self.client(d, source="127.0.0.1")
        self.assertReply(self.auth_plain(c), 235, "2.7.0")
        self.on(d, p)
        c = self.client(d, source="127.0.0.1")
        self.assertReply(self.auth_plain(c), 538, "5.7.11")

    def test_proxy_listener(self):
        """proxy = true on one listener: the balancer's header names the
        client; the plain port of the same daemon refuses a header."""
        p = free_port()
        d = self.three_ports(
            extra_listeners=(',\n { address = "127.0.0.1:%d"; proxy = true; }'
                             % p),
            extra='proxy = { trusted = [ "127.0.0.1" ]; };')
        self.on(d, p)
        c = self.track(Conn("127.0.0.1", p))
        c.send(b"PROXY TCP4 192.0.2.7 127.0.0.1 4321 25\r\n")
        self.assertEqual(c.reply()[0], 220)
        self.assertReply(c.cmd("QUIT"), 221)
        self.wait_log(d, "address=192.0.2.7 ")
        self.assertIn("address=192.0.2.7 ", d.logtext())
        c = self.track(Conn("127.0.0.1", self.a))
        c.send(b"PROXY TCP4 192.0.2.8 127.0.0.1 4321 25\r\n")
        # Refused before or right after the greeting, as it arrives.
        data = read_until_closed(c)
        self.assertNotIn(b"250", data)
        self.wait_log(d, "PROXY header on a listener not")
        self.assertNotIn("address=192.0.2.8", d.logtext())


class ConfigCheck(ListenerCase):
    def check(self, conf_text):
        path = os.path.join(self.workdir, "check.conf")
        with open(path, "w") as f:
            f.write('hostname = "%s";\nspool = "%s";\n%s\n' % (
                HOSTNAME, os.path.join(self.workdir, "spool"), conf_text))
        return subprocess.run([SMTPD, "-t", "-C", path], capture_output=True,
                              text=True, timeout=30)

    def tls_auth(self):
        pair = self.certs["server"]
        return ('tls = { certificate = "%s"; key = "%s"; };\n'
                'auth = { secrets = "%s"; };' % (pair.cert, pair.key,
                                                 self.write_secrets()))

    def test_t_prints_each_listener(self):
        """smtpd -t prints every listener with its effective settings,
        the old forms (tls.listen, proxy.listen) included."""
        pair = self.certs["server"]
        p = self.check(
            'listen = ( "127.0.0.1:25", { address = ":587"; name = '
            '"submission"; auth = "required"; }, { address = ":465"; '
            'tls = "implicit"; auth = "required"; }, { address = '
            '"127.0.0.1:2526"; proxy = true; tls = "none"; } );\n'
            'tls = { certificate = "%s"; key = "%s"; listen = '
            '"127.0.0.1:1465"; };\nauth = { secrets = "%s"; cleartext = '
            'true; };\nproxy = { trusted = [ "127.0.0.1" ]; listen = '
            '"127.0.0.1:2527"; };' % (pair.cert, pair.key,
                                      self.write_secrets()))
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout
        for line in (
                "listen: 127.0.0.1:25 (listen): STARTTLS; AUTH optional, "
                "cleartext allowed",
                'listen: :587 name "submission" (listen): STARTTLS; AUTH '
                "required, cleartext allowed",
                "listen: :465 (listen): implicit TLS; AUTH required, over TLS",
                "listen: 127.0.0.1:2526 (listen): no TLS; AUTH optional, "
                "cleartext allowed; PROXY header first",
                "listen: 127.0.0.1:1465 (tls.listen): implicit TLS",
                "listen: 127.0.0.1:2527 (proxy.listen): STARTTLS"):
            self.assertIn(line, out)

    def test_errors(self):
        """Bad listener settings: exit 78 with file:line and what is
        wrong."""
        ta = self.tls_auth()
        cases = [
            ('listen = ( { address = ":465"; tls = "implicit"; } );',
             'tls = "implicit" needs tls.certificate'),
            ('listen = ( { address = ":587"; auth = "required"; } );',
             "AUTH required needs auth.secrets"),
            ('listen = ( { address = ":2526"; proxy = true; } );',
             "proxy needs proxy.trusted"),
            ('listen = ( { address = ":25"; port = 25; } );\n' + ta,
             'unknown setting "port" in a listener'),
            ('listen = ( { tls = "none"; } );',
             'a listener needs address'),
            ('listen = ( { address = ":25"; tls = "maybe"; } );\n' + ta,
             'tls must be "starttls", "implicit" or "none"'),
            ('listen = ( { address = ":25"; auth = "sometimes"; } );\n' + ta,
             'auth must be "required"'),
            ('listen = ( { address = ":25"; name = "mx"; },'
             ' { address = ":26"; name = "mx"; } );',
             'two listeners named "mx"'),
            ('listen = ( { address = "127.0.0.1:99999"; } );', "bad listen address"),
            ('listen = ( 25 );', "listen entries must be strings or groups"),
            # An array [ ] holds scalars of one type: libconfig says so.
            ('listen = [ "127.0.0.1:25", { address = ":26"; } ];', ":3:"),
        ]
        for text, want in cases:
            with self.subTest(text=text):
                p = self.check(text)
                self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
                self.assertIn(want, p.stderr)
                self.assertRegex(p.stderr, r"check\.conf:\d+: ")
