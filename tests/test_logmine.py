"""Error-pattern mining: statuses, rates, masking, stack traces, determinism, the small suite."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.bundle.model import LogLine
from agent.bundle.reader import iter_bundles, read_bundle
from agent.logmine import LogMining, Pattern, mask, mine, split_at
from agent.suspects import Evidence

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"
DEPLOY = datetime(2026, 5, 13, 14, 0, tzinfo=UTC)
WINDOW = 600.0  # seconds before and after the deploy in the synthetic tests


def _line(offset_s: float, message: str, level: str = "error", **extra: Any) -> LogLine:
    return LogLine(ts=DEPLOY + timedelta(seconds=offset_s), level=level, message=message, **extra)


def _spread(count: int, message: str, *, after: bool, level: str = "error") -> list[LogLine]:
    """`count` lines of `message` ({i} filled in) spread over one window."""
    step = WINDOW / (count + 1)
    start = 0.0 if after else -WINDOW
    return [_line(start + step * (i + 1), message.format(i=i), level=level) for i in range(count)]


def _mine(before: list[LogLine], after: list[LogLine], **kwargs: Any) -> LogMining:
    return mine(before, after, before_s=WINDOW, after_s=WINDOW, **kwargs)


def _by_example(mining: LogMining, text: str) -> Pattern:
    found = [p for p in mining.patterns if text in p.example]
    assert len(found) == 1, [p.template for p in mining.patterns]
    return found[0]


# --------------------------------------------------------------------------- statuses


def test_a_new_pattern_is_found_with_its_first_time_and_rate() -> None:
    before = _spread(6, "retrying db call (attempt {i}/3)", after=False, level="warn")
    after = _spread(6, "retrying db call (attempt {i}/3)", after=True, level="warn")
    after += _spread(
        12, "KeyError: 'customer' in serialize_order (order_id=ord_{i}x9z8y7)", after=True
    )
    mining = _mine(before, after)

    top = mining.patterns[0]
    assert top.status == "new"
    assert mining.new == (top,) and mining.grew == ()
    assert top.template == "KeyError: 'customer' in serialize_order (order_id=<ID>)"
    assert top.before == 0 and top.after == 12
    assert top.rate_before == 0.0 and top.rate_after == pytest.approx(12 / WINDOW)
    assert top.growth is None
    assert top.first_seen_after == min(line.ts for line in after if "KeyError" in line.message)
    assert top.example.startswith("KeyError: 'customer' in serialize_order (order_id=ord_")
    assert top.levels == ("error",)
    assert top.p_increase == pytest.approx(0.5**12)
    steady = _by_example(mining, "retrying db call")
    assert steady.status == "steady" and steady.levels == ("warn",)
    assert mining.total_before == 6 and mining.total_after == 18


def test_a_grown_pattern_is_found_with_rates_and_growth() -> None:
    before = _spread(5, "request failed: payments-gateway timed out after {i}00ms", after=False)
    after = _spread(60, "request failed: payments-gateway timed out after {i}00ms", after=True)
    mining = _mine(before, after)

    (pattern,) = mining.patterns
    assert pattern.status == "grew" and mining.grew == (pattern,)
    assert pattern.template == "request failed: payments-gateway timed out after <DUR>"
    assert (pattern.before, pattern.after) == (5, 60)
    assert pattern.rate_before == pytest.approx(5 / WINDOW)
    assert pattern.rate_after == pytest.approx(60 / WINDOW)
    assert pattern.growth == pytest.approx(12.0)
    assert pattern.p_increase < 1e-10


def test_rates_use_the_window_lengths() -> None:
    before = _spread(10, "cache miss storm on shard {i}", after=False)
    after = _spread(10, "cache miss storm on shard {i}", after=True)
    # Same count, but the window since the deploy is a quarter as long: a fourfold rate.
    mining = mine(before, after, before_s=2400.0, after_s=600.0)
    (pattern,) = mining.patterns
    assert pattern.growth == pytest.approx(4.0)
    assert pattern.status == "grew"


@pytest.mark.parametrize(("was", "now"), [(1, 2), (2, 4), (1, 5), (10, 14), (0, 0)])
def test_small_increases_are_steady_not_grew(was: int, now: int) -> None:
    before = _spread(was, "disk latency high on /dev/sda{i}", after=False)
    after = _spread(now, "disk latency high on /dev/sda{i}", after=True)
    mining = _mine(before, after)
    assert mining.grew == ()
    assert [p.status for p in mining.patterns] == (["steady"] if was else [])


def test_a_gone_and_a_shrunk_pattern() -> None:
    before = _spread(8, "legacy endpoint called by client {i}", after=False, level="warn")
    before += _spread(40, "upstream 503 from inventory (attempt {i})", after=False)
    after = _spread(2, "upstream 503 from inventory (attempt {i})", after=True)
    mining = _mine(before, after)

    gone = _by_example(mining, "legacy endpoint")
    assert gone.status == "gone" and gone.after == 0 and gone.growth == 0.0
    assert gone.first_seen_after is None
    assert gone.example == "legacy endpoint called by client 0"  # the first line before
    shrank = _by_example(mining, "upstream 503")
    assert shrank.status == "shrank" and shrank.growth == pytest.approx(0.05)
    assert [p.status for p in mining.patterns] == ["shrank", "gone"]
    assert mining.suspicious == ()


# --------------------------------------------------------------------------- masking


def test_numbers_ids_and_addresses_are_masked_into_one_template() -> None:
    messages = [
        "order ord_4k2m9x7q failed for 550e8400-e29b-41d4-a716-446655440000 from 10.0.3.4:8080 "
        "after 1.5s (attempt 1/3, buf 0x7ffd2a, sha 3f9a1c2e4b5d6e7f)",
        "order ord_88zz1t0a failed for 123e4567-e89b-12d3-a456-426614174000 from 192.168.1.20 "
        "after 250ms (attempt 2/3, buf 0xdeadbeef, sha 0a1b2c3d4e5f6071)",
        "order usr_q1w2e3r4 failed for 00000000-0000-0000-0000-000000000001 from 172.16.0.9:443 "
        "after 3m (attempt 3/3, buf 0x0, sha abcdef0123456789)",
    ]
    after = [_line(10.0 * i, text) for i, text in enumerate(messages)]
    (pattern,) = _mine([], after).patterns
    assert pattern.template == (
        "order <ID> failed for <UUID> from <IP> after <DUR> "
        "(attempt <NUM>/<NUM>, buf <HEX>, sha <HEX>)"
    )
    assert pattern.after == 3 and pattern.example == messages[0]


def test_mask_keeps_words_versions_and_paths() -> None:
    text = "deploy v5.6.0 of src/app/serializers.py in load_order_history with base64"
    assert mask(text) == text
    assert mask("took 1777ms, id pppb98dm, status 503") == "took <DUR>, id <ID>, status <NUM>"


def test_different_errors_stay_different_patterns() -> None:
    after = _spread(5, "KeyError: 'customer' in serialize_order (order_id={i})", after=True)
    after += _spread(5, "PoolTimeout: connection pool exhausted in load_history ({i})", after=True)
    mining = _mine([], after)
    assert len(mining.patterns) == 2
    assert {p.status for p in mining.patterns} == {"new"}


# --------------------------------------------------------------------------- stack traces


TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/app/src/reviews/api.py", line 147, in handle\n'
    "    return await endpoint(request)\n"
    '  File "/app/src/reviews/serializers.py", line 88, in serialize_order\n'
    '    customer = order["customer"]\n'
    "KeyError: 'customer'"
)


def test_a_multi_line_message_is_mined_by_its_first_line_and_keeps_the_rest() -> None:
    after = [
        _line(10.0, f"KeyError: 'customer' in serialize_order (order_id=ord_1a2b3c4d)\n{TRACE}"),
        _line(20.0, "KeyError: 'customer' in serialize_order (order_id=ord_9z8y7x6w)"),
    ]
    (pattern,) = _mine([], after).patterns
    assert pattern.template == "KeyError: 'customer' in serialize_order (order_id=<ID>)"
    assert "\n" not in pattern.example
    assert pattern.stack_trace == TRACE


def test_a_stack_trace_in_an_extra_key_is_kept() -> None:
    after = [
        _line(10.0, "TimeoutError: gateway call exceeded budget", exception=TRACE),
        _line(20.0, "TimeoutError: gateway call exceeded budget"),
    ]
    (pattern,) = _mine([], after).patterns
    assert pattern.stack_trace == TRACE


def test_the_mining_feeds_suspect_evidence() -> None:
    after = [_line(10.0 * i, f"KeyError: 'customer' (order {i})\n{TRACE}") for i in range(5)]
    mining = _mine([], after)
    evidence = Evidence(messages=mining.messages, stack_traces=mining.stack_traces)
    assert evidence.messages == ("KeyError: 'customer' (order 0)",)
    assert evidence.stack_traces == (TRACE,)


# --------------------------------------------------------------------------- order and levels


def _mixed() -> tuple[list[LogLine], list[LogLine]]:
    before = _spread(20, "retrying reviews-db call (attempt {i}/3)", after=False, level="warn")
    before += _spread(4, "slow request: GET /api/v1/items took {i}00ms", after=False, level="warn")
    before += _spread(3, "request failed: upstream timed out after {i}s", after=False)
    before += _spread(30, "GET /api/v1/items/{i} 200", after=False, level="info")
    after = _spread(18, "retrying reviews-db call (attempt {i}/3)", after=True, level="warn")
    after += _spread(30, "request failed: upstream timed out after {i}s", after=True)
    after += _spread(9, "KeyError: 'customer' in serialize_order (id={i})", after=True)
    after += _spread(2, "client closed connection before response", after=True, level="WARN")
    after += _spread(40, "GET /api/v1/items/{i} 200", after=True, level="info")
    return before, after


def test_patterns_come_most_suspicious_first() -> None:
    mining = _mine(*_mixed())
    assert [(p.status, p.after) for p in mining.patterns] == [
        ("new", 9),  # new and too frequent to be chance
        ("grew", 30),
        ("new", 2),  # new, but two lines could be chance
        ("steady", 18),
        ("gone", 0),
    ]
    assert mining.suspicious == mining.patterns[:3]


def test_levels_pick_the_mined_lines_case_insensitively() -> None:
    before, after = _mixed()
    default = _mine(before, after)
    assert default.total_after == 59 and default.levels is not None
    assert not any("200" in p.example for p in default.patterns)
    only_errors = _mine(before, after, levels=("ERROR",))
    assert {lvl for p in only_errors.patterns for lvl in p.levels} == {"error"}
    everything = _mine(before, after, levels=None)
    assert everything.total_after == 99 and everything.levels is None
    assert any(p.example.startswith("GET /api/v1/items/") for p in everything.patterns)


def test_the_result_does_not_depend_on_input_order() -> None:
    before, after = _mixed()
    expected = _mine(before, after).model_dump()
    for seed in range(5):
        rng = random.Random(seed)
        shuffled_before, shuffled_after = before[:], after[:]
        rng.shuffle(shuffled_before)
        rng.shuffle(shuffled_after)
        assert _mine(shuffled_before, shuffled_after).model_dump() == expected


def test_windows_must_have_a_length() -> None:
    with pytest.raises(ValueError, match="window lengths must be positive"):
        mine([], [], before_s=0.0, after_s=60.0)
    assert mine([], [], before_s=1.0, after_s=1.0).patterns == ()


def test_split_at_puts_the_deploy_moment_after() -> None:
    lines = [_line(-1.0, "a"), _line(0.0, "b"), _line(1.0, "c")]
    before, after = split_at(lines, DEPLOY)
    assert [x.message for x in before] == ["a"]
    assert [x.message for x in after] == ["b", "c"]


def test_the_summary_is_json_and_clips_traces() -> None:
    long_trace = TRACE + "\n" + "\n".join(f"  frame {i}" for i in range(400))
    before, after = _mixed()
    after.append(_line(5.0, "fatal: worker crashed\n" + long_trace, level="fatal"))
    summary = _mine(before, after).summary(limit=3, max_trace_chars=200)
    text = json.dumps(summary)
    assert json.loads(text) == summary
    assert len(summary["patterns"]) == 3 and summary["more_patterns"] == 3
    assert summary["patterns_by_status"] == {
        "new": 3,
        "grew": 1,
        "steady": 1,
        "shrank": 0,
        "gone": 1,
    }
    crashed = [p for p in _mine(before, after).patterns if p.stack_trace]
    assert crashed and len(crashed[0].stack_trace or "") > 200
    clipped = _mine(before, after).summary(limit=10, max_trace_chars=200)["patterns"]
    traces = [p["stack_trace"] for p in clipped if p["stack_trace"]]
    assert traces and all(len(t) <= 200 + len("[...]\n") for t in traces)
    assert traces[0].endswith("frame 399")


# --------------------------------------------------------------------------- the small suite


def test_the_top_suspicious_pattern_carries_the_log_signature() -> None:
    """On every bundle with an expected log signature, the most suspicious new or grown
    pattern's template or example contains it; a signature already logged before the deploy
    (an outage that began earlier) must match its earlier lines, so it is not new."""
    hits: list[str] = []
    misses: list[str] = []
    for path in iter_bundles([SUITE]):
        bundle = read_bundle(path)
        expect = bundle.manifest.expect
        if expect is None or expect.log_signature is None or not bundle.logs:
            continue
        started = bundle.manifest.deploy.started_at
        before, after = split_at(bundle.logs, started)
        first = min(line.ts for line in bundle.logs)
        mining = mine(
            before,
            after,
            before_s=(started - first).total_seconds(),
            after_s=(bundle.manifest.watch_until - started).total_seconds(),
        )
        signature = expect.log_signature
        top = mining.suspicious[0] if mining.suspicious else None
        if top is not None and (signature in top.template or signature in top.example):
            hits.append(bundle.name)
        else:
            misses.append(f"{bundle.name}: {signature!r} vs {top and top.template!r}")
        if any(signature in line.message for line in before):
            (earlier,) = [p for p in mining.patterns if signature in p.example]
            assert earlier.before > 0 and earlier.status != "new", bundle.name
    total = len(hits) + len(misses)
    print(f"log_signature hit rate: {len(hits)}/{total}")
    assert total >= 15
    assert len(hits) / total >= 0.9, misses
