"""Writing deploy bundles: exact, byte-stable output that reads back as the same bundle."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.bundle import (
    Bundle,
    BundleManifest,
    LogLine,
    Series,
    SignalData,
    read_bundle,
    write_bundle,
)
from agent.bundle.writer import log_json, manifest_yaml, signal_rows, signals_csv
from agent.judge.replay import ReplayResult, look_times, replay
from tests.builders import ERRORS, LATENCY, MEMORY, START, TRAFFIC, manifest, service

T0 = START.timestamp()  # 1770558300.0
FILES = ("bundle.yaml", "signals.csv", "logs.jsonl", "change.diff", "alert.json")

ALERT: dict[str, Any] = {
    "version": "4",
    "status": "firing",
    "receiver": "vigil",
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": {"alertname": "HighErrorRate", "service": "checkout"},
    "commonAnnotations": {"summary": "checkout 5xx ratio above 1% — for 2m"},
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "service": "checkout"},
            "startsAt": "2026-02-08T13:48:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
        }
    ],
}
DIFF = (
    "diff --git a/src/payments/validation.py b/src/payments/validation.py\r\n"
    "--- a/src/payments/validation.py\r\n"
    "+++ b/src/payments/validation.py\r\n"
    "@@ -1 +1 @@\r\n"
    "-CARD = r'^\\d{13,19}$'\r\n"
    "+CARD = r'^\\d{16}$'  # no trailing newline at the end"
)


def full_manifest(**changes: Any) -> BundleManifest:
    base = manifest(
        [TRAFFIC, {**ERRORS, "query": 'sum(rate(x{code=~"5.."}[1m]))'}, LATENCY, MEMORY],
        strategy="canary",
    )
    data = base.model_dump()
    data.update(
        description="Card validation tightened.\nSecond line: with a colon.",
        environment="production",
        expect={
            "tier": 3,
            "onset": START + timedelta(seconds=90.5),
            "deploy_caused": True,
            "culprit_file": "src/payments/validation.py",
            "log_signature": "card number rejected: 'x'",
        },
    )
    data["deploy"]["commit"] = "0123456"  # digits: must stay a string
    data.update(changes)
    return BundleManifest.model_validate(data)


def logs() -> tuple[LogLine, ...]:
    return (
        LogLine.model_validate(
            {
                "ts": "2026-02-08T13:46:41.120Z",
                "level": "error",
                "service": "checkout",
                "message": "card number rejected",
                "labels": {"pod": "checkout-7d9f-x2"},
                "trace_id": "abc123",
                "attempt": 2,
                "nested": {"a": [1, 2.5, None, True]},
            }
        ),
        LogLine.model_validate(
            {"ts": "2026-02-08T13:46:42Z", "level": "info", "message": "carte refusée ✓"}
        ),
    )


def full_bundle() -> Bundle:
    """Whole-service series before the deploy, cohort series after it, every optional file."""
    whole = service(seed=3)
    t_after = np.arange(T0, T0 + 600, 15.0)
    rng = np.random.default_rng(7)
    data: dict[str, dict[str, Series]] = {name: dict(cs) for name, cs in whole.signals.items()}
    data["error_ratio"]["canary"] = Series(t_after, rng.uniform(0, 0.1, t_after.size))
    data["error_ratio"]["baseline"] = Series(t_after, rng.uniform(0, 0.01, t_after.size))
    memory_t = np.arange(T0 - 300, T0 + 300, 30.0)
    data["memory_bytes"] = {"": Series(memory_t, np.round(rng.uniform(1e9, 2e9, memory_t.size)))}
    return Bundle(
        manifest=full_manifest(),
        signals=SignalData(data),
        logs=logs(),
        diff=DIFF,
        alert=ALERT,
    )


def signal_dict(data: Mapping[str, Mapping[str, Series]]) -> dict[tuple[str, str], Series]:
    return {(name, cohort): s for name, cs in data.items() for cohort, s in cs.items()}


def assert_same_signals(
    got: Mapping[str, Mapping[str, Series]], want: Mapping[str, Mapping[str, Series]]
) -> None:
    g, w = signal_dict(got), signal_dict(want)
    assert set(g) == set(w)
    for key in w:
        assert g[key].t.tolist() == w[key].t.tolist(), key
        assert g[key].v.tolist() == w[key].v.tolist(), key


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --- round trip and stability ----------------------------------------------------------------


def test_round_trip_equals_the_original(tmp_path: Path) -> None:
    original = full_bundle()
    folder = write_bundle(original, tmp_path / "out")
    assert folder == tmp_path / "out"
    back = read_bundle(folder)
    assert back.manifest == original.manifest
    assert_same_signals(back.signals, original.signals)
    assert back.logs == original.logs
    assert back.logs is not None and back.logs[0].model_extra == {
        "trace_id": "abc123",
        "attempt": 2,
        "nested": {"a": [1, 2.5, None, True]},
    }
    assert back.diff == DIFF
    assert back.alert == ALERT
    assert back.path == folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)


def test_round_trip_of_a_real_bundle(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"
    original = read_bundle(src / "canary_regression-0019")
    back = read_bundle(write_bundle(original, tmp_path / "copy"))
    assert back.manifest == original.manifest
    assert_same_signals(back.signals, original.signals)
    assert back.logs == original.logs
    assert (back.diff, back.alert) == (original.diff, original.alert)


def test_output_is_byte_stable(tmp_path: Path) -> None:
    original = full_bundle()
    first = files(write_bundle(original, tmp_path / "a"))
    second = files(write_bundle(original, tmp_path / "b"))
    assert first == second
    # Read back and written again: the same bytes, file for file.
    third = files(write_bundle(read_bundle(tmp_path / "a"), tmp_path / "c"))
    assert third == first
    # Writing over itself changes nothing either.
    again = files(write_bundle(read_bundle(tmp_path / "a"), tmp_path / "a"))
    assert again == first


def test_write_creates_parents_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    folder = write_bundle(full_bundle(), tmp_path / "deep" / "er" / "bundle")
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)


def test_optional_files_the_bundle_lacks_are_removed(tmp_path: Path) -> None:
    folder = write_bundle(full_bundle(), tmp_path / "b")
    bare = Bundle(manifest=full_manifest(), signals=full_bundle().signals)
    write_bundle(bare, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["bundle.yaml", "signals.csv"]
    back = read_bundle(folder)
    assert (back.logs, back.diff, back.alert) == (None, None, None)
    # Empty logs are written as an empty file: present, not absent.
    write_bundle(Bundle(manifest=full_manifest(), signals=bare.signals, logs=()), folder)
    assert (folder / "logs.jsonl").read_bytes() == b""
    assert read_bundle(folder).logs == ()


# --- exact output ----------------------------------------------------------------------------


def small_bundle() -> Bundle:
    m = manifest([TRAFFIC, ERRORS, MEMORY])
    return Bundle(
        manifest=m,
        signals=SignalData(
            {
                "request_rate": {"": Series(np.array([T0, T0 + 15.5]), np.array([200.0, 1e-07]))},
                "error_ratio": {
                    "": Series(np.array([T0]), np.array([math.nan])),
                    "canary": Series(np.array([T0]), np.array([0.25])),
                    "baseline": Series(np.array([T0 + 15.5]), np.array([-3.0])),
                },
                "memory_bytes": {
                    "": Series(np.array([T0, T0 + 30]), np.array([1228455911.0, 1e16]))
                },
            }
        ),
    )


def test_signals_csv_exact_text() -> None:
    assert signals_csv(small_bundle()) == (
        "timestamp,signal,value,cohort\n"
        "1770558300,error_ratio,,\n"  # a NaN is a gap: an empty cell
        "1770558300,error_ratio,0.25,canary\n"
        "1770558300,memory_bytes,1228455911,\n"  # whole numbers without ".0"
        "1770558300,request_rate,200,\n"
        "1770558315.5,error_ratio,-3,baseline\n"
        "1770558315.5,request_rate,1e-07,\n"
        "1770558330,memory_bytes,1e+16,\n"  # past 2**53: repr, still exact
    )


def test_signal_rows_sorted_by_time_signal_cohort() -> None:
    rows = signal_rows(small_bundle())
    assert [row[:3] for row in rows] == [
        (T0, "error_ratio", ""),
        (T0, "error_ratio", "canary"),
        (T0, "memory_bytes", ""),
        (T0, "request_rate", ""),
        (T0 + 15.5, "error_ratio", "baseline"),
        (T0 + 15.5, "request_rate", ""),
        (T0 + 30, "memory_bytes", ""),
    ]


def test_small_bundle_reads_back_with_the_gap_absent(tmp_path: Path) -> None:
    folder = write_bundle(small_bundle(), tmp_path / "b")
    assert (folder / "signals.csv").read_text() == signals_csv(small_bundle())
    data = read_bundle(folder).signals
    gap = data.series("error_ratio", "")
    assert gap is not None and len(gap) == 0
    memory = data.series("memory_bytes")
    assert memory is not None and memory.v.tolist() == [1228455911.0, 1e16]


def test_manifest_yaml_exact_text() -> None:
    assert manifest_yaml(full_manifest()) == (
        "format: 1\n"
        "name: test-bundle\n"
        "description: |-\n"
        "  Card validation tightened.\n"
        "  Second line: with a colon.\n"
        "service: checkout\n"
        "environment: production\n"
        "deploy:\n"
        "  id: deploy-1\n"
        "  version: v2\n"
        "  previous_version: v1\n"
        "  started_at: 2026-02-08T13:45:00Z\n"
        "  finished_at: 2026-02-08T13:47:00Z\n"
        "  strategy: canary\n"
        "  commit: '0123456'\n"
        "step: 15s\n"
        "watch_until: 2026-02-08T14:05:00Z\n"
        "signals:\n"
        "- name: request_rate\n"
        "  kind: traffic\n"
        "  unit: per_second\n"
        "  bad_direction: down\n"
        "- name: error_ratio\n"
        "  kind: errors\n"
        "  unit: ratio\n"
        "  bad_direction: up\n"
        "  slo: 0.01\n"
        "  critical: true\n"
        "  events: request_rate\n"
        '  query: sum(rate(x{code=~"5.."}[1m]))\n'
        "- name: latency_p95\n"
        "  kind: latency\n"
        "  unit: seconds\n"
        "  bad_direction: up\n"
        "  slo: 0.5\n"
        "  critical: true\n"
        "- name: memory_bytes\n"
        "  kind: saturation\n"
        "  unit: bytes\n"
        "  bad_direction: up\n"
        "expect:\n"
        "  tier: 3\n"
        "  onset: 2026-02-08T13:46:30.5Z\n"
        "  deploy_caused: true\n"
        "  culprit_file: src/payments/validation.py\n"
        "  log_signature: 'card number rejected: ''x'''\n"
    )


def test_manifest_yaml_omits_what_is_absent() -> None:
    text = manifest_yaml(manifest([TRAFFIC], finished_min=None))
    for key in ("description", "environment", "finished_at", "commit", "expect", "critical"):
        assert f"{key}:" not in text
    assert "slo:" not in text and "query:" not in text
    # A long query stays on one line.
    long_query = "sum(rate(" + "x" * 300 + "[1m]))"
    text = manifest_yaml(manifest([{**TRAFFIC, "query": long_query}]))
    assert f"  query: {long_query}\n" in text


def test_log_line_exact_json() -> None:
    first, second = logs()
    # The spec's example line, then the extra keys in their order.
    assert log_json(first) == (
        '{"ts": "2026-02-08T13:46:41.120Z", "level": "error", "service": "checkout", '
        '"message": "card number rejected", "labels": {"pod": "checkout-7d9f-x2"}, '
        '"trace_id": "abc123", "attempt": 2, "nested": {"a": [1, 2.5, null, true]}}'
    )
    # No service, no labels: omitted; non-ASCII kept as is.
    assert log_json(second) == (
        '{"ts": "2026-02-08T13:46:42.000Z", "level": "info", "message": "carte refusée ✓"}'
    )


def test_log_time_is_utc_and_truncated_to_milliseconds() -> None:
    line = LogLine.model_validate(
        {"ts": "2026-02-08T14:46:41.120999+01:00", "level": "warn", "message": "m"}
    )
    assert json.loads(log_json(line))["ts"] == "2026-02-08T13:46:41.120Z"


def test_alert_and_diff_files_exact(tmp_path: Path) -> None:
    folder = write_bundle(full_bundle(), tmp_path / "b")
    assert (folder / "alert.json").read_text(encoding="utf-8") == json.dumps(ALERT, indent=2) + "\n"
    assert (folder / "change.diff").read_bytes() == DIFF.encode(
        "utf-8"
    )  # CRLF kept, no newline added
    text = (folder / "logs.jsonl").read_text(encoding="utf-8")
    assert text == "".join(log_json(line) + "\n" for line in logs())


# --- refusals --------------------------------------------------------------------------------


def one_series(name: str, cohort: str, t: list[float], v: list[float]) -> Bundle:
    return Bundle(
        manifest=manifest([TRAFFIC]),
        signals=SignalData({name: {cohort: Series(np.array(t), np.array(v))}}),
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (one_series("request_rate", "", [T0], [math.inf]), "values must be finite or NaN"),
        (one_series("request_rate", "", [T0], [-math.inf]), "values must be finite or NaN"),
        (one_series("request_rate", "", [math.nan], [1.0]), "timestamp must be finite"),
        (one_series("error_ratio", "", [T0], [1.0]), "'error_ratio' is not declared"),
        (one_series("request_rate", "green", [T0], [1.0]), "unknown cohort 'green'"),
    ],
    ids=["inf", "-inf", "nan-time", "undeclared", "bad-cohort"],
)
def test_unwritable_data_is_refused_before_touching_the_folder(
    tmp_path: Path, bad: Bundle, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_bundle(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- properties ------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
sample_value = st.one_of(
    finite,
    st.integers(-(2**62), 2**62).map(float),  # whole numbers, written without ".0"
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3)),
    st.just(math.nan),  # a gap
)
timestamp = st.one_of(
    st.integers(1_000_000_000, 2_000_000_000).map(float),
    st.floats(1e9, 2e9, allow_nan=False).map(lambda x: round(x, 3)),
    finite,
)
SERIES_KEYS = [
    ("request_rate", ""),
    ("error_ratio", ""),
    ("error_ratio", "baseline"),
    ("error_ratio", "canary"),
    ("latency_p95", "canary"),
]


@st.composite
def signal_data(draw: st.DrawFn) -> dict[tuple[str, str], list[tuple[float, float]]]:
    keys = draw(st.lists(st.sampled_from(SERIES_KEYS), unique=True, max_size=len(SERIES_KEYS)))
    out: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for key in keys:
        times = draw(st.lists(timestamp, unique=True, max_size=25))
        out[key] = [(t, draw(sample_value)) for t in times]
    return out


def bundle_of(samples: dict[tuple[str, str], list[tuple[float, float]]]) -> Bundle:
    data: dict[str, dict[str, Series]] = {}
    for (name, cohort), pairs in samples.items():
        pairs = sorted(pairs)
        t = np.array([p[0] for p in pairs], dtype=np.float64)
        v = np.array([p[1] for p in pairs], dtype=np.float64)
        data.setdefault(name, {})[cohort] = Series(t, v)  # NaN kept: written as a gap
    return Bundle(manifest=manifest([TRAFFIC, ERRORS, LATENCY]), signals=SignalData(data))


@settings(max_examples=50, deadline=None)
@given(samples=signal_data())
def test_series_round_trip_exactly(
    samples: dict[tuple[str, str], list[tuple[float, float]]],
) -> None:
    original = bundle_of(samples)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_bundle(original, Path(tmp) / "b")
        first = (folder / "signals.csv").read_bytes()
        back = read_bundle(folder)
        got = signal_dict(back.signals)
        # A series with rows reads back with its samples (gaps absent); one without rows is absent.
        want = {
            key: sorted(p for p in pairs if not math.isnan(p[1]))
            for key, pairs in samples.items()
            if pairs
        }
        assert set(got) == set(want)
        for key, pairs in want.items():
            assert got[key].t.tolist() == [p[0] for p in pairs], key
            assert got[key].v.tolist() == [p[1] for p in pairs], key
        # Written again: the same bytes, less the gap rows that were not read back.
        second = (write_bundle(back, Path(tmp) / "c") / "signals.csv").read_bytes()
        kept = [row for row in first.splitlines(keepends=True) if row.split(b",")[2] != b""]
        assert second == b"".join(kept)
        assert (write_bundle(original, Path(tmp) / "d") / "signals.csv").read_bytes() == first


ANY_TEXT = st.text(min_size=1, max_size=40)
TRICKY_TEXT = [
    "yes",
    "null",
    "~",
    "0123",
    "1e3",
    "2026-02-08",
    "#not a comment",
    "key: value",
    "- item",
    "'quoted'",
    '"double"',
    " leading and trailing ",
    "trailing newline\n",
    "\nleading newline",
    "two\n\nblank\n\n\nlines",
    "tab\there",
    "crlf\r\nline",
    "nul\x00byte",
    "next\x85line",
    "line\u2028separator",
    "paragraph\u2029separator",
    "bom\ufeffinside",
    "emoji 🚀 and ünïcode",
    "back\\slash",
    "|",
    ">",
    "&anchor",
    "*alias",
    "!tag",
    "%directive",
    "@at",
    "`tick`",
]


def with_text(text: str) -> BundleManifest:
    base = full_manifest().model_dump()
    base["description"] = text
    base["environment"] = text
    base["deploy"]["commit"] = text
    base["deploy"]["version"] = text
    base["signals"][0]["query"] = text
    base["expect"]["log_signature"] = text
    return BundleManifest.model_validate(base)


def round_trip_manifest(m: BundleManifest, folder: Path) -> BundleManifest:
    write_bundle(Bundle(manifest=m, signals=SignalData({})), folder)
    return read_bundle(folder).manifest


@pytest.mark.parametrize("text", TRICKY_TEXT)
def test_manifest_text_round_trips(tmp_path: Path, text: str) -> None:
    m = with_text(text)
    back = round_trip_manifest(m, tmp_path / "b")
    assert back == m
    assert back.description == text


@settings(max_examples=50, deadline=None)
@given(
    text=ANY_TEXT,
    started=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2099, 1, 1),
        timezones=st.just(UTC),
    ),
    watch=st.integers(1, 10**6),
    slo=st.one_of(st.none(), finite),
)
def test_manifest_round_trips(text: str, started: datetime, watch: int, slo: float | None) -> None:
    data = with_text(text).model_dump()
    data["deploy"]["started_at"] = started
    data["deploy"]["finished_at"] = None
    data["watch_until"] = started + timedelta(microseconds=watch)
    data["signals"][1]["slo"] = slo
    data["expect"]["onset"] = started
    m = BundleManifest.model_validate(data)
    with tempfile.TemporaryDirectory() as tmp:
        back = round_trip_manifest(m, Path(tmp) / "b")
        assert back == m
        assert back.deploy.started_at == started
        again = manifest_yaml(back)
    assert again == manifest_yaml(m)


log_key = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda k: k not in {"ts", "level", "service", "message", "labels"} and not k.startswith("model")
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60), finite, st.text())


@settings(max_examples=50, deadline=None)
@given(
    lines=st.lists(
        st.fixed_dictionaries(
            {
                "ts": st.datetimes(
                    min_value=datetime(2000, 1, 1),
                    max_value=datetime(2099, 1, 1),
                    timezones=st.just(UTC),
                ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
                "level": st.sampled_from(["debug", "info", "warn", "error"]),
                "message": st.text(),
            },
            optional={
                "service": st.text(),
                "labels": st.dictionaries(st.text(), st.text(), max_size=3),
                "extra": st.dictionaries(log_key, json_scalar, max_size=3),
            },
        ),
        max_size=8,
    )
)
def test_logs_round_trip(lines: list[dict[str, Any]]) -> None:
    parsed = []
    for raw in lines:
        extra = raw.pop("extra", {})
        parsed.append(LogLine.model_validate({**raw, **extra}))
    original = Bundle(manifest=manifest([TRAFFIC]), signals=SignalData({}), logs=tuple(parsed))
    with tempfile.TemporaryDirectory() as tmp:
        back = read_bundle(write_bundle(original, Path(tmp) / "b"))
    assert back.logs == original.logs


# --- the replay result (the spec's Replay section) -------------------------------------------

SPEC_LINE = (
    '{"bundle": "checkout-card-regex", "max_tier": 3, "first_at": {"1": "2026-02-08T13:46:45Z", '
    '"2": "2026-02-08T13:47:00Z", "3": "2026-02-08T13:47:15Z"}}'
)


def test_replay_result_is_the_spec_line() -> None:
    result = ReplayResult(
        bundle="checkout-card-regex",
        max_tier=3,
        first_at={3: T0 + 135, 1: T0 + 105, 2: T0 + 120},  # any order in: 1, 2, 3 out
    )
    out = result.to_json()
    assert list(out) == ["bundle", "max_tier", "first_at"]
    assert list(out["first_at"]) == ["1", "2", "3"]
    assert json.dumps(out, separators=(", ", ": ")) == SPEC_LINE


def test_replay_result_unreached_is_null_and_fractions_kept() -> None:
    result = ReplayResult(bundle="b", max_tier=1, first_at={1: T0 + 7.5, 2: None, 3: None})
    assert json.dumps(result.to_json()) == (
        '{"bundle": "b", "max_tier": 1, "first_at": '
        '{"1": "2026-02-08T13:45:07.5Z", "2": null, "3": null}}'
    )


@dataclass
class ScriptedJudge:
    """Gives the tier a script says from a moment on; records every moment it was asked."""

    script: dict[float, int]
    name: str = "scripted"
    asked: list[float] = field(default_factory=list)

    def watch(self, bundle: Bundle) -> Any:
        def tier_at(moment: float) -> int:
            self.asked.append(moment)
            due = [at for at in self.script if at <= moment]
            return self.script[max(due)] if due else 0

        return tier_at


@pytest.mark.parametrize(
    ("script", "max_tier", "first_at", "last_asked"),
    [
        ({}, 0, {1: None, 2: None, 3: None}, 1200),
        ({60: 2}, 2, {1: 60, 2: 60, 3: None}, 1200),
        ({30: 1, 90: 3}, 3, {1: 30, 2: 90, 3: 90}, 90),
        ({45: 2, 300: 0, 600: 1}, 2, {1: 45, 2: 45, 3: None}, 1200),
        ({0: 3}, 3, {1: 0, 2: 0, 3: 0}, 0),
    ],
    ids=["healthy", "jump-to-2", "stops-at-3", "recovers", "bad-at-start"],
)
def test_replay_first_moments(
    script: dict[float, int],
    max_tier: int,
    first_at: dict[int, float | None],
    last_asked: float,
) -> None:
    b = service(seed=0)  # watch_until is 20 minutes after the start, step 15 s
    judge = ScriptedJudge({T0 + at: tier for at, tier in script.items()})
    result = replay(b, judge)
    assert result.bundle == "test-bundle"
    assert result.max_tier == max_tier
    assert result.first_at == {k: None if v is None else T0 + v for k, v in first_at.items()}
    # Every step from the start, in order, never past watch_until: no look-ahead.
    assert judge.asked == [T0 + 15 * i for i in range(int(last_asked // 15) + 1)]
    assert look_times(b)[0] == T0 and look_times(b)[-1] == b.manifest.watch_until.timestamp()
    assert len(look_times(b)) == 81
