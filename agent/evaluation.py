"""Scoring judges on bundles with ground truth: false rollbacks, recall, detection delay.

Delay reference: a regression's onset, except for a ramp, which is measured from the moment
it crosses its objective — the first sample at or after onset where a critical signal with an
`slo` is past it at that sample and the next one; when that is more than two steps after onset,
the regression is a ramp. Percentiles use numpy's "linear" method.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from agent.bundle.model import Bundle
from agent.bundle.reader import read_bundle
from agent.judge.replay import DeployJudge, ReplayResult, replay

# The delay targets are stated for deploys judged every 15 s; bundles scraped more coarsely
# are reported apart (a 30 s scrape cannot see a regression in less than 30 s).
FINE_STEP_S = 15.0

TARGETS = {
    "false_rollback_healthy_pct": ("<=", 0.5),
    "false_pause_pct": ("<=", 2.0),
    "rollback_recall_pct": (">=", 99.0),
    "action_recall_pct": (">=", 95.0),
    "median_delay_to_rollback_s": ("<=", 30.0),
    "p90_delay_to_rollback_s": ("<=", 150.0),
}


class Outcome(BaseModel):
    name: str
    family: str
    expected_tier: int | None
    deploy_caused: bool | None
    max_tier: int
    first_at: dict[int, float | None]
    reference: float | None
    delay_s: float | None  # to the expected tier
    delay_to_rollback_s: float | None
    step_s: float = 15.0


def family_of(name: str) -> str:
    head, _, tail = name.rpartition("-")
    return head if head and tail.isdigit() else name


def _past(values: np.ndarray, slo: float, direction: str) -> np.ndarray:
    return values < slo if direction == "down" else values > slo


def delay_reference(bundle: Bundle) -> float | None:
    """Onset, or for a ramp the moment a critical signal stays past its objective."""
    expect = bundle.manifest.expect
    if expect is None or expect.onset is None:
        return None
    onset = expect.onset.timestamp()
    if expect.tier < 3:
        return onset
    step = bundle.manifest.step_seconds
    crossings: list[float] = []
    for spec in bundle.manifest.signals:
        if not spec.critical or spec.slo is None:
            continue
        for cohort in ("", "canary"):
            series = bundle.signals.series(spec.name, cohort)
            if series is None:
                continue
            keep = series.t >= onset
            t, v = series.t[keep], series.v[keep]
            past = _past(v, spec.slo, spec.bad_direction)
            both = np.flatnonzero(past[:-1] & past[1:])
            if both.size:
                crossings.append(float(t[both[0]]))
    if not crossings:
        return onset
    crossing = min(crossings)
    return crossing if crossing - onset > 2 * step else onset


def outcome(bundle: Bundle, result: ReplayResult) -> Outcome:
    expect = bundle.manifest.expect
    reference = delay_reference(bundle)
    delay = rollback = None
    if expect is not None and reference is not None and expect.tier >= 1:
        reached = result.first_at.get(expect.tier)
        delay = None if reached is None else reached - reference
        if expect.tier == 3 and result.first_at[3] is not None:
            rollback = result.first_at[3] - reference
    return Outcome(
        name=bundle.name,
        family=family_of(bundle.name),
        expected_tier=None if expect is None else expect.tier,
        deploy_caused=None if expect is None else expect.deploy_caused,
        max_tier=result.max_tier,
        first_at=result.first_at,
        reference=reference,
        delay_s=delay,
        delay_to_rollback_s=rollback,
        step_s=bundle.manifest.step_seconds,
    )


def _pct(hits: int, total: int) -> float | None:
    return None if total == 0 else 100.0 * hits / total


def _q(values: list[float], q: float) -> float | None:
    return None if not values else float(np.percentile(values, q, method="linear"))


class FamilyRow(BaseModel):
    family: str
    n: int
    expected_tier: int
    mean_max_tier: float
    reached_pct: float
    over_pct: float
    median_delay_s: float | None


class Scorecard(BaseModel):
    judge: str
    bundles: int
    unscored: int
    healthy: int
    faulty: int
    false_rollback_pct: float | None  # tier 3 on anything not expected at tier 3
    false_rollback_healthy_pct: float | None  # tier 3 on healthy deploys (the target)
    false_pause_pct: float | None
    rollback_recall_pct: float | None
    action_recall_pct: float | None
    median_delay_to_rollback_s: float | None  # bundles judged every 15 s (or finer)
    p90_delay_to_rollback_s: float | None
    median_delay_to_rollback_all_s: float | None  # every bundle, whatever its step
    p90_delay_to_rollback_all_s: float | None
    warn_healthy_pct: float | None  # healthy deploys that drew a warning (tier >= 1)
    median_delay_s: float | None
    p90_delay_s: float | None
    families: list[FamilyRow]
    misses: list[str]

    def meets_targets(self) -> dict[str, bool]:
        out = {}
        for key, (op, bound) in TARGETS.items():
            value = getattr(self, key)
            out[key] = value is not None and (value <= bound if op == "<=" else value >= bound)
        return out

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump()
        data["meets_targets"] = self.meets_targets()
        return data

    def render(self, console: Console) -> None:
        table = Table(
            title=f"Scorecard: {self.judge} on {self.bundles} bundles "
            f"({self.healthy} healthy, {self.faulty} faulty)",
            header_style="bold",
        )
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_column("target")
        met = self.meets_targets()
        for key, (op, bound) in TARGETS.items():
            value = getattr(self, key)
            mark = "[green]✓[/]" if met[key] else "[red]✗[/]"
            table.add_row(key, _fmt(value), f"{op} {bound:g} {mark}")
        for key in (
            "false_rollback_pct",
            "warn_healthy_pct",
            "median_delay_to_rollback_all_s",
            "p90_delay_to_rollback_all_s",
        ):
            table.add_row(key, _fmt(getattr(self, key)), "")
        table.add_row("median_delay_s (to expected tier)", _fmt(self.median_delay_s), "")
        table.add_row("p90_delay_s (to expected tier)", _fmt(self.p90_delay_s), "")
        console.print(table)
        fam = Table(title="Per family", header_style="bold")
        for column in (
            "family",
            "n",
            "expected",
            "mean max tier",
            "reached %",
            "over %",
            "median delay s",
        ):
            fam.add_column(column)
        for row in self.families:
            fam.add_row(
                row.family,
                str(row.n),
                str(row.expected_tier),
                f"{row.mean_max_tier:.2f}",
                f"{row.reached_pct:.0f}",
                f"{row.over_pct:.0f}",
                _fmt(row.median_delay_s),
            )
        console.print(fam)
        if self.misses:
            console.print("misses: " + ", ".join(self.misses[:30]), highlight=False)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def exp(o: Outcome) -> int:
    """Expected tier (0 when unknown)."""
    return o.expected_tier or 0


def score(outcomes: Iterable[Outcome], judge: str = "vigil") -> Scorecard:
    rows = list(outcomes)
    scored = [o for o in rows if o.expected_tier is not None]
    below3 = [o for o in scored if exp(o) < 3]
    healthy = [o for o in scored if exp(o) == 0]
    low = [o for o in scored if exp(o) <= 1]
    three = [o for o in scored if exp(o) == 3]
    action = [o for o in scored if exp(o) >= 2]
    every_delay = [o.delay_to_rollback_s for o in three if o.delay_to_rollback_s is not None]
    rollback_delays = [
        o.delay_to_rollback_s
        for o in three
        if o.delay_to_rollback_s is not None and o.step_s <= FINE_STEP_S
    ]
    delays = [o.delay_s for o in scored if exp(o) >= 1 and o.delay_s is not None]
    families = []
    for fam in sorted({o.family for o in scored}):
        group = [o for o in scored if o.family == fam]
        want = max(exp(o) for o in group)
        fam_delays = [o.delay_s for o in group if o.delay_s is not None]
        families.append(
            FamilyRow(
                family=fam,
                n=len(group),
                expected_tier=want,
                mean_max_tier=float(np.mean([o.max_tier for o in group])),
                reached_pct=100.0 * sum(o.max_tier >= exp(o) for o in group) / len(group),
                over_pct=100.0 * sum(o.max_tier > exp(o) for o in group) / len(group),
                median_delay_s=_q(fam_delays, 50),
            )
        )
    misses = [
        f"{o.name}(exp {o.expected_tier}, got {o.max_tier})"
        for o in scored
        if (o.max_tier == 3) != (exp(o) == 3) or (o.max_tier >= 2) != (exp(o) >= 2)
    ]
    return Scorecard(
        judge=judge,
        bundles=len(rows),
        unscored=len(rows) - len(scored),
        healthy=len(healthy),
        faulty=len(scored) - len(healthy),
        false_rollback_pct=_pct(sum(o.max_tier == 3 for o in below3), len(below3)),
        false_rollback_healthy_pct=_pct(sum(o.max_tier == 3 for o in healthy), len(healthy)),
        false_pause_pct=_pct(sum(o.max_tier >= 2 for o in low), len(low)),
        rollback_recall_pct=_pct(sum(o.max_tier == 3 for o in three), len(three)),
        action_recall_pct=_pct(sum(o.max_tier >= 2 for o in action), len(action)),
        median_delay_to_rollback_s=_q(rollback_delays, 50),
        p90_delay_to_rollback_s=_q(rollback_delays, 90),
        median_delay_to_rollback_all_s=_q(every_delay, 50),
        p90_delay_to_rollback_all_s=_q(every_delay, 90),
        warn_healthy_pct=_pct(sum(o.max_tier >= 1 for o in healthy), len(healthy)),
        median_delay_s=_q(delays, 50),
        p90_delay_s=_q(delays, 90),
        families=families,
        misses=misses,
    )


def make_judge(name: str) -> DeployJudge:
    """A judge by name: Vigil's, or a reference judge for comparison."""
    from agent.judge import reference
    from agent.judge.vigil import VigilJudge

    judges: dict[str, type[Any]] = {
        "vigil": VigilJudge,
        "static": reference.StaticThresholdJudge,
        "flagger": reference.FlaggerJudge,
        "kayenta": reference.KayentaJudge,
    }
    if name not in judges:
        from agent.errors import ConfigError

        raise ConfigError(f"unknown judge {name!r}; choose one of {', '.join(judges)}")
    judge: DeployJudge = judges[name]()
    return judge


def _one(args: tuple[Path, str]) -> Outcome:
    path, judge_name = args
    bundle = read_bundle(path, with_logs=False)
    return outcome(bundle, replay(bundle, make_judge(judge_name)))


def iter_outcomes(paths: Iterable[Path], judge: str, *, workers: int = 1) -> Iterator[Outcome]:
    """Replay bundles one at a time (streamed; several processes when workers > 1)."""
    jobs = ((Path(p), judge) for p in paths)
    if workers <= 1:
        yield from map(_one, jobs)
        return
    with get_context("fork").Pool(workers) as pool:
        yield from pool.imap(_one, jobs, chunksize=4)


def evaluate_suite(paths: Iterable[Path], judge: str = "vigil", *, workers: int = 1) -> Scorecard:
    return score(iter_outcomes(paths, judge, workers=workers), judge)
