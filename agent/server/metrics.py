"""What `GET /metrics` exposes: deploy health for the services Vigil watches, and Vigil's own.

The web process counts the webhooks it takes; everything the workers did is read from the
store at scrape time (`dbmetrics`), since the workers run in another process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

if TYPE_CHECKING:
    from agent.server.intake import Intake


class ServerMetrics:
    """One registry per app (no global state: two apps in one process do not collide)."""

    def __init__(
        self, queue_depth: Callable[[], float] | None = None, *, intake: Intake | None = None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.webhooks_received = Counter(
            "vigil_webhooks_received", "Webhooks accepted", ["kind"], registry=r
        )
        self.webhooks_rejected = Counter(
            "vigil_webhooks_rejected", "Webhooks refused", ["kind", "status"], registry=r
        )
        self.queue_depth = Gauge("vigil_queue_depth", "Jobs pending or running", registry=r)
        if queue_depth is not None:
            self.queue_depth.set_function(queue_depth)
        if intake is not None:
            from agent.server.dbmetrics import StoreCollector

            r.register(StoreCollector(intake))
