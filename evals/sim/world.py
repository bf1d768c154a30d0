"""The mutable state a family works on: the drawn service, its cohorts' truth, the warm-up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from agent.bundle.series import FloatArray
from evals.sim.drivers import Drivers, Warmup
from evals.sim.noise import Rng, Shape, interval_mean, lognormal_ar1
from evals.sim.profiles import ServiceProfile, Timeline

# What went wrong, for the change, log and alert artifacts.
Category = Literal[
    "errors", "pool", "latency", "latency_minor", "crash", "business", "memory", "dependency"
]


@dataclass(frozen=True)
class Outcome:
    """What a family did: the truth behind `expect`, and what artifacts should show."""

    onset: float | None = None
    category: Category | None = None
    everyone: bool = False  # the fault hit old and new pods alike (not the deploy)
    detail: str = ""  # e.g. "errors" or "latency" for a canary regression


@dataclass
class World:
    rng: Rng
    profile: ServiceProfile
    timeline: Timeline
    cohorts: dict[str, Drivers]  # "" and, for a canary, "baseline" and "canary"
    canary: bool
    warmup: Warmup

    @property
    def new_version(self) -> list[Drivers]:
        """Cohorts running the deployed version after the start."""
        return [self.cohorts["canary"]] if self.canary else [self.cohorts[""]]

    @property
    def everyone(self) -> list[Drivers]:
        return list(self.cohorts.values())

    def shape(self, shape: Shape) -> FloatArray:
        return interval_mean(shape, self.timeline.t, self.timeline.step)

    def onset(self, low: float, high: float) -> float:
        """A moment low..high seconds after the start, whole seconds, never on the grid."""
        step = int(self.timeline.step)
        offset = int(self.rng.integers(int(low), int(high) + 1))
        if offset % step == 0:
            offset += int(self.rng.integers(1, step))
        return self.timeline.start + offset

    def load_at(self, moment: float) -> float:
        """Smoothed per-pod load around a moment (the latency multiplier's reference)."""
        t = self.timeline.t
        near = np.abs(t - moment) <= 300.0
        return float(np.mean(self.cohorts[""].load[near]))

    def fail(self, cohorts: Iterable[Drivers], p: float, shape: Shape) -> None:
        """Requests fail with probability ~p where the shape is 1 (the fault's own jitter)."""
        frac = self.shape(shape)
        for d in cohorts:
            jitter = lognormal_ar1(self.rng, self.timeline.n, 0.6, 0.15)
            d.add_failures(np.clip(p * jitter, 0.0, 0.95) * frac)

    def slow(self, cohorts: Iterable[Drivers], mult: float, shape: Shape) -> None:
        """Latency multiplied by `mult` where the shape is 1."""
        frac = self.shape(shape)
        for d in cohorts:
            d.latency = d.latency * (1.0 + (mult - 1.0) * frac)
