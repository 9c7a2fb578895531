"""MTA-STS (RFC 8461) and TLS reports (RFC 8460), end to end, inside a
private network namespace (dnsns.py): dnsmasq serves the _mta-sts and
_smtp._tls TXT records and the mta-sts.DOMAIN addresses; a Python
http.server with TLS on 127.0.0.21:443 serves the policies and counts
the fetches; the MX hosts are aiosmtpd with STARTTLS.  Every certificate
comes from a test CA made with certtool and trusted through tls_cafile;
a second CA nobody trusts signs the bad ones.

The smtp client (-o tls_policy=mta-sts) and the queue's relay route
(tls = "mta-sts") go through the same client library; the queue also
records the outcomes that smtpq tlsrpt and the runner turn into
reports."""
import gzip
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dnsns
from dnsns import inside
from qharness import QueueCase, maildir_files, parse_mail, read_bytes, wait_for

try:
    from clientkit import (Aio, ClientCase, Recorder, smtp, EX_OK,
                           EX_TEMPFAIL)
    HAVE_AIOSMTPD = True
except ImportError:
    HAVE_AIOSMTPD = False
    ClientCase = unittest.TestCase

WEB = "127.0.0.21"          # mta-sts.*.test
MX_GOOD = "127.0.0.20"      # mx.sts.test, mail.nomatch.test
MX_ROGUE = "127.0.0.22"     # mx.badcert.test (the untrusted CA's)
MX_SWAP = "127.0.0.23"      # mx.tlsrpt.test (either)
DNS2 = "127.0.0.3"          # cache.test, answers changed by the test
FAST = "retry_min = 1; retry_max = 2; scan_interval = 1;"
RUA = "tls-reports@reports.test"
TLSRPT = 'tlsrpt = { from = "tlsrpt@example.org"; organization = "Example Org"; };'
DOMAINS = ("sts", "nomatch", "badcert", "testing", "cache", "tlsrpt")

POLICIES = {
    "sts.test": "version: STSv1\nmode: enforce\nmx: *.sts.test\n"
                "max_age: 86400\n",
    "nomatch.test": "version: STSv1\nmode: enforce\nmx: mx.sts.test\n"
                    "max_age: 86400\n",
    "badcert.test": "version: STSv1\nmode: enforce\nmx: mx.badcert.test\n"
                    "max_age: 86400\n",
    "testing.test": "version: STSv1\nmode: testing\nmx: mx.badcert.test\n"
                    "max_age: 86400\n",
    "cache.test": "version: STSv1\nmode: enforce\nmx: mx.sts.test\n"
                  "max_age: 86400\n",
    "tlsrpt.test": "version: STSv1\nmode: testing\nmx: mx.tlsrpt.test\n"
                   "max_age: 86400\n",
}


def txt(name, text):
    """A TXT record as raw rdata: dnsmasq keeps the quotes of a
    command-line --txt-record (dnsns.txt) and splits it at commas."""
    b = text.encode()
    assert len(b) < 256
    return dnsns.rr(name, 16, (bytes([len(b)]) + b).hex())


def _records():
    r = []
    for d in DOMAINS:
        if d == "cache":
            continue
        r += txt("_mta-sts.%s.test" % d, "v=STSv1; id=20260101")
        r += dnsns.host("mta-sts.%s.test" % d, WEB)
    r += dnsns.mx("sts.test", "mx.sts.test", 10)
    r += dnsns.host("mx.sts.test", MX_GOOD)
    r += dnsns.mx("nomatch.test", "mail.nomatch.test", 10)
    r += dnsns.host("mail.nomatch.test", MX_GOOD)
    r += dnsns.mx("badcert.test", "mx.badcert.test", 10)
    r += dnsns.host("mx.badcert.test", MX_ROGUE)
    r += dnsns.mx("testing.test", "mx.badcert.test", 10)
    r += dnsns.mx("tlsrpt.test", "mx.tlsrpt.test", 10)
    r += dnsns.host("mx.tlsrpt.test", MX_SWAP)
    for d in ("testing", "tlsrpt"):
        r += txt("_smtp._tls.%s.test" % d,
                       "v=TLSRPTv1; rua=mailto:%s,https://reports.test/up"
                       % RUA)
    # cache.test is answered by a second dnsmasq the test restarts.
    r += ["--server=/cache.test/%s" % DNS2]
    return r


