"""The Debian packaging: dpkg-buildpackage -b -us -uc builds upas-smtpd and
upas-smtpd-sendmail from a copy of the tree, lintian finds no error in
them, and they hold the programs, man pages, units, config and maintainer
scripts.  The packages are looked into with dpkg-deb, never installed
(upas-smtpd-sendmail conflicts with the Postfix the tests use).

It builds the whole tree once more (about a minute on two cores), so it
runs alone."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import sanitizer_build

SERIAL = True

SRCDIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD_TIMEOUT = 1200

# Top-level names in an unpacked tarball or work tree that are not
# sources: build directories and state.
NOT_SOURCE = {"build", "build-san", "build-tsan", "build-fuzz", "_build",
              "state", ".git", "autom4te.cache", "__pycache__"}

TOOLS = ["dpkg-buildpackage", "dh", "lintian", "fakeroot", "dpkg-deb"]


def copy_sources(dst):
    """The tree as it is now (edits not yet committed included): the
    files git knows, or in an unpacked tarball (no .git) every file."""
    if os.path.isdir(os.path.join(SRCDIR, ".git")) or \
            os.path.isfile(os.path.join(SRCDIR, ".git")):
        out = subprocess.run(
            ["git", "-C", SRCDIR, "ls-files", "-co", "--exclude-standard",
             "-z"], check=True, capture_output=True, timeout=60).stdout
        for rel in out.decode().split("\0"):
            if not rel or not os.path.lexists(os.path.join(SRCDIR, rel)):
                continue
            os.makedirs(os.path.join(dst, os.path.dirname(rel)),
                        exist_ok=True)
            shutil.copy2(os.path.join(SRCDIR, rel), os.path.join(dst, rel),
                         follow_symlinks=False)
    else:
        shutil.copytree(SRCDIR, dst, symlinks=True, dirs_exist_ok=True,
                        ignore=lambda d, names: [
                            n for n in names
                            if d == SRCDIR and n in NOT_SOURCE])
    # distcheck's tree is read-only; the build writes into its copy.
    for d, dirs, files in os.walk(dst):
        for n in dirs + files:
            p = os.path.join(d, n)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o200)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


class DebianPackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if sanitizer_build():
            raise unittest.SkipTest("a sanitizer build: the package is "
                                    "built by the plain run")
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise unittest.SkipTest(
                "not installed: %s (tools/dev installs them)" %
                " ".join(missing))
        cls.tmp = tempfile.mkdtemp(prefix="smtpd-package-")
        src = os.path.join(cls.tmp, "upas-smtpd")
        os.mkdir(src)
        copy_sources(src)
        env = dict(os.environ)
        for v in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DESTDIR"):
            env.pop(v, None)
        env["DEB_BUILD_OPTIONS"] = "parallel=2"
        p = run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=src, env=env,
                timeout=BUILD_TIMEOUT)
        if p.returncode != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise AssertionError("dpkg-buildpackage failed (%d):\n%s" % (
                p.returncode, (p.stdout + p.stderr)[-6000:]))
        cls.changes = os.path.join(cls.tmp, "upas-smtpd_%s_%s.changes" % (
            cls.version(src), cls.arch()))
        cls.debs = {}
        for n in os.listdir(cls.tmp):
            m = re.match(r"([a-z0-9.+-]+?)_[^_]+_[^_]+\.deb$", n)
            if m:
                cls.debs[m.group(1)] = os.path.join(cls.tmp, n)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @staticmethod
    def version(src):
        return run(["dpkg-parsechangelog", "-S", "Version"], cwd=src,
                   check=True).stdout.strip()

    @staticmethod
    def arch():
        return run(["dpkg-architecture", "-qDEB_HOST_ARCH"],
                   check=True).stdout.strip()

    def contents(self, pkg):
        """The paths in the package (without the leading '.') and, for
        each, the mode string dpkg-deb -c gives."""
        out = run(["dpkg-deb", "-c", self.debs[pkg]], check=True).stdout
        files = {}
        for line in out.splitlines():
            f = line.split()
            path = f[5][1:]
            files[path] = (f[0], f[7] if len(f) > 7 else None)
        return files

    def control(self, pkg, member):
        return run(["dpkg-deb", "-I", self.debs[pkg], member],
                   check=True).stdout

    def fsys_file(self, pkg, path):
        out = subprocess.run(
            "dpkg-deb --fsys-tarfile %s | tar -xOf - .%s" % (
                self.debs[pkg], path),
            shell=True, check=True, capture_output=True, timeout=60)
        return out.stdout.decode()

    def test_both_packages_built(self):
        self.assertIn("upas-smtpd", self.debs)
        self.assertIn("upas-smtpd-sendmail", self.debs)
        self.assertTrue(os.path.exists(self.changes), self.changes)

    def test_lintian_finds_no_error(self):
        p = run(["lintian", "--fail-on", "error", self.changes],
                timeout=600)
        errors = [l for l in p.stdout.splitlines() if l.startswith("E:")]
        self.assertEqual(errors, [], p.stdout)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_programs_pages_and_units(self):
        files = self.contents("upas-smtpd")
        for path in ("/usr/sbin/smtpd", "/usr/sbin/smtpq", "/usr/bin/smtp"):
            self.assertIn(path, files)
            self.assertEqual(files[path][0], "-rwxr-xr-x", path)
        for page in ("man8/smtpd.8", "man8/smtpq.8", "man1/smtp.1",
                     "man5/smtpd.conf.5", "man5/smtpd-spool.5",
                     "man7/smtpd-log.7"):
            self.assertIn("/usr/share/man/%s.gz" % page, files)
        for unit in ("smtpd.service", "smtpd.socket", "smtpd-stdio.socket",
                     "smtpd-stdio@.service"):
            self.assertIn("/lib/systemd/system/" + unit, files)
        self.assertIn(
            "/usr/share/upas-smtpd/fail2ban/filter.d/upas-smtpd.conf", files)
        self.assertIn("/var/spool/smtpd/", files)
        # sendmail is the other package's, and only its.
        self.assertNotIn("/usr/sbin/sendmail", files)
        unit = self.fsys_file("upas-smtpd", "/lib/systemd/system/smtpd.service")
        self.assertIn("ExecStart=/usr/sbin/smtpd -C /etc/smtpd.conf", unit)
        self.assertNotIn("@", unit.replace("smtpd-stdio@", ""))

    def test_config_is_a_conffile_with_the_system_spool(self):
        self.assertIn("/etc/smtpd.conf",
                      self.control("upas-smtpd", "conffiles").split())
        conf = self.fsys_file("upas-smtpd", "/etc/smtpd.conf")
        self.assertRegex(conf, r'(?m)^spool = "/var/spool/smtpd";')
        self.assertRegex(conf, r'(?m)^listen = \[ "127\.0\.0\.1:2525" \];')
        # No setting left pointing into a source tree.
        self.assertNotRegex(conf, r"(?m)^[^#\n]*\.\./state")
        # The packaged smtpd takes the packaged config.
        root = os.path.join(self.tmp, "root")
        run(["dpkg-deb", "-x", self.debs["upas-smtpd"], root], check=True)
        p = run([root + "/usr/sbin/smtpd", "-t", "-C",
                 root + "/etc/smtpd.conf"], timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("spool: /var/spool/smtpd", p.stdout)

    def test_daemon_scripts_make_the_account(self):
        info = run(["dpkg-deb", "-I", self.debs["upas-smtpd"]],
                   check=True).stdout
        for script in ("postinst", "postrm", "prerm"):
            self.assertRegex(info, r"\s%s\s" % script)
        postinst = self.control("upas-smtpd", "postinst")
        self.assertRegex(postinst, r"adduser --system[^\n]*(\\\n[^\n]*)*_smtpd")
        self.assertIn("deb-systemd-helper enable 'smtpd.service'", postinst)
        self.assertIn("deb-systemd-invoke $_dh_action 'smtpd.service'",
                      postinst)
        # The sockets are installed, neither started nor enabled on a
        # first install (only kept enabled if the administrator did).
        for sock in ("smtpd.socket", "smtpd-stdio.socket"):
            self.assertNotIn("deb-systemd-invoke $_dh_action '%s'" % sock,
                             postinst)
            self.assertIn("debian-installed '%s'" % sock, postinst)
        for script in ("postinst", "postrm"):
            p = run(["sh", "-n"], input=self.control("upas-smtpd", script))
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_sendmail_is_the_mail_transport_agent(self):
        fields = self.control("upas-smtpd-sendmail", "control")
        self.assertRegex(fields, r"(?m)^Provides: .*mail-transport-agent")
        self.assertRegex(fields, r"(?m)^Conflicts: .*mail-transport-agent")
        self.assertRegex(fields, r"(?m)^Depends: upas-smtpd \(= ")
        files = self.contents("upas-smtpd-sendmail")
        self.assertEqual(files["/usr/sbin/sendmail"][0], "-rwxr-xr-x")
        for link in ("/usr/sbin/mailq", "/usr/sbin/newaliases",
                     "/usr/lib/sendmail"):
            self.assertIn(link, files)
            self.assertTrue(files[link][0].startswith("l"), link)
        self.assertIn("/usr/share/man/man8/sendmail.8.gz", files)
        postinst = self.control("upas-smtpd-sendmail", "postinst")
        self.assertIn("addgroup --system --quiet _smtpq", postinst)
        self.assertRegex(postinst, r"dpkg-statoverride --update --add root "
                         r"_smtpq 2755 \\?\s*/usr/sbin/sendmail")
        self.assertIn('chmod 1730 "$spool/maildrop"', postinst)
        postrm = self.control("upas-smtpd-sendmail", "postrm")
        self.assertIn("dpkg-statoverride --remove /usr/sbin/sendmail", postrm)
        for script in (postinst, postrm):
            p = run(["sh", "-n"], input=script)
            self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
