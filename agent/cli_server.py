"""`vigil serve` and `vigil alerts`: the server and what it received."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.cli_options import ConfigOption
from agent.errors import VigilError

alerts_app = typer.Typer(help="What the server received.", no_args_is_help=True)
_out = Console()
_err = Console(stderr=True)


def default_db() -> Path:
    from agent.store import default_path

    return default_path()


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    db: Annotated[Path | None, typer.Option(help="The sqlite store (default $VIGIL_DB).")] = None,
    config: ConfigOption = None,
    workers: Annotated[
        int, typer.Option(help="Worker threads in the worker process (0: intake only).")
    ] = 2,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the webhooks (Alertmanager, deploys), watch deploys, triage incidents.

    Webhook auth from the environment: VIGIL_WEBHOOK_TOKEN (bearer) or VIGIL_WEBHOOK_USER and
    VIGIL_WEBHOOK_PASSWORD (basic) for Alertmanager; GITHUB_WEBHOOK_SECRET for GitHub."""
    import uvicorn

    from agent.config import find_config, load_config
    from agent.server.app import WebhookAuth, create_app
    from agent.server.intake import Intake
    from agent.server.metrics import ServerMetrics
    from agent.server.worker import WorkerSupervisor, freeze_startup_objects

    try:
        path = find_config(config)
        cfg = load_config(path)  # fail here, with file:line:field, not in the worker
        intake = Intake(db or default_db())
    except VigilError as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    metrics = ServerMetrics(queue_depth=intake.depth, intake=intake)
    supervisor = WorkerSupervisor(intake.path, str(path), workers)
    user, password = os.environ.get("VIGIL_WEBHOOK_USER"), os.environ.get("VIGIL_WEBHOOK_PASSWORD")
    auth = WebhookAuth(
        bearer_token=os.environ.get("VIGIL_WEBHOOK_TOKEN") or None,
        basic=(user, password) if user and password else None,
    )
    app = create_app(
        intake,
        metrics,
        ready=supervisor.problem,
        auth=auth,
        github_secret=os.environ.get("GITHUB_WEBHOOK_SECRET") or None,
    )
    slack = None
    if os.environ.get("SLACK_BOT_TOKEN") or os.environ.get("SLACK_SIGNING_SECRET"):
        from agent.server.backends import ConfigBackends
        from agent.slack import mount_slack  # slack-bolt loads only when Slack is configured

        try:
            slack = mount_slack(app, db_path=intake.path, backends=ConfigBackends(cfg))
        except VigilError as exc:  # a bad VIGIL_SLACK_* variable
            _err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
    # uvicorn re-raises SIGTERM once it has shut down, so a `finally` here may never run:
    # the app's shutdown stops the workers (and the Slack poster).
    app.router.add_event_handler("shutdown", supervisor.stop)
    if slack is not None:
        slack.start()  # every 2 s: what the workers recorded → Slack, then the outbox
        app.router.add_event_handler("shutdown", slack.stop)
    intake.recover()  # jobs a crashed worker was running go back to the queue
    if workers > 0:
        supervisor.start()
    _err.print(f"vigil serving on http://{host}:{port} (store {intake.path})", highlight=False)
    freeze_startup_objects()
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        supervisor.stop()
        if slack is not None:
            slack.stop()


@alerts_app.command("list")
def alerts_list(
    db: Annotated[Path | None, typer.Option(help="The sqlite store (default $VIGIL_DB).")] = None,
    service: Annotated[str | None, typer.Option(help="Only this service.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 1000,
) -> None:
    """List the alerts the server received (one row per fingerprint and start)."""
    from agent.server.intake import Intake

    path = db or default_db()
    if not path.exists():
        _err.print(f"[bold red]error:[/] no store at {path}", highlight=False)
        raise typer.Exit(code=2)
    rows = Intake(path).alerts(limit=limit, service=service)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} alerts in {path}")
    for col in ("received", "alertname", "service", "severity", "status", "incident"):
        table.add_column(col)
    from datetime import UTC, datetime

    for r in rows:
        table.add_row(
            datetime.fromtimestamp(r["received_at"], tz=UTC).strftime("%Y-%m-%d %H:%M:%S"),
            r["alertname"] or "",
            r["service"] or "",
            r["severity"] or "",
            r["status"],
            r["incident_id"] or "",
        )
    _out.print(table)
