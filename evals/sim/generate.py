"""Turn a drawn deploy plan into a deploy bundle (format 1)."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from agent.bundle.model import Bundle, BundleManifest
from agent.bundle.series import Series, SignalData
from agent.bundle.writer import write_bundle
from evals.sim.families import FAULTY, HEALTHY, Effects, Plan, plan
from evals.sim.profile import Profile, ar1, bursts, random_profile

FAMILIES = {**{f: "healthy" for f in HEALTHY}, **{f: "faulty" for f in FAULTY}}


def _rng(seed: int, index: int, family: str) -> np.random.Generator:
    return np.random.default_rng([seed, index, sum(map(ord, family))])


def _cohort(
    rng: np.random.Generator,
    p: Profile,
    plan_: Plan,
    t: np.ndarray,
    start: float,
    step: float,
    share: float,
    effects: tuple[Effects, ...],
    warm: bool,
) -> dict[str, np.ndarray]:
    """Signals of one cohort (or the whole service) over times t."""
    n = t.shape[0]
    rel = t - start
    day = 2 * math.pi * (t - start) / 86400 + p.phase
    traffic = (
        p.rps
        * share
        * (1 + p.diurnal_amp * np.sin(day))
        * np.exp(ar1(rng, n, 0.9, p.traffic_sigma))
    )
    if plan_.traffic_shift:
        shift_at = rng.uniform(300, 900)
        traffic = traffic * np.where(rel >= shift_at, rng.uniform(1.3, 1.8), 1.0)
    load = traffic / (p.rps * share)
    prob = p.err_base * np.exp(ar1(rng, n, 0.7, p.p_sigma))
    prob = prob * bursts(rng, n, p.burst_per_s * step * plan_.burst_factor)
    lat = p.lat_base * np.exp(ar1(rng, n, p.lat_rho, p.lat_sigma)) * load**p.gamma
    gc = rng.random(n) < p.gc_prob * plan_.gc_factor
    lat = lat * np.where(gc, 1 + rng.uniform(0.3, 1.2, n), 1.0)
    mem = p.mem_base * np.exp(ar1(rng, n, 0.95, 0.01))
    success_q = np.full(n, p.success_base)
    dep = p.lat_base * 0.3 * np.exp(ar1(rng, n, 0.7, 0.05))
    after = rel >= 0
    if warm:
        decay = np.where(after, np.exp(-np.clip(rel, 0, None) / p.warm_tau), 0.0)
        lat = lat * (1 + p.warm_a * plan_.warm_factor * decay)
        prob = prob * (1 + p.warm_b * plan_.warm_factor * decay)
        dip = p.mem_dip * plan_.mem_warm_factor
        mem = mem * np.where(
            after, 1 - min(dip, 0.8) * np.exp(-np.clip(rel, 0, None) / p.mem_tau), 1.0
        )
    if plan_.improvement:
        lat = np.where(after, lat * 0.8, lat)
        prob = np.where(after, prob * 0.5, prob)
    for fx in effects:
        if fx.err_floor is not None:
            prob = np.maximum(prob, fx.err_floor(rel))
        if fx.lat_mult is not None:
            lat = lat * fx.lat_mult(rel)
        if fx.traffic_mult is not None:
            traffic = traffic * fx.traffic_mult(rel)
        if fx.mem_add is not None:
            mem = mem + p.mem_base * fx.mem_add(rel)
        if fx.success_drop is not None:
            success_q = success_q - fx.success_drop(rel)
        if fx.dep_mult is not None:
            dep = dep * fx.dep_mult(rel)
    requests = rng.poisson(traffic * step)
    safe = np.maximum(requests, 1)
    errors = rng.binomial(requests, np.clip(prob, 0, 1))
    out = {
        "request_rate": requests / step,
        "error_ratio": np.where(requests > 0, errors / safe, np.nan),
        "latency_p95": lat,
        "latency_p50": lat * 0.45 * np.exp(rng.normal(0, 0.02, n)),
        "memory_bytes": np.round(mem),
        "cpu_usage": np.clip(0.35 * load * np.exp(ar1(rng, n, 0.8, 0.05)), 0, 1),
        "checkout_success_ratio": np.where(
            requests > 0, rng.binomial(requests, np.clip(success_q, 0, 1)) / safe, np.nan
        ),
        "orders_per_second": rng.poisson(traffic * step * 0.05) / step,
        "db_latency_p95": dep,
        "upstream_error_ratio": np.where(
            requests > 0, rng.binomial(requests, np.clip(prob * 0.5, 0, 1)) / safe, np.nan
        ),
    }
    return out


def _specs(p: Profile, plan_: Plan) -> list[dict[str, Any]]:
    svc = p.service
    specs: list[dict[str, Any]] = [
        {
            "name": "request_rate",
            "kind": "traffic",
            "unit": "per_second",
            "bad_direction": "down",
            "query": f'sum(rate(http_requests_total{{service="{svc}"}}[1m]))',
        },
        {
            "name": "error_ratio",
            "kind": "errors",
            "unit": "ratio",
            "bad_direction": "up",
            "slo": round(p.err_slo, 4),
            "critical": True,
            "events": "request_rate",
            "query": f'sum(rate(http_requests_total{{service="{svc}",code=~"5.."}}[1m])) / '
            f'sum(rate(http_requests_total{{service="{svc}"}}[1m]))',
        },
        {
            "name": "latency_p95",
            "kind": "latency",
            "unit": "seconds",
            "bad_direction": "up",
            "slo": round(p.lat_slo, 3),
            "critical": True,
            "query": "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_"
            f'bucket{{service="{svc}"}}[1m])))',
        },
    ]
    if p.has_p50:
        specs.append(
            {"name": "latency_p50", "kind": "latency", "unit": "seconds", "bad_direction": "up"}
        )
    specs.append(
        {
            "name": "memory_bytes",
            "kind": "saturation",
            "unit": "bytes",
            "bad_direction": "up",
            "query": f'sum(container_memory_working_set_bytes{{container="{svc}"}})',
        }
    )
    if p.has_cpu:
        specs.append(
            {"name": "cpu_usage", "kind": "saturation", "unit": "ratio", "bad_direction": "up"}
        )
    if plan_.business or p.business == "ratio":
        specs.append(
            {
                "name": "checkout_success_ratio",
                "kind": "business",
                "unit": "ratio",
                "bad_direction": "down",
                "slo": round(p.success_slo, 4),
                "critical": True,
                "events": "request_rate",
            }
        )
    elif p.business == "rate":
        specs.append(
            {
                "name": "orders_per_second",
                "kind": "business",
                "unit": "per_second",
                "bad_direction": "down",
            }
        )
    if plan_.dependency or p.dependency == "db":
        specs.append(
            {
                "name": "db_latency_p95",
                "kind": "dependency",
                "unit": "seconds",
                "bad_direction": "up",
            }
        )
    elif p.dependency == "upstream":
        specs.append(
            {
                "name": "upstream_error_ratio",
                "kind": "dependency",
                "unit": "ratio",
                "bad_direction": "up",
                "events": "request_rate",
            }
        )
    return specs


def _gaps(rng: np.random.Generator, n: int, names: list[str], long: bool) -> dict[str, np.ndarray]:
    """Masks of missing scrapes: a few runs, on every signal or on one."""
    masks = {name: np.zeros(n, dtype=bool) for name in names}
    for _ in range(int(rng.integers(1, 4 if not long else 6))):
        at = int(rng.integers(0, n))
        length = int(rng.integers(1, 9 if not long else 17))
        targets = names if rng.random() < 0.6 else [str(rng.choice(names))]
        for name in targets:
            masks[name][at : at + length] = True
    return masks


def generate_bundle(family: str, seed: int, index: int) -> Bundle:
    """One deploy of `family`, reproducible from (seed, index)."""
    rng = _rng(seed, index, family)
    step = 30.0 if rng.random() < 0.1 else 15.0
    day = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=int(rng.integers(0, 360)))
    start_s = float(rng.integers(0, 86400 // int(step))) * step
    start_dt = day + timedelta(seconds=start_s)
    draft = random_profile(rng, start_hour=start_s / 3600)
    plan_ = plan(family, rng, draft)
    profile = random_profile(
        _rng(seed, index, family + "/profile"),
        low_traffic=plan_.low_traffic,
        start_hour=start_s / 3600,
    )
    profile = dataclasses.replace(
        profile,
        err_slo=draft.err_slo,
        err_base=draft.err_base,
        lat_base=draft.lat_base,
        lat_slo=draft.lat_slo,
        success_base=draft.success_base,
        success_slo=draft.success_slo,
    )
    if plan_.lat_slo_min is not None:
        profile = dataclasses.replace(profile, lat_slo=max(profile.lat_slo, plan_.lat_slo_min))
    start = start_dt.timestamp()
    before = float(rng.uniform(30, 45)) * 60
    after = float(rng.uniform(20, 30)) * 60
    t = np.arange(start - before // step * step, start + after + 1e-9, step)
    specs = _specs(profile, plan_)
    names = [s["name"] for s in specs]
    canary = plan_.canary
    strategy = "canary" if canary else str(rng.choice(["rolling", "blue-green"], p=[0.86, 0.14]))
    series: dict[str, dict[str, Series]] = {name: {} for name in names}
    gap_masks = _gaps(rng, t.shape[0], names, plan_.long_gaps) if rng.random() < plan_.gaps else {}

    def put(cohort: str, values: dict[str, np.ndarray], keep: np.ndarray) -> None:
        for name in names:
            v = values[name].copy()
            if name in gap_masks:
                v[gap_masks[name]] = np.nan
            ok = keep & ~np.isnan(v)
            series[name][cohort] = Series(t[ok], v[ok])

    whole = _cohort(rng, profile, plan_, t, start, step, 1.0, (plan_.whole,), warm=not canary)
    if not canary:
        put("", whole, np.ones(t.shape[0], dtype=bool))
    else:
        share = float(rng.uniform(0.05, 0.25))
        put("", whole, t < start)
        base = _cohort(rng, profile, plan_, t, start, step, 1 - share, (plan_.whole,), warm=False)
        can = _cohort(
            rng, profile, plan_, t, start, step, share, (plan_.whole, plan_.canary_only), warm=True
        )
        put("baseline", base, t >= start)
        put("canary", can, t >= start)
    major, minor = int(rng.integers(1, 5)), int(rng.integers(0, 20))
    patch = int(rng.integers(1, 10))
    expect: dict[str, Any] = {"tier": plan_.tier}
    if plan_.onset is not None:
        expect["onset"] = start_dt + timedelta(seconds=plan_.onset)
    if plan_.deploy_caused is not None:
        expect["deploy_caused"] = plan_.deploy_caused
    manifest = BundleManifest.model_validate(
        {
            "format": 1,
            "name": f"{family}-{index:04d}",
            "description": f"simulated {family.replace('_', ' ')} (seed {seed})",
            "service": profile.service,
            "environment": "production",
            "deploy": {
                "id": f"deploy-{int(rng.integers(1000, 9999))}",
                "version": f"v{major}.{minor}.{patch}",
                "previous_version": f"v{major}.{minor}.{patch - 1}",
                "started_at": start_dt,
                "finished_at": start_dt + timedelta(seconds=float(rng.integers(4, 20)) * 15),
                "strategy": strategy,
                "commit": f"{int(rng.integers(0, 16**7)):07x}",
            },
            "step": f"{int(step)}s",
            "watch_until": datetime.fromtimestamp(float(t[-1]), tz=UTC),
            "signals": specs,
            "expect": expect,
        }
    )
    return Bundle(manifest=manifest, signals=SignalData(series))


def suite_families(healthy: int, faulty: int) -> list[str]:
    """Families spread evenly, in a fixed order."""
    return [HEALTHY[i % len(HEALTHY)] for i in range(healthy)] + [
        FAULTY[i % len(FAULTY)] for i in range(faulty)
    ]


def generate_suite(out_dir: Path, seed: int, healthy: int, faulty: int) -> list[Path]:
    """Write a suite of bundles named `<family>-<index:04d>` into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, family in enumerate(suite_families(healthy, faulty)):
        bundle = generate_bundle(family, seed, index)
        paths.append(write_bundle(bundle, out_dir / bundle.name))
    return paths
