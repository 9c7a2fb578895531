"""Policy delegation with the services people run: postgrey (greylisting)
and policyd-spf (SPF, with its records served by dnsmasq inside a private
network namespace, see dnsns.py)."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import dnsns
from harness import (PolicyCase, UNTRUSTED_ADDR, free_port, parse_spool,
                     wait_port)

BASE = ('ournets = [ "127.0.0.1/32" ];\n'
        'ourdomains = [ "ours.example" ];\n')
MSG = (b"From: a@isp.example\r\nTo: b@ours.example\r\nSubject: hi\r\n\r\n"
       b"body line\r\n.\r\n")


def service(port, stage="rcpt"):
    return ('policy_services = ( { address = "inet:127.0.0.1:%d"; '
            'stage = "%s"; timeout = "10s"; default_action = "defer"; } );\n'
            % (port, stage))


def stop_proc(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Postgrey(PolicyCase):
    """postgrey defers a new triplet with its 450 text, then lets the
    retry through after the delay with its X-Greylist header."""

    def setUp(self):
        super().setUp()
        if shutil.which("postgrey") is None:
            self.skipTest("postgrey is not installed")
        self.db = tempfile.mkdtemp(prefix="postgrey-")
        os.chmod(self.db, 0o777)
        self.addCleanup(shutil.rmtree, self.db, True)
        self.port = free_port()
        args = ["postgrey", "--inet=127.0.0.1:%d" % self.port,
                "--dbdir=" + self.db, "--delay=2"]
        if os.getuid() == 0:
            args += ["--user=nobody", "--group=nogroup"]
        self.log = open(os.path.join(self.db, "log"), "wb")
        self.addCleanup(self.log.close)
        self.pg = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                   stdin=subprocess.DEVNULL)
        self.addCleanup(stop_proc, self.pg)
        self.assertTrue(wait_port("127.0.0.1", self.port, 30),
                        "postgrey did not start")

    def test_greylisted_then_accepted(self):
        d = self.smtpd(config_extra=BASE + service(self.port),
                       limits={"tarpit_delay": 0})
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<a@isp.example>"), 250)
        rep = c.cmd("RCPT TO:<b@ours.example>")
        self.assertReply(rep, 450, "4.7.1")
        self.assertIn("Greylisted", rep[1][-1])
        c.cmd("QUIT")
        c.close()
        qid = None
        for _ in range(20):
            time.sleep(1)
            c = self.client(d)
            self.assertReply(c.cmd("MAIL FROM:<a@isp.example>"), 250)
            rep = c.cmd("RCPT TO:<b@ours.example>")
            if rep[0] == 250:
                qid = self.queued_id(self.send_data(c, MSG))
                break
            self.assertEqual(rep[0], 450, rep)
            c.cmd("QUIT")
            c.close()
        self.assertIsNotNone(qid, "still greylisted")
        env, body = parse_spool(self.spooled(d, qid))
        # postgrey counts whole seconds: its own header says the message
        # was held back, not a clock here.
        m = re.search(rb"(?m)^X-Greylist: delayed (\d+) seconds by "
                      rb"postgrey", body)
        self.assertIsNotNone(m, body[:500])
        self.assertGreaterEqual(int(m.group(1)), 1)
        self.assertIn(b"\r\nFrom: a@isp.example\r\n", body)




def txt(name, text):
    """A TXT record of one string, as raw rdata (length, then bytes)."""
    data = text.encode()
    return dnsns.rr(name, 16, "%02x%s" % (len(data), data.hex()))


SPF_RECORDS = [
    txt("pass.example", "v=spf1 ip4:%s -all" % UNTRUSTED_ADDR),
    txt("fail.example", "v=spf1 ip4:192.0.2.1 -all"),
    dnsns.host("mail.isp.example", UNTRUSTED_ADDR),
]

SPF_CONF = """debugLevel = 1
TestOnly = 1
HELO_reject = False
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 192.0.2.255/32
"""


class PolicydSpf(PolicyCase):
    """policyd-spf run per connection under socat: a -all failure is
    refused 550 with its text; a pass is queued with its Received-SPF."""

    @dnsns.inside(records=SPF_RECORDS, local=("example",), timeout=120)
    def test_spf(self):
        if shutil.which("policyd-spf") is None or \
                shutil.which("socat") is None:
            self.skipTest("policyd-spf or socat is not installed")
        conf = os.path.join(self.workdir, "policyd-spf.conf")
        with open(conf, "w") as f:
            f.write(SPF_CONF)
        port = free_port()
        p = subprocess.Popen(
            ["socat", "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork" % port,
             "EXEC:policyd-spf %s" % conf],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.addCleanup(stop_proc, p)
        self.assertTrue(wait_port("127.0.0.1", port, 20))
        d = self.smtpd(config_extra=BASE + service(port),
                       limits={"tarpit_delay": 0})
        c = self.client(d, helo="mail.isp.example")
        self.assertReply(c.cmd("MAIL FROM:<x@fail.example>"), 250)
        rep = c.cmd("RCPT TO:<b@ours.example>")
        self.assertEqual(rep[0], 550, rep)
        self.assertIn(rep[1][-1].split()[1], ("5.7.23", "5.7.1"), rep)
        self.assertIn("SPF", rep[1][-1])
        self.assertReply(c.cmd("RSET"), 250)
        self.start_mail(c, "<x@pass.example>", ["<b@ours.example>"])
        qid = self.queued_id(self.send_data(c, MSG))
        env, body = parse_spool(self.spooled(d, qid))
        self.assertRegex(body, rb"(?m)^Received-SPF: Pass ")
        self.assertIn(b"x@pass.example", body.split(b"\r\n\r\n")[0])
        self.assertIn(b"\r\nFrom: a@isp.example\r\n", body)


if __name__ == "__main__":
    unittest.main()
