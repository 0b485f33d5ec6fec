#!/usr/bin/env python3
"""run.py - runs the end-to-end tests (tests/e2e/test_*.py) and, with
--unit BUILD_DIR, the C unit tests through ctest against a throwaway
PostgreSQL. Prints PASS/FAIL per test and ends with "N passed, N failed".

A test is a function test_*(stack). Tests of one module share one stack,
unless the function is marked fresh (@fresh), then it gets its own. After a
module, its stacks' logs must hold no sanitizer report: that check counts as
a test too."""
import importlib.util
import os
import re
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

results = []


def record(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""),
          flush=True)


def run_unit(build_dir):
    stack = harness.Stack(services=[])
    try:
        stack.pg_init()
        stack.pg_start()
        env = dict(os.environ, TEST_PGPORT=str(stack.pg_port), PGHOST="127.0.0.1",
                   PGUSER="postgres", PGDATABASE="postgres")
        out = subprocess.run(["ctest", "--test-dir", build_dir, "--output-on-failure",
                              "--timeout", "120"], env=env, capture_output=True, text=True,
                             timeout=600)
        for line in out.stdout.splitlines():
            m = re.search(r"Test\s+#\d+: (\S+) \.+\**\s*(Passed|Failed|\*\*\*Failed|"
                          r"Not Run|Skipped|\*\*\*Skipped|Exception.*|\*\*\*Timeout)", line)
            if m:
                record("unit/" + m.group(1), m.group(2) == "Passed",
                       "" if m.group(2) == "Passed" else m.group(2))
        if out.returncode != 0:
            print(out.stdout[-3000:])
    finally:
        stack.down()
        stack.cleanup()


def load(path):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return name, mod


def run_module(path, pattern):
    name, mod = load(path)
    tests = [(n, f) for n, f in vars(mod).items()
             if n.startswith("test_") and callable(f) and (not pattern or pattern in
                                                            "%s.%s" % (name, n))]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    if not tests:
        return
    stacks, shared = [], None
    try:
        for tname, fn in tests:
            full = "%s.%s" % (name, tname)
            stack = None
            t0 = time.monotonic()
            try:
                if getattr(fn, "fresh", False):
                    stack = harness.Stack(env=getattr(fn, "env", None),
                                          services=getattr(fn, "services", None))
                    stacks.append(stack)
                    stack.up()
                else:
                    if shared is None:
                        shared = harness.Stack(env=getattr(mod, "ENV", None))
                        stacks.append(shared)
                        stack = shared  # its logs, should it not come up
                        shared.up()
                    stack = shared
                fn(stack)
                record(full, True, "%.2fs" % (time.monotonic() - t0))
            except Exception as e:  # a failed assertion or a broken stack
                detail = "%s: %s" % (type(e).__name__, e)
                record(full, False, detail)
                traceback.print_exc()
                if stack is not None:
                    print(stack.tail_logs())
            finally:
                if stack is not None and stack is not shared:
                    stack.down()
    finally:
        if shared is not None:
            shared.down()
        reports = [r for s in stacks for r in s.sanitizer_reports()]
        record("%s.no_sanitizer_reports" % name, not reports, "; ".join(reports[:5]))
        for s in stacks:
            s.cleanup()


def main():
    args = sys.argv[1:]
    unit = None
    if args[:1] == ["--unit"]:
        unit, args = args[1], args[2:]
    pattern = args[0] if args else ""
    if unit:
        run_unit(unit)
    for f in sorted(os.listdir(HERE)):
        if f.startswith("test_") and f.endswith(".py"):
            run_module(os.path.join(HERE, f), pattern)
    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if results and passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
