#!/usr/bin/python3
"""Runs every t/e2e/test_*.py (unittest) and ends with
'N passed, N failed, N skipped'.

usage: run.py [-j N] [-k substring] [test_file.py ...]

Without file arguments it runs the files named in $E2E_FILES, else all.
The tests run in python processes of their own, N at once (-j, default
$E2E_JOBS, else 4), each taking about SPLIT_SECONDS of work going by the
last run in this build directory: a long file is split by test class,
short ones share a process.  The output of each part is printed whole
when it finishes, and every failure is listed again at the end.  A file
saying SERIAL = True at module level (it mounts file systems, or measures
time) runs alone, after the others.  Every test already has its own port
and work directory (harness.py).
"""
import argparse
import concurrent.futures
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# A part that runs longer than this is stopped and counted as failed.
PART_TIMEOUT = float(os.environ.get("E2E_PART_TIMEOUT", "900"))
# A file whose classes took longer than this together is split into
# parts of about this length.
SPLIT_SECONDS = 5.0
SERIAL_RE = re.compile(r"^SERIAL\s*=\s*True\b", re.M)


def durations_path():
    build = os.environ.get("BUILDDIR")
    if not build:
        return None
    # A wrapped smtpd (valgrind) is slower: its times are kept apart.
    name = ("durations-wrapped.json" if os.environ.get("SMTPD_WRAPPER")
            else "durations.json")
    return os.path.join(build, "t", "e2e", name)


def load_durations():
    p = durations_path()
    try:
        with open(p) as f:
            return json.load(f)
    except (TypeError, OSError, ValueError):
        return {}


def save_durations(d):
    p = durations_path()
    if p is None:
        return
    try:
        os.makedirs(os.path.dirname(p), exist_ok=True)
        tmp = p + ".tmp"
        with open(tmp, "w") as f:
            json.dump(d, f, indent=0, sort_keys=True)
        os.replace(tmp, p)
    except OSError:
        pass


def make_loader(pattern):
    loader = unittest.TestLoader()
    if pattern:
        loader.testNamePatterns = ["*%s*" % pattern]
    return loader


class Piece:
    """A whole module, or some of its classes."""

    def __init__(self, module, classes, estimate):
        self.module = module
        self.classes = classes          # None: the whole module
        self.estimate = estimate

    def names(self):
        if self.classes is None:
            return [self.module]
        return ["%s.%s" % (self.module, c) for c in self.classes]

    def label(self):
        if self.classes is None:
            return self.module + ".py"
        return "%s.py (%s)" % (self.module, ", ".join(self.classes))


class Part:
    """Tests run by one process: one or more pieces."""

    def __init__(self, pieces):
        self.pieces = pieces
        self.estimate = sum(p.estimate for p in pieces)

    def names(self):
        return [n for p in self.pieces for n in p.names()]

    def label(self):
        return " + ".join(p.label() for p in self.pieces)


def pieces_of(module, classes, durations):
    """A module cut into pieces of about SPLIT_SECONDS each, going by how
    long its classes took last time (one second for one never timed)."""
    est = {c: durations.get("%s.%s" % (module, c), 1.0) for c in classes}
    total = sum(est.values())
    n = min(len(classes), math.ceil(total / SPLIT_SECONDS))
    if n <= 1:
        return [Piece(module, None, total)]
    # Each class, longest first, goes to the piece shortest so far.
    bins = [[0.0, []] for _ in range(n)]
    for c in sorted(classes, key=lambda c: -est[c]):
        b = min(bins, key=lambda b: b[0])
        b[0] += est[c]
        b[1].append(c)
    return [Piece(module, sorted(cs), t) for t, cs in bins]


def plan(files, pattern, durations):
    """The parts to run: (parallel parts, longest first; serial parts).
    Short pieces share a process: starting one costs about 0.1 s."""
    loader = make_loader(pattern)
    pieces, serial = [], []
    for f in files:
        module = os.path.splitext(os.path.basename(f))[0]
        with open(os.path.join(HERE, module + ".py")) as fh:
            alone = SERIAL_RE.search(fh.read()) is not None
        mod = __import__(module)
        classes = []
        for name in sorted(dir(mod)):
            obj = getattr(mod, name)
            if (isinstance(obj, type) and issubclass(obj, unittest.TestCase)
                    and loader.loadTestsFromTestCase(obj).countTestCases()):
                classes.append(name)
        if not classes:
            continue
        if alone:
            serial.append(Part([Piece(module, None, 0.0)]))
        else:
            pieces += pieces_of(module, classes, durations)
    # First fit, longest first, into parts of up to SPLIT_SECONDS.
    par = []
    for p in sorted(pieces, key=lambda p: -p.estimate):
        for part in par:
            if part.estimate + p.estimate <= SPLIT_SECONDS:
                part.pieces.append(p)
                part.estimate += p.estimate
                break
        else:
            par.append(Part([p]))
    par.sort(key=lambda p: -p.estimate)
    return par, serial


# --- a child process: runs one part, writes its result as JSON ---

