"""`vigil thresholds SERVICE`: propose alert thresholds from history, with the numbers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.cli_options import parse_moment
from agent.errors import VigilError

if TYPE_CHECKING:
    from agent.thresholds import SignalReport, ThresholdReport
    from agent.thresholds_history import History
    from agent.thresholds_rule import Outcome

thresholds_app = typer.Typer(add_completion=False)
_out = Console()
_err = Console(stderr=True)


def _seconds(text: str, option: str) -> float:
    from agent.bundle.model import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise VigilError(f"{option} {text!r}: {exc}") from None


@thresholds_app.callback(
    invoke_without_command=True,
    context_settings={"allow_interspersed_args": True},
    subcommand_metavar="",
)
def thresholds_cmd(
    service: Annotated[str, typer.Argument(help="The service (of vigil.yaml, or the bundles).")],
    config: Annotated[
        Path | None,
        typer.Option(help="vigil.yaml for live history (default $VIGIL_CONFIG or ./vigil.yaml)."),
    ] = None,
    days: Annotated[
        int, typer.Option(min=1, max=90, help="Days of history (live, or simulated).")
    ] = 14,
    step: Annotated[str, typer.Option(help="Live: the query step of the history.")] = "1m",
    until: Annotated[
        str | None, typer.Option(help="Live: end of the history (RFC 3339 or Unix s; default now).")
    ] = None,
    bundles: Annotated[
        Path | None,
        typer.Option(help="Read history from this folder of deploy bundles instead."),
    ] = None,
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Use a simulated history (demo and tests).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Simulated history: the random seed.")] = 7,
    incidents: Annotated[
        Path | None,
        typer.Option(help="Known incidents: a YAML list of {start, end, signal?}."),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(help="Known incidents from this store (tier >= 2 incidents of SERVICE)."),
    ] = None,
    incident_length: Annotated[
        str, typer.Option(help="Store incidents: assumed length when it is not recorded.")
    ] = "30m",
    current: Annotated[
        list[str] | None,
        typer.Option(
            help="The current rule of a signal, e.g. 'error_ratio>0.05 for 5m' (repeatable); "
            "other signals keep the seed thresholds (errors > 10 %, p95 > 5 s, for 5m)."
        ),
    ] = None,
    max_delay: Annotated[
        str, typer.Option(help="An incident is caught when an alert fires this soon after it.")
    ] = "15m",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    rules: Annotated[
        Path | None, typer.Option(help="Write the proposal as a Prometheus alerting rule file.")
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Add a paragraph explaining the proposal (the model writes it when "
            "ANTHROPIC_API_KEY is set; it may only cite the numbers).",
        ),
    ] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Never call the model for the explanation.")
    ] = False,
) -> None:
    """Propose alert thresholds from a service's history and its known incidents.

    Replays the current alert rules on the history, then proposes quieter ones.

    Counts false alarms (firing episodes that overlap no known incident), missed and late
    incidents and detection delays; searches thresholds, `for:` durations, peak/off-peak hours
    and minimum traffic to catch every known incident within --max-delay with as few false
    alarms as possible.
    """
    from agent.thresholds import propose_thresholds
    from agent.thresholds_rule import parse_current

    try:
        if bundles is not None and simulate:
            raise VigilError("use either --bundles DIR or --simulate, not both")
        delay = _seconds(max_delay, "--max-delay")
        with _err.status(f"reading the history of {service}..."):
            history = _history(service, config, days, step, until, bundles, simulate, seed)
        history = _with_known_incidents(history, incidents, db, incident_length)
        specs = {n: s.spec for n, s in history.signals.items()}
        rules_now = [parse_current(text, specs) for text in current or []]
        if len({r.signal for r in rules_now}) != len(rules_now):
            raise VigilError("--current: one rule per signal")
        with _err.status(f"replaying rules on {history.samples} samples..."):
            report = propose_thresholds(history, current=rules_now, max_delay_s=delay)
        if explain:
            report = _explained(report, offline)
        written = _write_rules(report, rules) if rules is not None else None
    except VigilError as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        render(_out, report)
    if written:
        (_err if as_json else _out).print(written, highlight=False, soft_wrap=True)


def _history(
    service: str,
    config: Path | None,
    days: int,
    step: str,
    until: str | None,
    bundles: Path | None,
    simulate: bool,
    seed: int,
) -> History:
    from agent.thresholds_history import from_bundles, from_prometheus

    if bundles is not None:
        return from_bundles(bundles, service)
    if simulate:
        from agent.thresholds_sim import Simulation
        from agent.thresholds_sim import simulate as run

        return run(Simulation(service=service, days=days, seed=seed))
    from agent.config import find_config, load_config
    from agent.wiring import metrics_for

    cfg = load_config(find_config(config))
    svc = cfg.service(service)
    step_s = _seconds(step, "--step")
    end = parse_moment(until, 0.0) if until else time.time()
    return from_prometheus(service, svc, metrics_for(cfg, service), end - days * 86400, end, step_s)


def _with_known_incidents(
    history: History, incidents: Path | None, db: Path | None, length: str
) -> History:
    from agent.thresholds_history import check_incidents, incidents_from_file, incidents_from_store

    more = []
    if incidents is not None:
        more += incidents_from_file(incidents)
    if db is not None:
        more += incidents_from_store(
            db, history.service, default_length_s=_seconds(length, "--incident-length")
        )
    check_incidents(history, more)
    return history.with_incidents(more) if more else history


def _explained(report: ThresholdReport, offline: bool) -> ThresholdReport:
    from agent.thresholds_explain import explain
    from agent.triage import settings_and_loop

    loop, reason = settings_and_loop(offline=offline)
    return report.model_copy(update={"explanation": explain(report, loop, reason)})


def _write_rules(report: ThresholdReport, path: Path) -> str:
    from agent.thresholds_promql import rule_file

    text, skipped = rule_file(report)
    if not text or text.count("- alert:") == 0:
        raise VigilError(f"no rule to write to {path}: no signal has a PromQL query")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise VigilError(f"cannot write {path}: {exc}") from None
    message = f"wrote {path}: {text.count('- alert:')} alerting rules"
    if skipped:
        message += f" (no PromQL for {', '.join(skipped)}: left out)"
    return message


# --- the table -------------------------------------------------------------------------------


def _delay(seconds: float | None) -> str:
    from agent.thresholds_rule import fmt_duration

    return "-" if seconds is None else fmt_duration(seconds)


def _cells(o: Outcome | None) -> list[str]:
    if o is None:
        return ["-"] * 6
    return [
        str(o.false_positives),
        f"{o.caught}/{o.incidents}",
        str(o.late),
        str(o.missed),
        _delay(o.median_delay_s),
        _delay(o.max_delay_s),
    ]


def _rule_text(sig: SignalReport, proposed: bool) -> str:
    rule = sig.proposed if proposed else sig.current
    if rule is None:
        return "(no rule)"
    text = rule.describe().removeprefix(f"{sig.signal} ")
    return text.replace(f", {sig.signal} ", ", ")


def render(console: Console, report: ThresholdReport) -> None:
    from agent.thresholds_rule import fmt_duration

    covered = (
        f"{report.days:g} days" if report.days >= 2 else f"{report.days * 24:.1f} hours of data"
    )
    console.print(
        f"[bold]{escape(report.service)}[/]: {escape(report.source)} — {covered}, "
        f"{report.samples} samples, {report.totals.incidents} known incidents; caught = an alert "
        f"within {fmt_duration(report.max_delay_s)}",
        highlight=False,
    )
    table = Table(show_lines=True)
    for name in ("signal", "", "rule", "false alarms", "caught", "late", "missed", "median", "max"):
        table.add_column(
            name, justify="right" if name in ("false alarms", "late", "missed") else "left"
        )
    for sig in report.signals:
        before = "current" if sig.current_source != "seed" else "current (seed)"
        table.add_row(
            sig.signal, before, escape(_rule_text(sig, False)), *_cells(sig.current_outcome)
        )
        cut = "" if sig.false_positive_cut is None else f" (-{100 * sig.false_positive_cut:.0f} %)"
        cells = _cells(sig.proposed_outcome)
        cells[0] += cut
        style = "green" if sig.target_met else "yellow"
        table.add_row("", f"[{style}]proposed[/]", escape(_rule_text(sig, True)), *cells)
    console.print(table)
    t = report.totals
    verdict = "[green]target met[/]" if t.target_met else "[yellow]target not met[/]"
    cut = "" if t.false_positive_cut is None else f" ({100 * t.false_positive_cut:.0f} % fewer)"
    console.print(
        f"false alarms {t.current_false_positives} -> {t.proposed_false_positives}{cut}; "
        f"incidents missed {t.current_missed} -> {t.proposed_missed} of {t.incidents}: {verdict}",
        highlight=False,
    )
    for sig in report.signals:
        console.print(f"  {escape(sig.signal)}: {escape(sig.note)}", highlight=False)
    if report.incidents:
        console.print(_incident_table(report))
    for line in [*report.skipped, *report.notes]:
        console.print(f"  [dim]{escape(line)}[/]", highlight=False)
    if report.explanation is not None:
        e = report.explanation
        why = f" — {e.fallback_reason}" if e.fallback_reason else ""
        console.print(f"\n[bold]explanation[/] ({e.source}{escape(why)})", highlight=False)
        console.print(escape(e.text), highlight=False)


def _incident_table(report: ThresholdReport) -> Table:
    from datetime import UTC, datetime

    def when(ts: float) -> str:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")

    def delay(seconds: float | None) -> str:
        if seconds is None:
            return "[red]missed[/]"
        late = seconds > report.max_delay_s + 1e-6
        return f"[yellow]{_delay(seconds)} (late)[/]" if late else _delay(seconds)

    table = Table(title="known incidents (UTC)", title_justify="left")
    for name in ("start", "minutes", "source", "shows in", "current", "proposed"):
        table.add_column(name)
    for inc in report.incidents[:50]:
        table.add_row(
            when(inc.start),
            f"{(inc.end - inc.start) / 60:.0f}",
            escape(inc.source),
            escape(", ".join(inc.signals) or "(no signal)"),
            delay(inc.current_delay_s),
            delay(inc.proposed_delay_s),
        )
    return table
