"""rspamd as a milter: Debian's rspamd, started here (milterkit.Rspamd)
with its own configuration and state in the test's directory, its proxy
worker in milter mode on a loopback port and a scanning worker behind it,
inside a network namespace whose only interface is lo.  Mail is sent with
smtplib through smtpd: rspamd's GTUBE test string is refused (rspamd's
reject action becomes the milter's reply), a clean message is queued with
the header fields rspamd's milter_headers module adds, and when rspamd is
away the milter's default action decides."""
import os
import smtplib
import unittest

import dnsns
import milterkit
from harness import PolicyCase, parse_spool

WHY_NOT = milterkit.rspamd_usable()
HEADERS = ("extended_spam_headers = true;\n"
           # 127.0.0.1 is the client here; local clients get them too.
           "skip_local = false;\nskip_authenticated = false;\n"
           'use = ["x-rspamd-action"];\n')
CLEAN = ("From: Alice <alice@example.org>\r\n"
         "To: bob@ours.example\r\n"
         "Subject: minutes of the meeting\r\n"
         "Message-ID: <clean.1@example.org>\r\n"
         "Date: Thu, 03 Dec 2026 01:00:00 +0000\r\n"
         "\r\n"
         "The minutes are attached to the wiki page as usual.\r\n")


def milter(rspamd, default_action=None):
    more = ' default_action = "%s";' % default_action if default_action \
        else ""
    return ('ournets = [ "127.0.0.1/32" ];\n'
            'ourdomains = [ "ours.example" ];\n'
            'milters = ( { address = "inet:127.0.0.1:%d"; timeout = "60s";'
            '%s } );\n' % (rspamd.milter, more))


@unittest.skipIf(WHY_NOT, WHY_NOT)
class RspamdMilter(PolicyCase):
    def start(self, default_action=None):
        self.rspamd = milterkit.Rspamd(
            self, os.path.join(self.workdir, "rspamd"),
            local={"milter_headers.conf": HEADERS})
        return self.smtpd(config_extra=milter(self.rspamd, default_action))

    def send(self, d, text, sender="alice@example.org"):
        with smtplib.SMTP(d.host, d.port, timeout=60) as s:
            s.ehlo("client.example.org")
            return s.sendmail(sender, ["bob@ours.example"], text)

    @dnsns.inside(local=("test",), timeout=240)
    def test_gtube_refused_clean_accepted(self):
        d = self.start()
        # rspamd's reject action: the message is refused at the end of
        # the data with rspamd's own 5xx reply, and nothing is queued.
        spam = CLEAN.replace("minutes of the meeting", "offer").replace(
            "The minutes", milterkit.GTUBE + "\r\nThe minutes")
        with self.assertRaises(smtplib.SMTPDataError) as e:
            self.send(d, spam)
        self.assertGreaterEqual(e.exception.smtp_code, 500,
                                e.exception.smtp_error)
        self.assertLess(e.exception.smtp_code, 600)
        self.assertNothingQueued(d)
        # A clean message is queued with rspamd's header fields on top.
        self.assertEqual(self.send(d, CLEAN), {})
        env, body = parse_spool(list(self.wait_queued(d, 1).values())[0])
        head = body.split(b"\r\n\r\n", 1)[0]
        self.assertRegex(head, rb"(?m)^X-Spamd-Result: default: False \[")
        self.assertRegex(head, rb"(?m)^X-Rspamd-Action: no action\r?$")
        self.assertIn(b"Subject: minutes of the meeting", head)

    @dnsns.inside(local=("test",), timeout=240)
    def test_default_action_when_rspamd_is_away(self):
        d = self.start()
        self.rspamd.stop()
        # tempfail (the default): the client is told to come back.
        # The milter connection is opened at EHLO.
        c = self.open(d, ehlo=False)
        self.assertReply(c.cmd("EHLO client.example.org"), 451, "4.7.1")
        self.wait_log(d, "default action tempfail")
        # accept: mail flows unfiltered while rspamd is away.
        c.close()
        d.stop()
        d2 = self.smtpd(config_extra=milter(self.rspamd, "accept"))
        self.assertEqual(self.send(d2, CLEAN), {})
        self.wait_queued(d2, 1)


if __name__ == "__main__":
    unittest.main()
