"""The incident timeline, built from a real offline triage stored in a real sqlite store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.audit import AuditEvent
from agent.backends.bundle import deploy_info
from agent.bundle.reader import read_bundle
from agent.store import Store
from agent.timeline import (
    IncidentNotFound,
    Timeline,
    TimelineEvent,
    build_timeline,
    deploy_events,
    human_duration,
    iso,
    load_timeline,
    seconds_between,
    tier_marks,
)
from agent.triage import triage
from tools.bundle import bundle_context

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"


def _record(store: Store, name: str, **kw: Any) -> tuple[str, Any]:
    """Triage the bundle offline, as `vigil triage` does, and store the incident."""
    bundle = read_bundle(SUITE / name)
    ctx = bundle_context(bundle)
    result = triage(ctx, **kw)
    store.save_incident(result.model_dump(mode="json"), ctx.audit.events)
    return result.incident_id, bundle


def _store_deploy(store: Store, bundle: Any, *, source: str = "argo") -> None:
    """The deploy row exactly as the server's intake writes it."""
    d = deploy_info(bundle)
    assert d.finished_at is not None
    store.db.execute(
        "INSERT INTO deploys (id, service, environment, version, previous_version, strategy,"
        " commit_sha, source, status, started_at, finished_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'succeeded', ?, ?, ?)",
        [
            d.id,
            d.service,
            d.environment,
            d.version,
            d.previous_version,
            d.strategy,
            "fc68765",
            source,
            d.started_at.timestamp(),
            d.finished_at.timestamp(),
            d.finished_at.timestamp(),
        ],
    )
    store.db.conn.commit()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "vigil.db")


def _in_order(tl: Timeline) -> None:
    times = [e.at for e in tl.events]
    assert times == sorted(times)
    seqs = [int(e.ref.split("#")[1]) for e in tl.events if e.ref.startswith("audit#")]
    assert seqs == sorted(seqs), "events of one moment keep their recorded order"


def test_an_error_step_rolled_back_at_once_loses_its_time_in_detection(store: Store) -> None:
    incident_id, bundle = _record(store, "error_step-0001")
    tl = load_timeline(store, incident_id, deploy_events(deploy_info(bundle)))
    _in_order(tl)
    assert [(e.kind, e.ref) for e in tl.events[:4]] == [
        ("deploy_started", "deploy:deploy-6704"),
        ("deploy_finished", "deploy:deploy-6704"),
        ("alert_fired", "audit#1"),
        ("note", "audit#1"),
    ]
    assert iso(tl.events[0].at) == "2026-05-13T14:41:00.000Z"
    assert iso(tl.events[2].at) == "2026-05-13T14:45:43.696Z"
    kinds = [(e.kind, e.tool or e.action, e.status) for e in tl.events[4:]]
    assert kinds[:5] == [
        ("tool_call", "list_deploys", "ok"),
        ("tool_call", "judge_deploy", "ok"),
        ("tool_call", "read_logs", "ok"),
        ("tool_call", "fetch_diff", "ok"),
        ("tool_call", "get_runbook", "ok"),
    ]
    # Then the runbook's read-only steps, then the rollback.
    assert all(k[0] == "tool_call" and k[2] == "ok" for k in kinds[5:-3])
    assert kinds[-3:] == [
        ("guard", "rollback", "allowed"),
        ("action", "rollback", "executed"),
        ("tool_call", "rollback", "ok"),
    ]
    rollback = next(e for e in tl.events if e.kind == "action")
    assert rollback.actor == "planner" and rollback.ref.startswith("audit#")
    assert "rolled reviews back from v5.6.0 to v5.5.6" in rollback.what

    detection, diagnosis, action, recovery = tl.phases
    # Deploy 14:41:00.000 -> alert 14:45:43.696, exactly.
    assert (detection.state, detection.seconds) == ("measured", 283.696)
    assert (detection.start_ref, detection.end_ref) == ("deploy:deploy-6704", "audit#1")
    # Alertmanager's 30 s group wait, then the planner's judge_deploy.
    assert (diagnosis.seconds, diagnosis.end_ref) == (30.0, "audit#3")
    assert (action.seconds, action.start_ref, action.end_ref) == (0.0, "audit#3", rollback.ref)
    assert recovery.state == "open" and recovery.seconds is None and recovery.end is None
    assert recovery.start_ref == rollback.ref


