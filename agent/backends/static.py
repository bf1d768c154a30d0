"""Deploys known up front (given on the command line, or read from the store)."""

from __future__ import annotations

from collections.abc import Iterable

from agent.backends.base import DeployInfo


class StaticDeploySource:
    """`DeploySource` over a fixed list of deploys."""

    def __init__(self, deploys: Iterable[DeployInfo]) -> None:
        self._deploys = sorted(deploys, key=lambda d: d.started_at, reverse=True)

    def deploys(self, service: str, since: float, until: float) -> list[DeployInfo]:
        return [
            d
            for d in self._deploys
            if d.service == service and since <= d.started_at.timestamp() <= until
        ]
