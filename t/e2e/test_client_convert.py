"""smtp -f: the converted message (what would go on the wire before
dot-stuffing) compared with the expected files in t/e2e/convert/.

NAME.in is the input and NAME.out the expected output.  Fields the
conversion adds with unpredictable values are written in the .out files
as "Date: DATE" and "Message-ID: <RANDOM@host>"."""
import os
import re
import unittest

from clientkit import smtp, EX_OK, EX_DATAERR

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "convert")

# name -> smtp arguments after -f
CASES = {
    "minimal": ["127.0.0.1", "alice", "bob"],
    "unix-from": ["127.0.0.1", "alice", "bob"],
    "bcc": ["127.0.0.1", "alice@x.test", "bob@x.test", "hidden@x.test"],
    "qualify": [".d.test", "127.0.0.1", "alice", "bob"],
    "line-ends": ["127.0.0.1", "a@x.test", "b@x.test"],
    "dots": ["127.0.0.1", "a@x.test", "b@x.test"],
    "null-sender": ["127.0.0.1", "/dev/null", "b@x.test"],
    "no-separator": ["127.0.0.1", "a@x.test", "b@x.test"],
}

DATE_RE = re.compile(rb"^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} "
                     rb"[A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r$", re.M)
MSGID_RE = re.compile(rb"^Message-ID: <[0-9A-F]{32}@", re.M)


class Convert(unittest.TestCase):
    def check(self, name, args):
        with open(os.path.join(DIR, name + ".in"), "rb") as f:
            data = f.read()
        with open(os.path.join(DIR, name + ".out"), "rb") as f:
            want = f.read()
        p = smtp(["-f", "-h", "client.test"] + args, data=data,
                 env={"TZ": "UTC"})
        self.assertEqual(p.returncode, EX_OK, p.stderr)
        got = p.stdout
        if b"Date: DATE\r\n" in want:
            got, n = DATE_RE.subn(b"Date: DATE\r", got)
            self.assertEqual(n, 1, got)
        if b"Message-ID: <RANDOM@" in want:
            got, n = MSGID_RE.subn(b"Message-ID: <RANDOM@", got)
            self.assertEqual(n, 1, got)
        self.assertEqual(got.decode("latin-1"), want.decode("latin-1"))

    def test_expected_files(self):
        self.assertEqual(sorted(CASES), sorted(
            f[:-3] for f in os.listdir(DIR) if f.endswith(".in")))
        for name, args in CASES.items():
            with self.subTest(case=name):
                self.check(name, args)

    def test_message_ids_differ(self):
        a = smtp(["-f", "127.0.0.1", "a@x.test", "b@x.test"], data=b"\nx\n")
        b = smtp(["-f", "127.0.0.1", "a@x.test", "b@x.test"], data=b"\nx\n")
        ids = [MSGID_RE.search(p.stdout) for p in (a, b)]
        self.assertTrue(all(ids))
        self.assertNotEqual(a.stdout, b.stdout)

    def test_nothing_is_sent(self):
        # The destination is never dialled: port 1 would refuse.
        p = smtp(["-f", "127.0.0.1:1", "a@x.test", "b@x.test"])
        self.assertEqual(p.returncode, EX_OK, p.stderr)
        self.assertIn(b"\r\n\r\nhello\r\n", p.stdout)

    def test_size_limit(self):
        p = smtp(["-f", "-o", "max_message_size=100", "127.0.0.1", "a@x.test",
                  "b@x.test"], data=b"Subject: x\n\n" + b"y" * 200)
        self.assertEqual(p.returncode, EX_DATAERR)
        self.assertIn(b"max_message_size", p.stderr)


if __name__ == "__main__":
    unittest.main()
