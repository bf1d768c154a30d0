"""Settings of the deterministic deploy judge (all durations in seconds)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agent.bundle.model import SignalKind


class JudgeSettings(BaseModel):
    """Every number the judge decides with. Defaults were tuned on simulator seed 1 only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    baseline_s: float = Field(1800, gt=0, description="history before the deploy used as baseline")
    recent_pre_s: float = Field(
        300,
        gt=0,
        description="last minutes before the deploy, checked for a pre-existing regression",
    )
    warmup_s: float = Field(120, ge=0, description="rollout warm-up: no pause on in-SLO anomalies")
    warmup_max_s: float = Field(360, ge=0, description="warm-up never lasts longer than this")
    alpha: float = Field(1e-3, gt=0, lt=1, description="family-wise error per look (Holm)")
    warn_alpha: float = Field(1e-2, gt=0, lt=1, description="family-wise error for a warning")
    persistence: tuple[tuple[float, int], ...] = Field(
        ((0.0, 2), (60.0, 3), (120.0, 4)),
        description="(seconds after the rollout ended, consecutive samples that must each be "
        "bad): deploy-caused failures surface as new pods take traffic, so a sudden step long "
        "after the rollout needs more persistence before it rolls back",
    )
    grace_s: float = Field(
        20, ge=0, description="samples this close to the deploy start are pod start-up noise"
    )
    mid_samples: int = Field(8, ge=3, description="samples in the medium window")
    mid_trim: int = Field(2, ge=0, description="worst samples dropped from the medium window")
    long_s: float = Field(600, gt=0, description="longest current window")
    long_trim_fraction: float = Field(0.15, ge=0, lt=0.5)
    min_long_samples: int = Field(8, ge=3)
    stale_steps: float = Field(
        4, gt=0, description="no sample for this many steps = no recent data"
    )
    min_excess_events: float = Field(
        4, ge=0, description="never act on fewer excess bad events than this"
    )
    max_dispersion: float = Field(25.0, ge=1)
    pause_effect: dict[SignalKind, float] = Field(
        default_factory=lambda: {
            SignalKind.ERRORS: 1.0,
            SignalKind.LATENCY: 0.25,
            SignalKind.TRAFFIC: 0.3,
            SignalKind.SATURATION: 0.3,
            SignalKind.BUSINESS: 0.5,
            SignalKind.DEPENDENCY: 0.5,
        },
        description="relative effect (in the bad direction) a signal needs for tier 2",
    )
    warn_effect: dict[SignalKind, float] = Field(
        default_factory=lambda: {
            SignalKind.ERRORS: 0.5,
            SignalKind.LATENCY: 0.1,
            SignalKind.TRAFFIC: 0.15,
            SignalKind.SATURATION: 0.15,
            SignalKind.BUSINESS: 0.2,
            SignalKind.DEPENDENCY: 0.2,
        },
        description="relative effect a signal needs for tier 1",
    )
    load_explains: float = Field(
        1.15, gt=1, description="traffic up this much can explain a saturation/latency rise"
    )
    trend_warmup_s: float = Field(300, ge=0, description="saturation trends are fitted after this")
    trend_min_s: float = Field(240, gt=0, description="shortest span a trend is fitted on")
    trend_per_hour: float = Field(
        0.3, gt=0, description="growth per hour, relative to the baseline level, that is a leak"
    )
    trend_deceleration: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="growth whose recent half is slower than this share of its older half is "
        "settling (caches refilling after a restart), not leaking",
    )
    trend_min_level: float = Field(
        0.05, ge=0, description="a leak must also be this far above the baseline level"
    )
