"""Typed tools: derived schemas (snapshot), error results, truncation, guarded actions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agent.bundle.reader import read_bundle
from agent.guard import GuardPolicy
from tools import all_tools
from tools.base import Toolbox, ToolFailure, tool
from tools.bundle import bundle_context, incident_for

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"
SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "tool_schemas.json"


def box(name: str, *, later_s: float | None = None, **kw: Any) -> Toolbox:
    bundle = read_bundle(SUITE / name)
    if later_s is not None:
        kw["now"] = incident_for(bundle).started_at + later_s
    return Toolbox(all_tools(), bundle_context(bundle, **kw))


def content(result: Any) -> dict[str, Any]:
    assert result.ok, result.content
    data: dict[str, Any] = json.loads(result.content)
    return data


def test_tool_schemas_match_the_snapshot() -> None:
    definitions = [t.definition() for t in all_tools()]
    text = json.dumps(definitions, indent=2, sort_keys=True) + "\n"
    if os.environ.get("VIGIL_UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert text == SNAPSHOT.read_text(encoding="utf-8"), (
        "tool schemas changed; review and rerun with VIGIL_UPDATE_SNAPSHOTS=1"
    )


def test_every_tool_has_a_description_and_an_object_schema() -> None:
    names = [t.name for t in all_tools()]
    assert len(names) == len(set(names))
    for t in all_tools():
        d = t.definition()
        assert d["description"] and d["input_schema"]["type"] == "object"


def test_unknown_tool_and_bad_arguments_are_error_results() -> None:
    tb = box("error_step-0023")
    r = tb.call("drop_database", {})
    assert not r.ok and "unknown tool" in r.content and "rollback" in r.content
    r = tb.call("query_metrics", {"minutes": -5})
    assert not r.ok and "query: Field required" in r.content and "minutes" in r.content
    r = tb.call("query_metrics", "error_ratio")
    assert not r.ok and "JSON object" in r.content
    r = tb.call("rollback", {"confidence": 2, "reason": "x"})
    assert not r.ok and "confidence" in r.content


class ExplodeIn(BaseModel):
    x: int


class ExplodeOut(BaseModel):
    y: int


@tool("explode")
def explode(ctx: object, args: ExplodeIn) -> ExplodeOut:
    """Always fails."""
    if args.x:
        raise ToolFailure("backend said no")
    raise RuntimeError("connection reset")


def test_a_failing_tool_is_an_error_result_not_a_crash() -> None:
    tb = Toolbox([explode], None)
    assert tb.call("explode", {"x": 1}).content == "explode failed: backend said no"
    r = tb.call("explode", {"x": 0})
    assert not r.ok and "RuntimeError: connection reset" in r.content


def test_output_is_truncated_to_the_budget_and_says_so() -> None:
    tb = box("error_step-0023")
    tb.budget = 200
    r = tb.call("query_metrics", {"query": "error_ratio", "minutes": 60, "step_seconds": 15})
    assert r.ok and r.truncated and "[truncated: showing 200 of" in r.content


def test_redaction_runs_on_every_result() -> None:
    tb = box("error_step-0023")
    tb._redact = lambda text: (text.replace("auth", "[REDACTED]"), 1)
    r = tb.call("list_deploys", {})
    assert "auth" not in r.content and r.redactions == 1


def test_query_metrics_reports_gaps_as_null_and_never_reads_ahead() -> None:
    tb = box("healthy_gaps-0014")
    now = tb.context.now
    data = content(tb.call("query_metrics", {"query": "error_ratio", "minutes": 1440}))
    points = [p for s in data["series"] for p in s["points"]]
    assert points and all(t <= now for t, _ in points)
    unknown = tb.call("query_metrics", {"query": "rate(nonexistent_total[5m])"})
    assert not unknown.ok and "named signals" in unknown.content


def test_judge_deploy_and_list_deploys() -> None:
    tb = box("error_step-0023")
    verdict = content(tb.call("judge_deploy", {}))
    assert verdict["tier"] == 3 and verdict["deploy_caused"] is True
    deploys = content(tb.call("list_deploys", {"hours": 2}))["deploys"]
    assert [d["id"] for d in deploys] == [verdict["deploy_id"]]
    assert deploys[0]["minutes_before_incident"] > 0
    r = tb.call("judge_deploy", {"deploy_id": "deploy-0"})
    assert not r.ok and "no deploy" in r.content


def test_get_runbook_matches_the_alert() -> None:
    tb = box("error_step-0023")
    book = content(tb.call("get_runbook", {}))
    assert book["name"] == "high-error-rate" and book["allows_pause"] is True
    r = tb.call("get_runbook", {"name": "does-not-exist"})
    assert not r.ok and "high-latency" in r.content


def test_rollback_at_tier_3_executes_once_then_rate_limited() -> None:
    tb = box("error_step-0023")
    first = content(tb.call("rollback", {"confidence": 0.9, "reason": "errors past SLO"}))
    assert first["status"] == "executed" and "tier 3" in first["message"]
    again = content(tb.call("rollback", {"confidence": 0.9, "reason": "again"}))
    assert again["status"] == "blocked" and again["message"].startswith("blocked by policy:")
    ctx = tb.context
    assert [c.action for c in ctx.actuator.calls] == ["rollback"]
    kinds = [e.kind for e in ctx.audit.events]
    assert kinds == ["guard", "action", "guard"]


@pytest.mark.parametrize("name", ["healthy_steady-0000", "latency_minor-0007"])
def test_rollback_below_tier_3_is_blocked_by_policy(name: str) -> None:
    tb = box(name)
    r = content(tb.call("rollback", {"confidence": 0.99, "reason": "I am sure"}))
    assert r["status"] == "blocked" and "judge" in r["message"]
    assert tb.context.actuator.calls == []


def test_not_deploy_caused_escalates_instead_of_acting() -> None:
    # The outage began before the deploy; ten minutes in, the judge says so.
    tb = box("dependency_outage_pre-0015", later_s=600)
    assert content(tb.call("judge_deploy", {}))["deploy_caused"] is False
    r = content(tb.call("rollback", {"confidence": 0.9, "reason": "errors"}))
    assert r["status"] == "blocked" and r["escalate"] is True
    sent = content(tb.call("escalate", {"summary": "database degraded before the deploy"}))
    assert sent["status"] == "sent"
    assert [c.action for c in tb.context.escalator.calls] == ["escalate"]


def test_another_deploy_id_is_out_of_scope() -> None:
    tb = box("error_step-0023")
    r = content(tb.call("rollback", {"deploy_id": "deploy-1", "confidence": 0.9, "reason": "x"}))
    assert r["status"] == "blocked"
    assert tb.context.actuator.calls == []


def test_dry_run_records_but_does_not_act() -> None:
    tb = box("error_step-0023", policy=GuardPolicy(dry_run=True))
    r = content(tb.call("rollback", {"confidence": 0.9, "reason": "x"}))
    assert r["status"] == "dry_run" and "dry run" in r["message"]
    assert [c.changed for c in tb.context.actuator.calls] == [False]


def test_pause_at_tier_2() -> None:
    tb = box("latency_minor-0007", later_s=900)
    r = content(tb.call("pause_rollout", {"confidence": 0.7, "reason": "p95 +50%"}))
    assert r["status"] in ("executed", "blocked")
    verdict = content(tb.call("judge_deploy", {}))
    assert (r["status"] == "executed") == (verdict["tier"] >= 2)
