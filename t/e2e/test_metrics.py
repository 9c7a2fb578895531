"""The metrics listener (metrics { listen }) and smtpq stats --prometheus:
what a scrape says matches what the test sent, read with the Prometheus
client library's own parser; the HTTP responder refuses anything but
GET /metrics."""
import base64
import os
import smtplib
import socket
import subprocess
import time
import unittest

from harness import (BUILDDIR, PolicyCase, TRUSTED_ADDR, UNTRUSTED_ADDR,
                     free_port)

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:     # Debian package python3-prometheus-client
    text_string_to_metric_families = None

SMTPQ = os.path.join(BUILDDIR, "smtpq")
RELAY = ('ournets = [ "127.0.0.1/32" ];\n'
         'ourdomains = [ "ours.example" ];\n')


def http(port, request, timeout=10):
    """Sends raw request bytes; returns everything until the server
    closes."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(request)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                return got
            got += b


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


@unittest.skipIf(text_string_to_metric_families is None,
                 "python3-prometheus-client is not installed")
class Metrics(PolicyCase):
    def server(self):
        self.mport = free_port()
        secrets = os.path.join(self.workdir, "secrets")
        with open(secrets, "w") as f:
            f.write("alice:{PLAIN}right-pw\n")
        os.chmod(secrets, 0o600)
        return self.smtpd(config_extra=RELAY + (
            'metrics = { listen = "127.0.0.1:%d"; };\n'
            'auth = { secrets = "%s"; cleartext = true; '
            'throttle = { delay = 0; }; };\n' % (self.mport, secrets)))

    def scrape(self):
        got = http(self.mport, b"GET /metrics HTTP/1.1\r\n"
                   b"Host: localhost\r\n\r\n")
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        self.assertIn(b"Content-Type: text/plain; version=0.0.4", head)
        return samples(body.decode())

    def test_counters_match_traffic(self):
        d = self.server()
        for i in range(3):
            with smtplib.SMTP(d.host, d.port, timeout=10,
                              source_address=(UNTRUSTED_ADDR, 0)) as s:
                s.sendmail("a@example.org", ["u@ours.example"],
                           "Subject: %d\r\n\r\nbody\r\n" % i)
        for i in range(2):
            c = self.client(d)
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
            self.assertReply(c.cmd("RCPT TO:<u@other.example>"), 554,
                             "5.7.1")
            c.cmd("QUIT")
        c = self.client(d, source=TRUSTED_ADDR)
        bad = base64.b64encode(b"\0alice\0wrong-pw").decode()
        self.assertReply(c.cmd("AUTH PLAIN " + bad), 535, "5.7.8")
        good = base64.b64encode(b"\0alice\0right-pw").decode()
        self.assertReply(c.cmd("AUTH PLAIN " + good), 235, "2.7.0")
        c.cmd("QUIT")
        # Six sessions of the test and the harness's wait for the port.
        self.wait_log(d, "smtp disconnect", 7)
        m = self.scrape()
        self.assertEqual(m[("smtpd_messages_accepted_total",
                            frozenset())], 3)
        self.assertEqual(m[("smtpd_refused_total", frozenset(
            {"code": "554", "class": "5xx", "status": "5.7.1"}.items()))],
            2)
        self.assertEqual(m[("smtpd_refused_total", frozenset(
            {"code": "535", "class": "5xx", "status": "5.7.8"}.items()))],
            1)
        self.assertEqual(m[("smtpd_auth_total",
                            frozenset({"result": "failure"}.items()))], 1)
        self.assertEqual(m[("smtpd_auth_total",
                            frozenset({"result": "success"}.items()))], 1)
        self.assertEqual(m[("smtpd_sessions_total", frozenset())], 6 + 1)
        # The scrape's own connection is not an SMTP session; the wait
        # for the port at start was one.
        self.assertEqual(m[("smtpd_sessions_open", frozenset())], 0)
        self.assertEqual(m[("smtpd_accept_latency_seconds_count",
                            frozenset())], 3)
        # Started as root the runner is a process of its own: its
        # delivery counts are not the front's to serve.
        if os.geteuid() == 0:
            self.assertFalse([k for k in m
                              if k[0] == "smtpd_deliveries_total"])
        self.assertEqual(m[("smtpd_accept_latency_seconds_bucket",
                            frozenset({"le": "+Inf"}.items()))], 3)
        # Fine enough for a group commit on a fast disk.
        self.assertLessEqual(m[("smtpd_accept_latency_seconds_bucket",
                                frozenset({"le": "0.0005"}.items()))], 3)
        d.settle()
        self.assertEqual(m[("smtpd_queue_messages",
                            frozenset({"state": "held"}.items()))], 0)
        self.assertEqual(self.scrape()[("smtpd_queue_messages", frozenset(
            {"state": "queued"}.items()))], 3)
        # The same queue, for node_exporter's textfile collector.
        p = subprocess.run([SMTPQ, "-C", d.conf, "stats", "--prometheus"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        q = samples(p.stdout)
        self.assertEqual(q[("smtpd_queue_messages", frozenset(
            {"state": "queued"}.items()))], 3)

    def test_only_get_metrics(self):
        d = self.server()
        for req, status in [
                (b"GET / HTTP/1.1\r\n\r\n", b"404"),
                (b"GET /metrics/x HTTP/1.0\r\n\r\n", b"404"),
                (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                 b"405"),
                (b"GET /metrics SMTP/1.0\r\n\r\n", b"400"),
                (b"EHLO x\r\n\r\n", b"400"),
                (b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"y" * 8000 +
                 b"\r\n\r\n", b"400"),
                (b"GET /metrics HTTP/1.0\r\n\r\n", b"200")]:
            with self.subTest(req=req[:30]):
                got = http(self.mport, req)
                self.assertTrue(got.startswith(b"HTTP/1.1 " + status), got)
        # A client that sends half a request is cut off, and the next
        # scrape is served.
        s = socket.create_connection(("127.0.0.1", self.mport), 10)
        s.sendall(b"GET /met")
        t0 = time.time()
        got = http(self.mport, b"GET /metrics HTTP/1.0\r\n\r\n", timeout=15)
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got)
        self.assertLess(time.time() - t0, 12)
        s.close()
        self.assertIsNotNone(d.proc)
        self.assertIsNone(d.proc.poll())

    def test_off_when_unset(self):
        d = self.smtpd(config_extra=RELAY)
        self.assertNotIn("metrics on", d.logtext())


if __name__ == "__main__":
    unittest.main()