def test_a_followed_deploy_acts_minutes_after_the_alert(store: Store) -> None:
    incident_id, bundle = _record(store, "memory_leak-0013", follow_s=1800)
    tl = load_timeline(store, incident_id, deploy_events(deploy_info(bundle)))
    _in_order(tl)
    follow = next(e for e in tl.events if e.kind == "following")
    assert follow.tier == 2 and follow.actor == "vigil"
    pause = next(e for e in tl.events if e.kind == "action" and e.action == "pause_rollout")
    notify = next(e for e in tl.events if e.kind == "action" and e.action == "notify")
    assert (pause.status, pause.actor) == ("executed", "vigil")
    assert notify.at < follow.at <= pause.at
    # The alert fired 14:03:27.920 (3 min 42.92 s after the deploy started, before it finished).
    assert [e.kind for e in tl.events[:3]] == ["deploy_started", "alert_fired", "deploy_finished"]
    detection, diagnosis, action, recovery = tl.phases
    assert detection.seconds == 222.92
    assert diagnosis.seconds == 30.0 and diagnosis.end_ref == "audit#3"
    # A notification is not a response: the action phase ends at the pause, 5 min later.
    assert action.seconds == 300.0
    assert (action.start_ref, action.end_ref) == ("audit#3", pause.ref)
    assert human_duration(action.seconds) == "5 min"
    assert recovery.state == "open"
    assert seconds_between(tl.events[1].at, pause.at) == 330.0


def test_the_timeline_as_json_and_markdown(store: Store) -> None:
    incident_id, bundle = _record(store, "error_step-0001")
    tl = load_timeline(store, incident_id, deploy_events(deploy_info(bundle)))
    data = json.loads(json.dumps(tl.to_json()))
    assert data["incident_id"] == incident_id and data["deploy_id"] == "deploy-6704"
    assert len(data["events"]) == len(tl.events)
    assert data["events"][2]["time"] == "2026-05-13T14:45:43.696Z"
    assert data["events"][2]["kind"] == "alert_fired"
    detection = data["phases"][0]
    assert detection["seconds"] == 283.696 and detection["duration"] == "4 min 43.696 s"
    assert data["phases"][3]["state"] == "open" and data["phases"][3]["duration"] is None

    md = tl.to_markdown()
    rows = [line for line in md.splitlines() if line.startswith("| 2026-")]
    assert len(rows) == len(tl.events)
    assert rows[2].startswith("| 2026-05-13T14:45:43.696Z | +4 min 43.696 s | alert_fired |")
    assert rows[2].endswith("| audit#1 |")
    assert "### Where time was lost" in md
    assert (
        "| detection | 2026-05-13T14:41:00.000Z | 2026-05-13T14:45:43.696Z | 4 min 43.696 s "
        "| deploy started → alert fired (deploy:deploy-6704 → audit#1) |"
    ) in md
    assert "| recovery | 2026-05-13T14:46:13.696Z | — | open |" in md


