"""Runbooks: the structured format, what it may claim, matching, following, and generating."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anthropic
import pytest
from typer.testing import CliRunner

from agent.bundle.reader import read_bundle
from agent.cli_runbook import runbook_app
from agent.config import load_config
from agent.guard import GuardPolicy
from agent.runbook_facts import gather_facts, service_history
from agent.runbook_generate import generate_runbook
from agent.runbook_plain import plain_runbook
from agent.runbooks import (
    DEFAULT_DIR,
    PlanContext,
    RunbookError,
    RunbookLibrary,
    parse_runbook,
    parse_runbook_text,
    plan_steps,
    read_outcome,
    runbook_text,
)
from agent.store import Store
from agent.triage import triage
from tests.fakes.anthropic_server import Error, fake_anthropic, message, text
from tools import all_tools
from tools.act import guard_facts
from tools.base import Toolbox
from tools.bundle import bundle_context

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "evals" / "suites" / "small"
EXAMPLE_CONFIG = ROOT / "vigil.example.yaml"
LIBRARY = RunbookLibrary.load(DEFAULT_DIR)

# Every runbook of the library, with a bundle its alert or signals come from.
FOLLOWED_ON = {
    "high-error-rate": "error_step-0001",
    "high-latency": "latency_step-0005",
    "memory-leak": "memory_leak-0013",
    "crash-loop": "crash_loop-0009",
    "business-kpi": "business_drop-0011",
    "deployment-failed": "error_step-0023",
    "slow-migration": "error_step-0023",
}

MINIMAL = """---
name: tiny
title: A tiny runbook
trigger: Something happened.
alerts: [Tiny]
signals: [errors]
allows_pause: {allows_pause}
diagnostic_steps:
  - id: judge
    check: Is the deploy at fault?
    tool: judge_deploy
    arguments: {{deploy_id: "{{deploy_id}}"}}
    outcomes:
      - when: {{tier: 3, deploy_caused: true}}
        means: The judge authorises a rollback.
        then: act
      - when: {{}}
        means: Otherwise.
remediation:
  - id: act
    action: {action}
    when: Now.
    requires: {requires}
  - id: page
    action: escalate
    when: Always possible.
