"""The `vigil` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from agent.cli_bundle import bundle_app
from agent.cli_docs import docs_app
from agent.cli_options import (
    ConfigOption,
    DeployIdOption,
    PreviousVersionOption,
    VersionOption,
    parse_moment,
)
from agent.cli_report import report_app
from agent.cli_runbook import runbook_app
from agent.cli_server import alerts_app, default_db, serve
from agent.cli_thresholds import thresholds_app
from agent.errors import VigilError
from agent.slack.cli import slack as slack_cmd

if TYPE_CHECKING:
    from agent.backends.base import DeployInfo
    from agent.bundle.model import Bundle
    from agent.triage import TriageResult
    from tools.context import ToolContext

app = typer.Typer(
    name="vigil",
    help="Vigil: a deploy-aware SRE. Watches deploys, judges them with statistics, triages alerts.",
    no_args_is_help=True,
    add_completion=False,
)
_out = Console()
_err = Console(stderr=True)

JUDGES = ("vigil", "static", "flagger", "kayenta")


def _fail(error: VigilError) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _duration(text: str) -> float:
    from agent.bundle.model import parse_duration

    if text.strip() in ("0", ""):
        return 0.0
    try:
        return parse_duration(text.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}") from None


@app.command("judge")
def judge_cmd(
    bundle: Annotated[
        Path | None, typer.Argument(help="A deploy bundle folder (or use --live SERVICE).")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="Judge at this moment: RFC 3339, Unix seconds or +5m after deploy start. "
            "Default: the end of the recorded data (live: now)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
    live: Annotated[
        str | None,
        typer.Option(help="Judge this configured service's deploy from Prometheus instead."),
    ] = None,
    started: Annotated[
        str | None, typer.Option(help="Live: when the deploy started (RFC 3339 or Unix seconds).")
    ] = None,
    version: VersionOption = "unknown",
    previous_version: PreviousVersionOption = None,
    deploy_id: DeployIdOption = None,
    config: ConfigOption = None,
    db: Annotated[
        Path | None,
        typer.Option(
            help="Live without --started: the store of `vigil serve` (default $VIGIL_DB)."
        ),
    ] = None,
) -> None:
    """Judge one deploy at one moment and show the evidence for every signal."""
    from agent.bundle import read_bundle
    from agent.judge.core import judge
    from agent.judge.render import render_verdict

    try:
        if live is not None:
            data = _live_bundle(live, started, version, previous_version, deploy_id, config, at, db)
        elif bundle is None:
            raise VigilError("pass a BUNDLE folder, or --live SERVICE with --started TIME")
        else:
            data = read_bundle(bundle, with_logs=False)
    except VigilError as exc:
        raise _fail(exc) from None
    start = data.manifest.deploy.started_at.timestamp()
    moment = parse_moment(at, start) if at else data.manifest.watch_until.timestamp()
    verdict = judge(data, moment)
    if as_json:
        print(json.dumps(verdict.to_json(), indent=2))
    else:
        render_verdict(_out, verdict)


def _live_bundle(
    service: str,
    started: str | None,
    version: str,
    previous_version: str | None,
    deploy_id: str | None,
    config: Path | None,
    at: str | None,
    db: Path | None = None,
) -> Bundle:
    import time

    from agent.backends.base import SourceUnavailable
    from agent.capture import capture, live_deploy
    from agent.config import find_config, load_config
    from agent.wiring import metrics_for

    cfg = load_config(find_config(config))
    svc = cfg.service(service)
    if started is None:
        deploy = _latest_recorded_deploy(service, db)
        start = deploy.started_at.timestamp()
    else:
        start = parse_moment(started, 0.0)
        deploy = live_deploy(service, svc, start, version, previous_version, deploy_id)
    now = parse_moment(at, start) if at else time.time()
    try:
        return capture(service, svc, deploy, now, metrics=metrics_for(cfg, service)).bundle
    except SourceUnavailable as exc:
        raise VigilError(f"cannot judge {service} live: {exc}") from None


def _latest_recorded_deploy(service: str, db: Path | None) -> DeployInfo:
    """The service's newest deploy that `vigil serve` recorded (from its deploy webhooks)."""
    from agent.server.intake import Intake
    from agent.server.runtime import deploy_info

    path = db or default_db()
    rows = Intake(path).deploys(service) if path.exists() else []
    if not rows:
        raise VigilError(
            f"no deploy of {service} recorded in {path}: pass --started (and --version), "
            "or --db of a vigil serve that receives deploy webhooks"
        )
    return deploy_info(rows[0])


