"""The tool-calling loop against a local server speaking the Messages API (official SDK)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import anthropic
import pytest

from agent.bundle.reader import read_bundle
from agent.llm import AgentLoop, ModelSettings, ModelUnavailable, parse_json_answer
from tests.fakes.anthropic_server import Error, fake_anthropic, message, text, tool_use
from tools import all_tools
from tools.base import Toolbox
from tools.bundle import bundle_context

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"
ANSWER = json.dumps(
    {
        "summary": "errors jumped after deploy",
        "deploy_caused": True,
        "suspect_files": ["src/auth/session.py"],
        "confidence": 0.9,
        "next_steps": ["fix"],
    }
)


def run(script: list[Any], **settings: Any) -> tuple[Any, Any, Toolbox]:
    tb = Toolbox(all_tools(), bundle_context(read_bundle(SUITE / "error_step-0023")))
    with fake_anthropic(script) as server:
        client = anthropic.Anthropic(api_key="test-key", base_url=server.url, max_retries=0)
        loop = AgentLoop(client, ModelSettings(**settings), sleep=lambda s: None)
        try:
            result = loop.run("system prompt", "investigate", tb)
        except ModelUnavailable as exc:
            result = exc
    return result, server, tb


def test_tool_calls_then_answer() -> None:
    result, server, tb = run(
        [
            message(tool_use("judge_deploy"), tool_use("list_deploys", {"hours": 2})),
            message(tool_use("rollback", {"confidence": 0.9, "reason": "tier 3"})),
            message(text(ANSWER)),
        ]
    )
    assert result.stopped == "answered"
    assert parse_json_answer(result.final_text) == json.loads(ANSWER)
    assert result.usage.model_calls == 3 and result.usage.tool_calls == 3
    # Both parallel tool results went back in one user turn, wrapped as untrusted data.
    second = server.requests[1]["messages"]
    results = second[-1]["content"]
    assert [r["type"] for r in results] == ["tool_result", "tool_result"]
    assert all(r["content"].startswith('<untrusted source="tool ') for r in results)
    assert [c.action for c in tb.context.actuator.calls] == ["rollback"]
    # Prompt caching on the system prompt and the last tool definition.
    first = server.requests[0]
    assert first["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert first["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    h = server.headers[0]
    assert h.get("x-api-key") == "test-key" or h.get("authorization") == "Bearer test-key"
    assert result.usage.cache_read_tokens == 2700
    assert result.usage.cost_usd(ModelSettings()) > 0


def test_last_call_withdraws_the_tools() -> None:
    endless = [message(tool_use("query_metrics", {"query": "error_ratio"})) for _ in range(3)]
    result, server, _ = run([*endless, message(text(ANSWER))], max_model_calls=4)
    assert result.usage.model_calls == 4
    last = server.requests[-1]
    assert last["tool_choice"] == {"type": "none"}
    assert "No more tools" in json.dumps(last["messages"][-1])
    assert all("tool_choice" not in r for r in server.requests[:-1])
    assert parse_json_answer(result.final_text) is not None


def test_tool_call_budget() -> None:
    many = message(*[tool_use("list_deploys") for _ in range(5)])
    result, server, _ = run([many, message(text(ANSWER))], max_tool_calls=3)
    results = server.requests[1]["messages"][-1]["content"]
    errors = [r for r in results if r.get("is_error")]
    assert len(errors) == 2 and "limit" in json.dumps(errors)
    assert server.requests[1]["tool_choice"] == {"type": "none"}
    assert result.stopped == "tool_call_limit"


def test_retries_429_and_529_then_succeeds() -> None:
    result, server, _ = run(
        [Error(429, "rate_limit_error"), Error(529, "overloaded_error"), message(text(ANSWER))]
    )
    assert result.stopped == "answered" and result.usage.retries == 2
    assert len(server.requests) == 3


def test_gives_up_after_the_cap_and_says_so() -> None:
    result, server, _ = run([Error(503, "api_error")] * 10, retry_attempts=3)
    assert isinstance(result, ModelUnavailable)
    assert len(server.requests) == 3


def test_a_client_error_is_not_retried() -> None:
    result, server, _ = run([Error(400, "invalid_request_error"), message(text(ANSWER))])
    assert isinstance(result, ModelUnavailable) and len(server.requests) == 1


def test_malformed_and_unknown_tool_calls_get_clear_errors() -> None:
    result, server, _ = run(
        [
            message(
                tool_use("query_metrics", {"minutes": "lots"}),
                tool_use("format_disk", {"device": "/dev/sda"}),
                tool_use("rollback", ["not", "an", "object"]),
            ),
            message(text(ANSWER)),
        ]
    )
    results = server.requests[1]["messages"][-1]["content"]
    assert all(r["is_error"] for r in results)
    body = json.dumps(results)
    assert "invalid arguments for query_metrics" in body and "unknown tool" in body
    assert result.stopped == "answered"


def test_model_cannot_roll_back_below_tier_3() -> None:
    tb_name = "healthy_steady-0000"
    tb = Toolbox(all_tools(), bundle_context(read_bundle(SUITE / tb_name)))
    script = [
        message(tool_use("rollback", {"confidence": 1.0, "reason": "trust me"})),
        message(text(ANSWER)),
    ]
    with fake_anthropic(script) as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.url, max_retries=0)
        AgentLoop(client, ModelSettings(), sleep=lambda s: None).run("s", "u", tb)
    assert "blocked by policy" in json.dumps(server.requests[1]["messages"][-1])
    assert tb.context.actuator.calls == []


def test_parse_json_answer() -> None:
    assert parse_json_answer('Here: ```json\n{"a": {"b": "}"}}\n```') == {"a": {"b": "}"}}
    assert parse_json_answer("no json") is None
    assert parse_json_answer('{broken {"ok": 1}') == {"ok": 1}


def test_the_internet_is_blocked_in_tests() -> None:
    with pytest.raises(OSError):
        socket.create_connection(("93.184.216.34", 443), timeout=1)
