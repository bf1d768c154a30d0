"""The sqlite store: migrations, incidents with their audit trail, atomic saves."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.audit import AuditEvent
from agent.store import MIGRATIONS, Store


def _result(incident_id: str = "inc-1", service: str = "checkout", **extra: object) -> dict:
    return {
        "incident_id": incident_id,
        "service": service,
        "environment": "prod",
        "alertname": "HighErrorRate",
        "severity": "p3",
        "deploy_id": "d-1",
        "mode": "offline",
        "tier": 3,
        "deploy_caused": True,
        "confidence": 0.97,
        "escalated": False,
        "summary": "it was the deploy",
        **extra,
    }


def _events(n: int) -> list[AuditEvent]:
    return [
        AuditEvent(seq=i, at=100.0 + i, kind="tool_call", actor="planner", summary=f"call {i}")
        for i in range(1, n + 1)
    ]


def test_a_new_database_gets_every_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "state" / "vigil.db"
    store = Store(path)
    names = [r["name"] for r in store.db.table("migrations").rows]
    assert names == [m.__name__.lstrip("_") for m in MIGRATIONS]
    assert Store(path).migrate() == []  # reopening applies nothing
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_incident_and_its_audit_trail_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.db")
    events = [
        *_events(2),
        AuditEvent(
            seq=3, at=103.0, kind="guard", actor="planner", summary="allowed", data={"n": [1, 2]}
        ),
    ]
    store.save_incident(_result(extra_key={"nested": 1}), events)
    again = Store(tmp_path / "v.db")  # a fresh connection sees the committed data
    got = again.incident("inc-1")
    assert got is not None
    assert got["tier"] == 3 and got["extra_key"] == {"nested": 1}
    assert again.audit("inc-1") == events
    row = next(again.db.table("incidents").rows)
    assert (row["deploy_caused"], row["escalated"], row["service"]) == (1, 0, "checkout")


def test_saving_again_replaces_the_trail_without_duplicates(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.db")
    store.save_incident(_result(), _events(5))
    store.save_incident(_result(summary="updated"), _events(2))
    assert [e.seq for e in store.audit("inc-1")] == [1, 2]
    assert store.db.table("incidents").count == 1
    assert store.incident("inc-1")["summary"] == "updated"  # type: ignore[index]


def test_a_failed_save_leaves_nothing_behind(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.db")
    duplicate_seq = [*_events(2), _events(1)[0]]
    with pytest.raises(sqlite3.IntegrityError):
        store.save_incident(_result(), duplicate_seq)
    assert store.incident("inc-1") is None
    assert store.audit("inc-1") == []


def test_incidents_are_listed_newest_first_and_by_service(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.db")
    store.save_incident(_result("a", "checkout"), [])
    store.save_incident(_result("b", "search"), [])
    store.save_incident(_result("c", "checkout"), [])
    assert [r["id"] for r in store.incidents()] == ["c", "b", "a"]
    assert [r["id"] for r in store.incidents("checkout")] == ["c", "a"]
    assert store.incident("missing") is None


def test_unknown_deploy_caused_is_stored_as_null(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.db")
    store.save_incident(_result(deploy_caused=None), [])
    row = next(store.db.table("incidents").rows)
    assert row["deploy_caused"] is None
