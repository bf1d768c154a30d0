"""Metrics read from the store at scrape time.

The workers run in their own process (so a webhook storm never waits on the GIL behind a
triage), which means their counters cannot live in the web process' memory. What they did is
in sqlite anyway: deploys, rollbacks, watch sessions, jobs and their durations, model usage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from agent.server.intake import Intake

TRIAGE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0)


def _histogram(
    name: str, doc: str, labels: list[str], groups: dict[tuple[str, ...], list[float]]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, values in sorted(groups.items()):
        buckets = []
        for bound in TRIAGE_BUCKETS:
            buckets.append((str(bound), float(sum(v <= bound for v in values))))
        buckets.append(("+Inf", float(len(values))))
        family.add_metric(list(key), buckets, sum_value=float(sum(values)))
    return family


class StoreCollector(Collector):
    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    def _rows(self, sql: str) -> list[Any]:
        return list(self.intake._conn().execute(sql))

    def collect(self) -> Iterator[Any]:
        deploys = CounterMetricFamily(
            "deployment", "Deploys by their latest status", labels=["service", "status"]
        )
        for service, status, n in self._rows(
            "SELECT service, status, count(*) FROM deploys GROUP BY service, status"
        ):
            deploys.add_metric([service, status], n)
        yield deploys

        rollbacks = CounterMetricFamily(
            "deployment_rollback", "Rollbacks Vigil executed", labels=["service"]
        )
        for service, n in self._rows(
            "SELECT json_extract(data, '$.service'), count(*) FROM audit WHERE kind = 'action'"
            " AND json_extract(data, '$.action') = 'rollback'"
            " AND json_extract(data, '$.status') = 'executed' GROUP BY 1"
        ):
            rollbacks.add_metric([service or "unknown"], n)
        yield rollbacks

        to_rollback: dict[tuple[str, ...], list[float]] = {}
        for service, seconds in self._rows(
            "SELECT s.service, s.closed_at - d.started_at FROM watch_sessions s JOIN deploys d"
            " ON d.id = s.deploy_id WHERE s.state = 'rolled_back' AND s.closed_at IS NOT NULL"
        ):
            to_rollback.setdefault((service,), []).append(max(0.0, float(seconds)))
        yield _histogram(
            "time_to_rollback_seconds",
            "From a deploy's start to its rollback (watch sessions)",
            ["service"],
            to_rollback,
        )

        to_deploy: dict[tuple[str, ...], list[float]] = {}
        for service, seconds in self._rows(
            "SELECT service, finished_at - started_at FROM deploys"
            " WHERE status = 'succeeded' AND finished_at IS NOT NULL"
        ):
            to_deploy.setdefault((service,), []).append(max(0.0, float(seconds)))
        yield _histogram(
            "time_to_deploy_seconds", "From a deploy's start to its success", ["service"], to_deploy
        )

        error_rate = GaugeMetricFamily(
            "post_deployment_error_rate",
            "Error ratio of each service's latest watched deploy, at its latest health check",
            labels=["service"],
        )
        for service, ratio in self._rows(
            "SELECT s.service, h.error_ratio FROM health_checks h JOIN watch_sessions s"
            " ON s.deploy_id = h.deploy_id WHERE h.error_ratio IS NOT NULL"
            " AND h.at = (SELECT max(at) FROM health_checks WHERE deploy_id = h.deploy_id"
            " AND error_ratio IS NOT NULL)"
            " AND s.opened_at = (SELECT max(opened_at) FROM watch_sessions"
            " WHERE service = s.service)"
        ):
            error_rate.add_metric([service], ratio)
        yield error_rate

        judged: dict[tuple[str, ...], list[float]] = {}
        for (ms,) in self._rows("SELECT judge_ms FROM health_checks WHERE judge_ms IS NOT NULL"):
            judged.setdefault((), []).append(float(ms) / 1000)
        yield _histogram(
            "vigil_judge_seconds", "One judge call of a watch session (capture + judge)", [], judged
        )

        sessions = GaugeMetricFamily(
            "vigil_watch_sessions", "Deploy watch sessions by state", labels=["state"]
        )
        counts = dict(self._rows("SELECT state, count(*) FROM watch_sessions GROUP BY state"))
        for state in ("watching", "paused", "completed", "rolled_back", "failed"):
            sessions.add_metric([state], counts.get(state, 0))
        yield sessions

        jobs = GaugeMetricFamily("vigil_jobs", "Jobs by kind and status", labels=["kind", "status"])
        for kind, status, n in self._rows(
            "SELECT kind, status, count(*) FROM jobs GROUP BY kind, status"
        ):
            jobs.add_metric([kind, status], n)
        yield jobs

        durations: dict[tuple[str, ...], list[float]] = {}
        for kind, seconds in self._rows(
            "SELECT kind, finished_at - started_at FROM jobs WHERE status = 'done'"
            " AND finished_at IS NOT NULL AND started_at IS NOT NULL"
        ):
            durations.setdefault((kind,), []).append(max(0.0, float(seconds)))
        yield _histogram(
            "vigil_job_seconds", "Time to handle one job (alert: the triage)", ["kind"], durations
        )

        tokens = CounterMetricFamily("vigil_model_tokens", "Model tokens used", labels=["kind"])
        cost = CounterMetricFamily("vigil_model_cost_usd", "Model cost in USD")
        row = self._rows(
            "SELECT coalesce(sum(json_extract(result, '$.model.input_tokens')), 0),"
            " coalesce(sum(json_extract(result, '$.model.output_tokens')), 0),"
            " coalesce(sum(json_extract(result, '$.model.cost_usd')), 0) FROM incidents"
        )[0]
        tokens.add_metric(["input"], row[0])
        tokens.add_metric(["output"], row[1])
        cost.add_metric([], row[2])
        yield tokens
        yield cost
