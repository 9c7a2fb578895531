"""configure on a system without what the code needs from Linux: it
stops at once and says what is missing, instead of a compiler error
later.  The system is made to look that way with autoconf's cache
variables (a check answered "no" in advance)."""
import os
import subprocess
import tempfile
import unittest

from harness import sanitizer_build

SRCDIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


@unittest.skipIf(sanitizer_build(), "a sanitizer build: configure is "
                 "the same script, tested by the plain run")
class LinuxOnly(unittest.TestCase):
    def run_configure(self, **cache):
        configure = os.path.join(SRCDIR, "configure")
        if not os.path.exists(configure):
            self.skipTest("no configure script (run autoreconf -fi)")
        env = dict(os.environ, **cache)
        with tempfile.TemporaryDirectory() as build:
            return subprocess.run([configure, "-q"], cwd=build, env=env,
                                  capture_output=True, text=True,
                                  timeout=300)

    def test_missing_linux_calls_are_named(self):
        p = self.run_configure(ac_cv_func_syncfs="no",
                               ac_cv_header_linux_futex_h="no",
                               ac_cv_have_decl_PR_SET_PDEATHSIG="no")
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("runs on Linux only", p.stderr)
        for name in ("syncfs()", "<linux/futex.h>", "PR_SET_PDEATHSIG"):
            self.assertIn(name, p.stderr)
