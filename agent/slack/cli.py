"""`vigil slack --socket`: the Slack app over Socket Mode (no public URL needed).

HTTP mode needs no command of its own: `vigil serve` mounts `POST /slack/events` when
SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from agent.cli_options import ConfigOption
from agent.errors import VigilError

slack_app = typer.Typer(help="The Slack app: on-call chat, approvals, incident threads.")
_err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


@slack_app.callback(invoke_without_command=True)
def slack(
    socket: Annotated[
        bool, typer.Option("--socket", help="Connect to Slack over Socket Mode and serve.")
    ] = False,
    db: Annotated[Path | None, typer.Option(help="The sqlite store (default $VIGIL_DB).")] = None,
    config: ConfigOption = None,
    interval: Annotated[
        float, typer.Option(help="Seconds between posting what is queued.", min=0.2)
    ] = 2.0,
) -> None:
    """Run the Slack app over Socket Mode (SLACK_APP_TOKEN and SLACK_BOT_TOKEN).

    It reads incidents and deploy-watch actions from the same store as `vigil serve`, posts
    them as incident threads, answers questions and `/vigil`, and handles the approval
    buttons. Without --socket this explains how HTTP mode is served."""
    if not socket:
        _err.print(
            "HTTP mode is served by `vigil serve` at POST /slack/events (set SLACK_BOT_TOKEN "
            "and SLACK_SIGNING_SECRET). Use `vigil slack --socket` for Socket Mode.",
            highlight=False,
        )
        raise typer.Exit(code=2)
    from agent.cli_server import default_db
    from agent.config import find_config, load_config
    from agent.server.backends import ConfigBackends
    from agent.slack.app import SlackBridge, socket_handler
    from agent.slack.settings import SlackSettings

    try:
        settings = SlackSettings.from_env()
        if not settings.socket_ready:
            raise _fail("Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN (xapp-...)")
        cfg = load_config(find_config(config))
        bridge = SlackBridge(
            db_path=db or default_db(), backends=ConfigBackends(cfg), settings=settings
        )
    except VigilError as exc:
        raise _fail(str(exc)) from None
    handler = socket_handler(bridge)
    bridge.start(interval)
    _err.print(f"vigil slack: Socket Mode via {settings.api_url}", highlight=False)
    try:
        handler.start()  # blocks until the process is stopped
    finally:
        handler.close()
        bridge.stop()