ZONE = dict(records=_records(), local=("test",), timeout=150)


# --- certificates ---------------------------------------------------------

def _certtool(*args):
    subprocess.run(["certtool"] + list(args), check=True,
                   capture_output=True, timeout=60)


def _pair(d, name, tmpl, ca=None):
    key, cert, t = (os.path.join(d, name + x) for x in
                    (".key", ".pem", ".tmpl"))
    with open(t, "w") as f:
        f.write(tmpl + "expiration_days = 3\n")
    _certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", key)
    if ca is None:
        _certtool("--generate-self-signed", "--load-privkey", key,
                  "--template", t, "--outfile", cert)
    else:
        _certtool("--generate-certificate", "--load-privkey", key,
                  "--load-ca-certificate", ca[0], "--load-ca-privkey",
                  ca[1], "--template", t, "--outfile", cert)
    return cert, key


def make_pki(d):
    ca_t = 'cn = "%s"\nca\ncert_signing_key\n'
    srv_t = ('cn = "%s"\n%stls_www_server\nsigning_key\nencryption_key\n')
    names = lambda ns: "".join('dns_name = "%s"\n' % n for n in ns)
    ca = _pair(d, "ca", ca_t % "MTA-STS test CA")
    rogue = _pair(d, "rogue", ca_t % "nobody's CA")
    return {
        "ca": ca[0],
        "web": _pair(d, "web", srv_t % ("mta-sts.sts.test", names(
            "mta-sts.%s.test" % x for x in DOMAINS)), ca),
        "mx": _pair(d, "mx", srv_t % ("mx.sts.test", names(
            ["mx.sts.test", "mail.nomatch.test", "mx.tlsrpt.test"])), ca),
        "rogue_mx": _pair(d, "rogue_mx", srv_t % ("mx.badcert.test", names(
            ["mx.badcert.test", "mx.tlsrpt.test"])), rogue),
    }


def tls_ctx(pair):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pair[0], pair[1])
    return ctx


# --- the policy host ----------------------------------------------------