def test_what_the_server_stored_completes_the_timeline(store: Store) -> None:
    """Deploy rows, watch-session tier marks, health checks and alert resolution."""
    incident_id, bundle = _record(store, "error_step-0001")
    _store_deploy(store, bundle)
    start = deploy_info(bundle).started_at.timestamp()
    conn = store.db.conn
    with conn:
        conn.execute(
            "INSERT INTO watch_sessions (deploy_id, service, opened_at, baseline_from,"
            " watch_until, state, tier, max_tier, first_tier_at)"
            " VALUES ('deploy-6704', 'reviews', ?, ?, ?, 'rolled_back', 3, 3, ?)",
            [start, start - 3600, start + 1800, json.dumps({"1": start + 150, "2": start + 195})],
        )
        for at, tier in ((start + 150, 1), (start + 195, 2), (start + 400, 1), (start + 520, 0)):
            conn.execute(
                "INSERT INTO health_checks (deploy_id, at, tier, status, deploy_caused, reasons)"
                " VALUES ('deploy-6704', ?, ?, 'judged', 1, '[]')",
                [at, tier],
            )
        conn.execute(
            "INSERT INTO alerts (fingerprint, starts_at, status, alertname, service, severity,"
            " labels, annotations, ends_at, received_at, updated_at, incident_id) VALUES"
            " ('f1', '2026-05-13T14:45:43.696Z', 'resolved', 'HighErrorRate', 'reviews',"
            " 'critical', '{}', '{}', '2026-05-13T14:49:10Z', 0, 0, ?)",
            [incident_id],
        )
    tl = load_timeline(store, incident_id, deploy_events(deploy_info(bundle)))
    _in_order(tl)
    # The deploy from the store and from the caller is one deploy; the alert is one alert.
    assert sum(e.kind == "deploy_started" for e in tl.events) == 1
    assert sum(e.kind == "alert_fired" for e in tl.events) == 1
    assert next(e for e in tl.events if e.kind == "deploy_started").actor == "argo"
    marks = [(e.tier, e.at - start) for e in tl.events if e.kind == "tier_reached"]
    assert marks == [(1, 150.0), (2, 195.0)]
    healthy = next(e for e in tl.events if e.kind == "healthy")
    assert healthy.at == start + 520 and healthy.ref.startswith("health:deploy-6704@")
    resolved = next(e for e in tl.events if e.kind == "alert_resolved")
    assert iso(resolved.at) == "2026-05-13T14:49:10.000Z" and resolved.ref == "alert:f1"
    detection, _diagnosis, _action, recovery = tl.phases
    # The judge's tier 2 came before the alert: detection ends there.
    assert (detection.seconds, detection.end_ref) == (195.0, "watch:deploy-6704")
    # Rollback at 14:46:13.696, the alert resolved at 14:49:10 (before the tier-0 check).
    assert (recovery.state, recovery.seconds, recovery.end_ref) == ("measured", 176.304, "alert:f1")


def _event(seq: int, at: float, kind: str, actor: str, summary: str, **data: Any) -> AuditEvent:
    return AuditEvent(seq=seq, at=at, kind=kind, actor=actor, summary=summary, data=data)


def test_human_decisions_and_blocked_actions_are_marked() -> None:
    incident = {"incident_id": "inc-1", "service": "reviews", "deploy_id": "deploy-1"}
    t0 = 1_700_000_000.0
    alert = {"alertname": "HighLatency", "service": "reviews", "started_at": t0 - 60}
    events = [
        _event(1, t0, "note", "vigil", "triage", incident=alert),
        _event(2, t0, "tool_call", "agent", "judge_deploy -> ok", tool="judge_deploy", ok=True),
        _event(
            3,
            t0 + 1,
            "guard",
            "agent",
            "blocked by policy: severity p1: a human decides",
            action="rollback",
            allowed=False,
            escalate=True,
        ),
        _event(4, t0 + 2, "action", "agent", "paged", action="escalate", status="executed"),
        _event(5, t0 + 95.5, "note", "slack:U042ALICE", "approved the rollback"),
        _event(
            6, t0 + 97, "action", "human:alice", "rolled back", action="rollback", status="executed"
        ),
    ]
    tl = build_timeline(incident, events)
    kinds = [(e.kind, e.actor) for e in tl.events]
    assert kinds[0] == ("alert_fired", "alertmanager")
    assert ("human", "slack:U042ALICE") in kinds and ("action", "human:alice") in kinds
    guard = next(e for e in tl.events if e.kind == "guard")
    assert guard.status == "blocked" and "(a human must decide)" in guard.what
    human = next(e for e in tl.events if e.kind == "human")
    assert human.what == "human decision: approved the rollback" and human.ref == "audit#5"
    detection, diagnosis, action, _recovery = tl.phases
    assert detection.state == "unknown" and detection.what == "no deploy start recorded"
    assert diagnosis.seconds == 60.0
    assert (action.seconds, action.end_ref) == (2.0, "audit#4")  # the escalation


