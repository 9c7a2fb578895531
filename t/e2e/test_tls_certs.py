"""Certificates in smtpd's TLS: reload on SIGHUP, client certificates
(verified against tls.client_ca, relaying for a trusted one) and session
tickets, with certificates made with certtool."""
import os
import shutil
import signal
import unittest

import certs
from certs import HOSTNAME, TlsAuthCase
from test_tls import MSG, ehlo_keywords


class CertificateReload(TlsAuthCase):
    """SIGHUP reads the certificate files again."""

    def copy_pair(self, name, cert, key):
        shutil.copyfile(self.certs[name].cert, cert + ".new")
        shutil.copyfile(self.certs[name].key, key + ".new")
        os.chmod(key + ".new", 0o600)
        os.replace(cert + ".new", cert)
        os.replace(key + ".new", key)

    def setup_files(self):
        cert = os.path.join(self.workdir, "cert.pem")
        key = os.path.join(self.workdir, "key.pem")
        self.copy_pair("server", cert, key)
        return certs.Pair(cert, key)

    def hup(self, d, count):
        d.proc.send_signal(signal.SIGHUP)
        self.wait_log(d, "reloaded", count=count)

    def test_new_certificate_after_sighup(self):
        """After replacing the files and SIGHUP, new STARTTLS and implicit
        sessions get the new certificate; a session opened before keeps
        its TLS and delivers a message."""
        pair = self.setup_files()
        d = self.server(server_cert=pair, implicit=True)
        old = self.tls_client(d)
        self.assertEqual(old.sock.getpeercert(True), self.certs["server"].der())
        self.copy_pair("server2", pair.cert, pair.key)
        self.hup(d, 1)
        new = self.tls_client(d)
        self.assertEqual(new.sock.getpeercert(True), self.certs["server2"].der())
        imp = self.tls_open(d)
        self.assertEqual(imp.sock.getpeercert(True), self.certs["server2"].der())
        self.start_mail(old)
        self.queued_id(self.send_data(old, MSG + b".\r\n"))
        self.assertReply(old.cmd("QUIT"), 221)

    def test_sighup_turns_tls_on(self):
        """A server started without tls offers STARTTLS to new sessions
        after a SIGHUP with a tls group."""
        d = self.server(tls=False)
        c = self.client(d, source="127.0.0.1", helo=None)
        self.assertNotIn("STARTTLS", ehlo_keywords(self.ehlo(c)))
        with open(d.conf, "a") as f:
            f.write('tls = { certificate = "%s"; key = "%s"; };\n'
                    % (self.certs["server"].cert, self.certs["server"].key))
        self.hup(d, 1)
        c = self.client(d, source="127.0.0.1", helo=None)
        self.assertIn("STARTTLS", ehlo_keywords(self.ehlo(c)))
        self.starttls(c)
        self.ehlo(c)

    def test_broken_certificate_keeps_old(self):
        """A key that no longer matches at SIGHUP is logged and the old
        certificate stays in use."""
        pair = self.setup_files()
        d = self.server(server_cert=pair)
        shutil.copyfile(self.certs["server2"].cert, pair.cert)
        d.proc.send_signal(signal.SIGHUP)
        self.wait_log(d, "keeping the old certificate")
        c = self.tls_client(d)
        self.assertEqual(c.sock.getpeercert(True), self.certs["server"].der())


