"""The man pages stay true to the programs: every flag the program takes
is in its page's SYNOPSIS, and every flag there is one the program takes.
The pages are built from doc/*.in with the configured paths put in."""
import os
import re
import shutil
import subprocess
import unittest

from harness import BUILDDIR

SRCDIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# program -> its man page
PAGES = {"smtpd": "doc/smtpd.8", "smtp": "doc/smtp.1", "smtpq": "doc/smtpq.8",
         "sendmail": "doc/sendmail.8"}


def usage_flags(prog):
    """The flags in the program's usage line (it prints it for -?)."""
    p = subprocess.run([os.path.join(BUILDDIR, prog), "-?"],
                       capture_output=True, text=True, timeout=10)
    usage = p.stderr + p.stdout
    # The usage line, and its second forms on indented lines.
    m = re.search(r"usage: \S+ (.*(?:\n\s+\S+ .*)*)", usage)
    assert m, "no usage line from %s: %r" % (prog, usage)
    flags = set()
    for grp in re.findall(r"\[-([A-Za-z]+)\]", m.group(1)):
        flags.update(grp)
    flags.update(re.findall(r"\[-([A-Za-z]) ", m.group(1)))
    flags.update(re.findall(r"\s-([A-Za-z])\s", m.group(1)))
    return p.returncode, flags


def built_page(page):
    """The page as the build made it (doc/X from doc/X.in)."""
    return os.path.join(BUILDDIR, page)


def synopsis_flags(page):
    """The flags in the SYNOPSIS section of an mdoc page."""
    with open(built_page(page)) as f:
        text = f.read()
    syn = text.split(".Sh SYNOPSIS", 1)[1].split(".Sh ", 1)[0]
    flags = set()
    for arg in re.findall(r"^\.(?:Op )?Fl (\S+)", syn, re.M):
        flags.update(arg)
    return flags


class ManPages(unittest.TestCase):
    def check(self, prog):
        if not os.path.exists(os.path.join(BUILDDIR, prog)):
            self.skipTest("%s is not built" % prog)
        rc, used = usage_flags(prog)
        self.assertEqual(rc, 64, "a bad flag must exit 64 (EX_USAGE)")
        documented = synopsis_flags(PAGES[prog])
        self.assertEqual(used, documented,
                         "usage line and %s SYNOPSIS differ" % PAGES[prog])

    def test_smtpd(self):
        self.check("smtpd")

    def test_sendmail(self):
        self.check("sendmail")

    def test_smtp(self):
        self.check("smtp")

    def test_smtpq(self):
        self.check("smtpq")


ALL_PAGES = ["doc/smtpd.8", "doc/smtpd.conf.5", "doc/smtpd-spool.5",
             "doc/smtpq.8", "doc/smtp.1", "doc/smtpd-log.7"]


class Paths(unittest.TestCase):
    def default_conf(self):
        """The file smtpd reads without -C, as smtpd -t names it."""
        p = subprocess.run([os.path.join(BUILDDIR, "smtpd"), "-t"],
                           capture_output=True, text=True, timeout=20)
        m = re.search(r"^config file: (?:none \()?(/\S+)", p.stdout, re.M)
        self.assertIsNotNone(m, p.stdout + p.stderr)
        return m.group(1)

    def test_pages_name_the_configured_paths(self):
        """No placeholder is left in a built page, and the pages of smtpd,
        smtpq and smtpd.conf name the file the programs read."""
        conf = self.default_conf()
        for page in ALL_PAGES:
            with open(built_page(page)) as f:
                text = f.read()
            for left in ("@sysconfdir@", "@localstatedir@", "$(sysconfdir)",
                         "$(localstatedir)", "${prefix}"):
                self.assertNotIn(left, text, page)
            if page in ("doc/smtpd.8", "doc/smtpd.conf.5", "doc/smtpq.8"):
                self.assertIn(".Pa %s" % conf, text, page)


class Lint(unittest.TestCase):
    def test_mandoc_lint_clean(self):
        """mandoc -T lint -W warning has nothing to say about any page."""
        if shutil.which("mandoc") is None:
            self.skipTest("mandoc is not installed (Debian package mandoc)")
        for page in ALL_PAGES:
            with self.subTest(page=page):
                p = subprocess.run(["mandoc", "-T", "lint", "-W", "warning",
                                    built_page(page)],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(p.stdout + p.stderr, "")
                self.assertEqual(p.returncode, 0)

    def test_no_quote_left_open(self):
        """Quoting macros close where they should: no empty quotes and
        no quote opened inside another, in the rendered text."""
        if shutil.which("mandoc") is None:
            self.skipTest("mandoc is not installed (Debian package mandoc)")
        for page in ALL_PAGES:
            with self.subTest(page=page):
                p = subprocess.run(["mandoc", "-T", "utf8", "-O", "width=200",
                                    built_page(page)],
                                   capture_output=True, text=True, timeout=30)
                text = re.sub(r".\x08", "", p.stdout)
                for line in text.splitlines():
                    self.assertNotRegex(line, r"\u2018[^\u2019]*\u2018"
                                        r"|\u2018\u2019|\[\"[^\"]*,"
                                        r" \.\.\. \];\"", line)
