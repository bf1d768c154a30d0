"""Human-readable rendering of verdicts and replays (rich)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from agent.judge.replay import ReplayResult
from agent.judge.verdict import Verdict

_TIER_STYLE = {0: "green", 1: "yellow", 2: "dark_orange", 3: "bold red"}


def _clock(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def render_verdict(console: Console, verdict: Verdict) -> None:
    style = _TIER_STYLE[verdict.tier]
    caused = {True: "deploy-caused", False: "NOT deploy-caused", None: "n/a"}[verdict.deploy_caused]
    console.print(
        f"[{style}]tier {verdict.tier} ({verdict.tier_name})[/] for {verdict.service} "
        f"{verdict.deploy_id} at {_clock(verdict.at)} · {verdict.status} · {caused}"
    )
    for reason in verdict.reasons:
        console.print(f"  • {reason}", highlight=False)
    table = Table(show_lines=False, header_style="bold")
    for column in (
        "signal",
        "tier",
        "status",
        "window",
        "baseline",
        "current",
        "effect",
        "p",
        "threshold",
        "SLO",
    ):
        table.add_column(column)
    for f in verdict.findings:
        table.add_row(
            f.signal + (" *" if f.critical else ""),
            f"[{_TIER_STYLE[f.tier]}]{f.tier}[/]",
            f.status,
            f.window,
            _num(f.baseline),
            _num(f.current),
            "-" if f.effect is None else f"{f.effect:+.0%}",
            _num(f.p_value),
            _num(f.threshold),
            "-" if f.slo is None else ("past" if f.past_slo else "ok") + f" {f.slo:g}",
        )
    console.print(table)
    console.print("[dim]* critical signal; p is adjusted for the windows tested[/]")


def render_replay_row(console: Console, result: ReplayResult) -> None:
    style = _TIER_STYLE[result.max_tier]
    firsts = "  ".join(f"t{tier}={_clock(at)}" for tier, at in sorted(result.first_at.items()))
    console.print(
        f"[{style}]max tier {result.max_tier}[/] {result.bundle}  {firsts}", highlight=False
    )
