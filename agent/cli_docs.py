"""`vigil postmortem`: incident documents drafted from the store."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from agent.cli_server import default_db
from agent.errors import VigilError

docs_app = typer.Typer(help="Incident documents drafted from the store.")
_err = Console(stderr=True)


class Format(StrEnum):
    md = "md"
    json = "json"


def _fail(message: str) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _model_client(offline: bool) -> tuple[Any | None, str]:
    """The SDK client when a key is set (and not --offline); else why there is none."""
    if offline:
        return None, "offline requested"
    if not os.environ.get("ANTHROPIC_API_KEY") and not os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        return None, "no ANTHROPIC_API_KEY set"
    import anthropic

    from agent.llm import ModelSettings

    settings = ModelSettings()
    # The SDK reads the key and ANTHROPIC_BASE_URL from the environment itself.
    client = anthropic.Anthropic(
        max_retries=max(0, settings.retry_attempts - 1), timeout=settings.request_timeout_s
    )
    return client, ""


@docs_app.command("postmortem")
def postmortem(
    incident_id: Annotated[
        str, typer.Argument(help="The incident's id, as `vigil triage` printed it.")
    ],
    db: Annotated[
        Path | None,
        typer.Option(help="The sqlite store (default $VIGIL_DB or ~/.local/state/vigil/vigil.db)."),
    ] = None,
    output: Annotated[Format, typer.Option("--format", help="Markdown or JSON.")] = Format.md,
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not use the model even if a key is set.")
    ] = False,
) -> None:
    """Draft the postmortem of a stored incident, every claim citing its audit event.

    Summary, impact, timeline, root cause, detection and response (where time
    was lost), action items. The model writes it when ANTHROPIC_API_KEY is set
    (ANTHROPIC_BASE_URL is honoured), checked against the recorded facts; else,
    or when its draft holds a time, number, id or file the facts do not, it is
    rendered from the facts."""
    from agent.llm import ModelSettings
    from agent.postmortem import facts_for, write_postmortem
    from agent.store import Store

    path = db or default_db()
    if not path.exists():
        raise _fail(f"{path}: no Vigil store here; pass --db or set VIGIL_DB")
    try:
        facts = facts_for(Store(path), incident_id)
        client, why = _model_client(offline)
        doc = write_postmortem(facts, client=client, settings=ModelSettings(), offline_reason=why)
    except VigilError as exc:
        raise _fail(str(exc)) from None
    if output is Format.json:
        typer.echo(json.dumps(doc.model_dump(mode="json"), indent=2))
    else:
        typer.echo(doc.markdown, nl=False)
