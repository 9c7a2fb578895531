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


# --- The options the code takes against the pages, both ways ---------------
#
# Read from the sources, so that nothing needs to run: every getopt() call
# in src/ (its string resolved through #define) and the switch of
# sendmail's own parser.  A call this table does not know fails the test,
# so a new program or subcommand cannot go undocumented unnoticed.

# (source file, function around the call) -> (page, subcommand or None)
OPTION_SOURCES = {
    ("src/core/main.c", "main"): ("doc/smtpd.8", None),
    ("src/client/main.c", "main"): ("doc/smtp.1", None),
    ("src/queue/smtpq.c", "main"): ("doc/smtpq.8", None),
    ("src/queue/smtpq.c", "cmd_run"): ("doc/smtpq.8", "run"),
    ("src/queue/makemap.c", "makemap_main"): ("doc/smtpq.8", "makemap"),
    ("src/queue/keygen.c", "keygen_main"): ("doc/smtpq.8", "dkim-keygen"),
    ("src/queue/smtpq_passwd.c", "smtpq_passwd"): ("doc/smtpq.8", "passwd"),
    ("src/sendmail/args.c", "sm_parse_args"): ("doc/sendmail.8", None),
}


def c_source(path):
    """A C file without its comments."""
    with open(os.path.join(SRCDIR, path)) as f:
        return re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)


def c_sources(*dirs):
    for d in dirs:
        for root, _, files in os.walk(os.path.join(SRCDIR, d)):
            for name in sorted(files):
                if name.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(root, name), SRCDIR)


