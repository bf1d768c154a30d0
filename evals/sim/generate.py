"""Simulated deploy bundles: one per (family, seed, index), reproducible bit for bit.

Bundle i draws everything from `np.random.default_rng([seed, i])`, so it does not depend on
the other bundles of a suite or on the suite's size.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np

from agent.bundle.model import Bundle, BundleManifest, Strategy
from agent.bundle.series import FloatArray, Series, SignalData
from evals.sim.artifacts import Release, build_artifacts
from evals.sim.drivers import apply_warmup, cohort, environment, observe, sample_warmup
from evals.sim.families import FAMILIES, FamilySpec
from evals.sim.noise import Rng, gap_runs
from evals.sim.profiles import Timeline, sample_profile, sample_timeline
from evals.sim.signals import signal_names, signal_specs
from evals.sim.world import World


@dataclass(frozen=True)
class GapRow:
    """A sample time with no value: a missed scrape, or no requests behind a ratio."""

    t: float
    signal: str
    cohort: str


@dataclass(frozen=True)
class Simulated:
    bundle: Bundle
    gaps: tuple[GapRow, ...]


def bundle_name(family: str, index: int) -> str:
    return f"{family}-{index:04d}"


def generate_bundle(family: str, seed: int, index: int) -> Bundle:
    """One simulated deploy of `family`, the same for the same (seed, index)."""
    return simulate(family, seed, index).bundle


def simulate(family: str, seed: int, index: int) -> Simulated:
    """The bundle, plus the rows its signals.csv carries with an empty value."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    spec = FAMILIES[family]
    rng = np.random.default_rng([seed, index])
    timeline = sample_timeline(rng)
    profile = sample_profile(
        rng,
        low_traffic=spec.low_traffic,
        needs_business=spec.needs_business,
        needs_dependency=spec.needs_dependency,
        burst_factor=spec.burst_factor,
        gc_factor=spec.gc_factor,
    )
    strategy = _strategy(rng, spec)
    env = environment(rng, profile, timeline, burst_in_watch=spec.burst_in_watch)
    canary = strategy is Strategy.CANARY
    cohorts = {"": cohort(rng, profile, timeline, env, 1.0)}
    if canary:
        share = float(rng.uniform(0.05, 0.25))
        cohorts["baseline"] = cohort(rng, profile, timeline, env, 1.0 - share)
        cohorts["canary"] = cohort(rng, profile, timeline, env, share)
    world = World(rng, profile, timeline, cohorts, canary, sample_warmup(rng))
    outcome = spec.effect(world)
    for drivers in world.new_version:
        apply_warmup(drivers, timeline, world.warmup)
    observed = {c: observe(rng, d, world.profile, timeline) for c, d in cohorts.items()}
    names = signal_names(world.profile)
    missing = _gap_mask(rng, spec, timeline, names)
    data, gaps = _series(timeline, observed, names, missing, canary)
    release = _release(rng, strategy)
    artifacts = build_artifacts(world, spec, outcome, release, env.bursts)
    expect: dict[str, object] = {"tier": spec.tier}
    if outcome.onset is not None:
        expect["onset"] = _moment(outcome.onset)
    if spec.deploy_caused is not None:
        expect["deploy_caused"] = spec.deploy_caused
    if artifacts.culprit_file is not None:
        expect["culprit_file"] = artifacts.culprit_file
    if artifacts.log_signature is not None:
        expect["log_signature"] = artifacts.log_signature
    manifest = BundleManifest.model_validate(
        {
            "format": 1,
            "name": bundle_name(family, index),
            "description": f"Simulated deploy, family {family} (seed {seed}, index {index}).",
            "service": world.profile.service,
            "environment": "production",
            "deploy": {
                "id": f"deploy-{int(rng.integers(1000, 10000))}",
                "version": release.version,
                "previous_version": release.previous,
                "started_at": _moment(timeline.start),
                "finished_at": _moment(timeline.finished),
                "strategy": strategy,
                "commit": release.commit,
            },
            "step": f"{int(timeline.step)}s",
            "watch_until": _moment(timeline.watch_until),
            "signals": signal_specs(world.profile),
            "expect": expect,
        }
    )
    bundle = Bundle(
        manifest=manifest,
        signals=data,
        logs=artifacts.logs,
        diff=artifacts.diff,
        alert=artifacts.alert,
    )
    return Simulated(bundle, gaps)


