#!/usr/bin/python3
"""Runs every t/e2e/test_*.py (unittest) and ends with 'N passed, N failed'.

usage: run.py [-k substring] [test_file.py ...]
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class Counting(unittest.TextTestResult):
    pass


def main():
    args = sys.argv[1:]
    pattern = None
    if len(args) >= 2 and args[0] == "-k":
        pattern = args[1]
        args = args[2:]
    loader = unittest.TestLoader()
    if pattern:
        loader.testNamePatterns = ["*%s*" % pattern]
    files = args or sorted(f for f in os.listdir(HERE)
                           if f.startswith("test_") and f.endswith(".py"))
    suite = unittest.TestSuite()
    for f in files:
        name = os.path.splitext(os.path.basename(f))[0]
        suite.addTests(loader.loadTestsFromName(name))
    start = time.time()
    runner = unittest.TextTestRunner(verbosity=2, resultclass=Counting,
                                     stream=sys.stdout)
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    skipped = len(res.skipped)
    passed = res.testsRun - failed - skipped
    print("e2e: %.1f s" % (time.time() - start))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
