"""Deploy watch benchmark: does the server act in the judge step that decides, and how long does
a step take?

    python -m evals.bench_watch                     # 40 healthy + 60 faulty deploys, seed 43
    python -m evals.bench_watch --seed 7 --healthy 100 --faulty 100 --json

Every deploy of a freshly simulated suite goes through the server's own path: a deploy event
committed by the intake, a worker opening the watch session, then the watch loop stepped on the
bundle's scrape grid with a replay backend that never reads past the clock. Independently, the
judge is run on the bundle at the same instants to find the first step it says tier 2 and tier
3. Measured: steps between the judge's first tier 3 and the executed rollback (target: at most
one; the server acts in the same step), the same for tier-2 pauses, rollbacks of deploys the
judge never put at tier 3 (target 0), and the wall time of a watch step and of the step that
rolls back (judge, guard, actuator, audit and store writes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.bundle.model import Bundle
from agent.bundle.reader import read_bundle
from agent.judge.core import judge
from agent.server.intake import Intake
from agent.server.replay import BundleBackends, deploy_started
from agent.server.runtime import Runtime
from evals.sim import generate_suite

TARGETS = {
    "rollback_within_one_step_pct": (">=", 100.0),
    "pause_within_one_step_pct": (">=", 100.0),
    "escalated_within_one_step_pct": (">=", 100.0),
    "false_rollbacks": ("<=", 0),
}


class _Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _first_tier_steps(bundle: Bundle, grid: list[float]) -> dict[int, tuple[float, bool]]:
    """The first instant of the grid at which the judge alone says each tier (2 and 3), and
    whether it called the regression deploy-caused then."""
    first: dict[int, tuple[float, bool]] = {}
    for t in grid:
        verdict = judge(bundle, t)
        for level in (2, 3):
            if verdict.tier >= level:
                first.setdefault(level, (t, bool(verdict.deploy_caused)))
        if 3 in first:
            break
    return first


def _expected(level: int, caused: bool) -> str:
    """What the server must do when the judge first says `level`: act on a deploy-caused
    regression (3 roll back, 2 pause and ask), escalate one the deploy did not cause."""
    if not caused:
        return "escalate"
    return "rollback" if level == 3 else "pause_rollout"


def watch_one(bundle: Bundle, folder: Path) -> dict[str, Any]:
    m = bundle.manifest
    step = float(m.step_seconds)
    start = m.deploy.started_at.timestamp()
    end = m.watch_until.timestamp()
    clock = _Clock(start)
    intake = Intake(folder / "vigil.db")
    runtime = Runtime(intake, BundleBackends([bundle]), clock=clock)
    event, dedup = deploy_started(bundle)
    intake.accept_deploy(event, dedup, start)
    while runtime.work_once():
        pass
    grid: list[float] = []
    step_ms: list[float] = []
    acted_ms: dict[str, float] = {}
    t = start
    while t <= end + step:
        clock.t = t
        began = time.perf_counter()
        runtime.watch_once()
        took = 1000 * (time.perf_counter() - began)
        step_ms.append(took)
        grid.append(min(t, end))
        for action in _actions(intake, m.deploy.id):
            acted_ms.setdefault(action, took)  # the step that first executed it
        t += step
    conn = intake._conn()
    state, first_json = conn.execute(
        "SELECT state, first_tier_at FROM watch_sessions WHERE deploy_id = ?", (m.deploy.id,)
    ).fetchone()
    executed = {
        str(action): float(at)
        for action, at in conn.execute(
            "SELECT action, min(at) FROM watch_actions WHERE deploy_id = ? AND status = 'executed'"
            " GROUP BY action",
            (m.deploy.id,),
        )
    }
    intake.close()
    truth = _first_tier_steps(bundle, grid)

    def lag(level: int) -> float | None:
        if level not in truth:
            return None
        at, caused = truth[level]
        action = _expected(level, caused)
        return None if action not in executed else (executed[action] - at) / step

    tier2_first = 2 in truth and (3 not in truth or truth[2][0] < truth[3][0])

    return {
        "bundle": m.deploy.id,
        "name": bundle.name,
        "state": state,
        "first_tier_at_server": json.loads(first_json),
        "judge_first_tier2": truth[2][0] if 2 in truth else None,
        "judge_first_tier3": truth[3][0] if 3 in truth else None,
        "tier3_expected": _expected(3, truth[3][1]) if 3 in truth else None,
        "tier2_expected": _expected(2, truth[2][1]) if tier2_first else None,
        "rolled_back_at": executed.get("rollback"),
        "tier3_lag_steps": lag(3),
        "tier2_lag_steps": lag(2) if tier2_first else None,
        "step_ms": step_ms,
        "rollback_step_ms": acted_ms.get("rollback"),
    }


def _actions(intake: Intake, deploy_id: str) -> set[str]:
    rows = intake._conn().execute(
        "SELECT DISTINCT action FROM watch_actions WHERE deploy_id = ? AND status = 'executed'",
        (deploy_id,),
    )
    return {str(r[0]) for r in rows}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else 0.0


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def within(cases: list[tuple[dict[str, Any], str]]) -> float:
        ok = [r for r, key in cases if r[key] is not None and r[key] <= 1]
        return round(100 * len(ok) / len(cases), 1) if cases else 100.0

    rollbacks = [r for r in rows if r["tier3_expected"] == "rollback"]
    pauses = [r for r in rows if r["tier2_expected"] == "pause_rollout"]
    escalations = [(r, "tier3_lag_steps") for r in rows if r["tier3_expected"] == "escalate"]
    escalations += [(r, "tier2_lag_steps") for r in rows if r["tier2_expected"] == "escalate"]
    false_rb = [r for r in rows if r["tier3_expected"] != "rollback" and r["rolled_back_at"]]
    steps = [ms for r in rows for ms in r["step_ms"]]
    rb_steps = [r["rollback_step_ms"] for r in rows if r["rollback_step_ms"] is not None]
    lags = [r["tier3_lag_steps"] for r in rollbacks if r["tier3_lag_steps"] is not None]
    return {
        "deploys": len(rows),
        "judge_tier3_deploy_caused": len(rollbacks),
        "rolled_back_same_step": sum(1 for lag in lags if lag == 0),
        "rollback_within_one_step_pct": within([(r, "tier3_lag_steps") for r in rollbacks]),
        "max_rollback_lag_steps": max(lags, default=None),
        "judge_tier2_first_deploy_caused": len(pauses),
        "pause_within_one_step_pct": within([(r, "tier2_lag_steps") for r in pauses]),
        "judge_tier2plus_not_deploy_caused": len(escalations),
        "escalated_within_one_step_pct": within(escalations),
        "false_rollbacks": len(false_rb),
        "watch_steps": len(steps),
        "step_ms_p50": _pct(steps, 0.5),
        "step_ms_p99": _pct(steps, 0.99),
        "step_ms_mean": round(statistics.mean(steps), 2) if steps else 0.0,
        "rollback_step_ms_p50": _pct(rb_steps, 0.5),
        "rollback_step_ms_max": round(max(rb_steps), 2) if rb_steps else 0.0,
    }


def run(seed: int, healthy: int, faulty: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = generate_suite(folder / "suite", seed, healthy, faulty, jobs=2)
        rows = []
        for i, path in enumerate(paths):
            work = folder / f"run-{i}"
            work.mkdir()
            rows.append(watch_one(read_bundle(path), work))
    report = summarise(rows)
    report["misses"] = [
        {k: r[k] for k in ("name", "tier2_expected", "tier3_expected", "state")}
        for r in rows
        if any(
            r[f"tier{n}_expected"] is not None
            and (r[f"tier{n}_lag_steps"] is None or r[f"tier{n}_lag_steps"] > 1)
            for n in (2, 3)
        )
    ]
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seed", type=int, default=43)
    p.add_argument("--healthy", type=int, default=40)
    p.add_argument("--faulty", type=int, default=60)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    report = run(args.seed, args.healthy, args.faulty)
    met = {
        k: report[k] >= bound if op == ">=" else report[k] <= bound
        for k, (op, bound) in TARGETS.items()
    }
    if args.json:
        json.dump({**report, "targets_met": met}, sys.stdout, indent=2)
        print()
    else:
        for k, v in report.items():
            mark = ""
            if k in TARGETS:
                op, bound = TARGETS[k]
                mark = f"   target {op} {bound}: {'met' if met[k] else 'NOT met'}"
            print(f"{k:>30}: {v}{mark}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
