"""What `GET /metrics` exposes: deploy health for the services Vigil watches, and Vigil's own."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServerMetrics:
    """One registry per app (no global state: two apps in one process do not collide)."""

    def __init__(self, queue_depth: Callable[[], float] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Deploy health (named as the shipped alert rules expect them).
        self.deployment_total = Counter(
            "deployment", "Deploy events by final status", ["service", "status"], registry=r
        )
        self.deployment_rollback_total = Counter(
            "deployment_rollback", "Rollbacks Vigil executed", ["service"], registry=r
        )
        self.post_deployment_error_rate = Gauge(
            "post_deployment_error_rate",
            "Error ratio of the latest judged deploy, at its latest health check",
            ["service"],
            registry=r,
        )
        self.time_to_deploy = Histogram(
            "time_to_deploy_seconds",
            "From a deploy's start to its success",
            ["service"],
            buckets=(30, 60, 120, 300, 600, 1200, 1800, 3600),
            registry=r,
        )
        self.time_to_rollback = Histogram(
            "time_to_rollback_seconds",
            "From a deploy's start to Vigil's rollback",
            ["service"],
            buckets=(30, 60, 120, 300, 600, 1200),
            registry=r,
        )
        self.watch_sessions = Gauge(
            "vigil_watch_sessions", "Deploy watch sessions by state", ["state"], registry=r
        )
        # Vigil itself.
        self.webhooks_received = Counter(
            "vigil_webhooks_received", "Webhooks accepted", ["kind"], registry=r
        )
        self.webhooks_rejected = Counter(
            "vigil_webhooks_rejected", "Webhooks refused", ["kind", "status"], registry=r
        )
        self.queue_depth = Gauge("vigil_queue_depth", "Jobs pending or running", registry=r)
        if queue_depth is not None:
            self.queue_depth.set_function(queue_depth)
        self.judge_seconds = Histogram(
            "vigil_judge_seconds",
            "One judge call in a watch session (capture + judge)",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
            registry=r,
        )
        self.triage_seconds = Histogram(
            "vigil_triage_seconds",
            "One triage of an incident",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60),
            registry=r,
        )
        self.jobs_failed = Counter("vigil_jobs_failed", "Jobs that raised", ["kind"], registry=r)
        self.model_tokens = Counter("vigil_model_tokens", "Model tokens used", ["kind"], registry=r)
        self.model_cost = Counter("vigil_model_cost_usd", "Model cost in USD", registry=r)
