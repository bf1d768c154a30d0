"""One PNG chart per signal for the health report (matplotlib, Agg, no global state).

Each chart shows the signal from the baseline window to the report's moment, every cohort as
its own line, the baseline level and the SLO as horizontal lines, and as vertical lines the
deploy start, the end of the rollout, the judge's onset (the first look at tier >= 1 for this
signal), the look it was back to healthy, and the bundle's ground-truth onset when it has one.
The same input gives the same bytes: fixed size and DPI, and no software or date metadata.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from agent.bundle.model import Bundle, SignalSpec, SignalUnit
from agent.report.model import HealthReport, SignalReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGSIZE = (9.5, 3.4)
DPI = 100
_COHORTS = {
    "": ("service", "#1f77b4"),
    "baseline": ("baseline cohort", "#2ca02c"),
    "canary": ("canary cohort", "#d62728"),
}
_TIER_COLOURS = {0: "#1a7f37", 1: "#9a6700", 2: "#bc4c00", 3: "#cf222e"}


def _scale(unit: str) -> tuple[float, str]:
    """Plotting factor and axis label of a unit: ratios as %, bytes as MiB."""
    if unit == SignalUnit.RATIO:
        return 100.0, "%"
    if unit == SignalUnit.BYTES:
        return 1.0 / 2**20, "MiB"
    if unit == SignalUnit.PER_SECOND:
        return 1.0, "per second"
    return 1.0, unit


def _minutes(moment: datetime, start: datetime) -> float:
    return (moment - start).total_seconds() / 60.0


def signal_figure(
    bundle: Bundle, spec: SignalSpec, signal: SignalReport, report: HealthReport
) -> Figure:
    """The chart of one signal as a matplotlib Figure on an Agg canvas (not saved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)  # non-interactive, attached to this figure only
    ax = fig.add_subplot()
    start = report.started_at
    t0, t1 = report.baseline_from.timestamp(), report.at.timestamp()
    factor, unit_label = _scale(spec.unit)
    drawn = False
    for cohort, series in bundle.signals.get(spec.name, {}).items():
        keep = (series.t >= t0) & (series.t <= t1)
        if not np.any(keep):
            continue
        label, colour = _COHORTS.get(cohort, (cohort, "#555555"))
        x = (series.t[keep] - start.timestamp()) / 60.0
        ax.plot(
            x, series.v[keep] * factor, color=colour, lw=1.1, label=label, gid=f"cohort:{label}"
        )
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
    row = signal.row
    if row.baseline is not None:
        ax.axhline(
            row.baseline * factor, color="#777777", lw=1, label="baseline level", gid="baseline"
        )
    if row.slo is not None:
        ax.axhline(row.slo * factor, color="#e36209", lw=1.2, ls="--", label="SLO", gid="slo")
    marks: list[tuple[str, datetime | None, dict[str, Any]]] = [
        ("deploy start", start, {"color": "black", "lw": 1.2, "gid": "deploy_start"}),
        ("rollout end", report.finished_at, {"color": "#555555", "ls": ":", "gid": "rollout_end"}),
        (
            "judge onset (tier ≥1)",
            signal.history.onset,
            {"color": "#cf222e", "ls": "--", "lw": 1.4, "gid": "onset"},
        ),
        (
            "back to healthy",
            signal.history.resolved_at,
            {"color": "#1a7f37", "ls": "--", "gid": "resolved"},
        ),
        (
            "expected onset (ground truth)",
            None if report.expected is None else report.expected.onset,
            {"color": "#8250df", "ls": "-.", "gid": "expected_onset"},
        ),
    ]
    for label, moment, style in marks:
        if moment is not None:
            ax.axvline(_minutes(moment, start), label=label, **style)
    ax.set_xlim((t0 - start.timestamp()) / 60.0, (t1 - start.timestamp()) / 60.0)
    ax.set_xlabel(f"minutes since the deploy started ({start:%Y-%m-%d %H:%M:%S}Z)")
    ax.set_ylabel(unit_label)
    tier = signal.row.tier
    ax.set_title(
        f"{spec.name}: tier {tier} ({signal.row.status}) at the end, peak tier "
        f"{signal.history.peak_tier}",
        color=_TIER_COLOURS[max(tier, signal.history.peak_tier)],
        fontsize=10,
    )
    ax.grid(True, color="#eeeeee", lw=0.6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes, without metadata that would change from run to run."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def chart_png(
    bundle: Bundle, spec: SignalSpec, signal: SignalReport, report: HealthReport
) -> bytes:
    return figure_png(signal_figure(bundle, spec, signal, report))
