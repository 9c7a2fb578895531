"""Policy delegation (policy_services): smtpd asks a service that speaks the
Postfix SMTPD access policy protocol.  The services here are written in
the test so that each action, and each way of failing, can be chosen:
one that answers from a script, one that hangs, closes or talks garbage."""
import os
import socket
import threading
import time

from harness import (PolicyCase, TRUSTED_ADDR, UNTRUSTED_ADDR, free_port,
                     parse_spool)

BASE = ('ournets = [ "127.0.0.1/32" ];\n'
        'ourdomains = [ "ours.example" ];\n')
MSG = (b"From: a@isp.net\r\nTo: b@ours.example\r\nSubject: hi\r\n\r\n"
       b"body line\r\n.\r\n")


class PolicyServer:
    """A threaded policy service on 127.0.0.1.  answer(attrs) gives the
    reply for each request: a string (the action) or one of "hang",
    "close", or raw bytes sent as they are."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.conns = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, c):
        buf = b""
        c.settimeout(30)
        try:
            while not self.stop.is_set():
                while b"\n\n" not in buf:
                    data = c.recv(4096)
                    if not data:
                        return
                    buf += data
                req, buf = buf.split(b"\n\n", 1)
                attrs = dict(l.split("=", 1) for l in
                             req.decode().split("\n"))
                with self.lock:
                    self.requests.append(attrs)
                a = self.answer(attrs)
                if a == "hang":
                    self.stop.wait(30)
                    return
                if a == "close":
                    return
                if isinstance(a, str) and a.startswith("then-close "):
                    c.sendall(("action=%s\n\n" % a[11:]).encode())
                    return
                if isinstance(a, bytes):
                    c.sendall(a)
                else:
                    c.sendall(("action=%s\n\n" % a).encode())
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop.set()
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def services(port, **kw):
    opts = {"address": '"inet:127.0.0.1:%d"' % port}
    opts.update(kw)
    return ("policy_services = ( { %s } );\n" %
            " ".join("%s = %s;" % (k, v) for k, v in opts.items()))


class Delegate(PolicyCase):

    def service(self, answer):
        s = PolicyServer(answer)
        self.addCleanup(s.close)
        return s

    def daemon(self, srv, **kw):
        return self.smtpd(config_extra=BASE + services(srv.port, **kw),
                          limits={"tarpit_delay": 0, "errors": 1000})

    def test_attributes_and_actions(self):
        """The request carries the Postfix attributes; each action gives
        its reply; requests share one connection."""
        actions = {
            "reject@ours.example": "REJECT no such person here",
            "defer@ours.example": "DEFER come back later",
            "dip@ours.example": "DEFER_IF_PERMIT greylisted",
            "num@ours.example": "521 5.7.9 custom refusal",
            "plain@ours.example": "450 busy",
            "ok@ours.example": "OK",
            "warn@ours.example": "WARN just so you know",
            "redir@ours.example": "REDIRECT x@elsewhere.example",
        }
        srv = self.service(lambda a: actions.get(a["recipient"], "DUNNO"))
        d = self.daemon(srv, stage='"rcpt"', default_action='"defer"')
        c = self.client(d, helo="mail.isp.net")
        self.assertReply(c.cmd("MAIL FROM:<a@isp.net> SIZE=1234"), 250)
        want = {
            "reject": (554, "5.7.1", "no such person here"),
            "defer": (450, "4.7.1", "come back later"),
            "dip": (450, "4.7.1", "greylisted"),
            "num": (521, "5.7.9", "custom refusal"),
            "plain": (450, "4.7.1", "busy"),
            "ok": (250, "2.1.5", None),
            "warn": (250, "2.1.5", None),
            "redir": (250, "2.1.5", None),
            "dunno": (250, "2.1.5", None),
        }
        for user, (code, ecode, text) in want.items():
            rep = c.cmd("RCPT TO:<%s@ours.example>" % user)
            self.assertReply(rep, code, ecode)
            if text:
                self.assertIn(text, rep[1][-1])
        rq = srv.requests[0]
        self.assertEqual(rq["request"], "smtpd_access_policy")
        self.assertEqual(rq["protocol_state"], "RCPT")
        self.assertEqual(rq["protocol_name"], "ESMTP")
        self.assertEqual(rq["client_address"], UNTRUSTED_ADDR)
        self.assertEqual(rq["helo_name"], "mail.isp.net")
        self.assertEqual(rq["sender"], "a@isp.net")
        self.assertEqual(rq["recipient"], "reject@ours.example")
        self.assertEqual(rq["size"], "1234")
        self.assertEqual(rq["server_address"], "127.0.0.1")
        self.assertEqual(rq["server_port"], str(d.port))
        for k in ("queue_id", "instance", "sasl_method", "sasl_username",
                  "encryption_protocol", "encryption_cipher",
                  "encryption_keysize", "ccert_subject", "client_name",
                  "reverse_client_name", "recipient_count", "stress"):
            self.assertIn(k, rq)
        # One transaction, one instance; every request on one connection.
        self.assertEqual(len({r["instance"] for r in srv.requests}), 1)
        self.assertEqual(srv.connections, 1)
        self.assertReply(c.cmd("RSET"), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@isp.net>"), 250)
        self.assertReply(c.cmd("RCPT TO:<x@ours.example>"), 250)
        self.assertNotEqual(srv.requests[-1]["instance"],
                            srv.requests[0]["instance"])
        text = d.logtext()
        self.assertIn("just so you know", text)
        self.assertIn("(not done here)", text)

    def test_prepend_hold_discard(self):
        """PREPEND adds its header to the queued message, HOLD queues it
        on hold, DISCARD answers 250 and keeps nothing."""
        def answer(a):
            return {"hold@ours.example": "HOLD",
                    "gone@ours.example": "DISCARD"}.get(
                a["recipient"], "PREPEND X-Policy: checked by test")
        srv = self.service(answer)
        d = self.daemon(srv)
        c = self.client(d)
        self.start_mail(c, "<a@isp.net>", ["<bob@ours.example>"])
        qid = self.queued_id(self.send_data(c, MSG))
        env, body = parse_spool(self.spooled(d, qid))
        self.assertIn(b"\r\nX-Policy: checked by test\r\nFrom: a@isp.net",
                      body)
        self.assertFalse(os.path.exists(os.path.join(d.spool, "hold", qid)))
        self.start_mail(c, "<a@isp.net>", ["<hold@ours.example>"])
        qid = self.queued_id(self.send_data(c, MSG))
        self.spooled(d, qid)
        self.assertTrue(os.path.exists(os.path.join(d.spool, "hold", qid)))
        self.start_mail(c, "<a@isp.net>", ["<gone@ours.example>"])
        gone = self.queued_id(self.send_data(c, MSG))
        self.wait_log(d, "discarded id=" + gone)
        d.settle()
        self.assertEqual(len(d.queued()), 2)
        self.assertNotIn(gone, d.queued())

    def test_end_of_message(self):
        """stage = "data": asked once at the end with the size and queue
        id; a REJECT there refuses the message, a PREPEND is in it."""
        def answer(a):
            if a["protocol_state"] != "END-OF-MESSAGE":
                return "REJECT asked at the wrong time"
            if a["sender"] == "bad@isp.net":
                return "REJECT 5.7.1 content refused"
            return "PREPEND X-Scanned: yes"
        srv = self.service(answer)
        d = self.daemon(srv, stage='"data"')
        c = self.client(d)
        self.start_mail(c, "<a@isp.net>",
                        ["<b@ours.example>", "<c@ours.example>"])
        qid = self.queued_id(self.send_data(c, MSG))
        rq = srv.requests[-1]
        self.assertEqual(rq["queue_id"], qid)
        self.assertEqual(rq["recipient_count"], "2")
        self.assertEqual(rq["recipient"], "")
        self.assertGreater(int(rq["size"]), len(MSG) - 3)
        env, body = parse_spool(self.spooled(d, qid))
        self.assertTrue(body.startswith(b"X-Scanned: yes\r\nReceived: "),
                        body[:100])
        self.assertIn(b"\r\n\r\nbody line\r\n", body)
        self.start_mail(c, "<bad@isp.net>", ["<b@ours.example>"])
        rep = self.send_data(c, MSG)
        self.assertReply(rep, 554, "5.7.1")
        self.assertIn("content refused", rep[1][-1])
        d.settle()
        self.assertEqual(list(d.queued()), [qid])
        self.assertEqual(len(srv.requests), 2)

    def test_stale_pooled_connection(self):
        """A service that closes each connection after its reply (as
        after a restart): the pooled connection is found closed and the
        request goes again on a new one, unnoticed by the client."""
        srv = self.service(lambda a: "then-close REJECT no "
                           + a["recipient"])
        d = self.daemon(srv, default_action='"defer"')
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<a@isp.net>"), 250)
        for i in range(3):
            rep = c.cmd("RCPT TO:<u%d@ours.example>" % i)
            self.assertReply(rep, 554, "5.7.1")
            self.assertIn("u%d@ours.example" % i, rep[1][-1])
        self.assertEqual(srv.connections, 3)
        self.assertNotIn("unavailable", d.logtext())

    def test_trusted_clients_not_asked(self):
        """Trusted clients are not asked unless check_trusted = true."""
        srv = self.service(lambda a: "REJECT no")
        d = self.daemon(srv)
        c = self.client(d, source=TRUSTED_ADDR)
        self.start_mail(c, "<a@ours.example>", ["<b@ours.example>"])
        self.assertEqual(srv.requests, [])
        c.close()
        d.stop()
        srv2 = self.service(lambda a: "REJECT no")
        d2 = self.daemon(srv2, check_trusted="true")
        c2 = self.client(d2, source=TRUSTED_ADDR)
        self.assertReply(c2.cmd("MAIL FROM:<a@ours.example>"), 250)
        self.assertReply(c2.cmd("RCPT TO:<b@ours.example>"), 554, "5.7.1")

    def failing(self, answer, action, timeout=1):
        srv = self.service(answer)
        d = self.daemon(srv, timeout=timeout,
                        default_action='"%s"' % action)
        return srv, d

    def test_hang_defers_within_timeout(self):
        """A service that never answers: 451 4.3.0 after the timeout
        while other sessions go on; nothing accepted is lost."""
        srv, d = self.failing(lambda a: "hang" if a["recipient"].startswith(
            "slow") else "DUNNO", "defer", timeout=4)
        ok = self.client(d)
        self.start_mail(ok, "<a@isp.net>", ["<b@ours.example>"])
        qid = self.queued_id(self.send_data(ok, MSG))
        slow = self.client(d)
        self.assertReply(slow.cmd("MAIL FROM:<a@isp.net>"), 250)
        slow.send(b"RCPT TO:<slow@ours.example>\r\n")
        t0 = time.monotonic()
        # Meanwhile another session is served at once.
        other = self.client(d)
        self.start_mail(other, "<a@isp.net>", ["<c@ours.example>"])
        self.assertLess(time.monotonic() - t0, 3.9)
        rep = slow.reply()
        self.assertReply(rep, 451, "4.3.0")
        self.assertGreaterEqual(time.monotonic() - t0, 3.5)
        self.queued_id(self.send_data(other, MSG))
        self.assertEqual(len(self.wait_queued(d, 2)), 2)
        self.assertIn(qid, d.queued())
        self.assertIn("no reply in time", d.logtext())

    def test_garbage_close_and_down(self):
        """A reply that is not the protocol, a closed connection, or no
        service at all: default_action decides (defer, or dunno)."""
        for answer, why in (
                (lambda a: b"what?\n\n", "not a policy reply"),
                (lambda a: b"action=FROBNICATE\n\n", "unknown action"),
                (lambda a: b"x" * 10000, "reply too long"),
                (lambda a: "close", "Connection reset")):
            for action, code in (("defer", 451), ("dunno", 250)):
                srv, d = self.failing(answer, action)
                c = self.client(d)
                self.assertReply(c.cmd("MAIL FROM:<a@isp.net>"), 250)
                rep = c.cmd("RCPT TO:<b@ours.example>")
                self.assertEqual(rep[0], code, (why, action, rep))
                if code == 451:
                    self.assertReply(rep, 451, "4.3.0")
                self.assertIn(why, d.logtext())
                c.close()
                d.stop()
        port = free_port()
        for action, code in (("defer", 451), ("dunno", 250)):
            d = self.smtpd(config_extra=BASE + services(
                port, default_action='"%s"' % action))
            c = self.client(d)
            self.assertReply(c.cmd("MAIL FROM:<a@isp.net>"), 250)
            self.assertEqual(c.cmd("RCPT TO:<b@ours.example>")[0], code)
            self.assertIn("cannot connect", d.logtext())
            c.close()
            d.stop()

    def test_config_errors(self):
        """Bad settings are refused by smtpd -t with the line."""
        import subprocess
        from harness import SMTPD
        for bad, msg in (('address = "nowhere";', "bad policy service"),
                         ('address = "inet:127.0.0.1:1"; stage = "helo";',
                          "stage must be"),
                         ('address = "inet:127.0.0.1:1"; timeout = "0s";',
                          "timeout must be"),
                         ('address = "inet:127.0.0.1:1"; '
                          'default_action = "reject";', "default_action"),
                         ('address = "inet:127.0.0.1:1"; colour = 1;',
                          "unknown setting")):
            d = self.smtpd(start=False, config_extra=(
                "policy_services = ( { %s } );" % bad))
            p = subprocess.run([SMTPD, "-t", "-C", d.conf],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
            self.assertIn(msg, p.stderr)
        d = self.smtpd(start=False, config_extra=services(
            10023, stage='"both"', timeout='"7s"'))
        p = subprocess.run([SMTPD, "-t", "-C", d.conf], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("policy service inet:127.0.0.1:10023: asked at RCPT "
                      "and end of data, reply within 7 s", p.stdout)
