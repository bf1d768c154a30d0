"""The server's workers: triage queued alerts, open watch sessions for deploys, and judge every
watched deploy each step, acting through the guard (tier 1 notify, 2 pause and ask a human,
3 roll back and notify)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from agent.alerts import AlertmanagerPayload, incident_from_alert
from agent.audit import AuditLog
from agent.backends.base import DeployInfo, SourceUnavailable
from agent.incident import Incident
from agent.judge.verdict import TIER_NAMES, Verdict
from agent.server.intake import Intake, Job
from agent.store import Store

if TYPE_CHECKING:
    from agent.links import ChangeLinks
    from agent.llm import AgentLoop
    from tools.context import ToolContext

log = logging.getLogger("vigil.server")
Clock = Callable[[], float]


@dataclass(frozen=True)
class Window:
    baseline_s: float
    watch_s: float
    step_s: float


class Backends(Protocol):
    """Where a service's evidence comes from and where its actions go."""

    def services(self) -> list[str]: ...

    def window(self, service: str) -> Window: ...

    def judge(self, deploy: DeployInfo, now: float) -> Verdict: ...

    def context(
        self, incident: Incident, deploys: list[DeployInfo], now: float, audit: AuditLog
    ) -> ToolContext: ...

    def change_links(self, deploy: DeployInfo, files: list[str]) -> ChangeLinks:
        """Where a human reads the deploy's change (for messages), if anywhere."""
        ...


def deploy_info(row: dict[str, Any]) -> DeployInfo:
    return DeployInfo(
        id=row["id"],
        service=row["service"],
        environment=row.get("environment"),
        version=row["version"],
        previous_version=row.get("previous_version"),
        started_at=datetime.fromtimestamp(row["started_at"], tz=UTC),
        finished_at=None
        if row.get("finished_at") is None
        else datetime.fromtimestamp(row["finished_at"], tz=UTC),
        strategy=row.get("strategy"),
    )


