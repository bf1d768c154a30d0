"""Benchmark: Vigil's judge against reference judges on a freshly seeded suite, plus speed.

    python -m evals.bench_judges                     # seed 11, 300 healthy + 150 faulty
    python -m evals.bench_judges --seed 12 --json    # machine-readable
    python -m evals.bench_judges --suite DIR         # an existing suite instead

It generates the suite (unless --suite), replays every bundle through each judge (every
`step`, no look-ahead), prints the scorecards side by side, then measures one judge call on
a 10-signal x 200-point deploy (per step with the baselines prepared once, and cold) and the
wall time and peak memory of replaying the whole suite through Vigil's judge.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from agent.bundle.model import Bundle, BundleManifest
from agent.bundle.reader import iter_bundles
from agent.bundle.series import Series, SignalData
from agent.evaluation import TARGETS, Scorecard, iter_outcomes, score
from agent.judge.core import judge_prepared
from agent.judge.prepared import prepare
from agent.judge.settings import JudgeSettings
from evals.sim import generate_suite

JUDGES = ("vigil", "static", "flagger", "kayenta")
EXTRA_ROWS = (
    "false_rollback_pct",
    "warn_healthy_pct",
    "median_delay_to_rollback_all_s",
    "p90_delay_to_rollback_all_s",
    "median_delay_s",
    "p90_delay_s",
)


def speed_bundle(signals: int = 10, points: int = 200, seed: int = 0) -> Bundle:
    """A deploy with `signals` signals of `points` samples each (120 before, 80 after)."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    step = 15.0
    before = 120
    t = start.timestamp() + step * (np.arange(points, dtype=np.float64) - before)
    specs: list[dict[str, Any]] = [
        {"name": "request_rate", "kind": "traffic", "unit": "per_second", "bad_direction": "down"},
        {
            "name": "error_ratio",
            "kind": "errors",
            "unit": "ratio",
            "bad_direction": "up",
            "slo": 0.01,
            "critical": True,
            "events": "request_rate",
        },
        {
            "name": "checkout_success_ratio",
            "kind": "business",
            "unit": "ratio",
            "bad_direction": "down",
            "slo": 0.95,
            "critical": True,
            "events": "request_rate",
        },
    ]
    for i in range(signals - 3):
        kind = ("latency", "saturation", "dependency")[i % 3]
        unit = {"latency": "seconds", "saturation": "bytes", "dependency": "seconds"}[kind]
        specs.append({"name": f"{kind}_{i}", "kind": kind, "unit": unit, "bad_direction": "up"})
    values: dict[str, np.ndarray] = {}
    rate = 300.0 * np.exp(rng.normal(0.0, 0.03, points))
    values["request_rate"] = rate
    values["error_ratio"] = rng.binomial((rate * step).astype(np.int64), 0.002) / (rate * step)
    values["checkout_success_ratio"] = 1.0 - rng.binomial((rate * step).astype(np.int64), 0.02) / (
        rate * step
    )
    for spec in specs[3:]:
        values[spec["name"]] = 0.2 * np.exp(rng.normal(0.0, 0.05, points))
    manifest = BundleManifest.model_validate(
        {
            "format": 1,
            "name": "speed",
            "service": "checkout",
            "deploy": {
                "id": "d1",
                "version": "v2",
                "previous_version": "v1",
                "started_at": start,
                "finished_at": start + timedelta(minutes=2),
                "strategy": "rolling",
            },
            "step": "15s",
            "watch_until": start + timedelta(seconds=step * (points - before - 1)),
            "signals": specs,
        }
    )
    data = SignalData({name: {"": Series(t.copy(), v)} for name, v in values.items()})
    return Bundle(manifest=manifest, signals=data)


def _per_call_ms(fn: Any, repeat: int, rounds: int = 5) -> dict[str, float]:
    """Median and best over `rounds` of the mean time of `repeat` calls, in milliseconds."""
    means = []
    for _ in range(rounds):
        began = time.perf_counter()
        for _ in range(repeat):
            fn()
        means.append((time.perf_counter() - began) * 1000.0 / repeat)
    return {"median_ms": statistics.median(means), "best_ms": min(means)}


