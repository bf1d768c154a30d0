"""`vigil runbook ...`: list and validate the runbooks, and write a new one for a service.

`generate` builds a runbook from facts: the service's configuration (signals and their SLOs,
cohorts, rollout, escalation, guard policy) and its incidents in the store (the alerts that
fired, what the judge found, the suspect files, the actions taken). Without a model (no key,
or `--offline`) code renders the facts; with one, the model rewrites that rendering from the
same facts, and its answer is kept only if it validates as a runbook, claims nothing the
plain one does not, and cites no number, time or file the facts do not hold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.cli_options import ConfigOption
from agent.errors import VigilError
from agent.runbook_facts import gather_facts, service_history
from agent.runbook_generate import generate_runbook, model_client
from agent.runbooks import DEFAULT_DIR, RunbookError, RunbookLibrary, parse_runbook

runbook_app = typer.Typer(
    help="Runbooks the agent follows: list, validate, generate.", no_args_is_help=True
)
_out = Console()
_err = Console(stderr=True)


def _fail(error: VigilError) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _open_history(db: Path | None, service: str) -> list[dict[str, Any]]:
    from agent.store import Store, default_path

    path = db or default_path()
    if not path.is_file():
        if db is not None:
            raise VigilError(f"{db}: no such store (run `vigil triage --db {db}` first)")
        return []
    return service_history(Store(path), service)


@runbook_app.command("generate")
def generate_cmd(
    service: Annotated[str, typer.Argument(help="A service of vigil.yaml.")],
    config: ConfigOption = None,
    db: Annotated[
        Path | None,
        typer.Option(help="The store with the service's incidents (default $VIGIL_DB)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the runbook here (default: standard output).")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Render the facts without a model.")
    ] = False,
) -> None:
    """Write a runbook for SERVICE from its configuration and its incident history.

    Written by the model when ANTHROPIC_API_KEY is set (and checked against the facts),
    rendered by code otherwise."""
    from agent.config import find_config, load_config

    try:
        cfg = load_config(find_config(config))
        svc = cfg.service(service)
        facts = gather_facts(service, svc, _open_history(db, service))
        client, why = model_client(offline=offline)
        made = generate_runbook(facts, svc.policy(), client=client, offline_reason=why)
    except VigilError as exc:
        raise _fail(exc) from None
    if out is not None:
        out.write_text(made.text, encoding="utf-8")
    else:
        print(made.text, end="")
    how = "written by the model" if made.mode == "llm" else f"plain ({made.fallback_reason})"
    where = f" to {out}" if out is not None else ""
    _err.print(
        f"runbook {made.runbook.name}{escape(where)}: {len(facts.incidents)} incident(s), "
        f"{len(made.runbook.diagnostic_steps)} steps; {escape(how)}",
        highlight=False,
        soft_wrap=True,
    )


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += sorted(path.glob("*.md")) if path.is_dir() else [path]
    return found


@runbook_app.command("validate")
def validate_cmd(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Runbook files or folders (default: the runbooks folder)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="vigil.yaml: check a service's runbook against its guard policy."),
    ] = None,
) -> None:
    """Check runbooks: format, fields, tool arguments, and that none claims more authority
    than the policy guard allows. Every problem names the file, line and field."""
    from agent.config import load_config

    try:
        cfg = None if config is None else load_config(config)
    except VigilError as exc:
        raise _fail(exc) from None
    folders = {p.resolve() for p in paths or [DEFAULT_DIR] if p.is_dir()}
    failed = 0
    names: dict[str, Path] = {}
    files = _files(paths or [DEFAULT_DIR])
    if not files:
        raise _fail(VigilError("no runbooks found (*.md)"))
    for path in files:
        try:
            book = parse_runbook(path)
            if book.service is not None and cfg is not None:
                book = parse_runbook(path, policy=cfg.service(book.service).policy())
            if path.parent.resolve() in folders and book.name != path.stem:
                raise RunbookError(path, f"name {book.name!r} must be the file's name", line=2)
            if book.name in names:
                raise RunbookError(path, f"name {book.name!r} is also used by {names[book.name]}")
            names[book.name] = path
        except VigilError as exc:
            failed += 1
            _err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            continue
        _out.print(
            f"ok  {escape(str(path))}: {book.name} ({len(book.diagnostic_steps)} steps, "
            f"{len(book.remediation)} options)",
            highlight=False,
            soft_wrap=True,
        )
    if failed:
        raise typer.Exit(code=2)


@runbook_app.command("list")
def list_cmd(
    folder: Annotated[
        Path, typer.Option("--dir", help="The runbooks folder (default: the bundled one).")
    ] = DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """List the runbooks: the alerts and signal kinds each answers, and its steps."""
    try:
        library = RunbookLibrary.load(folder)
    except VigilError as exc:
        raise _fail(exc) from None
    books = list(library.runbooks.values())
    if as_json:
        rows = [
            {
                "name": b.name,
                "title": b.title,
                "service": b.service,
                "alerts": list(b.alerts),
                "signals": [k.value for k in b.signals],
                "allows_pause": b.allows_pause,
                "steps": [s.id for s in b.diagnostic_steps],
                "remediation": [f"{r.id}: {r.action}" for r in b.remediation],
            }
            for b in books
        ]
        print(json.dumps(rows, indent=2))
        return
    table = Table("name", "title", "alerts", "signals", "pause", "steps")
    for b in books:
        table.add_row(
            b.name + (f" ({b.service})" if b.service else ""),
            b.title,
            ", ".join(b.alerts) or "—",
            ", ".join(k.value for k in b.signals) or "—",
            "yes" if b.allows_pause else "no",
            str(len(b.diagnostic_steps)),
        )
    _out.print(table)