def string_defines():
    """#define NAME "..." "..." across src/."""
    defs = {}
    for path in c_sources("src"):
        for m in re.finditer(r'^#define\s+(\w+)\s+((?:"[^"]*"\s*)+)$',
                             c_source(path), re.M):
            defs[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return defs


def enclosing_function(text, pos):
    """The function a position is in (KNF: its name starts a line)."""
    names = re.findall(r"^(\w+)\(", text[:pos], re.M)
    return names[-1] if names else None


def code_options():
    """{(file, function): set of option letters} for every parser."""
    defs = string_defines()
    found = {}
    for path in c_sources("src"):
        if not path.endswith(".c"):
            continue
        text = c_source(path)
        for m in re.finditer(r"\bgetopt(?:_long)?\s*\(\s*\w+\s*,\s*\w+\s*,"
                             r"\s*([^,)]*)", text):
            optstring = ""
            for tok in re.findall(r'"[^"]*"|\w+', m.group(1)):
                if tok.startswith('"'):
                    optstring += tok[1:-1]
                else:
                    assert tok in defs, "%s: getopt string %s not found" % (
                        path, tok)
                    optstring += defs[tok]
            key = (path, enclosing_function(text, m.start()))
            found.setdefault(key, set()).update(
                re.sub(r"[^A-Za-z0-9]", "", optstring))
    # sendmail parses its words itself: the letters of its switch.
    text = c_source("src/sendmail/args.c")
    m = re.search(r"^sm_parse_args\(.*?^}", text, re.M | re.S)
    assert m, "sm_parse_args() not found in src/sendmail/args.c"
    found[("src/sendmail/args.c", "sm_parse_args")] = set(
        re.findall(r"case '([A-Za-z0-9])':", m.group(0)))
    return found


def page_text(page):
    with open(built_page(page)) as f:
        return f.read()


def flag_letters(words, all_letters):
    """Letters of .Fl words: each letter of a grouped flag (-adf), or
    the first of a multi-letter one (sendmail's -oi, -bm)."""
    out = set()
    for w in words:
        w = w.rstrip(",")
        if not re.match(r"[A-Za-z0-9]", w):
            continue            # \-long, punctuation
        out.update(w if all_letters else w[0])
    return out


def page_options(page, sub):
    """(SYNOPSIS flags, flags of the option list) of a page, or of one
    subcommand's .It Cm line."""
    text = page_text(page)
    if sub is not None:
        m = re.search(r"^\.It Cm %s\b(.*)$" % re.escape(sub), text, re.M)
        assert m, "%s: no .It Cm %s" % (page, sub)
        flags = flag_letters(re.findall(r"\bFl (\S+)", m.group(1)), True)
        return flags, flags
    syn = text.split(".Sh SYNOPSIS", 1)[1].split("\n.Sh ", 1)[0]
    synopsis = flag_letters(re.findall(r"\bFl (\S+)", syn), True)
    listed = set()
    for line in re.findall(r"^\.It Fl .*$", text, re.M):
        listed |= flag_letters(re.findall(r"\bFl (\S+)", line), False)
    return synopsis, listed


class Options(unittest.TestCase):
    def test_every_parser_is_known(self):
        """Each option parser in src/ is one this test compares."""
        unknown = set(code_options()) - set(OPTION_SOURCES)
        self.assertEqual(unknown, set(),
                         "option parsers without a page in OPTION_SOURCES")
        gone = set(OPTION_SOURCES) - set(code_options())
        self.assertEqual(gone, set(), "OPTION_SOURCES names parsers that "
                         "are no more")

    def test_options_match_pages(self):
        """Every option a program accepts is in its page's option list,
        every option listed there or in the SYNOPSIS is accepted."""
        code = code_options()
        for (path, func), (page, sub) in sorted(OPTION_SOURCES.items()):
            with self.subTest(source=path, function=func, page=page,
                              subcommand=sub):
                accepted = code.get((path, func), set())
                synopsis, listed = page_options(page, sub)
                problems = {
                    "accepted, not in the option list":
                        sorted(accepted - listed),
                    "in the option list, not accepted":
                        sorted(listed - accepted),
                    "in the SYNOPSIS, not accepted":
                        sorted(synopsis - accepted)}
                self.assertEqual({k: v for k, v in problems.items() if v},
                                 {}, page)


# --- The configuration keys against smtpd.conf(5), both ways ---------------
#
# The readers check a group's settings against a list of known names and
# refuse any other ("unknown setting").  Those lists are read from the
# sources: every array of strings whose name ends in "keys" in the
# directories of the smtpd.conf readers.  A file that refuses unknown
# settings without such a list fails the test, so a reader restructured
# into another form is noticed, not skipped.

CONF_DIRS = ("src/conf", "src/policy", "src/queue", "src/core", "src/auth",
             "src/lib")
CONF_PAGE = "doc/smtpd.conf.5"


def code_keys():
    """{(file, array): [keys]}"""
    lists = {}
    for path in c_sources(*CONF_DIRS):
        text = c_source(path)
        for m in re.finditer(r"const\s+char\s*\*\s*const\s+(\w*keys)\s*"
                             r"\[\s*\]\s*=\s*\{(.*?)\};", text, re.S):
            lists[(path, m.group(1))] = re.findall(r'"([^"]+)"', m.group(2))
        # src/lib/conf.c says "unknown setting" for every reader.
        if "unknown setting" in text and path != "src/lib/conf.c":
            assert any(p == path for p, _ in lists), (
                "%s refuses unknown settings but has no *_keys list: "
                "teach test_docs.py its new form" % path)
    return lists


def documented_keys():
    """Names the page documents as settings: the head of each .It Cm
    item (up to "No ="), and every "Cm name No =" assignment; with the
    line where each is first."""
    keys = {}
    for n, line in enumerate(page_text(CONF_PAGE).split("\n"), 1):
        heads = []
        if line.startswith(".It ") and " Cm " in " " + line[4:]:
            heads += re.findall(r"\bCm\s+([\w.-]+)", line.split(" No =")[0])
        heads += re.findall(r"\bCm\s+([\w.-]+)\s+No\s+=", line)
        for k in heads:
            keys.setdefault(k.rsplit(".", 1)[-1], n)
    return keys


def setting_items():
    """Settings the page defines with their syntax, "Cm name No = ...",
    or as an item of a settings list: the keys it promises exist."""
    keys = {}
    depth = 0
    for n, line in enumerate(page_text(CONF_PAGE).split("\n"), 1):
        if line.startswith(".Bl"):
            depth += 1
        elif line.startswith(".El"):
            depth -= 1
        elif line.startswith(".It Cm"):
            head = line.split(" No =")[0]
            # Nested lists hold values (tls = none, may, ...) unless the
            # item spells out its syntax.
            if " No =" in line or depth == 1:
                for k in re.findall(r"\bCm\s+([\w.-]+)", head):
                    keys.setdefault(k, n)
    return keys


class ConfigKeys(unittest.TestCase):
    def test_lists_found(self):
        """The key lists are where the test looks (a sanity bound)."""
        lists = code_keys()
        self.assertGreaterEqual(len(lists), 10, lists)
        self.assertGreaterEqual(sum(len(v) for v in lists.values()), 100)

    def test_every_key_is_documented(self):
        """Each name in a key list is a setting in smtpd.conf(5)."""
        doc = documented_keys()
        missing = sorted("%s (%s %s)" % (k, path, name)
                         for (path, name), keys in code_keys().items()
                         for k in keys if k not in doc)
        self.assertEqual(missing, [], "settings the code takes that %s "
                         "does not document" % CONF_PAGE)

    def test_every_documented_key_is_taken(self):
        """Each setting smtpd.conf(5) lists is in some key list."""
        code = set(k for keys in code_keys().values() for k in keys)
        extra = sorted("%s (line %d)" % (k, n)
                       for k, n in setting_items().items()
                       if k.rsplit(".", 1)[-1] not in code)
        self.assertEqual(extra, [], "settings %s documents that no reader "
                         "takes" % CONF_PAGE)

    def test_unknown_setting_is_refused(self):
        """What the lists are for: a name outside them is an error that
        names it (checked in a group of each kind)."""
        smtpd = os.path.join(BUILDDIR, "smtpd")
        if not os.path.exists(smtpd):
            self.skipTest("smtpd is not built")
        groups = ["%s", "limits = { %s }", "queue = { %s }",
                  "sendmail = { %s }", "tls = { %s }", "auth = { %s }",
                  "routes = ( { domain = \"*\"; action = \"relay\"; %s } )"]
        for g in groups:
            with self.subTest(group=g):
                conf = os.path.join(self.tmp, "smtpd.conf")
                with open(conf, "w") as f:
                    f.write(g % "no_such_setting_xyz = 1;" + "\n")
                p = subprocess.run([smtpd, "-t", "-C", conf],
                                   capture_output=True, text=True,
                                   timeout=20)
                self.assertNotEqual(p.returncode, 0, p.stdout)
                self.assertIn("no_such_setting_xyz", p.stderr)

    def setUp(self):
        import tempfile
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