def judge_speed() -> dict[str, Any]:
    bundle = speed_bundle()
    settings = JudgeSettings()
    at = float(bundle.signals.series("request_rate").t[-1])  # type: ignore[union-attr]
    prep = prepare(bundle, settings)
    judge_prepared(prep, at, settings)  # warm caches
    return {
        "signals": 10,
        "points": 200,
        "per_step": _per_call_ms(lambda: judge_prepared(prep, at, settings), 2000),
        "cold": _per_call_ms(lambda: judge_prepared(prepare(bundle, settings), at, settings), 300),
    }


def _peak_rss_mb(workers: int) -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {
        "main_mb": own,
        "largest_worker_mb": child,
        "upper_bound_mb": own + workers * child,
    }


def run(suite: Path, workers: int, judges: tuple[str, ...]) -> dict[str, Any]:
    paths = list(iter_bundles([suite]))
    cards: dict[str, Scorecard] = {}
    timings: dict[str, float] = {}
    for name in judges:
        began = time.perf_counter()
        cards[name] = score(iter_outcomes(paths, name, workers=workers), name)
        timings[name] = time.perf_counter() - began
    return {
        "suite": str(suite),
        "bundles": len(paths),
        "scorecards": {name: card.to_json() for name, card in cards.items()},
        "replay_seconds": timings,
        "workers": workers,
        "speed": judge_speed(),
        "peak_rss": _peak_rss_mb(workers),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def render(report: dict[str, Any], console: Console) -> None:
    cards = report["scorecards"]
    names = list(cards)
    first = cards[names[0]]
    table = Table(
        title=f"{report['bundles']} bundles ({first['healthy']} healthy, {first['faulty']} "
        f"faulty) from {report['suite']}",
        header_style="bold",
    )
    table.add_column("metric")
    table.add_column("target")
    for name in names:
        table.add_column(name, justify="right")
    for key, (op, bound) in TARGETS.items():
        cells = []
        for name in names:
            ok = cards[name]["meets_targets"][key]
            mark = "[green]✓[/]" if ok else "[red]✗[/]"
            cells.append(f"{_fmt(cards[name][key])} {mark}")
        table.add_row(key, f"{op} {bound:g}", *cells)
    for key in EXTRA_ROWS:
        table.add_row(key, "", *(_fmt(cards[name][key]) for name in names))
    table.add_row(
        "replay wall time s",
        "",
        *(f"{report['replay_seconds'][name]:.1f}" for name in names),
    )
    console.print(table)
    speed = report["speed"]
    rss = report["peak_rss"]
    vigil_time = report["replay_seconds"].get("vigil")
    lines = [
        f"judge call, {speed['signals']} signals x {speed['points']} points: "
        f"{speed['per_step']['median_ms']:.3f} ms per step (baselines prepared once per deploy), "
        f"{speed['cold']['median_ms']:.3f} ms cold (prepare + judge)",
    ]
    if vigil_time is not None:
        per400 = vigil_time * 400 / max(report["bundles"], 1)
        lines.append(
            f"replay through vigil: {report['bundles']} bundles in {vigil_time:.1f} s with "
            f"{report['workers']} workers ({per400:.1f} s per 400 bundles)"
        )
    lines.append(
        f"peak memory: main {rss['main_mb']:.0f} MB, largest worker {rss['largest_worker_mb']:.0f}"
        f" MB, at most {rss['upper_bound_mb']:.0f} MB together"
    )
    for line in lines:
        console.print(line, highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.bench_judges",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=11, help="suite seed (not the tuning seed 1)")
    parser.add_argument("--healthy", type=int, default=300)
    parser.add_argument("--faulty", type=int, default=150)
    parser.add_argument("--suite", type=Path, help="replay this suite instead of generating one")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--judges", default=",".join(JUDGES), help="comma-separated judge names")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    judges = tuple(j.strip() for j in args.judges.split(",") if j.strip())
    unknown = [j for j in judges if j not in JUDGES]
    if unknown:
        parser.error(f"unknown judge(s) {', '.join(unknown)}; choose from {', '.join(JUDGES)}")
    console = Console(stderr=args.json)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        suite = args.suite
        if suite is None:
            suite = Path(tmp) / f"seed{args.seed}"
            began = time.perf_counter()
            generate_suite(suite, args.seed, args.healthy, args.faulty, jobs=args.workers)
            console.print(
                f"generated seed {args.seed}: {args.healthy} healthy + {args.faulty} faulty "
                f"in {time.perf_counter() - began:.1f} s",
                highlight=False,
            )
        report = run(suite, args.workers, judges)
        report["seed"] = None if args.suite else args.seed
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render(report, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
