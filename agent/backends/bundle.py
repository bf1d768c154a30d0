"""A deploy bundle as the agent's world: metrics, logs, change and deploy, cut at `now`."""

from __future__ import annotations

import math

from agent.backends.base import DeployInfo, MetricPoint, MetricSeries, SourceUnavailable
from agent.bundle.model import Bundle, LogLine


def deploy_info(bundle: Bundle) -> DeployInfo:
    m = bundle.manifest
    d = m.deploy
    return DeployInfo(
        id=d.id,
        service=m.service,
        environment=m.environment,
        version=d.version,
        previous_version=d.previous_version,
        started_at=d.started_at,
        finished_at=d.finished_at,
        strategy=d.strategy.value,
    )


class BundleWorld:
    """Every read-only backend over one bundle. Nothing after `now` is ever returned."""

    def __init__(self, bundle: Bundle, now: float) -> None:
        self.bundle = bundle
        self.now = now

    # MetricsSource

    def signal_names(self) -> list[str]:
        return [s.name for s in self.bundle.manifest.signals]

    def _resolve(self, query: str) -> str:
        text = query.strip()
        for spec in self.bundle.manifest.signals:
            if text == spec.name or (spec.query and text == spec.query.strip()):
                return spec.name
        known = ", ".join(self.signal_names())
        raise SourceUnavailable(
            f"this bundle records named signals only ({known}); no series for {query!r}"
        )

    def query_range(self, query: str, start: float, end: float, step: float) -> list[MetricSeries]:
        name = self._resolve(query)
        end = min(end, self.now)
        out: list[MetricSeries] = []
        for cohort, series in sorted(self.bundle.signals[name].items()):
            keep = (series.t >= start) & (series.t <= end)
            t, v = series.t[keep], series.v[keep]
            stride = max(1, round(step / self.bundle.manifest.step_seconds)) if step > 0 else 1
            points = [
                MetricPoint(t=float(a), v=None if math.isnan(b) else float(b))
                for a, b in zip(t[::stride], v[::stride], strict=True)
            ]
            labels = {"service": self.bundle.manifest.service}
            if cohort:
                labels["cohort"] = cohort
            out.append(MetricSeries(name=name, labels=labels, points=points))
        return out

    # LogSource

    def read(
        self,
        service: str,
        start: float,
        end: float,
        *,
        contains: str | None = None,
        levels: tuple[str, ...] | None = None,
        limit: int = 1000,
    ) -> list[LogLine]:
        if self.bundle.logs is None:
            raise SourceUnavailable("this bundle has no logs.jsonl")
        end = min(end, self.now)
        needle = contains.lower() if contains else None
        wanted = {level.lower() for level in levels} if levels else None
        out: list[LogLine] = []
        for line in self.bundle.logs:
            ts = line.ts.timestamp()
            if ts < start or ts > end:
                continue
            if line.service not in (None, service):
                continue
            if wanted is not None and line.level.lower() not in wanted:
                continue
            if needle is not None and needle not in line.message.lower():
                continue
            out.append(line)
        out.sort(key=lambda line: line.ts)
        return out[:limit]

    # ChangeSource

    def diff(self, deploy: DeployInfo) -> str:
        if deploy.id != self.bundle.manifest.deploy.id:
            raise SourceUnavailable(f"no change recorded for deploy {deploy.id}")
        if self.bundle.diff is None:
            raise SourceUnavailable("this bundle has no change.diff")
        return self.bundle.diff

    # DeploySource

    def deploys(self, service: str, since: float, until: float) -> list[DeployInfo]:
        info = deploy_info(self.bundle)
        started = info.started_at.timestamp()
        if info.service != service or not since <= started <= min(until, self.now):
            return []
        return [info]
