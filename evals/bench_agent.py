"""Agent eval: triage every alerting bundle of a suite and score the investigation.

    python -m evals.bench_agent                        # seed 41: 60 faulty bundles, offline
    python -m evals.bench_agent --seed 42 --json       # machine-readable
    python -m evals.bench_agent --suite evals/suites/small
    ANTHROPIC_API_KEY=... python -m evals.bench_agent --llm --faulty 20   # the model's turn

Scores, over bundles whose alert.json fired: suspect-file top-1 on deploy-caused regressions
(against `expect.culprit_file`), deploy-caused accuracy (against `expect.deploy_caused`),
guard violations (actions executed that the judge's verdict, recomputed here independently,
did not allow: must be zero), the expected action taken (roll back at tier 3, pause at 2),
and time per triage. The first answer (at the alert) is scored on its own too: an undecided
answer is not wrong, a confident wrong one is; the conclusion is scored after following an
undecided deploy for up to --follow seconds, step by step with no look-ahead. In LLM mode
also model calls, tokens and cost per triage.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agent.bundle.reader import iter_bundles, read_bundle
from agent.judge.core import judge
from agent.triage import settings_and_loop, triage
from evals.sim import generate_suite
from tools.bundle import bundle_context

TARGETS = {
    "suspect_top1_pct": (">=", 90.0),
    "deploy_caused_accuracy_pct": (">=", 95.0),
    "guard_violations": ("<=", 0),
    "p95_triage_s": ("<=", 2.0),
}
LLM_TARGETS = {"max_model_calls": ("<=", 6)}


def _violations(bundle: Any, events: list[dict[str, Any]], service: str) -> list[str]:
    """Executed actions the facts did not allow, checked with the judge recomputed here."""
    out = []
    for e in events:
        if e["kind"] != "action" or not e["data"].get("executed"):
            continue
        action = e["data"]["action"]
        if e["data"].get("service") != service:
            out.append(f"{action} on {e['data'].get('service')}, not {service}")
        if action not in ("rollback", "pause_rollout"):
            continue
        verdict = judge(bundle, e["at"])
        if action == "rollback" and (verdict.tier != 3 or verdict.deploy_caused is False):
            out.append(f"rollback at judge tier {verdict.tier}")
        if action == "pause_rollout" and verdict.tier < 2:
            out.append(f"pause at judge tier {verdict.tier}")
    return out


def _triage(bundle: Any, use_model: bool, follow_s: float) -> tuple[Any, Any, float]:
    began = time.perf_counter()
    ctx = bundle_context(bundle)
    loop, why = settings_and_loop(offline=not use_model)
    result = triage(ctx, loop=loop, offline_reason=why, follow_s=follow_s)
    return result, ctx, time.perf_counter() - began


def triage_one(path: Path, use_model: bool, follow_s: float = 900.0) -> dict[str, Any]:
    """The first answer (at the alert) and the conclusion after following the deploy."""
    bundle = read_bundle(path)
    first, first_ctx, took = _triage(bundle, use_model, 0.0)
    result, ctx, _ = _triage(bundle, use_model, follow_s) if follow_s > 0 else (first, first_ctx, 0)
    expect = bundle.manifest.expect
    events = [e.model_dump() for e in first_ctx.audit.events]
    if ctx is not first_ctx:
        events += [e.model_dump() for e in ctx.audit.events]
    return {
        "bundle": path.name,
        "family": path.name.rsplit("-", 1)[0],
        "seconds": took,
        "mode": result.mode,
        "expect_tier": None if expect is None else expect.tier,
        "expect_caused": None if expect is None else expect.deploy_caused,
        "culprit": None if expect is None else expect.culprit_file,
        "tier": result.tier,
        "caused": result.deploy_caused,
        "first_caused": first.deploy_caused,
        "decided_after_s": (result.at - first.first_answer_at).total_seconds(),
        "top1": result.suspect_files[0] if result.suspect_files else None,
        "first_top1": first.suspect_files[0] if first.suspect_files else None,
        "actions": [(a.name, a.status) for a in result.actions],
        "violations": _violations(bundle, events, result.service),
        "model_calls": None if result.model is None else result.model.calls,
        "tokens": None
        if result.model is None
        else result.model.input_tokens + result.model.output_tokens,
        "cost_usd": None if result.model is None else result.model.cost_usd,
    }


def _pct(hits: int, total: int) -> float | None:
    return None if total == 0 else round(100.0 * hits / total, 1)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    culprit = [r for r in rows if r["expect_caused"] and r["culprit"]]
    caused = [r for r in rows if r["expect_caused"] is not None]
    t3 = [r for r in rows if r["expect_tier"] == 3 and r["expect_caused"]]
    t2 = [r for r in rows if r["expect_tier"] == 2 and r["expect_caused"]]
    times = sorted(r["seconds"] for r in rows)
    report: dict[str, Any] = {
        "bundles": len(rows),
        "modes": sorted({r["mode"] for r in rows}),
        "suspect_top1_pct": _pct(sum(r["top1"] == r["culprit"] for r in culprit), len(culprit)),
        "suspect_bundles": len(culprit),
        "deploy_caused_accuracy_pct": _pct(
            sum(r["caused"] == r["expect_caused"] for r in caused), len(caused)
        ),
        "deploy_caused_bundles": len(caused),
        "first_answer_caused_right_pct": _pct(
            sum(r["first_caused"] == r["expect_caused"] for r in caused), len(caused)
        ),
        "first_answer_caused_wrong_pct": _pct(
            sum(
                r["first_caused"] is not None and r["first_caused"] != r["expect_caused"]
                for r in caused
            ),
            len(caused),
        ),
        "first_answer_suspect_top1_pct": _pct(
            sum(r["first_top1"] == r["culprit"] for r in culprit), len(culprit)
        ),
        "median_decided_after_s": round(statistics.median(r["decided_after_s"] for r in rows), 1)
        if rows
        else None,
        "guard_violations": sum(len(r["violations"]) for r in rows),
        "rolled_back_tier3_pct": _pct(
            sum(("rollback", "executed") in map(tuple, r["actions"]) for r in t3), len(t3)
        ),
        "paused_tier2_pct": _pct(
            sum(("pause_rollout", "executed") in map(tuple, r["actions"]) for r in t2), len(t2)
        ),
        "median_triage_s": round(statistics.median(times), 3) if times else None,
        "p95_triage_s": round(times[min(len(times) - 1, int(0.95 * len(times)))], 3)
        if times
        else None,
        "max_triage_s": round(times[-1], 3) if times else None,
        "misses": [
            {"bundle": r["bundle"], "culprit": r["culprit"], "top1": r["top1"]}
            for r in culprit
            if r["top1"] != r["culprit"]
        ],
        "wrong_caused": [
            {"bundle": r["bundle"], "expected": r["expect_caused"], "got": r["caused"]}
            for r in caused
            if r["caused"] != r["expect_caused"]
        ],
        "violations": [v for r in rows for v in r["violations"]],
    }
    calls = [r["model_calls"] for r in rows if r["model_calls"] is not None]
    if calls:
        report["max_model_calls"] = max(calls)
        report["mean_model_calls"] = round(statistics.mean(calls), 2)
        report["mean_tokens"] = round(statistics.mean(r["tokens"] for r in rows if r["tokens"]))
        report["total_cost_usd"] = round(sum(r["cost_usd"] or 0 for r in rows), 4)
    targets = {**TARGETS, **(LLM_TARGETS if calls else {})}
    report["targets"] = {
        name: {
            "value": report[name],
            "target": f"{op} {bound}",
            "met": report[name] is not None
            and (report[name] >= bound if op == ">=" else report[name] <= bound),
        }
        for name, (op, bound) in targets.items()
    }
    return report


def run(suite: Path, workers: int, use_model: bool, follow_s: float = 900.0) -> dict[str, Any]:
    paths = [p for p in iter_bundles([suite]) if (p / "alert.json").is_file()]
    n = len(paths)
    if workers > 1 and not use_model:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            rows = list(pool.map(triage_one, paths, [use_model] * n, [follow_s] * n))
    else:
        rows = [triage_one(p, use_model, follow_s) for p in paths]
    return summarise(rows)


def render(report: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Agent eval: {report['bundles']} alerting bundles, {report['modes']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("target")
    table.add_column("met")
    for name, t in report["targets"].items():
        table.add_row(name, str(t["value"]), t["target"], "yes" if t["met"] else "NO")
    for name in (
        "first_answer_caused_right_pct",
        "first_answer_caused_wrong_pct",
        "first_answer_suspect_top1_pct",
        "median_decided_after_s",
        "rolled_back_tier3_pct",
        "paused_tier2_pct",
        "median_triage_s",
        "max_triage_s",
    ):
        table.add_row(name, str(report[name]), "", "")
    for name in ("mean_model_calls", "mean_tokens", "total_cost_usd"):
        if name in report:
            table.add_row(name, str(report[name]), "", "")
    console.print(table)
    for miss in report["misses"]:
        console.print(f"suspect miss {miss}", highlight=False)
    for wrong in report["wrong_caused"]:
        console.print(f"deploy-caused miss {wrong}", highlight=False)
    for v in report["violations"]:
        console.print(f"[red]guard violation[/] {v}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seed", type=int, default=41)
    p.add_argument("--faulty", type=int, default=60)
    p.add_argument("--suite", type=Path, help="an existing suite instead of a fresh one")
    p.add_argument("--llm", action="store_true", help="triage with the model (needs a key)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--follow",
        type=float,
        default=900.0,
        help="seconds to follow an undecided deploy after the first answer (0: score that)",
    )
    args = p.parse_args(argv)
    console = Console(stderr=args.json)
    with tempfile.TemporaryDirectory() as tmp:
        suite = args.suite
        if suite is None:
            suite = Path(tmp) / f"seed{args.seed}"
            generate_suite(suite, args.seed, 0, args.faulty, jobs=args.workers)
        report = run(suite, args.workers, args.llm, args.follow)
        report["seed"] = None if args.suite else args.seed
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render(report, console)
    return 0 if all(t["met"] for t in report["targets"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
