"""The client library as the queue's relay delivery uses it (through
t/tools/clientsend): several messages on one connection with RSET
between them, message data read from a file descriptor (LF or CRLF
lines), DSN parameters when offered, and per-recipient results."""
import os
import re
import shutil
import tempfile
import unittest

from clientkit import Aio, Recorder, Sink, EX_OK, EX_NOUSER, EX_TEMPFAIL
from harness import BUILDDIR

import subprocess

CLIENTSEND = os.path.join(BUILDDIR, "t", "tools", "clientsend")


def clientsend(args, timeout=60):
    return subprocess.run([CLIENTSEND] + list(args), capture_output=True,
                          timeout=timeout)


class Library(unittest.TestCase):
    def setUp(self):
        if not os.access(CLIENTSEND, os.X_OK):
            self.skipTest("t/tools/clientsend not built (make check builds it)")
        self.workdir = tempfile.mkdtemp(prefix="client-lib-")

    def tearDown(self):
        shutil.rmtree(self.workdir, ignore_errors=True)

    def files(self, *texts):
        paths = []
        for i, t in enumerate(texts):
            p = os.path.join(self.workdir, "m%d" % i)
            with open(p, "wb") as f:
                f.write(t)
            paths.append(p)
        return paths

    def test_several_messages_on_one_connection(self):
        m = self.files(b"Subject: one\n\n.first\nbody\n",
                       b"Subject: two\r\n\r\nsecond\r\n",
                       b"Subject: three\n\nno final newline")
        with Aio() as s:
            p = clientsend(["-d", s.addr(), "a@x.test", "b@x.test,c@x.test"]
                           + m)
            self.assertEqual(p.returncode, EX_OK, p.stderr)
            got = [x["data"] for x in s.messages]
            rcpts = [x["rcpt"] for x in s.messages]
        self.assertEqual(len(got), 3)
        self.assertEqual(rcpts, [["b@x.test", "c@x.test"]] * 3)
        self.assertEqual(got[0], b"Subject: one\r\n\r\n.first\r\nbody\r\n")
        self.assertEqual(got[1], b"Subject: two\r\n\r\nsecond\r\n")
        self.assertEqual(got[2], b"Subject: three\r\n\r\nno final newline\r\n")
        t = p.stderr.decode()
        self.assertEqual(t.count("* connecting"), 1)
        self.assertEqual(t.count("-> RSET"), 2)
        self.assertEqual(t.count("-> QUIT"), 1)
        out = p.stdout.decode()
        self.assertEqual(out.count("message "), 3)
        self.assertRegex(out, r"rcpt c@x.test: 0 250 2\.0\.0 ")

    def test_per_recipient_results(self):
        h = Recorder(refuse={"gone@x.test": "550 5.1.1 no such user",
                             "later@x.test": "451 4.2.0 try later"})
        m = self.files(b"Subject: x\n\nbody\n", b"Subject: y\n\nbody\n")
        with Aio(h) as s:
            p = clientsend([s.addr(), "a@x.test",
                            "ok@x.test,gone@x.test,later@x.test"] + m)
            self.assertEqual(len(s.messages), 2)
            self.assertEqual(s.messages[1]["rcpt"], ["ok@x.test"])
        self.assertEqual(p.returncode, EX_NOUSER)
        out = p.stdout.decode()
        self.assertIn("rcpt ok@x.test: 0 250", out)
        self.assertIn("rcpt gone@x.test: 67 550 5.1.1 5.1.1 no such user", out)
        self.assertIn("rcpt later@x.test: 75 451 4.2.0 4.2.0 try later", out)
        self.assertEqual(out.count("rcpt gone@x.test: 67"), 2)

    def test_dsn_parameters(self):
        m = self.files(b"Subject: dsn\n\nbody\n")
        with Sink(self.workdir) as s:
            p = clientsend(["-N", "SUCCESS,FAILURE", "-O", "rfc822;b@x.test",
                            "-R", "HDRS", "-E", "QID123", s.addr(),
                            "a@x.test", "b@x.test"] + m)
            self.assertEqual(p.returncode, EX_OK, p.stdout + p.stderr)
            dump = s.messages()[0].decode()
        self.assertIn("X-Mail-Args: <a@x.test> RET=HDRS ENVID=QID123", dump)
        self.assertIn("X-Rcpt-Args: <b@x.test> NOTIFY=SUCCESS,FAILURE "
                      "ORCPT=rfc822;b@x.test", dump)
        # Without DSN on the server, the parameters are left out.
        with Sink(self.workdir, ["-N"]) as s:
            p = clientsend(["-N", "NEVER", "-R", "FULL", s.addr(),
                            "a@x.test", "b@x.test"] + m)
            self.assertEqual(p.returncode, EX_OK)
            dump = s.messages()[0].decode()
        self.assertRegex(dump, r"X-Mail-Args: <a@x.test>\n")
        self.assertRegex(dump, r"X-Rcpt-Args: <b@x.test>\n")

    def test_connection_lost_between_messages(self):
        m = self.files(b"Subject: one\n\nx\n", b"Subject: two\n\ny\n")
        # smtp-sink hangs up after the first message's RSET.
        with Sink(self.workdir, ["-q", "RSET"]) as s:
            p = clientsend([s.addr(), "a@x.test", "b@x.test"] + m)
            self.assertEqual(len(s.messages()), 1)
        self.assertEqual(p.returncode, EX_TEMPFAIL)
        out = p.stdout.decode()
        self.assertRegex(out, r"message 1: 0 250")
        self.assertRegex(out, r"message 2: 75 ")


if __name__ == "__main__":
    unittest.main()
