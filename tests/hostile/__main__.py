"""Print the hostile-input catalogue with each case's expected and observed outcome.

    python -m tests.hostile            every case but the slow ones
    python -m tests.hostile --slow     the slow ones too
    python -m tests.hostile --list     names and expectations only, nothing run
    python -m tests.hostile NAME...    only these cases

Exit status 1 when a case fails.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from tests.hostile.catalogue import CATALOGUE, Case
from tests.hostile.env import Env


def run_case(env: Env, case: Case) -> tuple[str, str]:
    """(verdict, observed): verdict is pass or FAIL."""
    env.reset()
    try:
        observed = case.check(env)
    except Exception as exc:  # the report must go on; the failure is the observation
        observed = f"raised {exc.__class__.__name__}: {exc}"[:120]
    if observed == case.expected:
        return "pass", observed
    return "FAIL", observed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hostile", description=__doc__)
    parser.add_argument("names", nargs="*", help="only these cases")
    parser.add_argument("--slow", action="store_true", help="include the slow cases")
    parser.add_argument("--list", action="store_true", help="print the catalogue, run nothing")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the cases provoke warnings by design
    cases = [
        c
        for c in CATALOGUE
        if (not args.names or c.name in args.names) and (args.slow or args.names or not c.slow)
    ]
    width = max(len(c.name) for c in CATALOGUE)
    if args.list:
        for c in CATALOGUE:
            print(f"{c.area:16} {c.name:{width}}  expect: {c.expected}" + " [slow]" * c.slow)
        print(f"{len(CATALOGUE)} cases")
        return 0
    env = Env()
    failed = 0
    counts: dict[str, int] = {}
    try:
        for c in cases:
            started = time.monotonic()
            verdict, observed = run_case(env, c)
            counts[verdict] = counts.get(verdict, 0) + 1
            failed += verdict == "FAIL"
            seconds = time.monotonic() - started
            line = f"{verdict:20} {c.area:16} {c.name:{width}}  expect: {c.expected}"
            if observed != c.expected:
                line += f"  | observed: {observed}"
            print(f"{line}  ({seconds:.1f}s)", flush=True)
    finally:
        env.close()
    skipped = len(CATALOGUE) - len(cases)
    print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + f", {skipped} not run")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