---
Body text.
"""


def tiny(action: str = "rollback", requires: str = "{min_tier: 3}", pause: bool = False) -> str:
    return MINIMAL.format(action=action, requires=requires, allows_pause=str(pause).lower())


def box(name: str, library: RunbookLibrary | None = None, **kw: Any) -> Toolbox:
    return Toolbox(all_tools(), bundle_context(read_bundle(SUITE / name), runbooks=library, **kw))


def content(result: Any) -> dict[str, Any]:
    assert result.ok, result.content
    data: dict[str, Any] = json.loads(result.content)
    return data


# --------------------------------------------------------------------------- the library


def test_every_runbook_in_the_library_validates_and_is_named_after_its_file() -> None:
    paths = sorted(DEFAULT_DIR.glob("*.md"))
    assert {p.stem for p in paths} == set(FOLLOWED_ON) == set(LIBRARY.runbooks)
    for path in paths:
        book = parse_runbook(path)
        assert book.name == path.stem
        assert book.trigger and book.diagnostic_steps and book.remediation
        assert book.escalation_triggers and book.body
        # Text written back reads as the same runbook.
        assert parse_runbook_text(runbook_text(book)) == book


def test_the_library_keeps_every_alert_name_and_covers_the_situations() -> None:
    alerts = {a: b.name for b in LIBRARY.runbooks.values() for a in b.alerts}
    for name in (
        "HighErrorRate",
        "ErrorRateSpikeAfterDeploy",
        "DeploymentErrorBudgetBurn",
        "HighLatency",
        "HighLatencyP95",
        "LatencyP95Elevated",
        "LatencyDegradationAfterDeploy",
        "MemoryGrowthHigh",
        "MemoryGrowthAfterDeploy",
        "ContainerMemoryNearLimit",
        "DeploymentFailed",
        "KubePodCrashLooping",
        "PodCrashLoopAfterDeploy",
        "SlowMigration",
        "CheckoutSuccessLow",
        "ConversionDrop",
        "BusinessKpiDropAfterDeploy",
    ):
        assert name in alerts, name
    assert alerts["HealthChecksFailingAfterDeploy"] == "crash-loop"
    crash = LIBRARY.runbooks["crash-loop"]
    assert "readiness" in crash.trigger and "HealthChecksFailingAfterDeploy" in crash.body
    # A leak is never paused on confidence alone, nor rolled back by the agent.
    leak = LIBRARY.runbooks["memory-leak"]
    assert leak.allows_pause is False
    assert all(r.requires.by == "human" for r in leak.remediation if r.action == "rollback")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "line", "field", "needle"),
    [
        ("name: x\n", 1, None, "starts with a '---' line"),
        ("---\nname: x\ntitle: [unclosed\n", None, None, "no closing '---'"),
        ("---\nname: x\ntitle: [unclosed\n---\n", 4, None, "not valid YAML"),
        (tiny().replace("title: A tiny", "colour: red\ntitle: A tiny"), 3, "colour", "unknown"),
        (tiny().replace("name: tiny\n", "name: tiny\nname: again\n"), 3, "name", "twice"),
        (tiny().replace("tool: judge_deploy", "tool: drop_table"), 11, "tool", "judge_deploy"),
        (
            tiny().replace('{deploy_id: "{deploy_id}"}', "{deploy: x}"),
            12,
            "diagnostic_steps[0].arguments.deploy",
            "not an argument of this tool (accepted: deploy_id)",
        ),
        (
            tiny().replace('"{deploy_id}"', '"{deploy}"'),
            12,
            "diagnostic_steps[0].arguments.deploy_id",
            "not a placeholder",
        ),
        (
            tiny().replace("{tier: 3, deploy_caused: true}", "{verdict: 3}"),
            14,
            "diagnostic_steps[0].outcomes[0].when.verdict",
            "not a field of the tool's result",
        ),
        (
            tiny().replace("{tier: 3, deploy_caused: true}", "{tier: three}"),
            14,
            "diagnostic_steps[0].outcomes[0].when.tier",
            "can never be a value",
        ),
        (
            tiny().replace("then: act", "then: nowhere"),
            16,
            "diagnostic_steps[0].outcomes[0].then",
            "neither a remediation id",
        ),
        (tiny().replace("signals: [errors]", "signals: [vibes]"), 6, "signals[0]", "errors"),
        (
            tiny().replace("action: escalate", "action: notify"),
            19,
            "remediation",
            "hands over to a human",
        ),
    ],
)
def test_a_malformed_runbook_names_the_file_line_and_field(
    tmp_path: Path, text: str, line: int | None, field: str | None, needle: str
) -> None:
    path = tmp_path / "tiny.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RunbookError) as err:
        parse_runbook(path)
    assert err.value.path == path
    assert err.value.line == line, str(err.value)
    if field is not None:
        assert err.value.field is not None and err.value.field.endswith(field), str(err.value)
    assert needle in str(err.value)
    assert str(err.value).startswith(f"{path}")


def test_the_library_refuses_a_runbook_not_named_after_its_file(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text(tiny(), encoding="utf-8")
    with pytest.raises(RunbookError, match=r"other.md:2: name 'tiny' must be the file's name"):
        RunbookLibrary.load(tmp_path)


# --------------------------------------------------------------------------- authority


@pytest.mark.parametrize(
    ("action", "requires", "pause", "field", "needle"),
    [
        ("rollback", "{min_tier: 2}", False, "min_tier", "a rollback needs judge tier 3 (got 2)"),
        ("rollback", "{}", True, "min_tier", "a rollback needs judge tier 3"),
        ("rollback", "{min_tier: 3, deploy_caused: false}", False, "deploy_caused", "not cause"),
        ("rollback", "{min_tier: 3, min_confidence: 0.3}", False, "min_confidence", ">= 0.6"),
        ("pause_rollout", "{min_tier: 1}", True, "min_tier", "a pause needs judge tier >= 2"),
        ("pause_rollout", "{min_confidence: 0.9}", True, "min_tier", "min_confidence >= 0.95"),
        ("pause_rollout", "{min_confidence: 0.99}", False, "min_confidence", "allows_pause"),
        ("manual", "{}", False, "by", "a manual option is done by a human"),
    ],
)
def test_a_remediation_that_claims_more_than_the_guard_allows_is_rejected(
    action: str, requires: str, pause: bool, field: str, needle: str
) -> None:
    with pytest.raises(RunbookError) as err:
        parse_runbook_text(tiny(action, requires, pause), "tiny.md")
    assert err.value.field == f"remediation[0].requires.{field}", str(err.value)
    assert err.value.line is not None and err.value.line >= 19
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("action", "requires", "pause"),
    [
        ("rollback", "{min_tier: 3, deploy_caused: true}", False),
        ("rollback", "{by: human}", False),  # a human-only option
        ("pause_rollout", "{min_tier: 2}", False),
        ("pause_rollout", "{min_confidence: 0.95}", True),
        ("manual", "{by: human}", False),
        ("notify", "{}", False),
    ],
)
def test_options_within_the_guards_authority_validate(
    action: str, requires: str, pause: bool
) -> None:
    book = parse_runbook_text(tiny(action, requires, pause))
    assert book.remediation[0].action == action


def test_authority_is_checked_against_the_policy_in_force() -> None:
    text = tiny("pause_rollout", "{min_confidence: 0.9}", True)
    with pytest.raises(RunbookError, match=r"0\.95"):
        parse_runbook_text(text)
    lenient = GuardPolicy(pause_confidence=0.9)
    assert parse_runbook_text(text, policy=lenient).allows_pause is True


# --------------------------------------------------------------------------- matching


def test_matching_by_alert_name_first_then_by_signal_kinds() -> None:
    assert [b.name for b in LIBRARY.match("HighErrorRate")] == ["high-error-rate"]
    assert LIBRARY.match("HealthChecksFailingAfterDeploy")[0].name == "crash-loop"
    assert [b.name for b in LIBRARY.match(None, ("latency",))] == ["high-latency"]
    both = [b.name for b in LIBRARY.match("SlowMigration", ("saturation", "errors"))]
    assert both == ["slow-migration", "high-error-rate", "memory-leak"]
    assert LIBRARY.match("NoSuchAlert", ("traffic",)) == []


def test_a_service_runbook_matches_only_its_service_and_comes_first() -> None:
    own = parse_runbook_text(tiny().replace("name: tiny\n", "name: tiny\nservice: reviews\n"))
    own = own.model_copy(update={"alerts": ("HighErrorRate",)})
    library = RunbookLibrary([*LIBRARY.runbooks.values(), own])
    assert [b.name for b in library.match("HighErrorRate", service="reviews")] == [
        "tiny",
        "high-error-rate",
    ]
    assert [b.name for b in library.match("HighErrorRate", service="auth")] == ["high-error-rate"]
    assert [b.name for b in library.match("HighErrorRate")] == ["high-error-rate"]


# --------------------------------------------------------------------------- following


@pytest.mark.parametrize("name", sorted(FOLLOWED_ON))
def test_plan_steps_gives_tool_calls_that_succeed(name: str) -> None:
    tb = box(FOLLOWED_ON[name])
    ctx = tb.context
    deploy = ctx.suspect_deploy()
    verdict = ctx.verdict(deploy)
    context = PlanContext.from_findings(
        deploy.id, [{"signal": f.signal, "kind": f.kind, "tier": f.tier} for f in verdict.findings]
    )
    plan = plan_steps(LIBRARY.runbooks[name], context)
    assert plan.calls, plan.skipped
    steps = {s.id for s in LIBRARY.runbooks[name].diagnostic_steps}
    assert {c.id for c in plan.calls} | {s.id for s in plan.skipped} == steps
    for call in plan.calls:
        assert '"{' not in json.dumps(call.arguments), call  # no placeholder left
        result = tb.call(call.tool, call.arguments)
        assert result.ok, f"{name}/{call.id}: {result.content}"
        if call.arguments.get("deploy_id") is not None:
            assert call.arguments["deploy_id"] == deploy.id


def test_placeholders_resolve_from_what_is_known() -> None:
    book = LIBRARY.runbooks["high-error-rate"]
    plan = plan_steps(book, PlanContext(deploy_id="deploy-1", signals={"errors": ("e1", "e2")}))
    by_id = {c.id: c for c in plan.calls}
    assert by_id["judge"].arguments == {"deploy_id": "deploy-1"}
    assert by_id["error-trend"].arguments == {"query": "e1", "minutes": 60}
    assert [(s.id, s.reason) for s in plan.skipped] == [
        ("dependencies", "no dependency signal is known for this service")
    ]
    unknown = plan_steps(book, PlanContext())
    assert {c.id: c.arguments for c in unknown.calls}["judge"] == {}  # the latest deploy
    assert {s.id for s in unknown.skipped} == {"error-trend", "dependencies"}


def test_what_a_result_means_leads_to_the_option() -> None:
    tb = box("error_step-0001")
    judge = next(s for s in LIBRARY.runbooks["high-error-rate"].diagnostic_steps if s.id == "judge")
    verdict = content(tb.call("judge_deploy", {}))
    outcome = read_outcome(judge, verdict)
    assert outcome is not None and outcome.then == "roll-back"
    caused_elsewhere = {**verdict, "tier": 1, "deploy_caused": False}
    assert read_outcome(judge, caused_elsewhere).then == "escalate"  # type: ignore[union-attr]
    healthy = {**verdict, "tier": 0, "deploy_caused": None, "status": "judged"}
    assert read_outcome(judge, healthy).when == {}  # type: ignore[union-attr]


def test_get_runbook_returns_the_steps_as_structured_calls() -> None:
    tb = box("error_step-0001")
    book = content(tb.call("get_runbook", {}))
    assert book["name"] == "high-error-rate" and book["allows_pause"] is True
    assert [s["id"] for s in book["steps"]] == [
        "find-deploy",
        "judge",
        "error-trend",
        "new-errors",
        "suspect-change",
    ]
    assert book["skipped_steps"] == ["dependencies: no dependency signal is known for this service"]
    judge = book["steps"][1]
    assert judge["tool"] == "judge_deploy" and judge["arguments"] == {"deploy_id": "deploy-6704"}
    assert judge["outcomes"][0] == {
        "when": {"tier": 3, "deploy_caused": True},
        "means": judge["outcomes"][0]["means"],
        "then": "roll-back",
    }
    assert book["steps"][3]["outcomes"][0]["when"] == {"new": {"min": 1}}
    rollback = next(r for r in book["remediation"] if r["action"] == "rollback")
    assert "judge tier >= 3" in rollback["requires"] and rollback["by"] == "agent"
    assert "## Why it happens" in book["body"]
    assert "high-latency" in book["others"] and "high-error-rate" not in book["others"]
    for step in book["steps"]:
        assert tb.call(step["tool"], step["arguments"]).ok


def test_the_guard_still_reads_allows_pause() -> None:
    # latency_minor-0007 at the alert: judge tier 1, caused by the deploy.
    tb = box("latency_minor-0007")
    ctx = tb.context
    assert guard_facts(ctx, ctx.suspect_deploy()).runbook_allows_pause is True
    paused = content(tb.call("pause_rollout", {"confidence": 0.96, "reason": "p95 up"}))
    assert paused["status"] == "executed" and "a runbook allows a pause" in paused["message"]

    strict = RunbookLibrary(
        [
            b.model_copy(update={"allows_pause": False}) if b.name == "high-latency" else b
            for b in LIBRARY.runbooks.values()
        ]
    )
    tb = box("latency_minor-0007", strict)
    assert guard_facts(tb.context, tb.context.suspect_deploy()).runbook_allows_pause is False
    blocked = content(tb.call("pause_rollout", {"confidence": 0.96, "reason": "p95 up"}))
    assert blocked["status"] == "blocked"
    assert "runbook that allows a pause (no)" in blocked["message"]
    leak = box("memory_leak-0013").context
    assert guard_facts(leak, leak.suspect_deploy()).runbook_allows_pause is False


# --------------------------------------------------------------------------- generate


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding a real offline triage of error_step-0001 (service reviews)."""
    db = tmp_path_factory.mktemp("store") / "vigil.db"
    ctx = bundle_context(read_bundle(SUITE / "error_step-0001"))
    result = triage(ctx).model_dump(mode="json")
    result["summary"] += " db=postgres://app:hunter2@db:5432/reviews"
    Store(db).save_incident(result, ctx.audit.events)
    return db


