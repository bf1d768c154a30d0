"""Generate a seeded suite of simulated deploy bundles.

python -m evals.simulate --seed 7 --healthy 300 --faulty 150 --out /tmp/suite7
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from evals.sim import generate_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--healthy", type=int, default=300)
    parser.add_argument("--faulty", type=int, default=150)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    paths = generate_suite(args.out, args.seed, args.healthy, args.faulty)
    print(f"wrote {len(paths)} bundles to {args.out} in {time.perf_counter() - began:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
