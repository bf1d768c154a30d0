"""Generate a seeded suite of simulated deploy bundles.

python -m evals.simulate --seed 7 --healthy 300 --faulty 150 --out /tmp/suite7
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from evals.sim import generate_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.simulate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, required=True, help="suite seed")
    parser.add_argument("--healthy", type=int, default=24, help="healthy bundles")
    parser.add_argument("--faulty", type=int, default=18, help="faulty bundles")
    parser.add_argument("--out", type=Path, required=True, help="suite folder to write")
    parser.add_argument(
        "--jobs", type=int, default=min(4, os.cpu_count() or 1), help="worker processes"
    )
    args = parser.parse_args(argv)
    if args.healthy < 0 or args.faulty < 0:
        parser.error("--healthy and --faulty must be zero or more")
    began = time.perf_counter()
    paths = generate_suite(args.out, args.seed, args.healthy, args.faulty, jobs=args.jobs)
    took = time.perf_counter() - began
    print(f"wrote {len(paths)} bundles to {args.out} in {took:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