def _strategy(rng: Rng, spec: FamilySpec) -> Strategy:
    if spec.strategy is not None:
        return spec.strategy
    draw = rng.random()
    if spec.low_traffic:
        # A canary cohort of a 1 req/s service would see almost no requests: nobody runs one.
        return Strategy.ROLLING if draw < 0.85 else Strategy.BLUE_GREEN
    if draw < 0.6:
        return Strategy.ROLLING
    return Strategy.CANARY if draw < 0.9 else Strategy.BLUE_GREEN


def _release(rng: Rng, strategy: Strategy) -> Release:
    major, minor = int(rng.integers(1, 6)), int(rng.integers(1, 30))
    if rng.random() < 0.25:
        version = f"v{major}.{minor}.0"
        previous = f"v{major}.{minor - 1}.{int(rng.integers(0, 8))}"
    else:
        patch = int(rng.integers(1, 15))
        version, previous = f"v{major}.{minor}.{patch}", f"v{major}.{minor}.{patch - 1}"
    commit = f"{int(rng.integers(0, 16**7)):07x}"
    return Release(version, previous, commit, strategy.value)


def _gap_mask(
    rng: Rng, spec: FamilySpec, timeline: Timeline, names: list[str]
) -> dict[str, np.ndarray]:
    """Missed scrapes per signal: runs of samples, on every signal or on one."""
    always = spec.gaps == "always"
    if not always and rng.random() >= 0.3:
        return {}
    n = timeline.n
    if always:
        runs = gap_runs(rng, n, int(rng.integers(2, 6)), 4, 20)
        # At least one long gap lands in the watch window, where it matters.
        watch0 = timeline.first_after(timeline.start)
        length = int(rng.integers(6, 21))
        runs.append((int(rng.integers(watch0, max(watch0 + 1, n - length))), length))
    else:
        runs = gap_runs(rng, n, int(rng.integers(1, 4)), 1, 8)
    masks: dict[str, np.ndarray] = {}
    for first, length in runs:
        hit = names if rng.random() < 0.5 else [names[int(rng.integers(0, len(names)))]]
        for name in hit:
            masks.setdefault(name, np.zeros(n, dtype=bool))[first : first + length] = True
    return masks


def _series(
    timeline: Timeline,
    observed: dict[str, dict[str, FloatArray]],
    names: list[str],
    missing: dict[str, np.ndarray],
    canary: bool,
) -> tuple[SignalData, tuple[GapRow, ...]]:
    """Whole-service series (before the start only, for a canary) and cohort series after it."""
    t = timeline.t
    windows = {"": t <= timeline.start if canary else np.ones(t.shape, dtype=bool)}
    if canary:
        windows["baseline"] = windows["canary"] = t > timeline.start
    data: dict[str, dict[str, Series]] = {}
    gaps: list[GapRow] = []
    for name in names:
        mask = missing.get(name, np.zeros(t.shape, dtype=bool))
        data[name] = {}
        for cohort_name, window in windows.items():
            values = observed[cohort_name][name]
            blank = window & (mask | np.isnan(values))
            keep = window & ~blank
            data[name][cohort_name] = Series(t[keep].copy(), values[keep].astype(np.float64))
            gaps.extend(GapRow(float(x), name, cohort_name) for x in t[blank])
    return SignalData(data), tuple(gaps)


def with_gaps(bundle: Bundle, gaps: tuple[GapRow, ...]) -> Bundle:
    """The bundle with NaN samples at its gaps, which the writer writes as empty values."""
    extra: dict[tuple[str, str], list[float]] = {}
    for gap in gaps:
        extra.setdefault((gap.signal, gap.cohort), []).append(gap.t)
    data: dict[str, dict[str, Series]] = {}
    for name, cohorts in bundle.signals.items():
        data[name] = {}
        for cohort_name, series in cohorts.items():
            times = extra.get((name, cohort_name))
            if not times:
                data[name][cohort_name] = series
                continue
            t = np.concatenate([series.t, np.asarray(times)])
            v = np.concatenate([series.v, np.full(len(times), np.nan)])
            order = np.argsort(t, kind="stable")
            data[name][cohort_name] = Series(t[order], v[order])
    return replace(bundle, signals=SignalData(data))


def _moment(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
