"""`vigil report deploy`: the post-deploy health report, from a bundle or live from Prometheus."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from agent.cli_options import PreviousVersionOption, VersionOption, parse_moment
from agent.errors import VigilError

if TYPE_CHECKING:
    from agent.bundle.model import Bundle

report_app = typer.Typer(help="Reports on deploys.", no_args_is_help=True)
_err = Console(stderr=True)


@report_app.callback()
def _reports() -> None:
    """Reports on deploys."""


def _fail(message: str) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _live(
    deploy_id: str,
    config: Path | None,
    service: str,
    started: str,
    finished: str | None,
    version: str,
    previous_version: str | None,
    at: str | None,
) -> tuple[Bundle, float, dict[str, str]]:
    """The deploy captured from the configured sources: (bundle, report moment, missing)."""
    import time

    from agent.backends.base import SourceUnavailable
    from agent.capture import capture, live_deploy
    from agent.config import find_config, load_config
    from agent.wiring import logs_for, metrics_for

    cfg = load_config(find_config(config))
    svc = cfg.service(service)
    start = parse_moment(started, 0.0)
    moment = parse_moment(at, start) if at else time.time()
    end = None if finished is None else parse_moment(finished, start)
    deploy = live_deploy(service, svc, start, version, previous_version, deploy_id, end)
    try:
        captured = capture(
            service,
            svc,
            deploy,
            moment,
            metrics=metrics_for(cfg, service),
            logs=logs_for(cfg, service),
        )
    except SourceUnavailable as exc:
        raise VigilError(f"cannot report on {service} live: {exc}") from None
    return captured.bundle, moment, captured.missing


@report_app.command("deploy")
def deploy_report(
    deploy_id: Annotated[str, typer.Argument(help="The deploy's id (must match the bundle's).")],
    bundle: Annotated[
        Path | None, typer.Option(help="A deploy bundle folder (or use --config/--service).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Live: vigil.yaml (default $VIGIL_CONFIG or ./vigil.yaml)."),
    ] = None,
    service: Annotated[
        str | None, typer.Option(help="Live: the configured service that was deployed.")
    ] = None,
    started: Annotated[
        str | None, typer.Option(help="Live: when the deploy started (RFC 3339 or Unix seconds).")
    ] = None,
    finished: Annotated[
        str | None, typer.Option(help="Live: when the rollout finished (or +3m after the start).")
    ] = None,
    version: VersionOption = "unknown",
    previous_version: PreviousVersionOption = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="Report as of this moment: RFC 3339, Unix seconds or +15m after the deploy "
            "start. Default: the end of the data (live: now)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default ./vigil-report-<deploy id>/).")
    ] = None,
) -> None:
    """Write the post-deploy health report: report.md, report.json, report.html, charts/.

    The header (service, versions, strategy, window judged), the verdict, a before/after
    row per signal, when each signal first reached each tier and whether it recovered, the
    new and grown error log patterns, a chart per signal, and the conclusion: keep, pause
    or roll back, and why."""
    from agent.bundle import read_bundle
    from agent.report import build_report, check_deploy_id, default_out, write_report

    try:
        if bundle is not None:
            data = read_bundle(bundle)
            check_deploy_id(data, deploy_id)
            start = data.manifest.deploy.started_at.timestamp()
            moment = parse_moment(at, start) if at else None
            missing: dict[str, str] = {}
        elif service is not None and started is not None:
            data, moment, missing = _live(
                deploy_id, config, service, started, finished, version, previous_version, at
            )
        else:
            raise VigilError(
                "pass --bundle DIR, or --service S with --started TIME (and --config FILE) "
                "to report live from Prometheus"
            )
        source = None if bundle is not None else f"live: Prometheus ({service})"
        report = build_report(data, moment, source=source, missing=missing)
        files = write_report(data, report, out or default_out(deploy_id))
    except VigilError as exc:
        raise _fail(str(exc)) from None
    for path in files.paths:
        typer.echo(str(path))