class Timed(unittest.TextTestResult):
    """Remembers how long each test class took."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.class_time = {}
        self.started = set()
        self._t0 = None

    def startTest(self, test):
        self._t0 = time.monotonic()
        self.started.add(test.id())
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        key = "%s.%s" % (type(test).__module__, type(test).__name__)
        self.class_time[key] = (self.class_time.get(key, 0.0)
                                + time.monotonic() - self._t0)


def test_id(test):
    """The id of a test, or of the test a subtest belongs to."""
    return getattr(test, "test_case", test).id()


def run_child(names, pattern, result_path):
    loader = make_loader(pattern)
    suite = unittest.TestSuite()
    for n in names:
        suite.addTests(loader.loadTestsFromName(n))
    runner = unittest.TextTestRunner(verbosity=2, resultclass=Timed,
                                     stream=sys.stdout)
    res = runner.run(suite)
    bad = [(str(t), tb) for t, tb in res.failures + res.errors]
    bad += [(str(t), "unexpected success\n") for t in res.unexpectedSuccesses]
    # Tests, not subtests, are counted; a failed setUpClass counts as one.
    failed = {test_id(t) for t, _ in res.failures + res.errors}
    failed |= {test_id(t) for t in res.unexpectedSuccesses}
    skipped = {test_id(t) for t, _ in res.skipped} - failed
    out = {"passed": len(res.started - failed - skipped),
           "failed": len(failed), "skipped": len(skipped),
           "failures": bad, "times": res.class_time}
    with open(result_path, "w") as f:
        json.dump(out, f)
    return 0


# --- the parent: runs parts in child processes ---

class Totals:
    def __init__(self):
        self.lock = threading.Lock()
        self.passed = self.failed = self.skipped = 0
        self.failures = []
        self.times = {}


def run_part(part, pattern, totals, live):
    fd, result_path = tempfile.mkstemp(prefix="result-", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, os.path.abspath(__file__), "--result", result_path]
    if pattern:
        cmd += ["-k", pattern]
    cmd += ["--part"] + part.names()
    start = time.monotonic()
    out = b""
    note = None
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=None if live else subprocess.PIPE,
                            stderr=None if live else subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=PART_TIMEOUT)
    except subprocess.TimeoutExpired:
        # The whole process group: daemons the tests started go too.
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        note = "stopped after %.0f s" % PART_TIMEOUT
    elapsed = time.monotonic() - start
    try:
        with open(result_path) as f:
            res = json.load(f)
    except (OSError, ValueError):
        res = None
    finally:
        os.unlink(result_path)
    if res is None:
        note = note or "exited %s without a result" % proc.returncode
        res = {"passed": 0, "failed": 1, "skipped": 0,
               "failures": [(part.label(), note + "\n")], "times": {}}
    with totals.lock:
        if out:
            text = out.decode("utf-8", "replace")
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        print("e2e: %s: %d passed, %d failed, %.1f s%s" % (
            part.label(), res["passed"], res["failed"], elapsed,
            " (%s)" % note if note else ""))
        sys.stdout.flush()
        totals.passed += res["passed"]
        totals.failed += res["failed"]
        totals.skipped += res["skipped"]
        totals.failures += res["failures"]
        totals.times.update(res["times"])


def run_parts(parts, jobs, pattern, totals):
    live = jobs == 1 and len(parts) == 1
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futs = [pool.submit(run_part, p, pattern, totals, live)
                for p in parts]
        for f in futs:
            try:
                f.result()
            except Exception:
                with totals.lock:
                    totals.failed += 1
                    totals.failures.append(("run.py",
                                            traceback.format_exc()))


def default_jobs():
    try:
        return max(1, int(os.environ.get("E2E_JOBS", "4")))
    except ValueError:
        return 4


def main():
    ap = argparse.ArgumentParser(usage="run.py [-j N] [-k substring] "
                                 "[test_file.py ...]")
    ap.add_argument("-j", type=int, default=default_jobs(), dest="jobs")
    ap.add_argument("-k", dest="pattern")
    ap.add_argument("--part", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    if a.part:
        return run_child(a.part, a.pattern, a.result)
    files = a.files or os.environ.get("E2E_FILES", "").split() or sorted(
        f for f in os.listdir(HERE)
        if f.startswith("test_") and f.endswith(".py"))
    start = time.monotonic()
    # The tests' work directories go into one of this run's own, removed
    # at the end: nothing is left behind by a part that was killed, and
    # other runs on the machine never touch it.  Pipe programs run as
    # nobody and must be able to get in.
    rundir = tempfile.mkdtemp(prefix="e2e-")
    os.chmod(rundir, 0o755)
    os.environ["TMPDIR"] = tempfile.tempdir = rundir
    durations = load_durations()
    par, ser = plan(files, a.pattern, durations)
    totals = Totals()
    jobs = max(1, a.jobs)
    run_parts(par, jobs, a.pattern, totals)
    for p in ser:
        run_parts([p], 1, a.pattern, totals)
    durations.update(totals.times)
    save_durations(durations)
    if os.environ.get("KEEP_E2E") is None:
        shutil.rmtree(rundir, ignore_errors=True)
    else:
        print("e2e: work directories kept in %s" % rundir)
    if totals.failures:
        print("e2e: failures:")
    for name, tb in totals.failures:
        print("=" * 70)
        print("FAIL: %s" % name)
        print("-" * 70)
        print(tb.rstrip("\n"))
    print("e2e: %.1f s with -j %d" % (time.monotonic() - start, jobs))
    print("%d passed, %d failed, %d skipped" % (
        totals.passed, totals.failed, totals.skipped))
    return 1 if totals.failed else 0


if __name__ == "__main__":
    sys.exit(main())
