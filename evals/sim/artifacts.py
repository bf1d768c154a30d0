"""The optional files of a simulated bundle: change.diff, logs.jsonl and alert.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.bundle.model import LogLine
from agent.bundle.series import FloatArray
from evals.sim.alerts import alert_payload
from evals.sim.changes import FileChange, harmless_changes, render_diff
from evals.sim.culprits import CULPRITS, DB_TROUBLE, UPSTREAM_TROUBLE, Culprit
from evals.sim.families import FamilySpec
from evals.sim.logs import LogBook, lifecycle, log_values, make_pods, routine, traceback_text
from evals.sim.world import Category, Outcome, World


@dataclass(frozen=True)
class Artifacts:
    diff: str
    logs: tuple[LogLine, ...]
    alert: dict[str, Any] | None
    culprit_file: str | None
    log_signature: str | None


@dataclass(frozen=True)
class Release:
    version: str
    previous: str
    commit: str
    strategy: str


def build_artifacts(
    w: World, spec: FamilySpec, outcome: Outcome, release: Release, bursts: FloatArray
) -> Artifacts:
    rng, p, tl = w.rng, w.profile, w.timeline
    names = {
        "m": p.module,
        "svc": p.service,
        "dep": p.dependency_name,
        "version": release.version,
        "previous": release.previous,
    }
    pods = make_pods(rng, p, tl, release.strategy)
    book = LogBook(p, release.version, release.previous, pods)
    lifecycle(rng, book, release.commit)
    routine(rng, book, tl, max(int(rng.integers(90, 170)), 100 - len(book)))
    _transients(w, book, bursts)
    category = _category(outcome)
    culprit: Culprit | None = None
    signature: str | None = None
    if category is not None and spec.deploy_caused:
        options = CULPRITS[category]
        culprit = options[int(rng.integers(0, len(options)))]
        signature = culprit.signature.format_map(names)
        _culprit_lines(w, book, culprit, category, outcome, names)
    elif category is not None and outcome.onset is not None:
        signature = _dependency_lines(w, book, outcome.onset, names)
    taken: set[str] = set()
    changes: list[FileChange] = []
    if culprit is not None:
        path = culprit.path.format_map(names)
        taken.add(path)
        changes.append(
            FileChange(
                path,
                culprit.before.format_map(names),
                culprit.after.format_map(names),
                int(rng.integers(6, 140))
                if not path.startswith("config/")
                else int(rng.integers(3, 40)),
                culprit.section.format_map(names),
            )
        )
    wanted = int(rng.integers(2, 7)) - len(changes)
    changes += harmless_changes(rng, max(wanted, 1), names, taken)
    alert = None
    if category is not None and outcome.onset is not None:
        fired = round(outcome.onset + float(rng.uniform(60.0, 180.0)), 3)
        alert = alert_payload(rng, category, p, fired, _description(w, category, outcome, fired))
    return Artifacts(
        diff=render_diff(rng, changes),
        logs=book.lines(),
        alert=alert,
        culprit_file=None if culprit is None else culprit.path.format_map(names),
        log_signature=signature,
    )


def _category(outcome: Outcome) -> Category | None:
    if outcome.detail in ("errors", "latency"):
        return "errors" if outcome.detail == "errors" else "latency"
    return outcome.category


def _transients(w: World, book: LogBook, bursts: FloatArray) -> None:
    """A known, recurring error template during the transient bursts (before and after)."""
    for i in np.flatnonzero(bursts > 1.0):
        ts = float(w.timeline.t[i])
        for _ in range(int(w.rng.integers(1, 4))):
            values = log_values(w.rng, w.profile)
            at = ts - float(w.rng.uniform(0, w.timeline.step))
            message = "request failed: {dep} timed out after {slow}ms".format_map(values)
            book.add(at, "error", message, book.serving_pod(w.rng, at), logger="client")


def _culprit_lines(
    w: World,
    book: LogBook,
    culprit: Culprit,
    category: Category,
    outcome: Outcome,
    names: dict[str, str],
) -> None:
    """The new template, from new-version pods, from shortly after the onset on."""
    rng, end = w.rng, w.timeline.watch_until
    onset = outcome.onset if outcome.onset is not None else w.timeline.start
    first = onset + float(rng.uniform(1.0, 10.0))
    if category == "memory":
        first = onset + float(rng.uniform(180.0, 480.0))
        count = max(2, int((end - first) / float(rng.uniform(45.0, 90.0))))
    elif culprit.level == "warn":
        count = int(rng.integers(15, 50))
    elif category == "crash":
        count = int(rng.integers(20, 60))
    else:
        count = int(rng.integers(30, 110))
    if first >= end:
        return
    u = rng.uniform(0.0, 1.0, count)
    # Errors that ramp up (a leaking pool) get denser over time.
    times = first + (end - first) * (np.sqrt(u) if category == "pool" else u)
    signature = culprit.signature.format_map(names)
    for ts in np.sort(times):
        values = log_values(rng, w.profile)
        pod = book.serving_pod(rng, float(ts), new_only=True)
        message = f"{signature} {culprit.detail.format_map(values)}"
        extra: dict[str, Any] = {"logger": culprit.path.split("/")[-1].removesuffix(".py")}
        if culprit.exception and rng.random() < 0.35:
            extra["exception"] = traceback_text(culprit, names, rng)
        if category == "crash":
            restart = float(ts) - float(rng.uniform(5.0, 30.0))
            text = f"starting {w.profile.service} {book.version}"
            book.add(restart, "info", text, pod, logger="main")
        book.add(float(ts), culprit.level, message, pod, **extra)


def _dependency_lines(w: World, book: LogBook, onset: float, names: dict[str, str]) -> str:
    """Not the deploy: every pod, old and new, reports the failing dependency."""
    rng, end = w.rng, w.timeline.watch_until
    fixed, detail = DB_TROUBLE if w.profile.dependency_name.endswith("-db") else UPSTREAM_TROUBLE
    signature = fixed.format_map(names)
    count = int(rng.integers(30, 110))
    for ts in np.sort(onset + float(rng.uniform(1.0, 10.0)) + rng.uniform(0.0, end - onset, count)):
        if ts >= end:
            continue
        values = log_values(rng, w.profile)
        message = f"{signature} {detail.format_map(values)}"
        book.add(float(ts), "error", message, book.serving_pod(rng, float(ts)), logger="client")
    return signature


def _description(w: World, category: Category, outcome: Outcome, fired: float) -> str:
    """The annotation text with the value the rule saw when it fired."""
    t = w.timeline.t
    recent = (t > fired - 120.0) & (t <= fired)
    if not recent.any():
        recent = t <= fired
    cohorts = w.everyone if outcome.everyone else w.new_version
    d = cohorts[0]
    svc = w.profile.service
    if category in ("errors", "pool", "dependency"):
        value = float(np.mean(d.p_error[recent]))
        return f"{svc}: {value:.1%} of requests failed over the last 2m."
    if category in ("latency", "latency_minor"):
        value = float(np.mean(d.latency[recent] * d.load[recent] ** w.profile.gamma))
        return f"{svc}: p95 latency is {value:.3f}s over the last 2m."
    if category == "business":
        value = float(np.mean(1.0 - d.business_fail[recent]))
        return f"{svc}: checkout success is {value:.1%} over the last 5m."
    if category == "memory":
        value = float(np.mean(d.memory[recent])) / 2**20
        return f"{svc}: average working set is {value:.0f} MiB and rising."
    return f"{svc}: containers restarted repeatedly in the last 5m."
