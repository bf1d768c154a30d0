"""Suites of simulated bundles: families spread evenly, one folder per bundle."""

from __future__ import annotations

import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from agent.bundle.writer import write_bundle
from evals.sim.families import FAULTY, HEALTHY
from evals.sim.generate import bundle_name, simulate, with_gaps


def suite_plan(healthy: int, faulty: int) -> list[tuple[str, int]]:
    """(family, index) of every bundle, by index.

    The k-th healthy bundle has index 2k and the k-th faulty one 2k + 1, each cycling through
    its families in table order: bundle i is the same whatever the suite's size.
    """
    plan = [(HEALTHY[k % len(HEALTHY)], 2 * k) for k in range(healthy)]
    plan += [(FAULTY[k % len(FAULTY)], 2 * k + 1) for k in range(faulty)]
    return sorted(plan, key=lambda item: item[1])


def write_simulated(family: str, seed: int, index: int, out_dir: Path) -> Path:
    """Simulate one bundle and write it to out_dir/<family>-<index>."""
    sim = simulate(family, seed, index)
    folder = out_dir / bundle_name(family, index)
    if folder.exists():
        # A stale bundle would keep files this one does not write (alert.json).
        shutil.rmtree(folder)
    return write_bundle(with_gaps(sim.bundle, sim.gaps), folder)


def generate_suite(
    out_dir: Path, seed: int, healthy: int, faulty: int, *, jobs: int = 1
) -> list[Path]:
    """Write healthy + faulty bundles into out_dir; returns their folders in index order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = suite_plan(healthy, faulty)
    if jobs <= 1 or len(plan) < 2:
        return [write_simulated(family, seed, index, out_dir) for family, index in plan]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(write_simulated, f, seed, i, out_dir) for f, i in plan]
        return [future.result() for future in futures]