def _generate(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(
        runbook_app,
        ["generate", *args, "--config", str(EXAMPLE_CONFIG)],
        env={"ANTHROPIC_API_KEY": "", "ANTHROPIC_AUTH_TOKEN": "", **(env or {})},
    )


def test_generate_without_a_model_renders_the_config_deterministically(tmp_path: Path) -> None:
    out = tmp_path / "service-reviews.md"
    env = {"VIGIL_DB": str(tmp_path / "absent.db")}
    first = _generate("reviews", "--out", str(out), env=env)
    assert first.exit_code == 0, first.output
    assert "plain (no ANTHROPIC_API_KEY set)" in first.stderr
    written = out.read_text()
    again = _generate("reviews", env=env)
    assert again.exit_code == 0 and again.stdout == written  # same facts, same text
    policy = load_config(EXAMPLE_CONFIG).service("reviews").policy()
    book = parse_runbook_text(written, out, policy=policy)
    assert (book.name, book.service, book.allows_pause) == ("service-reviews", "reviews", False)
    assert [k.value for k in book.signals] == ["traffic", "errors", "latency"]
    for needle in ("error_ratio", "SLO of 0.03", "latency_p95", "SLO of 1.5", "request_rate"):
        assert needle in written, needle
    assert "The deploy system's signed webhook." in written  # the rollout kind
    assert "No incident of reviews" in written
    assert not (tmp_path / "absent.db").exists()  # reading history never creates a store
    assert not (tmp_path / "absent.db").exists()
    validated = CliRunner().invoke(runbook_app, ["validate", str(out)])
    assert validated.exit_code == 0 and "ok" in validated.stdout


def test_generate_from_history_names_the_alerts_suspects_and_actions(
    history_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "service-reviews.md"
    r = _generate("reviews", "--db", str(history_db), "--out", str(out), "--offline")
    assert r.exit_code == 0, r.output
    assert "1 incident(s)" in r.stderr and "offline requested" in r.stderr
    text = out.read_text()
    book = parse_runbook_text(text, out)
    assert book.alerts == ("HighErrorRate",)
    assert "src/reviews/serializers.py" in text and "rollback: executed" in text
    assert "tier 3 (roll back)" in text
    assert "hunter2" not in text  # history is redacted
    diff = next(s for s in book.diagnostic_steps if s.tool == "fetch_diff")
    assert diff.arguments["terms"][0] == "src/reviews/serializers.py"
    # In the library, it answers the alert for reviews first, and never for another service.
    library = RunbookLibrary([*LIBRARY.runbooks.values(), book])
    assert library.match("HighErrorRate", service="reviews")[0].name == "service-reviews"
    assert all(b.service is None for b in library.match("HighErrorRate", service="auth"))
    # Its steps are valid calls on the incident it was learnt from.
    tb = box("error_step-0001", library)
    got = content(tb.call("get_runbook", {}))
    assert got["name"] == "service-reviews"
    for step in got["steps"]:
        assert tb.call(step["tool"], step["arguments"]).ok, step


def test_generate_refuses_an_unknown_service_or_a_missing_store(tmp_path: Path) -> None:
    r = _generate("nope", "--offline", env={"VIGIL_DB": str(tmp_path / "x.db")})
    assert r.exit_code == 2 and "no service 'nope'" in r.stderr
    r = _generate("reviews", "--db", str(tmp_path / "missing.db"))
    assert r.exit_code == 2 and "no such store" in r.stderr


def _facts(db: Path) -> Any:
    svc = load_config(EXAMPLE_CONFIG).service("reviews")
    return gather_facts("reviews", svc, service_history(Store(db), "reviews")), svc.policy()


def _model_says(answer: str) -> Any:
    return message(text(answer))


def test_generate_with_a_model_keeps_a_grounded_runbook(history_db: Path) -> None:
    facts, policy = _facts(history_db)
    plain = runbook_text(plain_runbook(facts, policy))
    better = plain.replace(
        "title: Deploy regressions of reviews", "title: When a deploy of reviews goes wrong"
    )
    with fake_anthropic([_model_says(f"Here it is:\n```markdown\n{better}```\n")]) as server:
        r = _generate(
            "reviews",
            "--db",
            str(history_db),
            env={"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": server.url},
        )
    assert r.exit_code == 0, r.output
    assert "written by the model" in r.stderr
    assert r.stdout == better
    (request,) = server.requests
    assert request["messages"][0]["role"] == "user" and "Vigil" in request["system"]
    user = request["messages"][0]["content"]
    assert '<untrusted source="store">' in user and "src/reviews/serializers.py" in user
    assert '"slo": 0.03' in user and "min_tier: 3" in user
    assert "hunter2" not in json.dumps(request) and "[REDACTED" in user


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (("min_tier: 3\n", "min_tier: 2\n"), "a rollback needs judge tier 3 (got 2)"),
        (("allows_pause: false", "allows_pause: true"), "it sets allows_pause"),
        (("against the 1h before it", "against the 4h before it"), "number 4 is not in the facts"),
        (("suspect src/reviews/serializers.py", "suspect src/reviews/models.py"), "file src/"),
        (("query: error_ratio", "query: up"), "queries 'up', not a configured signal"),
        (("- HighErrorRate", "- HighErrorRate\n- PaymentsDown"), "alert PaymentsDown"),
    ],
)
def test_a_model_runbook_that_does_not_validate_falls_back_to_the_plain_one(
    history_db: Path, change: tuple[str, str], why: str
) -> None:
    facts, policy = _facts(history_db)
    plain = runbook_text(plain_runbook(facts, policy))
    assert change[0] in plain
    bad = plain.replace(change[0], change[1], 1)
    with fake_anthropic([_model_says(bad)]) as server:
        r = _generate(
            "reviews",
            "--db",
            str(history_db),
            env={"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": server.url},
        )
    assert r.exit_code == 0, r.output
    assert r.stdout == plain
    said = re.sub(r"\s+", " ", r.stderr)
    assert "the model's runbook was rejected" in said and why in said, said
    assert "wrote the plain runbook from the same facts" in said


