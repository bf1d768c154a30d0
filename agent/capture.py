"""Capture a live deploy as a bundle: the configured signals from a metrics source (and,
when given, logs and the change), so a live deploy is judged exactly as a replayed one and
every real incident can be saved and replayed later (`vigil bundle export`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from agent.backends.base import (
    ChangeSource,
    LogSource,
    MetricSeries,
    MetricsSource,
    SourceUnavailable,
)
from agent.backends.base import DeployInfo as LiveDeploy
from agent.bundle.model import (
    Bundle,
    BundleManifest,
    LogLine,
    SignalSpec,
    Strategy,
    format_time,
)
from agent.bundle.model import DeployInfo as BundleDeploy
from agent.bundle.series import Series, SignalData
from agent.config import ServiceConfig

_LOG_LIMIT = 20_000


@dataclass(frozen=True)
class Capture:
    bundle: Bundle
    missing: dict[str, str]  # source -> why it could not be read


def _cohort(series: MetricSeries, svc: ServiceConfig, signal: str) -> str:
    if svc.cohorts is None:
        return ""
    value = series.labels.get(svc.cohorts.label)
    if value is None:
        return ""  # a whole-service series (e.g. before the canary started)
    if value == svc.cohorts.baseline:
        return "baseline"
    if value == svc.cohorts.canary:
        return "canary"
    raise SourceUnavailable(
        f"signal {signal}: {svc.cohorts.label}={value!r} is neither the baseline "
        f"({svc.cohorts.baseline!r}) nor the canary ({svc.cohorts.canary!r})"
    )


def capture_signals(
    svc: ServiceConfig, source: MetricsSource, start: float, end: float
) -> SignalData:
    """Every configured signal from `start` to `end` on the service's step grid."""
    data: dict[str, dict[str, Series]] = {}
    for sig in svc.signals:
        found = source.query_range(sig.query, start, end, svc.step_seconds)
        cohorts: dict[str, list[tuple[float, float]]] = {}
        for series in found:
            cohort = _cohort(series, svc, sig.name)
            if cohort in cohorts:
                raise SourceUnavailable(
                    f"signal {sig.name}: the query returns several series"
                    + (f" per {svc.cohorts.label}" if svc.cohorts else "")
                    + "; aggregate it (sum by, max by) to one series"
                    + (" per cohort" if svc.cohorts else "")
                )
            cohorts[cohort] = [(p.t, p.v) for p in series.points if p.v is not None]
        data[sig.name] = {c: Series.from_pairs(pairs) for c, pairs in cohorts.items() if pairs}
    return SignalData(data)


def signal_specs(svc: ServiceConfig) -> list[SignalSpec]:
    return [
        SignalSpec(
            name=s.name,
            kind=s.kind,
            unit=s.unit,
            bad_direction=s.bad_direction,
            slo=s.slo,
            critical=s.critical,
            events=s.events,
            query=s.query,
        )
        for s in svc.signals
    ]


def capture(
    service: str,
    svc: ServiceConfig,
    deploy: LiveDeploy,
    until: float,
    *,
    metrics: MetricsSource,
    logs: LogSource | None = None,
    changes: ChangeSource | None = None,
    name: str | None = None,
) -> Capture:
    """The deploy as a bundle, from `baseline` before it started to `until`."""
    start = deploy.started_at.timestamp()
    signals = capture_signals(svc, metrics, start - svc.baseline_seconds, until)
    manifest = BundleManifest(
        format=1,
        name=name or f"{service}-{deploy.id}",
        description=f"captured from live sources at {format_time(datetime.now(tz=UTC))}",
        service=service,
        environment=svc.environment or deploy.environment,
        deploy=BundleDeploy(
            id=deploy.id,
            version=deploy.version,
            previous_version=deploy.previous_version or "unknown",
            started_at=deploy.started_at,
            finished_at=deploy.finished_at,
            strategy=_strategy(deploy, svc),
        ),
        step=svc.step,
        watch_until=datetime.fromtimestamp(max(until, start + svc.step_seconds), tz=UTC),
        signals=signal_specs(svc),
    )
    missing: dict[str, str] = {}
    lines: tuple[LogLine, ...] | None = None
    if logs is not None:
        try:
            lines = tuple(logs.read(service, start - svc.baseline_seconds, until, limit=_LOG_LIMIT))
        except SourceUnavailable as exc:
            missing["logs"] = str(exc)
    diff: str | None = None
    if changes is not None:
        try:
            diff = changes.diff(deploy)
        except SourceUnavailable as exc:
            missing["change"] = str(exc)
    return Capture(Bundle(manifest=manifest, signals=signals, logs=lines, diff=diff), missing)


def _strategy(deploy: LiveDeploy, svc: ServiceConfig) -> Strategy:
    if deploy.strategy in {s.value for s in Strategy}:
        return Strategy(deploy.strategy)
    return Strategy.CANARY if svc.cohorts is not None else Strategy.ROLLING


def live_deploy(
    service: str,
    svc: ServiceConfig,
    started: float,
    version: str,
    previous_version: str | None = None,
    deploy_id: str | None = None,
    finished: float | None = None,
) -> LiveDeploy:
    """A deploy given on the command line (when it started, which versions)."""
    return LiveDeploy(
        id=deploy_id or f"{service}-{int(started)}",
        service=service,
        environment=svc.environment,
        version=version,
        previous_version=previous_version,
        started_at=datetime.fromtimestamp(started, tz=UTC),
        finished_at=None if finished is None else datetime.fromtimestamp(finished, tz=UTC),
    )
