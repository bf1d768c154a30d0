"""`vigil bundle ...`: capture live deploys as bundles, so every real incident can be replayed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from agent.cli_options import ConfigOption, parse_moment
from agent.errors import VigilError

bundle_app = typer.Typer(help="Capture deploys as bundles.", no_args_is_help=True)
_out = Console()
_err = Console(stderr=True)


@bundle_app.command("export")
def export_cmd(
    service: Annotated[str, typer.Argument(help="A service of vigil.yaml.")],
    out: Annotated[Path, typer.Option(help="The bundle folder to write.")],
    started: Annotated[str, typer.Option(help="When the deploy started (RFC 3339 or Unix s).")],
    until: Annotated[
        str | None,
        typer.Option(help="End of the capture (RFC 3339, Unix s, +20m; default now)."),
    ] = None,
    version: Annotated[str, typer.Option(help="The deployed version.")] = "unknown",
    previous_version: Annotated[str | None, typer.Option(help="The version before it.")] = None,
    deploy_id: Annotated[str | None, typer.Option(help="The deploy's id.")] = None,
    alert: Annotated[
        Path | None, typer.Option(help="An Alertmanager payload to store as alert.json.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Capture a deploy from Prometheus (+ logs and the change when configured) as a bundle."""
    from agent.backends.base import SourceUnavailable
    from agent.bundle.model import Bundle
    from agent.bundle.writer import write_bundle
    from agent.capture import capture, live_deploy
    from agent.config import find_config, load_config
    from agent.wiring import changes_for, logs_for, metrics_for

    try:
        cfg = load_config(find_config(config))
        svc = cfg.service(service)
        start = parse_moment(started, 0.0)
        end = parse_moment(until, start) if until else time.time()
        if end <= start:
            raise VigilError("--until must be after --started")
        deploy = live_deploy(service, svc, start, version, previous_version, deploy_id)
        try:
            got = capture(
                service,
                svc,
                deploy,
                end,
                metrics=metrics_for(cfg, service),
                logs=logs_for(cfg, service),
                changes=changes_for(cfg, service),
            )
        except SourceUnavailable as exc:
            raise VigilError(f"cannot capture {service}: {exc}") from None
        bundle = got.bundle
        if alert is not None:
            import json

            from agent.alerts import load_alert_file

            load_alert_file(alert)  # validated (file:line: field on error), stored as written
            bundle = Bundle(
                manifest=bundle.manifest,
                signals=bundle.signals,
                logs=bundle.logs,
                diff=bundle.diff,
                alert=json.loads(alert.read_text(encoding="utf-8")),
            )
        folder = write_bundle(bundle, out)
    except VigilError as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    samples = sum(len(s) for cohorts in bundle.signals.values() for s in cohorts.values())
    _out.print(
        f"wrote {folder}: {len(bundle.signals)} signals, {samples} samples, "
        f"{len(bundle.logs or ())} log lines, "
        f"{'a change' if bundle.diff else 'no change'}",
        highlight=False,
    )
    for source, why in sorted(got.missing.items()):
        _out.print(f"  not captured: {source}: {why}", highlight=False)