def test_an_unavailable_model_falls_back_and_says_why(history_db: Path) -> None:
    facts, policy = _facts(history_db)
    with fake_anthropic([Error(529, "overloaded_error")]) as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.url, max_retries=0)
        made = generate_runbook(facts, policy, client=client)
    assert made.mode == "deterministic" and made.text == runbook_text(plain_runbook(facts, policy))
    assert made.fallback_reason is not None and "the model is unavailable" in made.fallback_reason


# --------------------------------------------------------------------------- validate, list


def test_validate_reports_every_bad_file_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "tiny.md").write_text(tiny(), encoding="utf-8")
    (tmp_path / "bad.md").write_text(tiny("rollback", "{min_tier: 1}"), encoding="utf-8")
    r = CliRunner().invoke(runbook_app, ["validate", str(tmp_path)])
    assert r.exit_code == 2
    said = re.sub(r"\s+", " ", r.stderr)
    assert f"{tmp_path / 'bad.md'}:" in said
    assert "field 'remediation[0].requires.min_tier'" in said
    assert "ok " in r.stdout and "tiny.md" in r.stdout  # the good one is still checked
    ok = CliRunner().invoke(runbook_app, ["validate"])
    assert ok.exit_code == 0 and ok.stdout.count("ok ") == len(FOLLOWED_ON)


def test_list_shows_the_library() -> None:
    r = CliRunner().invoke(runbook_app, ["list", "--json"])
    assert r.exit_code == 0
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert set(rows) == set(FOLLOWED_ON)
    assert rows["crash-loop"]["alerts"][-1] == "HealthChecksFailingAfterDeploy"
    assert rows["memory-leak"]["allows_pause"] is False
    assert rows["high-error-rate"]["steps"][:2] == ["find-deploy", "judge"]
    table = CliRunner().invoke(runbook_app, ["list"])
    assert table.exit_code == 0 and "high-latency" in table.stdout