class Runtime:
    """Jobs and watch sessions over one sqlite file. `work_once` and `watch_once` are the
    units the threads loop over (and what tests and the demo drive step by step)."""

    def __init__(
        self,
        intake: Intake,
        backends: Backends,
        *,
        clock: Clock = time.time,
        loop_factory: Callable[[], tuple[AgentLoop | None, str]] | None = None,
        group_window_s: float = 2 * 3600,
    ) -> None:
        self.intake = intake
        self.backends = backends
        self.clock = clock
        self.loop_factory = loop_factory or (lambda: (None, "no model configured"))
        self.group_window_s = group_window_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._local = threading.local()

    def _store(self) -> Store:
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store(self.intake.path)
        return store

    # ------------------------------------------------------------------ jobs

    def work_once(self, batch: int = 50) -> int:
        """Handle a batch of pending jobs; returns how many (0: the queue was empty)."""
        jobs = self.intake.claim_many(self.clock(), batch)
        if not jobs:
            return 0
        done: list[tuple[int, Any, str | None]] = []
        for job in jobs:
            try:
                done.append((job.id, self._handle(job), None))
            except Exception as exc:  # one bad job must not stop the worker
                log.exception("job %s (%s) failed", job.id, job.kind)
                why = f"{type(exc).__name__}: {exc}"
                if job.attempts < 3 and isinstance(exc, SourceUnavailable):
                    self.intake.retry_later(job.id, why)
                else:
                    done.append((job.id, None, why))
        self.intake.finish_many(done, self.clock())
        return len(jobs)

    def _handle(self, job: Job) -> dict[str, Any]:
        if job.kind == "alert":
            return self._triage(job)
        if job.kind == "deploy":
            return self._deploy(job.payload)
        raise ValueError(f"unknown job kind {job.kind!r}")

    def _deploys(self, service: str, now: float) -> list[DeployInfo]:
        return [deploy_info(r) for r in self.intake.deploys(service, now - 6 * 3600, now)]

    def _triage(self, job: Job) -> dict[str, Any]:
        from agent.triage import triage

        payload = AlertmanagerPayload.model_validate(job.payload["payload"])
        incident = incident_from_alert(payload)
        now = self.clock()
        deploys = self._deploys(incident.service, now)
        deploy_id = deploys[0].id if deploys else None
        open_incident = self._open_incident(incident.service, deploy_id, now)
        if open_incident is not None:
            return {"incident_id": open_incident, "grouped": True}
        began = time.perf_counter()
        audit = AuditLog()
        ctx = self.backends.context(incident, deploys, now, audit)
        loop, why = self.loop_factory()
        result = triage(ctx, loop=loop, offline_reason=why)
        log.info("triaged %s in %.3f s", result.incident_id, time.perf_counter() - began)
        with self.intake.lock:
            self._store().save_incident(
                result.model_dump(mode="json"), audit.events, created_at=now
            )
        return {"incident_id": result.incident_id, "tier": result.tier}

    def _open_incident(self, service: str, deploy_id: str | None, now: float) -> str | None:
        """Alerts of one service and one deploy within the window are one incident."""
        rows = (
            self._store()
            .db.execute(
                "SELECT id, deploy_id FROM incidents WHERE service = ? AND created_at >= ?"
                " AND coalesce(mode, '') != 'watch' ORDER BY created_at DESC",
                [service, now - self.group_window_s],
            )
            .fetchall()
        )
        for incident_id, existing_deploy in rows:
            if existing_deploy == deploy_id:
                return str(incident_id)
        return None

    def _deploy(self, event: dict[str, Any]) -> dict[str, Any]:
        kind, service = event["kind"], event["service"]
        if kind in ("started", "progressing"):
            if service not in self.backends.services():
                return {"watch": "not configured", "service": service}
            w = self.backends.window(service)
            started = float(event["started_at"])
            opened = self.intake.write(
                "INSERT OR IGNORE INTO watch_sessions (deploy_id, service, opened_at,"
                " baseline_from, watch_until, state) VALUES (?, ?, ?, ?, ?, 'watching')",
                (
                    event["deploy_id"],
                    service,
                    self.clock(),
                    started - w.baseline_s,
                    started + w.watch_s,
                ),
            )
            return {"watch": "opened" if opened else "already open"}
        if kind in ("rolled_back", "aborted"):
            self.intake.write(
                "UPDATE watch_sessions SET state = 'rolled_back', closed_at = ?, reason = ?"
                " WHERE deploy_id = ? AND state IN ('watching', 'paused')",
                (self.clock(), f"{kind} by {event['source']}", event["deploy_id"]),
            )
        return {"watch": "updated"}

    # ------------------------------------------------------------------ watch

    def watch_once(self) -> int:
        """Judge every watched deploy that is due; returns how many were judged."""
        now = self.clock()
        conn = self.intake._conn()
        rows = conn.execute(
            "SELECT s.*, d.version, d.previous_version, d.environment, d.started_at,"
            " d.finished_at, d.strategy FROM watch_sessions s JOIN deploys d"
            " ON d.id = s.deploy_id WHERE s.state IN ('watching', 'paused')"
        ).fetchall()
        judged = 0
        for row in rows:
            session = dict(row)
            w = self.backends.window(session["service"])
            last = session["last_checked_at"]
            if last is not None and now - last < w.step_s and now < session["watch_until"]:
                continue
            self._check(session, min(now, session["watch_until"]))
            judged += 1
        return judged

    def _check(self, session: dict[str, Any], now: float) -> None:
        deploy = deploy_info({**session, "id": session["deploy_id"]})
        began = time.perf_counter()
        try:
            verdict = self.backends.judge(deploy, now)
        except SourceUnavailable as exc:
            self.intake.write(
                "INSERT OR REPLACE INTO health_checks (deploy_id, at, tier, status,"
                " deploy_caused, reasons) VALUES (?, ?, 0, 'unavailable', NULL, ?)",
                (deploy.id, now, json.dumps([str(exc)])),
            )
            self.intake.write(
                "UPDATE watch_sessions SET last_checked_at = ? WHERE deploy_id = ?",
                (now, deploy.id),
            )
            return
        judge_ms = 1000 * (time.perf_counter() - began)
        errors = next(
            (f.current for f in verdict.findings if f.kind == "errors" and f.current is not None),
            None,
        )
        self.intake.write(
            "INSERT OR REPLACE INTO health_checks (deploy_id, at, tier, status, deploy_caused,"
            " reasons, error_ratio, judge_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                deploy.id,
                now,
                verdict.tier,
                verdict.status,
                None if verdict.deploy_caused is None else int(verdict.deploy_caused),
                json.dumps(list(verdict.reasons)),
                errors,
                judge_ms,
            ),
        )
        first = json.loads(session["first_tier_at"])
        for tier in range(1, verdict.tier + 1):
            first.setdefault(str(tier), now)
        previous = int(session["max_tier"])
        state = session["state"]
        self.intake.write(
            "UPDATE watch_sessions SET tier = ?, max_tier = max(max_tier, ?), first_tier_at = ?,"
            " last_checked_at = ? WHERE deploy_id = ?",
            (verdict.tier, verdict.tier, json.dumps(first), now, deploy.id),
        )
        if verdict.tier > previous:
            state = self._act(session, deploy, verdict, now) or state
        if state in ("watching", "paused") and now >= session["watch_until"]:
            state = "completed" if state == "watching" else "paused"
            self.intake.write(
                "UPDATE watch_sessions SET state = ?, closed_at = ?, reason = ?"
                " WHERE deploy_id = ?",
                (
                    state,
                    now,
                    f"window over at tier {verdict.tier} ({TIER_NAMES[verdict.tier]})",
                    deploy.id,
                ),
            )
            if state == "paused":  # still paused at the end: a human has to decide
                self.intake.write(
                    "UPDATE watch_sessions SET state = 'paused' WHERE deploy_id = ?", (deploy.id,)
                )

    def _act(
        self, session: dict[str, Any], deploy: DeployInfo, verdict: Verdict, now: float
    ) -> str | None:
        """The tier's action through the guard, audited as incident `watch-<deploy>`."""
        from agent.triage import toolbox_for

        incident = Incident(
            id=f"watch-{deploy.id}",
            service=deploy.service,
            environment=deploy.environment,
            severity="warning",
            alertname="DeployWatch",
            summary=f"deploy watch of {deploy.id}: judge tier {verdict.tier}",
            started_at=deploy.started_at.timestamp(),
        )
        audit = AuditLog()
        ctx = self.backends.context(incident, [deploy], now, audit)
        ctx.actor = "vigil"
        toolbox = toolbox_for(ctx)
        reasons = "; ".join(verdict.reasons)[:1500]
        caused = verdict.deploy_caused
        calls: list[tuple[str, dict[str, Any]]] = []
        if verdict.tier == 3 and caused:
            calls = [("rollback", {"deploy_id": deploy.id, "confidence": 0.97, "reason": reasons})]
            calls.append(("notify", {"message": f"rolled back {deploy.id}: {reasons}"}))
        elif verdict.tier >= 2 and caused:
            calls = [
                ("pause_rollout", {"deploy_id": deploy.id, "confidence": 0.85, "reason": reasons}),
                ("notify", {"message": f"paused {deploy.id}; a human must decide: {reasons}"}),
            ]
        elif verdict.tier >= 2 or (verdict.tier == 1 and caused is False):
            calls = [
                (
                    "escalate",
                    {
                        "summary": f"{deploy.id}: not deploy-caused: {reasons}",
                        "severity": "critical",
                    },
                )
            ]
        elif verdict.tier == 1:
            calls = [("notify", {"message": f"warning on {deploy.id}: {reasons}"})]
        state = None
        conn = self.intake._conn()
        seq = conn.execute(
            "SELECT coalesce(max(seq), 0) FROM watch_actions WHERE deploy_id = ?", (deploy.id,)
        ).fetchone()[0]
        for name, args in calls:
            result = toolbox.call(name, args)
            data = json.loads(result.content) if result.ok else {}
            status = str(data.get("status", "failed" if not result.ok else "executed"))
            if status in ("sent", "no_op"):
                status = "executed"
            seq += 1
            self.intake.write(
                "INSERT INTO watch_actions (deploy_id, seq, at, action, status, actor, detail)"
                " VALUES (?, ?, ?, ?, ?, 'vigil', ?)",
                (deploy.id, seq, now, name, status, result.content[:2000]),
            )
            if name == "rollback" and status == "executed":
                state = "rolled_back"
            elif name == "pause_rollout" and status == "executed" and state is None:
                state = "paused"
        if state is not None:
            self.intake.write(
                "UPDATE watch_sessions SET state = ?, reason = ?"
                + (", closed_at = ?" if state == "rolled_back" else "")
                + " WHERE deploy_id = ?",
                (state, reasons[:500], now, deploy.id)
                if state == "rolled_back"
                else (state, reasons[:500], deploy.id),
            )
        result_doc = {
            "incident_id": incident.id,
            "service": deploy.service,
            "environment": deploy.environment,
            "alertname": incident.alertname,
            "severity": incident.severity,
            "deploy_id": deploy.id,
            "mode": "watch",
            "tier": verdict.tier,
            "deploy_caused": verdict.deploy_caused,
            "confidence": 0.97 if verdict.tier == 3 else 0.85 if verdict.tier == 2 else 0.6,
            "escalated": any(n == "escalate" for n, _ in calls),
            "summary": f"judge tier {verdict.tier} at {now:.0f}: {reasons}",
        }
        merged = self._merged_audit(incident.id, audit)
        with self.intake.lock:
            self._store().save_incident(result_doc, merged, created_at=now)
        return state

    def _merged_audit(self, incident_id: str, audit: AuditLog) -> list[Any]:
        """The session's earlier audit events, then this step's (one incident per session)."""
        merged = [*self._store().audit(incident_id), *audit.events]
        return [e.model_copy(update={"seq": i}) for i, e in enumerate(merged, start=1)]

    # ------------------------------------------------------------------ threads

    def start(self, *, workers: int = 1, poll_s: float = 0.05) -> None:
        self.intake.recover()

        def work() -> None:
            while not self._stop.is_set():
                try:
                    busy = self.work_once()
                except Exception:
                    log.exception("worker loop")
                    busy = False
                if not busy:
                    self._stop.wait(poll_s)

        def watch() -> None:
            while not self._stop.is_set():
                try:
                    self.watch_once()
                    self.intake.checkpoint()
                except Exception:
                    log.exception("watch loop")
                self._stop.wait(1.0)

        for i in range(workers):
            self._threads.append(
                threading.Thread(target=work, name=f"vigil-worker-{i}", daemon=True)
            )
        self._threads.append(threading.Thread(target=watch, name="vigil-watch", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
