"""`vigil demo`: the whole story offline, in one process, no keys.

A service is deployed twice — a good release, then a bad one. Vigil's server (the same app,
intake, workers and watch loop `vigil serve` runs) hears each deploy, watches it step by step
on a simulated clock with the recorded metrics of the committed example suite, keeps the good
release, rolls the bad one back the step the judge reaches tier 3, triages the alert that
fires, and writes the investigation and the watch timeline.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from agent.bundle.model import Bundle
from agent.bundle.reader import read_bundle
from agent.bundle.series import Series, SignalData
from agent.errors import VigilError
from agent.judge.verdict import TIER_NAMES

GOOD, BAD = "healthy_steady-0000", "error_step-0001"


@dataclass
class Row:
    deploy_id: str
    version: str
    started: float
    elapsed: float = 0.0
    tier: int = 0
    state: str = "pending"
    note: str = ""


def _releases(suite: Path) -> tuple[Bundle, Bundle]:
    """The good and the bad release, as two deploys of one service (`reviews`)."""
    try:
        good, bad = read_bundle(suite / GOOD), read_bundle(suite / BAD)
    except VigilError as exc:
        raise VigilError(f"{exc} (the demo needs the example suite: {suite})") from None
    m = good.manifest
    # The good release ends 15 minutes before the bad one starts (whole steps, so the
    # samples stay on their grid).
    step = m.step_seconds
    gap = m.watch_until.timestamp() - (bad.manifest.deploy.started_at.timestamp() - 900)
    shift = -step * round(gap / step)
    moved = timedelta(seconds=shift)
    deploy = m.deploy.model_copy(
        update={
            "id": "deploy-good",
            "version": "v5.5.6",
            "previous_version": "v5.5.5",
            "started_at": m.deploy.started_at + moved,
            "finished_at": None if m.deploy.finished_at is None else m.deploy.finished_at + moved,
        }
    )
    manifest = m.model_copy(
        update={
            "service": bad.manifest.service,
            "deploy": deploy,
            "watch_until": m.watch_until + moved,
        }
    )
    signals = SignalData(
        {
            name: {c: Series(series.t + shift, series.v) for c, series in cohorts.items()}
            for name, cohorts in good.signals.items()
        }
    )
    logs = None
    if good.logs is not None:
        logs = tuple(line.model_copy(update={"ts": line.ts + moved}) for line in good.logs)
    return replace(good, manifest=manifest, signals=signals, logs=logs, alert=None), bad


def _table(rows: list[Row], clock: float) -> Table:
    t = Table(title=f"vigil watching · {datetime.fromtimestamp(clock, tz=UTC):%H:%M:%S} UTC")
    for col in ("deploy", "version", "since start", "judge", "session", "last note"):
        t.add_column(col)
    colours = {0: "green", 1: "yellow", 2: "dark_orange", 3: "red"}
    for r in rows:
        t.add_row(
            r.deploy_id,
            r.version,
            f"{r.elapsed:5.0f} s" if r.state != "pending" else "",
            f"[{colours[r.tier]}]{r.tier} {TIER_NAMES[r.tier]}[/]",
            r.state,
            r.note[:70],
        )
    return t


def run_watch_demo(
    console: Console, suite: Path, out: Path | None = None, *, delay_s: float = 0.01
) -> int:
    from agent.server.app import create_app
    from agent.server.intake import Intake
    from agent.server.metrics import ServerMetrics
    from agent.server.replay import BundleBackends
    from agent.server.runtime import Runtime
    from agent.triage import TriageResult
    from agent.triage_md import to_markdown

    good, bad = _releases(suite)
    out = out or Path("vigil-demo")
    out.mkdir(parents=True, exist_ok=True)
    db = out / "vigil.db"
    if db.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    clock = [good.manifest.deploy.started_at.timestamp()]
    intake = Intake(db)
    metrics = ServerMetrics(queue_depth=intake.depth, intake=intake)
    backends = BundleBackends([good, bad])
    runtime = Runtime(intake, backends, clock=lambda: clock[0])
    app = create_app(intake, metrics, clock=lambda: clock[0])

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as client:
            r = await client.post(path, json=body)
            r.raise_for_status()
            result: dict[str, Any] = r.json()
            return result

    rows = [
        Row(
            b.manifest.deploy.id,
            b.manifest.deploy.version,
            b.manifest.deploy.started_at.timestamp(),
        )
        for b in (good, bad)
    ]
    alert = bad.alert or {}
    alert_at = min(
        datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00")).timestamp()
        for a in alert.get("alerts", [])
    )
    alert_sent = False
    started = time.perf_counter()
    with Live(_table(rows, clock[0]), console=console, refresh_per_second=12) as live:
        for bundle, row in zip((good, bad), rows, strict=True):
            m = bundle.manifest
            start, end, step = (
                m.deploy.started_at.timestamp(),
                m.watch_until.timestamp(),
                m.step_seconds,
            )
            clock[0] = start
            event = {
                "kind": "started",
                "service": m.service,
                "environment": m.environment,
                "deploy_id": m.deploy.id,
                "version": m.deploy.version,
                "previous_version": m.deploy.previous_version,
                "strategy": m.deploy.strategy.value,
                "started_at": m.deploy.started_at.isoformat(),
            }
            asyncio.run(post("/webhooks/deploy", event))
            runtime.work_once()
            row.state = "watching"
            t = start
            while t <= end + step:
                clock[0] = t
                if bundle is bad and not alert_sent and t >= alert_at + 30:
                    asyncio.run(post("/webhooks/alertmanager", alert))
                    alert_sent = True
                    row.note = f"alert {alert['commonLabels'].get('alertname')} received"
                while runtime.work_once():
                    pass
                runtime.watch_once()
                session = (
                    intake._conn()
                    .execute(
                        "SELECT tier, state, reason FROM watch_sessions WHERE deploy_id = ?",
                        (m.deploy.id,),
                    )
                    .fetchone()
                )
                row.elapsed, row.tier, row.state = t - start, int(session[0]), str(session[1])
                if session[2] and row.state != "watching" and not alert_sent:
                    row.note = str(session[2])
                live.update(_table(rows, t))
                time.sleep(delay_s)
                if row.state in ("rolled_back", "completed") and (bundle is good or alert_sent):
                    break
                t += step
    took = time.perf_counter() - started

    conn = intake._conn()
    sessions = {r["deploy_id"]: dict(r) for r in conn.execute("SELECT * FROM watch_sessions")}
    actions = [dict(r) for r in conn.execute("SELECT * FROM watch_actions ORDER BY at, seq")]
    incident_row = conn.execute(
        "SELECT result FROM incidents WHERE mode != 'watch' ORDER BY created_at LIMIT 1"
    ).fetchone()
    investigation = (
        TriageResult.model_validate(json.loads(incident_row[0])) if incident_row else None
    )
    if investigation is not None:
        (out / "investigation.md").write_text(to_markdown(investigation))
    timeline = _timeline(conn, sessions, actions, alert_at if alert_sent else None)
    (out / "timeline.md").write_text(timeline)

    g, b = sessions["deploy-good"], sessions[bad.manifest.deploy.id]
    first3 = json.loads(b["first_tier_at"]).get("3")
    rollback = next((a for a in actions if a["action"] == "rollback"), None)
    lines = [
        f"[bold]{good.manifest.service}[/]: two deploys watched in {took:.1f} s of wall time.",
        f"• {g['deploy_id']} {rows[0].version}: [green]{g['state']}[/] — the judge's highest tier "
        f"was {g['max_tier']} ({TIER_NAMES[int(g['max_tier'])]}); Vigil kept it.",
    ]
    if first3 is not None and rollback is not None:
        since = float(first3) - bad.manifest.deploy.started_at.timestamp()
        lines.append(
            f"• {b['deploy_id']} {rows[1].version}: [red]{b['state']}[/] — the judge reached "
            f"tier 3 {since:.0f} s after the deploy started and Vigil rolled it back in that "
            f"same step ({rollback['status']}, through the policy guard)."
        )
        lines.append(f"  why: {b['reason']}")
    if investigation is not None:
        lines.append(
            f"• The alert was triaged ({investigation.mode}): deploy-caused "
            f"{investigation.deploy_caused}, most likely change "
            f"{investigation.suspect_files[0] if investigation.suspect_files else 'unknown'}."
        )
    lines.append(f"• Written: {out / 'investigation.md'}, {out / 'timeline.md'}, {db}")
    console.print(Panel(Group(*lines), title="what happened and why", expand=False))
    ok = g["state"] == "completed" and b["state"] == "rolled_back"
    return 0 if ok else 1


def _timeline(
    conn: Any,
    sessions: dict[str, dict[str, Any]],
    actions: list[dict[str, Any]],
    alert_at: float | None,
) -> str:
    events: list[tuple[float, str]] = []
    for s in sessions.values():
        d = conn.execute("SELECT * FROM deploys WHERE id = ?", (s["deploy_id"],)).fetchone()
        events.append((float(d["started_at"]), f"deploy {d['id']} of {d['version']} started"))
        for tier, at in sorted(json.loads(s["first_tier_at"]).items()):
            events.append(
                (float(at), f"{d['id']}: judge first reached tier {tier} ({TIER_NAMES[int(tier)]})")
            )
        if s["closed_at"]:
            events.append((float(s["closed_at"]), f"{d['id']}: watch ended, {s['state']}"))
    for a in actions:
        events.append(
            (float(a["at"]), f"{a['deploy_id']}: {a['action']} {a['status']} by {a['actor']}")
        )
    if alert_at is not None:
        events.append((alert_at, "alert fired"))
    lines = ["# Timeline", "", "| time (UTC) | event |", "|---|---|"]
    for at, what in sorted(events):
        lines.append(f"| {datetime.fromtimestamp(at, tz=UTC):%Y-%m-%d %H:%M:%S} | {what} |")
    return "\n".join(lines) + "\n"