config_app = typer.Typer(help="Check the configuration (vigil.yaml).", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(bundle_app, name="bundle")
app.add_typer(alerts_app, name="alerts")
app.add_typer(thresholds_app, name="thresholds")
app.add_typer(docs_app)
app.add_typer(runbook_app, name="runbook")
app.add_typer(report_app, name="report")
app.command("slack")(slack_cmd)
app.command("serve")(serve)


@config_app.command("check")
def config_check_cmd(
    config: ConfigOption = None,
    connect: Annotated[
        bool, typer.Option("--connect", help="Also ask Prometheus whether it answers.")
    ] = False,
) -> None:
    """Validate vigil.yaml (fields, durations, PromQL, secrets named by env var) and list it."""
    from agent.config import find_config, load_config

    try:
        path = find_config(config)
        cfg = load_config(path)
        _out.print(f"{path}: ok, {len(cfg.services)} service(s)", highlight=False)
        for name, svc in sorted(cfg.services.items()):
            signals = ", ".join(
                s.name + ("*" if s.critical else "") + (f" (slo {s.slo:g})" if s.slo else "")
                for s in svc.signals
            )
            _out.print(
                f"  {name}: step {svc.step}, baseline {svc.baseline}, watch {svc.watch}, "
                f"rollout {svc.rollout.kind}, escalation {svc.escalation.kind}; {signals}",
                highlight=False,
            )
        if connect:
            from agent.backends.base import SourceUnavailable
            from agent.wiring import metrics_for

            for name in sorted(cfg.services):
                try:
                    metrics_for(cfg, name).check()
                except SourceUnavailable as exc:
                    raise VigilError(str(exc)) from None
            _out.print("prometheus: answers", highlight=False)
    except VigilError as exc:
        raise _fail(exc) from None


@app.command("replay")
def replay_cmd(
    bundles: Annotated[list[Path], typer.Argument(help="Bundle folders or suites of them.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON line per bundle, as the bundle spec's Replay.")
    ] = False,
    judge_name: Annotated[
        str, typer.Option("--judge", help=f"Which judge: {', '.join(JUDGES)}.")
    ] = "vigil",
) -> None:
    """Judge each deploy at every step (no look-ahead); report when each tier was first reached."""
    from agent.bundle import iter_bundles, read_bundle
    from agent.evaluation import make_judge
    from agent.judge.render import render_replay_row
    from agent.judge.replay import replay

    try:
        judge = make_judge(judge_name)
        for path in iter_bundles(bundles):
            result = replay(read_bundle(path, with_logs=False), judge)
            if as_json:
                print(json.dumps(result.to_json(), separators=(", ", ": ")), flush=True)
            else:
                render_replay_row(_out, result)
    except VigilError as exc:
        raise _fail(exc) from None


@app.command("eval")
def eval_cmd(
    suites: Annotated[list[Path], typer.Argument(help="Suite folders (or single bundles).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the scorecard as JSON.")] = False,
    judge_name: Annotated[
        str, typer.Option("--judge", help=f"Which judge: {', '.join(JUDGES)}.")
    ] = "vigil",
    workers: Annotated[int, typer.Option(min=1, help="Processes replaying in parallel.")] = 1,
) -> None:
    """Replay bundles with ground truth; print the scorecard (false rollbacks, recall, delay)."""
    from agent.bundle import iter_bundles
    from agent.evaluation import evaluate_suite

    try:
        card = evaluate_suite(iter_bundles(suites), judge_name, workers=workers)
    except VigilError as exc:
        raise _fail(exc) from None
    if as_json:
        print(json.dumps(card.to_json(), indent=2))
    else:
        card.render(_out)


@app.command("triage")
def triage_cmd(
    alert: Annotated[
        Path | None,
        typer.Argument(help="An Alertmanager webhook payload (v4) as JSON. Default: the bundle's."),
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="Investigate against this deploy bundle's data.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    db: Annotated[
        Path | None,
        typer.Option(help="The sqlite store (default $VIGIL_DB or ~/.local/state/vigil/vigil.db)."),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Use the offline planner even if a key is set.")
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(help="Investigate as of this moment (default: 30 s after the alert)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide actions but do not execute them.")
    ] = False,
    follow: Annotated[
        str,
        typer.Option(
            help="If the judge cannot decide yet, follow the deploy this long (e.g. 15m; 0: no), "
            "step by step with no look-ahead, acting when it decides."
        ),
    ] = "0",
    config: Annotated[
        Path | None,
        typer.Option(help="Live: vigil.yaml (Prometheus, logs, repository, rollout, escalation)."),
    ] = None,
    started: Annotated[
        str | None, typer.Option(help="Live: when the suspect deploy started.")
    ] = None,
    version: VersionOption = "unknown",
    previous_version: PreviousVersionOption = None,
    deploy_id: DeployIdOption = None,
) -> None:
    """Investigate an alert: was it the deploy, which change, what was done, what next.

    Against a bundle (--bundle DIR) or live (--config vigil.yaml, with the suspect deploy
    given by --started/--version)."""
    from agent.alerts import incident_from_alert, load_alert_file
    from agent.bundle import read_bundle
    from agent.guard import GuardPolicy
    from agent.store import Store
    from agent.triage import settings_and_loop, triage
    from tools.bundle import bundle_context

    try:
        if bundle is None:
            ctx = _live_triage_context(
                alert, config, started, version, previous_version, deploy_id, at, dry_run
            )
            loop, why = settings_and_loop(offline=offline)
            result = triage(ctx, loop=loop, offline_reason=why)
            Store(db or default_db()).save_incident(
                result.model_dump(mode="json"), ctx.audit.events
            )
            _print_triage(result, as_json)
            return
        data = read_bundle(bundle)
        incident = None
        if alert is not None:
            incident = incident_from_alert(load_alert_file(alert))
        elif data.alert is None:
            raise VigilError(f"{bundle}: the bundle has no alert.json; pass ALERT.json")
        start = data.manifest.deploy.started_at.timestamp()
        now = parse_moment(at, start) if at else None
        ctx = bundle_context(data, now=now, incident=incident, policy=GuardPolicy(dry_run=dry_run))
        loop, why = settings_and_loop(offline=offline)
        result = triage(ctx, loop=loop, offline_reason=why, follow_s=_duration(follow))
        Store(db or default_db()).save_incident(result.model_dump(mode="json"), ctx.audit.events)
    except VigilError as exc:
        raise _fail(exc) from None
    _print_triage(result, as_json)


def _print_triage(result: TriageResult, as_json: bool) -> None:
    from agent.triage import to_json
    from agent.triage_md import to_markdown

    if as_json:
        print(to_json(result))
    else:
        from rich.markdown import Markdown

        _out.print(Markdown(to_markdown(result)))


def _live_triage_context(
    alert: Path | None,
    config: Path | None,
    started: str | None,
    version: str,
    previous_version: str | None,
    deploy_id: str | None,
    at: str | None,
    dry_run: bool,
) -> ToolContext:
    import time

    from agent.alerts import incident_from_alert, load_alert_file
    from agent.capture import live_deploy
    from agent.config import find_config, load_config
    from agent.live import live_context

    if alert is None:
        raise VigilError("live triage needs ALERT.json (or pass --bundle DIR to replay a bundle)")
    incident = incident_from_alert(load_alert_file(alert))
    cfg = load_config(find_config(config))
    svc = cfg.service(incident.service)
    deploys = []
    if started is not None:
        start = parse_moment(started, 0.0)
        deploys.append(
            live_deploy(incident.service, svc, start, version, previous_version, deploy_id)
        )
    now = parse_moment(at, 0.0) if at else time.time()
    return live_context(cfg, incident, deploys, now, dry_run=dry_run)


def main() -> None:
    """Entry point that turns Vigil's errors into a message and exit code 2."""
    try:
        app()
    except VigilError as exc:
        _err.print(f"error: {exc}", highlight=False)
        sys.exit(2)


@app.command("demo")
def demo_cmd(
    suite: Annotated[
        Path | None, typer.Option(help="The example suite (default: the bundled one).")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Where to write the store, investigation and timeline.")
    ] = Path("vigil-demo"),
    replay: Annotated[
        bool, typer.Option("--replay", help="Instead: replay the whole suite through the judge.")
    ] = False,
    fast: Annotated[bool, typer.Option("--fast", help="No pauses between steps.")] = False,
) -> None:
    """Offline, no keys: a service deployed twice (a good release, a bad one); Vigil watches
    both, keeps the good one, rolls the bad one back, triages the alert, writes what happened."""
    from agent.demo import default_suite, run_demo

    try:
        if replay:
            code = run_demo(_out, suite)
        else:
            from agent.demo_watch import run_watch_demo

            code = run_watch_demo(
                _out, suite or default_suite(), out, delay_s=0.0 if fast else 0.01
            )
    except VigilError as exc:
        raise _fail(exc) from None
    if code:
        raise typer.Exit(code=code)
