"""Postmortem drafts: from the facts without a model, by the model (checked), and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anthropic
import pytest
from typer.testing import CliRunner

from agent.backends.bundle import deploy_info
from agent.bundle.reader import read_bundle
from agent.cli_docs import docs_app
from agent.guard import GuardPolicy
from agent.llm import ModelSettings
from agent.postmortem import (
    SECTIONS,
    PostmortemFacts,
    check_draft,
    facts_for,
    render_draft,
    write_postmortem,
)
from agent.store import Store
from agent.triage import triage
from tests.fakes.anthropic_server import Error, fake_anthropic, message, text
from tools.bundle import bundle_context

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"
runner = CliRunner()


def _record(store: Store, name: str, *, deploy: bool = True, **kw: Any) -> str:
    """An offline triage stored as `vigil triage` stores it, with the deploy the server saw."""
    policy = kw.pop("policy", None)
    override = kw.pop("override", {})
    bundle = read_bundle(SUITE / name)
    ctx = bundle_context(bundle, policy=policy)
    result = triage(ctx, **kw)
    doc = result.model_dump(mode="json")
    doc.update(override)
    store.save_incident(doc, ctx.audit.events)
    if deploy:
        d = deploy_info(bundle)
        assert d.finished_at is not None
        with store.db.conn:
            store.db.conn.execute(
                "INSERT INTO deploys (id, service, environment, version, previous_version,"
                " strategy, commit_sha, source, status, started_at, finished_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL, 'argo', 'succeeded', ?, ?, ?)",
                [
                    d.id,
                    d.service,
                    d.environment,
                    d.version,
                    d.previous_version,
                    d.strategy,
                    d.started_at.timestamp(),
                    d.finished_at.timestamp(),
                    d.finished_at.timestamp(),
                ],
            )
    return result.incident_id


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "vigil.db")


def _cited(line: str) -> list[str]:
    return re.findall(r"\[((?:audit#\d+)|(?:incident|deploy|alert|watch|health):[^\]]+)\]", line)


# --------------------------------------------------------------------------- deterministic


def test_the_deterministic_draft_cites_a_record_for_every_claim(store: Store) -> None:
    incident_id = _record(store, "error_step-0001")
    facts = facts_for(store, incident_id)
    doc = write_postmortem(facts, offline_reason="offline requested")
    assert doc.mode == "deterministic" and doc.model is None
    assert "without a model: offline requested." in doc.note
    md = doc.markdown
    assert md.startswith("# Postmortem (draft): HighErrorRate on reviews after deploy deploy-6704")
    assert [line[3:] for line in md.splitlines() if line.startswith("## ")] == list(SECTIONS)
    seqs = {f"audit#{e.seq}" for e in store.audit(incident_id)}
    bullets = [line for line in md.splitlines() if line.startswith("- ")]
    assert bullets
    for line in bullets:
        refs = _cited(line)
        assert refs, f"uncited claim: {line}"
        for ref in refs:
            assert ref in seqs or not ref.startswith("audit#"), ref
    # The facts, with their numbers from the evidence.
    assert facts.slo_breached is True
    assert (
        "- error_ratio: error_ratio 11.417% vs baseline 0.054% (+20911%), mid window of 6 "
        "samples, p=0 (threshold 0.00017), past its SLO [audit#3] [incident:evidence]"
    ) in md
    assert "- SLO breached: yes (error_ratio). [audit#3] [incident:evidence]" in md
    assert "Most likely change: src/reviews/serializers.py; other changed files" in md
    assert re.search(
        r"- rollback executed by planner at 2026-05-13T14:46:13\.696Z\. \[audit#\d+\]", md
    )
    assert (
        "- Detection: 4 min 43.696 s, deploy started → alert fired, from "
        "2026-05-13T14:41:00.000Z to 2026-05-13T14:45:43.696Z. [deploy:deploy-6704] [audit#1]"
    ) in md
    assert "- Recovery: open since 2026-05-13T14:46:13.696Z" in md
    assert (
        "- [ ] Confirm the rollback finished and the signals recover. [incident:next_steps]" in md
    )
    # Still open: impact measured from the deploy start to the last event.
    assert (
        "Duration: still open; 5 min 13.696 s from when the deploy started at "
        "2026-05-13T14:41:00.000Z to the last recorded event at 2026-05-13T14:46:13.696Z."
    ) in md
    # Nothing slow enough to be an action item.
    assert "Shorten" not in md


def test_a_slow_action_becomes_an_action_item_citing_the_wait(store: Store) -> None:
    incident_id = _record(store, "memory_leak-0013", follow_s=1800)
    facts = facts_for(store, incident_id)
    follow = next(e for e in facts.timeline.events if e.kind == "following")
    item = next(f for f in facts.action_items if f.text.startswith("Shorten action"))
    assert item.text.startswith("Shorten action: it took 5 min, more than the 2 min target")
    assert "the judge asked for an action only at 2026-04-25T22:08:57.920Z" in item.text
    assert follow.ref in item.refs
    assert facts.slo_breached is False
    assert any("while following the deploy" in f.text for f in facts.contributing)


def test_blocked_actions_are_contributing_factors_and_action_items(store: Store) -> None:
    policy = GuardPolicy(deny_services=frozenset({"reviews"}))
    incident_id = _record(store, "error_step-0001", policy=policy)
    facts = facts_for(store, incident_id)
    blocked = [f for f in facts.contributing if "blocked by policy" in f.text]
    assert [f.text for f in blocked] == [
        "rollback was blocked by policy: service list: denied for this service",
        "escalate was blocked by policy: service list: denied for this service",
    ]
    assert len(blocked[0].refs) == 2  # refused twice (planner, then vigil): one fact, two refs
    reviews = [f for f in facts.action_items if f.text.startswith("Review the policy decision")]
    assert len(reviews) == 2
    assert any(f.text == "No rollback, pause or escalation was executed." for f in facts.summary)


# --------------------------------------------------------------------------- the model


def _model_draft(facts: PostmortemFacts) -> str:
    """A draft a careful model could write: the facts, reworded, every claim cited."""
    return (
        render_draft(facts, "")
        .replace("# Postmortem (draft):", "# Postmortem:")
        .replace("_Incident `", "Incident `")
        .replace(
            "- SLO breached: yes (error_ratio).",
            "- The error ratio was past its SLO (11.417% against a 0.054% baseline), "
            "first noticed at 14:45:43.696 and 14:45.",
        )
    )


def test_the_model_writes_the_postmortem_from_the_facts(store: Store) -> None:
    incident_id = _record(
        store,
        "error_step-0001",
        override={"summary": "errors jumped; db=postgres://app:hunter2@db:5432/shop"},
    )
    facts = facts_for(store, incident_id)
    draft = _model_draft(facts)
    with fake_anthropic([message(text(draft))]) as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.url, max_retries=0)
        settings = ModelSettings(model="claude-test", max_output_tokens=8000)
        doc = write_postmortem(facts, client=client, settings=settings)
    assert doc.mode == "llm" and doc.model == "claude-test" and doc.rejected == []
    assert doc.markdown.startswith("# Postmortem: HighErrorRate on reviews")
    assert "first noticed at 14:45:43.696" in doc.markdown
    assert doc.markdown.rstrip().endswith("was checked against them._")
    (request,) = server.requests
    assert request["model"] == "claude-test" and request["max_tokens"] == 8000
    assert "writing an incident document" in request["system"]
    user = request["messages"][0]["content"]
    assert '<untrusted source="incident facts">' in user
    assert f"incident {incident_id}" in user and "audit#" in user
    assert "hunter2" not in json.dumps(server.requests)
    assert "[REDACTED:password]" in user


@pytest.mark.parametrize(
    ("lie", "complaint"),
    [
        ("about 4,200 customers saw errors", "number 4,200 is not in the facts"),
        ("the error ratio peaked at 37.5%", "number 37.5 is not in the facts"),
        ("it began at 14:52", "time 14:52 is not in the facts"),
        ("see also inc-deadbeef0000", "identifier inc-deadbeef0000 is not in the facts"),
        ("src/reviews/cache.py was also changed", "file src/reviews/cache.py is not in the facts"),
        ("the on-call confirmed it [audit#99]", "it cites audit#99"),
    ],
)
def test_a_draft_that_invents_a_fact_is_rejected(store: Store, lie: str, complaint: str) -> None:
    incident_id = _record(store, "error_step-0001")
    facts = facts_for(store, incident_id)
    draft = _model_draft(facts).replace(
        "- Services alerting: reviews. [audit#1]", f"- Services alerting: reviews; {lie}. [audit#1]"
    )
    with fake_anthropic([message(text(draft))]) as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.url, max_retries=0)
        doc = write_postmortem(facts, client=client, settings=ModelSettings(model="claude-test"))
    assert doc.mode == "deterministic"
    assert any(complaint in p for p in doc.rejected), doc.rejected
    assert "the model's draft was rejected" in doc.note and complaint in doc.note
    assert doc.markdown.startswith("# Postmortem (draft):")
    assert lie not in doc.markdown


def test_an_unavailable_model_falls_back_to_the_facts(store: Store) -> None:
    facts = facts_for(store, _record(store, "error_step-0001"))
    with fake_anthropic([Error(529, "overloaded_error")]) as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.url, max_retries=0)
        doc = write_postmortem(facts, client=client)
    assert len(server.requests) == 1
    assert doc.mode == "deterministic"
    assert "the model was unavailable (OverloadedError" in doc.note


def test_check_draft_accepts_faithful_times_and_numbers() -> None:
    facts_text = '{"time": "2026-05-13T14:45:43.696Z", "fact": "took 4 min 43.696 s; 1200 req"}'
    refs = ["audit#1"]
    body = "\n".join(f"## {s}\n- ok [audit#1]" for s in SECTIONS)
    ok = (
        f"# Postmortem\n{body}\n- at 14:45, 14:45:43 and 2026-05-13 14:45:43.696Z: 1,200 "
        "deploy-caused and/or p95/p99 [audit#1]"
    )
    assert check_draft(ok, facts_text, refs) == []
    bad = ok.replace("1,200", "1,300").replace("## Impact", "## Effects")
    problems = check_draft(bad, facts_text, refs)
    assert "number 1,300 is not in the facts" in problems
    assert "section 'Impact' is missing" in problems
    assert check_draft(ok + "\n- unsourced claim", facts_text, refs) == [
        "a claim cites no fact: '- unsourced claim'"
    ]


# --------------------------------------------------------------------------- the command


def test_the_command_prints_the_offline_draft_as_markdown_or_json(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")  # --offline wins over the key
    incident_id = _record(store, "error_step-0001")
    out = runner.invoke(docs_app, [incident_id, "--db", str(store.path), "--offline"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("# Postmortem (draft): HighErrorRate on reviews")
    assert "without a model: offline requested." in out.output
    out = runner.invoke(
        docs_app, [incident_id, "--db", str(store.path), "--offline", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["incident_id"] == incident_id and doc["mode"] == "deterministic"
    assert doc["facts"]["slo_breached"] is True
    assert doc["facts"]["timeline"]["phases"][0]["seconds"] == 283.696


def test_the_command_without_a_key_says_so(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    incident_id = _record(store, "error_step-0001", deploy=False)
    out = runner.invoke(docs_app, [incident_id, "--db", str(store.path)])
    assert out.exit_code == 0, out.output
    assert "without a model: no ANTHROPIC_API_KEY set." in out.output
    # The bundle's deploy was never recorded in the store: detection cannot be measured.
    assert "- Detection: unknown (no deploy start recorded)." in out.output


def test_the_command_uses_the_model_when_a_key_is_set(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    incident_id = _record(store, "error_step-0001")
    facts = facts_for(store, incident_id)
    invented = _model_draft(facts).replace(
        "- Services alerting: reviews.", "- Services alerting: reviews and 17 others."
    )
    with fake_anthropic([message(text(_model_draft(facts))), message(text(invented))]) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("VIGIL_MODEL", "claude-test")
        good = runner.invoke(docs_app, [incident_id, "--db", str(store.path)])
        bad = runner.invoke(docs_app, [incident_id, "--db", str(store.path), "--format", "json"])
    assert good.exit_code == 0, good.output
    assert good.output.startswith("# Postmortem: HighErrorRate on reviews")
    assert "Written by claude-test from the recorded facts" in good.output
    sent = server.headers[0]
    assert "sk-test" in sent.get("x-api-key", "") + sent.get("authorization", "")
    assert [r["model"] for r in server.requests] == ["claude-test", "claude-test"]
    assert [r["max_tokens"] for r in server.requests] == [4096, 4096]
    assert bad.exit_code == 0, bad.output
    doc = json.loads(bad.output)
    assert doc["mode"] == "deterministic"
    assert doc["rejected"] == ["number 17 is not in the facts"]
    assert "the model's draft was rejected: number 17 is not in the facts" in doc["note"]


def test_an_unknown_incident_or_store_exits_2(store: Store, tmp_path: Path) -> None:
    out = runner.invoke(docs_app, ["inc-nope", "--db", str(store.path), "--offline"])
    assert out.exit_code == 2
    assert "no incident 'inc-nope'" in out.output
    missing = tmp_path / "elsewhere" / "vigil.db"
    out = runner.invoke(docs_app, ["inc-nope", "--db", str(missing), "--offline"])
    assert out.exit_code == 2 and "no Vigil store here" in out.output
    assert not missing.parent.exists()


def test_the_command_has_help() -> None:
    out = runner.invoke(docs_app, ["--help"])
    assert out.exit_code == 0
    assert (
        "incident_id" in out.output.lower()
        and "--format" in out.output
        and "--offline" in out.output
    )