def test_an_alert_older_than_the_deploy_is_not_detection() -> None:
    t0 = 1_700_000_000.0
    incident = {"incident_id": "inc-2", "service": "api", "deploy_id": "d-9"}
    events = [_event(1, t0, "note", "vigil", "triage", incident={"started_at": t0 - 600})]
    started = TimelineEvent(
        at=t0 - 300, kind="deploy_started", actor="ci", what="d-9", ref="deploy:d-9"
    )
    tl = build_timeline(incident, events, [*tier_marks("d-9", {"2": t0 - 100}), started])
    detection = tl.phase("detection")
    assert detection.state == "unknown" and detection.seconds is None
    assert "came before deploy started" in detection.what
    # The judge's tier 2 is a conclusion too.
    diagnosis = tl.phase("diagnosis")
    assert (diagnosis.seconds, diagnosis.end_ref) == (500.0, "watch:d-9")


def test_a_deploy_watch_incident_is_measured_from_the_watch_records(store: Store) -> None:
    """The server's watch acts without an alert: the judge's marks drive every phase."""
    t0 = 1_700_000_000.0
    doc = {"incident_id": "watch-deploy-77", "service": "auth", "deploy_id": "deploy-77",
           "mode": "watch", "tier": 3, "deploy_caused": True}  # fmt: skip
    store.save_incident(
        doc,
        [
            _event(1, t0, "guard", "vigil", "allowed", action="rollback", allowed=True),
            _event(2, t0, "action", "vigil", "rolled back", action="rollback", status="executed"),
        ],
    )
    with store.db.conn as c:
        c.execute(
            "INSERT INTO deploys (id, service, version, source, status, started_at, updated_at)"
            " VALUES ('deploy-77', 'auth', 'v2', 'github', 'started', ?, ?)",
            [t0 - 300, t0],
        )
        c.execute(
            "INSERT INTO watch_sessions (deploy_id, service, opened_at, baseline_from,"
            " watch_until, state, first_tier_at) VALUES ('deploy-77', 'auth', ?, ?, ?,"
            " 'rolled_back', ?)",
            [t0 - 300, t0 - 900, t0 + 900, json.dumps({"1": t0 - 60, "2": t0 - 30, "3": t0})],
        )
        c.execute(
            "INSERT INTO health_checks (deploy_id, at, tier, status, deploy_caused, reasons)"
            " VALUES ('deploy-77', ?, 0, 'judged', 1, '[]')",
            [t0 + 240],
        )
        c.execute(
            "INSERT INTO deploy_events (dedup, deploy_id, kind, source, at, received_at)"
            " VALUES ('e1', 'deploy-77', 'rolled_back', 'argo', ?, ?)",
            [t0 + 20, t0 + 20],
        )
    tl = load_timeline(store, "watch-deploy-77")
    _in_order(tl)
    assert [e.kind for e in tl.events] == [
        "deploy_started",
        "tier_reached",
        "tier_reached",
        "tier_reached",
        "guard",
        "action",
        "deploy_event",
        "healthy",
    ]
    assert [p.seconds for p in tl.phases] == [270.0, 0.0, 30.0, 240.0]
    assert tl.phase("recovery").end_ref == "health:deploy-77@2023-11-14T22:17:20.000Z"


def test_an_unknown_incident_is_a_clear_error(store: Store) -> None:
    with pytest.raises(IncidentNotFound, match="no incident 'inc-nope'"):
        load_timeline(store, "inc-nope")


def test_durations_are_exact_to_the_millisecond() -> None:
    assert seconds_between(1778683260.0, 1778683543.696) == 283.696
    assert seconds_between(0.1, 0.3) == 0.2
    assert iso(1778683543.6959999) == "2026-05-13T14:45:43.696Z"
    assert human_duration(3725.5) == "1 h 2 min 5.5 s"
    assert human_duration(3600) == "1 h" and human_duration(0) == "0 s"