class ClientCertificates(TlsAuthCase):
    """tls.client_ca and tls.client_cert_trusted."""

    def relay_server(self, trusted=True, implicit=False):
        return self.server(
            implicit=implicit,
            tls_extra='client_ca = "%s"; client_cert_trusted = %s;'
                      % (self.certs["ca"].cert, "true" if trusted else "false"),
            extra='ournets = []; ourdomains = [ "%s" ];' % HOSTNAME)

    def relay(self, c):
        self.assertReply(c.cmd("MAIL FROM:<alice@example.org>"), 250)
        return c.cmd("RCPT TO:<bob@elsewhere.example>")

    def test_trusted_client_cert_relays(self):
        """A client with a CA-signed certificate may relay without AUTH;
        the log says 'client certificate verified' with its subject."""
        d = self.relay_server()
        c = self.tls_client(d, source="127.0.0.9",
                            ctx=self.client_ctx(cert="client"))
        self.assertReply(self.relay(c), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(MSG + b".\r\n")
        self.queued_id(c.reply())
        text = self.wait_log(d, "client certificate verified")
        self.assertIn("client certificate verified: CN=client.test.example", text)

    def test_no_client_cert_no_relay(self):
        """The same server without a client certificate: 554 5.7.1."""
        d = self.relay_server()
        c = self.tls_client(d, source="127.0.0.9")
        self.assertReply(self.relay(c), 554, "5.7.1")
        self.assertNotIn("client certificate verified", d.logtext())

    def test_untrusted_ca_no_relay(self):
        """A certificate from another CA: the handshake goes on, the log
        says NOT verified, and relaying is refused."""
        d = self.relay_server()
        c = self.tls_client(d, source="127.0.0.9",
                            ctx=self.client_ctx(cert="rogue_client"))
        self.assertReply(self.relay(c), 554, "5.7.1")
        self.wait_log(d, "client certificate NOT verified")

    def test_verified_but_not_trusted(self):
        """client_cert_trusted = false: the certificate is verified and
        logged but gives no relaying."""
        d = self.relay_server(trusted=False)
        c = self.tls_client(d, source="127.0.0.9",
                            ctx=self.client_ctx(cert="client"))
        self.assertReply(self.relay(c), 554, "5.7.1")
        self.wait_log(d, "client certificate verified")

    def test_implicit_tls_client_cert(self):
        """On the implicit listener a verified client certificate gives
        relaying too."""
        d = self.relay_server(implicit=True)
        c = self.tls_open(d, ctx=self.client_ctx(cert="client"),
                          source="127.0.0.9")
        self.assertReply(self.relay(c), 250, "2.1.5")

    def test_server_only_certificate_not_verified(self):
        """A CA-signed certificate meant for servers only (extended key
        usage serverAuth) does not verify as a client certificate and
        gives no relaying."""
        d = self.relay_server()
        c = self.tls_client(d, source="127.0.0.9",
                            ctx=self.client_ctx(cert="server"))
        self.assertReply(self.relay(c), 554, "5.7.1")
        text = self.wait_log(d, "client certificate NOT verified")
        self.assertNotIn("client certificate verified", text)

    def test_expired_client_cert_not_verified(self):
        """An expired client certificate from the trusted CA: NOT verified,
        no relaying."""
        d = self.relay_server()
        c = self.tls_client(d, source="127.0.0.9",
                            ctx=self.client_ctx(cert="client_expired"))
        self.assertReply(self.relay(c), 554, "5.7.1")
        text = self.wait_log(d, "client certificate NOT verified")
        self.assertNotIn("client certificate verified", text)

    def test_no_client_ca_no_request(self):
        """Without tls.client_ca the server asks for no certificate: a
        client that has one sends none, and nothing is logged about it."""
        d = self.server(extra='ournets = []; ourdomains = [ "%s" ];' % HOSTNAME)
        c = self.tls_client(d, source="127.0.0.9",
                            ctx=self.client_ctx(cert="client"))
        self.assertReply(self.relay(c), 554, "5.7.1")
        self.assertNotIn("client certificate", d.logtext())


    def test_resumed_session_keeps_client_cert(self):
        """A session resumed from a ticket of a session with a verified
        client certificate is still trusted (the certificate is logged as
        verified again) and may relay."""
        d = self.relay_server()
        ctx = self.client_ctx(cert="client")
        c = self.tls_client(d, source="127.0.0.9", ctx=ctx)
        self.assertReply(c.cmd("NOOP"), 250)
        sess = c.sock.session
        self.assertReply(c.cmd("QUIT"), 221)
        c = self.client(d, source="127.0.0.9")
        self.assertReply(c.cmd("STARTTLS"), 220)
        c.sock = ctx.wrap_socket(c.sock, server_hostname=HOSTNAME, session=sess)
        self.ehlo(c)
        self.assertTrue(c.sock.session_reused)
        self.assertReply(self.relay(c), 250, "2.1.5")
        self.wait_log(d, "client certificate verified", count=2)


class SessionTickets(TlsAuthCase):
    """tls.tickets: resumption for returning clients."""

    def first_session(self, d, ctx):
        c = self.tls_client(d, ctx=ctx)
        # TLS 1.3 tickets arrive after the handshake; a reply pulls them in.
        self.assertReply(c.cmd("NOOP"), 250)
        sess = c.sock.session
        self.assertReply(c.cmd("QUIT"), 221)
        return sess

    def resumed(self, d, ctx, sess):
        c = self.client(d, source="127.0.0.1")
        self.assertReply(c.cmd("STARTTLS"), 220, "2.0.0")
        c.sock = ctx.wrap_socket(c.sock, server_hostname=HOSTNAME,
                                 session=sess)
        self.ehlo(c)
        return c.sock.session_reused

    def test_tickets_resume(self):
        """With the default tickets = true a second connection resumes the
        first one's session."""
        d = self.server()
        ctx = self.client_ctx()
        sess = self.first_session(d, ctx)
        self.assertTrue(sess is not None and sess.has_ticket)
        self.assertTrue(self.resumed(d, ctx, sess))

    def test_tickets_off(self):
        """tickets = false: no ticket is offered and the next connection
        does a full handshake."""
        d = self.server(tls_extra="tickets = false;")
        ctx = self.client_ctx()
        sess = self.first_session(d, ctx)
        self.assertFalse(sess is not None and sess.has_ticket)
        self.assertFalse(self.resumed(d, ctx, sess))

    def test_reload_changes_ticket_key(self):
        """After SIGHUP a ticket from before no longer resumes: the ticket
        key changes on every reload."""
        d = self.server()
        ctx = self.client_ctx()
        sess = self.first_session(d, ctx)
        d.proc.send_signal(signal.SIGHUP)
        self.wait_log(d, "reloaded")
        self.assertFalse(self.resumed(d, ctx, sess))


if __name__ == "__main__":
    unittest.main()
