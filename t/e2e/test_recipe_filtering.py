"""doc/recipes/filtering-mx.conf with its filters, run as shipped (only
the placeholders replaced, as test_recipes.py does): smtpd checked by
`smtpd -t`, OpenDKIM on filtering-opendkim.conf, rspamd with
filtering-rspamd.conf as its local.d/milter_headers.conf (milterkit.Rspamd:
its own state, the modules that only ask the network off).

Everything runs inside a private network namespace (dnsns.py) whose
dnsmasq serves the DKIM key of example.com: the key is made before the
namespace starts, so the test's body is the function filtering_child,
called inside, which returns what it saw."""
import base64
import contextlib
import os
import shutil
import smtplib
import subprocess
import tempfile
import time
import types
import unittest

import dnsns
import milterkit
import test_recipes
from harness import SMTPD, UNTRUSTED_ADDR, Smtpd, free_port
from qharness import maildir_files, read_bytes
from test_dkim import txt_rr

SIGNED = ("From: Carol <carol@example.com>\r\n"
          "To: alice@example.org\r\n"
          "Subject: signed at the source\r\n"
          "Date: Thu, 03 Dec 2026 01:00:00 +0000\r\n"
          "Message-ID: <signed.1@example.com>\r\n"
          "\r\n"
          "The figures for December are in the shared folder.\r\n")


def filtering_child(workdir, key):
    """Inside the namespace: the recipe's smtpd, OpenDKIM and rspamd; a
    message signed by example.com (key: PKCS#1 PEM) and rspamd's GTUBE
    sent from a client on the Internet.  A dict of what happened."""
    import dkim
    out = {}
    etc = os.path.join(workdir, "etc")
    mail = os.path.join(workdir, "mail")
    run = os.path.join(workdir, "run")
    os.makedirs(etc)
    os.makedirs(run)
    os.makedirs(os.path.join(workdir, "spool"))
    shutil.chown(run, "opendkim", "opendkim")
    test_recipes.write(os.path.join(etc, "users"), "alice\n")
    with contextlib.ExitStack() as stack:
        case = types.SimpleNamespace(addCleanup=stack.callback)
        rspamd = milterkit.Rspamd(
            case, os.path.join(workdir, "rspamd"),
            local={"milter_headers.conf":
                   test_recipes.recipe("filtering-rspamd.conf")})
        odport = free_port()
        odconf = test_recipes.write(
            os.path.join(workdir, "opendkim.conf"),
            test_recipes.recipe("filtering-opendkim.conf",
                                OPENDKIM_SOCKET="inet:%d@127.0.0.1" % odport,
                                RUN=run))
        milterkit.OpenDkim(case, run, conf=odconf, port=odport)
        port = free_port()
        text = test_recipes.recipe(
            "filtering-mx.conf", ADDR="127.0.0.1", PORT_SMTP=port,
            SPOOL=os.path.join(workdir, "spool"), ETC=etc, MAIL=mail,
            OPENDKIM="127.0.0.1:%d" % odport,
            RSPAMD="127.0.0.1:%d" % rspamd.milter)
        d = Smtpd(workdir, listen=[])
        test_recipes.write(d.conf, text)
        d.port = port
        p = subprocess.run([SMTPD, "-t", "-C", d.conf], capture_output=True,
                           text=True, timeout=30)
        out["check"] = [p.returncode, p.stdout + p.stderr]
        d.start()
        stack.callback(d.stop)
        with open(key, "rb") as f:
            pem = f.read()
        sig = dkim.sign(SIGNED.encode(), b"sel", b"example.com", pem,
                        include_headers=[b"From", b"To", b"Subject",
                                         b"Date", b"Message-ID"])
        with smtplib.SMTP("127.0.0.1", port, timeout=90,
                          source_address=(UNTRUSTED_ADDR, 0)) as s:
            s.ehlo("mail.example.com")
            s.sendmail("carol@example.com", ["alice@example.org"],
                       sig + SIGNED.encode())
            try:
                s.sendmail("carol@example.com", ["alice@example.org"],
                           SIGNED.replace("The figures",
                                          milterkit.GTUBE + "\r\nThe"))
                out["gtube"] = [250, ""]
            except smtplib.SMTPDataError as e:
                out["gtube"] = [e.smtp_code, e.smtp_error.decode()]
        box = os.path.join(mail, "example.org", "alice")
        deadline = time.monotonic() + 30
        while not maildir_files(box) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        out["delivered"] = [read_bytes(f).decode(errors="replace")
                            .replace("\r\n", "\n")
                            for f in maildir_files(box)]
        out["log"] = d.logtext()[-3000:]
    return out


@unittest.skipIf(milterkit.rspamd_usable(), milterkit.rspamd_usable())
@unittest.skipUnless(os.path.exists(milterkit.OPENDKIM),
                     "opendkim not installed")
class FilteringMx(unittest.TestCase):
    def test_dkim_verified_spam_refused(self):
        ok, why = dnsns.available()
        if not ok:
            self.skipTest(why)
        workdir = tempfile.mkdtemp(prefix="smtpd-e2e-")
        os.chmod(workdir, 0o755)
        self.addCleanup(shutil.rmtree, workdir, True)
        key = os.path.join(workdir, "sel.pem")
        subprocess.run(["openssl", "genrsa", "-traditional", "-out", key,
                        "2048"], check=True, capture_output=True,
                       timeout=60)
        der = subprocess.run(["openssl", "rsa", "-in", key, "-pubout",
                              "-outform", "DER"], check=True,
                             capture_output=True, timeout=60).stdout
        record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        out = dnsns.run(__file__, "filtering_child", args=[workdir, key],
                        records=[txt_rr("sel._domainkey.example.com",
                                        record)],
                        local=("example.com", "test"), timeout=240)
        code, text = out["check"]
        self.assertEqual(code, 0, text)
        self.assertNotRegex(text, r"(?im)^smtpd: warning", text)
        # rspamd's reject action, as the milter's reply.
        self.assertEqual(out["gtube"][0], 554, out["gtube"])
        self.assertIn("5.7.1", out["gtube"][1])
        # The signed message: OpenDKIM's verdict and rspamd's fields.
        self.assertEqual(len(out["delivered"]), 1, out["log"])
        msg = out["delivered"][0]
        head = msg.split("\n\n", 1)[0]
        self.assertRegex(head, r"(?m)^Authentication-Results: "
                         r"mx1\.example\.org;\s+dkim=pass ",
                         head + "\n" + out["log"] )
        self.assertRegex(head, r"(?m)^X-Spamd-Result: default: False")
        self.assertRegex(head, r"(?m)^X-Rspamd-Action: no action")
        self.assertIn("Subject: signed at the source", head)


if __name__ == "__main__":
    unittest.main()