class PolicyWeb:
    """https://mta-sts.DOMAIN/.well-known/mta-sts.txt for each DOMAIN of
    policies; hits counts the fetches per DOMAIN."""

    def __init__(self, pair, policies):
        self.policies = dict(policies)
        self.hits = {}
        web = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").split(":")[0]
                dom = host[len("mta-sts."):] if host.startswith(
                    "mta-sts.") else ""
                body = web.policies.get(dom)
                if self.path != "/.well-known/mta-sts.txt" or body is None:
                    self.send_error(404)
                    return
                web.hits[dom] = web.hits.get(dom, 0) + 1
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer((WEB, 443), Handler)
        self.httpd.socket = tls_ctx(pair).wrap_socket(self.httpd.socket,
                                                      server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class SecondDns:
    """A dnsmasq on DNS2 for cache.test, restarted with new records."""

    def __init__(self, workdir):
        self.log = os.path.join(workdir, "dnsmasq2.log")
        self.proc = None

    def start(self, sts_id):
        self.stop()
        argv = [dnsns._dnsmasq(), "--no-daemon", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", "--no-poll",
                "--listen-address=" + DNS2, "--bind-interfaces",
                "--port=53", "--pid-file=", "--cache-size=0",
                "--local=/cache.test/", "--log-facility=" + self.log,
                "--mx-host=cache.test,mx.sts.test,10",
                "--host-record=mta-sts.cache.test," + WEB]
        argv += txt("_mta-sts.cache.test", "v=STSv1; id=%s" % sts_id)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while dnsns.query("_mta-sts.cache.test", "TXT", server=(DNS2, 53),
                          timeout=0.2)[0] is None:
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("dnsmasq on %s did not start" % DNS2)
            time.sleep(0.05)

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


# --- the smtp client ------------------------------------------------------

@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed")
class StsClient(ClientCase):
    PREFIX = "sts-"

    def setUp(self):
        super().setUp()
        if shutil.which("certtool") is None:
            self.skipTest("certtool not installed")
        self.cache = os.path.join(self.workdir, "sts-cache")

    def start_web(self):
        """The certificates and the policy host (inside the namespace:
        setUp runs outside too)."""
        self.pki = make_pki(self.workdir)
        self.web = PolicyWeb(self.pki["web"], POLICIES)
        self.addCleanup(self.web.stop)

    def mx(self, addr, pair):
        s = Aio(Recorder(), host=addr, port=25, tls_context=tls_ctx(pair))
        s.__enter__()
        self.addCleanup(s.__exit__)
        return s

    def send(self, domain, cache=True):
        args = ["-d", "-o", "tls_policy=mta-sts", "-o",
                "tls_cafile=" + self.pki["ca"]]
        if cache:
            args += ["-o", "mta_sts_cache=" + self.cache]
        return smtp(args + [domain, "alice@x.test", "bob@" + domain])

    @inside(**ZONE)
    def test_enforce_matching_mx_delivered_verified(self):
        self.start_web()
        s = self.mx(MX_GOOD, self.pki["mx"])
        p = self.send("sts.test")
        self.assertExit(p, EX_OK)
        self.assertEqual(len(s.messages), 1)
        self.assertTrue(s.messages[0]["tls"])
        err = p.stderr.decode()
        self.assertIn("MTA-STS policy of sts.test: mode enforce", err)
        self.assertIn("certificate authenticated by MTA-STS", err)
        self.assertEqual(self.web.hits, {"sts.test": 1})

    @inside(**ZONE)
    def test_enforce_mx_outside_the_policy_deferred(self):
        self.start_web()
        s = self.mx(MX_GOOD, self.pki["mx"])
        p = self.send("nomatch.test")
        self.assertExit(p, EX_TEMPFAIL)
        self.assertEqual(s.messages, [])
        err = p.stderr.decode()
        self.assertIn("mail.nomatch.test is not an MX host of the policy",
                      err)
        self.assertNotIn("MAIL FROM", err)

    @inside(**ZONE)
    def test_enforce_untrusted_certificate_deferred(self):
        self.start_web()
        s = self.mx(MX_ROGUE, self.pki["rogue_mx"])
        p = self.send("badcert.test")
        self.assertExit(p, EX_TEMPFAIL)
        self.assertEqual(s.messages, [])
        err = p.stderr.decode()
        self.assertIn("MTA-STS: certificate of", err)
        self.assertNotIn("MAIL FROM", err)
        self.assertNotIn("trying again without TLS", err)

    @inside(**ZONE)
    def test_testing_mode_delivers_despite_the_certificate(self):
        self.start_web()
        s = self.mx(MX_ROGUE, self.pki["rogue_mx"])
        p = self.send("testing.test")
        self.assertExit(p, EX_OK)
        self.assertEqual(len(s.messages), 1)
        self.assertIn("mode testing", p.stderr.decode())

    @inside(**ZONE)
    def test_policy_cached_until_the_id_changes_or_max_age_ends(self):
        self.start_web()
        dns2 = SecondDns(self.workdir)
        self.addCleanup(dns2.stop)
        dns2.start("1")
        s = self.mx(MX_GOOD, self.pki["mx"])
        for _ in range(2):
            self.assertExit(self.send("cache.test"), EX_OK)
        self.assertEqual(self.web.hits, {"cache.test": 1})
        # A new id in DNS: fetched again (a policy that lives 2 s).
        self.web.policies["cache.test"] = POLICIES["cache.test"].replace(
            "86400", "2")
        dns2.start("2")
        self.assertExit(self.send("cache.test"), EX_OK)
        self.assertEqual(self.web.hits, {"cache.test": 2})
        # Same id, but max_age is over.
        time.sleep(3)
        self.assertExit(self.send("cache.test"), EX_OK)
        self.assertEqual(self.web.hits, {"cache.test": 3})
        self.assertEqual(len(s.messages), 4)
        # Without a cache directory every message fetches it.
        self.assertExit(self.send("cache.test", cache=False), EX_OK)
        self.assertEqual(self.web.hits, {"cache.test": 4})


# --- the queue: relay by MX, records, reports ---------------------------

@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed")
class StsQueue(QueueCase):
    def setUp(self):
        super().setUp()
        if shutil.which("certtool") is None:
            self.skipTest("certtool not installed")

    def start_web(self):
        self.pki = make_pki(self.workdir)
        self.web = PolicyWeb(self.pki["web"], POLICIES)
        self.addCleanup(self.web.stop)

    def mx(self, addr, pair):
        s = Aio(Recorder(), host=addr, port=25, tls_context=tls_ctx(pair))
        s.__enter__()
        self.addCleanup(s.__exit__)
        return s

    def routes(self):
        box = ('{ domain = [ "example.org", "reports.test" ]; '
               'action = "maildir"; path = "%s/%%d/%%u"; create = true; '
               'catchall = true; }' % self.path("mail"))
        return ('%s, { domain = "*"; action = "relay"; tls = "mta-sts"; '
                'tls_cafile = "%s"; }' % (box, self.pki["ca"]))

    def records(self, domain):
        """Today's TLS report records of domain, as lists of fields."""
        day = time.strftime("%Y-%m-%d", time.gmtime())
        p = os.path.join(self.spool, "tlsrpt", day, domain)
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return [line.rstrip("\n").split("\t") for line in f]

    def reports(self):
        return [parse_mail(read_bytes(f)) for f in
                maildir_files(self.path("mail", "reports.test",
                                        "tls-reports"))]

    def report_json(self, msg):
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "tlsrpt")
        self.assertEqual(msg["TLS-Report-Domain"], "tlsrpt.test")
        self.assertEqual(msg["TLS-Report-Submitter"], "example.org")
        parts = [p for p in msg.walk()
                 if p.get_content_type() == "application/tlsrpt+gzip"]
        self.assertEqual(len(parts), 1, msg)
        name = parts[0].get_filename()
        self.assertRegex(name, r"^example\.org!tlsrpt\.test!\d+!\d+"
                               r"\.json\.gz$")
        return json.loads(gzip.decompress(parts[0].get_payload(
            decode=True)))

    def one_success_one_failure(self):
        """tlsrpt.test (testing mode): a message to an MX with an
        untrusted certificate, then one to it with a good one."""
        self.start_web()
        rogue = self.mx(MX_SWAP, self.pki["rogue_mx"])
        self.setup_queue(self.routes(), queue=FAST + TLSRPT)
        self.send("alice@example.org", ["bob@tlsrpt.test"])
        self.deliver()
        self.assertTrue(wait_for(lambda: len(rogue.messages) == 1),
                        self.diag())
        rogue.__exit__()
        good = self.mx(MX_SWAP, self.pki["mx"])
        self.send("alice@example.org", ["carol@tlsrpt.test"])
        self.deliver()
        self.assertTrue(wait_for(lambda: len(good.messages) == 1),
                        self.diag())
        kinds = sorted(r[0] for r in self.records("tlsrpt.test"))
        self.assertEqual(kinds, ["F", "S"], self.diag())

    def check_report(self, rep):
        self.assertEqual(rep["organization-name"], "Example Org")
        self.assertEqual(rep["contact-info"], "tlsrpt@example.org")
        self.assertIn("report-id", rep)
        day = rep["date-range"]["start-datetime"]
        self.assertRegex(day, r"^\d{4}-\d\d-\d\dT00:00:00Z$")
        self.assertIn("end-datetime", rep["date-range"])
        self.assertEqual(len(rep["policies"]), 1, rep)
        pol = rep["policies"][0]
        self.assertEqual(pol["policy"]["policy-type"], "sts")
        self.assertEqual(pol["policy"]["policy-domain"], "tlsrpt.test")
        self.assertIn("mode: testing", pol["policy"]["policy-string"])
        self.assertEqual(pol["summary"]["total-successful-session-count"], 1)
        self.assertEqual(pol["summary"]["total-failure-session-count"], 1)
        fd = pol["failure-details"]
        self.assertEqual(len(fd), 1)
        self.assertEqual(fd[0]["result-type"], "certificate-not-trusted")
        self.assertEqual(fd[0]["receiving-mx-hostname"], "mx.tlsrpt.test")
        self.assertEqual(fd[0]["receiving-ip"], MX_SWAP)
        self.assertEqual(fd[0]["failed-session-count"], 1)

    @inside(**ZONE)
    def test_enforce_relay_delivers_and_records_success(self):
        self.start_web()
        s = self.mx(MX_GOOD, self.pki["mx"])
        self.setup_queue(self.routes(), queue=FAST)
        self.send("alice@example.org", ["bob@sts.test"])
        self.deliver()
        self.assertTrue(wait_for(lambda: len(s.messages) == 1), self.diag())
        recs = self.records("sts.test")
        self.assertEqual([r[:2] for r in recs], [["S", "sts"]])
        self.assertIn("MTA-STS", self.log())

    @inside(**ZONE)
    def test_enforce_relay_bad_certificate_deferred(self):
        self.start_web()
        s = self.mx(MX_ROGUE, self.pki["rogue_mx"])
        self.setup_queue(self.routes(), queue=FAST)
        self.send("alice@example.org", ["bob@badcert.test"])
        self.deliver()
        self.assertEqual(s.messages, [])
        self.assertEqual(len(self.queue_ids()), 1)
        self.assertIn("deferred", self.listing())
        recs = self.records("badcert.test")
        self.assertEqual([r[:2] for r in recs], [["F", "sts"]])
        self.assertEqual(recs[0][3], "certificate-not-trusted")

    @inside(**ZONE)
    def test_testing_mode_delivered_and_failure_recorded(self):
        self.start_web()
        s = self.mx(MX_ROGUE, self.pki["rogue_mx"])
        self.setup_queue(self.routes(), queue=FAST)
        self.send("alice@example.org", ["bob@testing.test"])
        self.deliver()
        self.assertTrue(wait_for(lambda: len(s.messages) == 1), self.diag())
        recs = self.records("testing.test")
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0][0:2], ["F", "sts"])
        self.assertEqual(recs[0][3], "certificate-not-trusted")
        self.assertEqual(recs[0][4], "mx.badcert.test")

    @inside(**ZONE)
    def test_smtpq_tlsrpt_sends_the_report_once(self):
        self.one_success_one_failure()
        p = self.smtpq("-d", "tlsrpt", "--now")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "1 TLS report queued")
        self.deliver()
        reps = wait_for(self.reports)
        self.assertEqual(len(reps), 1, self.diag())
        self.check_report(self.report_json(reps[0]))
        self.assertIn("https://reports.test/up skipped", self.log() +
                      p.stderr)
        # The records are gone: nothing is reported twice.
        self.assertEqual(self.records("tlsrpt.test"), [])
        p = self.smtpq("tlsrpt", "--now")
        self.assertEqual(p.stdout.strip(), "0 TLS reports queued")
        # Finished days only, without --now.
        self.send("alice@example.org", ["dave@tlsrpt.test"])
        self.deliver()
        p = self.smtpq("tlsrpt")
        self.assertEqual(p.stdout.strip(), "0 TLS reports queued")

    @inside(**ZONE)
    def test_runner_reports_a_finished_day_once(self):
        self.one_success_one_failure()
        # Yesterday's records, as the relay left them.
        base = os.path.join(self.spool, "tlsrpt")
        today = time.strftime("%Y-%m-%d", time.gmtime())
        yday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
        os.rename(os.path.join(base, today), os.path.join(base, yday))
        # ... and the runner's last daily run was yesterday's.
        with open(os.path.join(base, ".last-run"), "w") as f:
            f.write(yday)
        self.deliver()
        self.deliver()
        reps = wait_for(self.reports)
        self.assertEqual(len(reps), 1, self.diag())
        rep = self.report_json(reps[0])
        self.check_report(rep)
        self.assertEqual(rep["date-range"]["start-datetime"],
                         yday + "T00:00:00Z")
        self.assertEqual(rep["date-range"]["end-datetime"],
                         yday + "T23:59:59Z")
        self.assertFalse(os.path.exists(os.path.join(base, yday)))
        # Once a day: a later pass sends nothing more.
        self.deliver()
        time.sleep(0.5)
        self.assertEqual(len(self.reports()), 1)

    def routes_plain(self):
        return ('{ domain = "*"; action = "maildir"; path = "%s/%%d/%%u"; '
                'create = true; catchall = true; }' % self.path("mail"))

    def test_tlsrpt_off_without_the_setting(self):
        self.setup_queue(self.routes_plain(), queue=FAST)
        p = self.smtpq("tlsrpt")
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("queue.tlsrpt", p.stderr)

    def test_bad_day_refused(self):
        self.setup_queue(self.routes_plain(), queue=FAST + TLSRPT)
        for day in ("2026-02-30", "yesterday", "2999-01-01"):
            p = self.smtpq("tlsrpt", "--day", day)
            self.assertEqual(p.returncode, 64, p.stderr)
            self.assertIn("not a day", p.stderr)

    def listing(self):
        return self.smtpq("list").stdout


if __name__ == "__main__":
    unittest.main()
