"""Replaying a deploy through a judge, step by step, with no look-ahead."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from agent.bundle.model import Bundle, format_time

TierAt = Callable[[float], int]


class DeployJudge(Protocol):
    """Anything that can watch a deploy: Vigil's judge or a reference judge."""

    name: str

    def watch(self, bundle: Bundle) -> TierAt:
        """Return a function giving the tier at Unix time T, using only samples up to T."""
        ...


@dataclass(frozen=True)
class ReplayResult:
    bundle: str
    max_tier: int
    first_at: dict[int, float | None]  # tier 1..3 -> Unix time first reached (or None)

    def to_json(self) -> dict[str, Any]:
        """The spec's replay object."""
        return {
            "bundle": self.bundle,
            "max_tier": self.max_tier,
            "first_at": {
                str(tier): None if at is None else format_time(datetime.fromtimestamp(at, tz=UTC))
                for tier, at in sorted(self.first_at.items())
            },
        }


def look_times(bundle: Bundle) -> list[float]:
    """Every judge moment: from deploy start to watch_until, one step apart."""
    m = bundle.manifest
    start = m.deploy.started_at.timestamp()
    end = m.watch_until.timestamp()
    step = m.step_seconds
    count = int((end - start) // step + 1e-9) + 1
    return [start + i * step for i in range(count)]


def replay(bundle: Bundle, judge: DeployJudge) -> ReplayResult:
    """Judge at every step; record the first moment each tier (or a higher one) was reached."""
    tier_at = judge.watch(bundle)
    first_at: dict[int, float | None] = {1: None, 2: None, 3: None}
    max_tier = 0
    for moment in look_times(bundle):
        tier = tier_at(moment)
        if tier > max_tier:
            for reached in range(max_tier + 1, tier + 1):
                first_at[reached] = moment
            max_tier = tier
            if max_tier == 3:
                break
    return ReplayResult(bundle=bundle.name, max_tier=max_tier, first_at=first_at)
