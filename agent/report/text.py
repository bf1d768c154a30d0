"""Formatting shared by the Markdown and HTML renderings: values with their units, the
before/after table, the facts list, the verdict line.
"""

from __future__ import annotations

from agent.bundle.model import SignalUnit
from agent.report.facts import clock, tier_label, when_text
from agent.report.model import HealthReport, SignalReport, SignalRow


def fmt_value(value: float | None, unit: str) -> str:
    """A value in its signal's unit, for people."""
    if value is None:
        return "-"
    if unit == SignalUnit.RATIO:
        return f"{value:.3%}"
    if unit == SignalUnit.PERCENT:
        return f"{value:.4g}%"
    if unit == SignalUnit.SECONDS:
        return f"{value * 1000:.4g} ms" if abs(value) < 1 else f"{value:.4g} s"
    if unit == SignalUnit.BYTES:
        size = value
        for prefix in ("B", "KiB", "MiB", "GiB"):
            if abs(size) < 1024:
                return f"{size:.4g} {prefix}"
            size /= 1024
        return f"{size:.4g} TiB"
    if unit == SignalUnit.PER_SECOND:
        return f"{value:.4g}/s"
    return f"{value:.4g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def _caused(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "n/a"}[value]


def _slo(sig: SignalReport) -> str:
    if sig.row.slo is None:
        return "-"
    return fmt_value(sig.row.slo, sig.unit)


def _samples(row: SignalRow) -> str:
    return f"{row.baseline_samples} / {row.current_samples}"


def signal_table(report: HealthReport) -> tuple[list[str], list[list[str]]]:
    """The before/after table as plain text cells (escaped by each renderer)."""
    head = [
        "signal",
        "baseline",
        "current",
        "change",
        "samples (before / after)",
        "p-value",
        "threshold",
        "SLO",
        "past SLO",
        "tier",
        "status",
    ]
    rows = [
        [
            sig.name + (" *" if sig.critical else ""),
            fmt_value(sig.row.baseline, sig.unit),
            fmt_value(sig.row.current, sig.unit),
            _pct(sig.row.change),
            _samples(sig.row),
            _p(sig.row.p_value),
            _p(sig.row.threshold),
            _slo(sig),
            "yes" if sig.row.past_slo else "no",
            str(sig.row.tier),
            sig.row.status,
        ]
        for sig in report.signals
    ]
    return head, rows


def fact_rows(report: HealthReport) -> list[tuple[str, str]]:
    start = report.started_at
    out = [
        ("service", report.service),
        ("environment", report.environment or "-"),
        ("deploy", report.deploy_id),
        ("versions", f"{report.previous_version} → {report.version}"),
        ("strategy", report.strategy),
        ("commit", report.commit or "-"),
        ("started", clock(start)),
        (
            "rollout finished",
            "-" if report.finished_at is None else when_text(report.finished_at, start),
        ),
        (
            "window judged",
            f"{clock(start)} to {when_text(report.at, start)}: {report.looks} looks, "
            f"one every {report.step_s:g} s",
        ),
        ("baseline", f"{clock(report.baseline_from)} to {clock(start)}"),
        ("source", report.source),
    ]
    if report.expected is not None:
        truth = f"tier {report.expected.tier}"
        if report.expected.onset is not None:
            truth += f", onset {when_text(report.expected.onset, start)}"
        out.append(("ground truth (bundle expect)", truth))
    return out


def first_lines(report: HealthReport) -> list[str]:
    return [
        f"{tier_label(tier)}: "
        + ("never" if moment is None else when_text(moment, report.started_at))
        for tier, moment in sorted(report.first_at.items())
    ]


def verdict_line(report: HealthReport) -> str:
    v = report.verdict
    return (
        f"{tier_label(v.tier)} at {clock(v.at)}, {v.status}, deploy-caused: "
        f"{_caused(v.deploy_caused)}"
    )
