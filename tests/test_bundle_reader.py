"""Reading deploy bundles: typed values from good input, file:line:field from bad input."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agent.bundle import (
    SignalData,
    SignalKind,
    SignalUnit,
    Strategy,
    iter_bundles,
    read_bundle,
    read_manifest,
)
from agent.bundle.reader import read_alert, read_diff, read_logs, read_signals
from agent.cli import app
from agent.errors import BundleError, InputError, VigilError

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "evals" / "suites" / "small"
SMALL_BUNDLES = sorted(p.name for p in SMALL.iterdir() if (p / "bundle.yaml").is_file())

runner = CliRunner()

# 2026-02-08T13:45:00Z, the deploy start of the bundle below.
T0 = 1770558300

MANIFEST = textwrap.dedent(
    """\
    format: 1
    name: checkout-card-regex
    description: Card validation regex tightened.
    service: checkout
    environment: production
    deploy:
      id: deploy-8812
      version: v2.4.1
      previous_version: v2.4.0
      started_at: 2026-02-08T13:45:00Z
      finished_at: 2026-02-08T14:47:00+01:00
      strategy: canary
      commit: 9f3c2e1
    step: 15s
    watch_until: 2026-02-08T14:15:00Z
    signals:
      - name: request_rate
        kind: traffic
        unit: per_second
        bad_direction: down
      - name: error_ratio
        kind: errors
        unit: ratio
        bad_direction: up
        slo: 0.01
        critical: true
        events: request_rate
        query: 'sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests[1m]))'
      - name: latency_p95
        kind: latency
        unit: seconds
        bad_direction: up
        slo: 0.5
        critical: true
      - name: memory_bytes
        kind: saturation
        unit: bytes
        bad_direction: both
    expect:
      tier: 3
      onset: 2026-02-08T13:46:30Z
      deploy_caused: true
      culprit_file: src/payments/validation.py
      log_signature: "card number rejected"
    """
)

# Rows out of order, gaps (empty and NaN), integer and decimal timestamps, cohorts.
SIGNALS = textwrap.dedent(
    f"""\
    timestamp,signal,value,cohort
    {T0 + 30},error_ratio,0.0009,
    {T0},request_rate,200,
    {T0},error_ratio,0.0011,
    {T0 + 15},error_ratio,,
    {T0 + 45},error_ratio,NaN,
    {T0}.5,latency_p95,0.182,
    {T0 + 60},error_ratio,0.0410,canary
    {T0 + 15}.25,latency_p95,0.19,
    {T0 + 60},error_ratio,0.0012,baseline
    {T0 + 75},error_ratio,0.0013,baseline
    {T0 + 45},error_ratio,0.043,canary
    {T0 + 30},latency_p95,0.2,
    {T0 + 15},request_rate,210.5,
    {T0},memory_bytes,1228455911,
    """
)

LOGS = (
    '{"ts": "2026-02-08T13:46:41.120Z", "level": "error", "service": "checkout", '
    '"message": "card number rejected", "labels": {"pod": "checkout-7d9f-x2"}, '
    '"trace_id": "abc123", "attempt": 2}\n'
    "\n"
    '{"ts": "2026-02-08T14:46:42+01:00", "level": "info", "message": "GET /health 200"}\n'
)

DIFF = (
    "diff --git a/src/payments/validation.py b/src/payments/validation.py\r\n"
    "--- a/src/payments/validation.py\r\n"
    "+++ b/src/payments/validation.py\r\n"
    "@@ -1 +1 @@\r\n"
    "-CARD = r'^\\d{13,19}$'\r\n"
    "+CARD = r'^\\d{16}$'\r\n"
)

ALERT = {
    "version": "4",
    "status": "firing",
    "receiver": "vigil",
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": {"alertname": "HighErrorRate", "service": "checkout"},
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "service": "checkout"},
            "startsAt": "2026-02-08T13:48:00Z",
        }
    ],
}
ALERT_TEXT = json.dumps(ALERT, indent=2) + "\n"

FILES = {
    "bundle.yaml": MANIFEST,
    "signals.csv": SIGNALS,
    "logs.jsonl": LOGS,
    "change.diff": DIFF,
    "alert.json": ALERT_TEXT,
}


def make_bundle(folder: Path, files: dict[str, str | None] | None = None) -> Path:
    """A bundle folder with the good files above; `files` replaces (or, with None, drops) some."""
    folder.mkdir(parents=True, exist_ok=True)
    content: dict[str, str | None] = {**FILES, **(files or {})}
    for name, text in content.items():
        if text is not None:
            # Bytes, so that the CRLF of the diff is kept as written.
            (folder / name).write_bytes(text.encode("utf-8"))
    return folder


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "good")


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def assert_series(data: SignalData, name: str, cohort: str, t: list[float], v: list[float]) -> None:
    series = data.series(name, cohort)
    assert series is not None, (name, cohort)
    assert series.t.dtype == np.float64 and series.v.dtype == np.float64
    assert series.t.tolist() == t, (name, cohort)
    assert series.v.tolist() == v, (name, cohort)


# --- good input -------------------------------------------------------------------------


def test_manifest_values_are_typed(good: Path) -> None:
    m = read_bundle(good).manifest
    assert m.format == 1
    assert m.name == "checkout-card-regex"
    assert m.description == "Card validation regex tightened."
    assert (m.service, m.environment) == ("checkout", "production")
    d = m.deploy
    assert (d.id, d.version, d.previous_version, d.commit) == (
        "deploy-8812",
        "v2.4.1",
        "v2.4.0",
        "9f3c2e1",
    )
    assert d.started_at == utc(2026, 2, 8, 13, 45)
    assert d.started_at.tzinfo == UTC
    # An offset is converted to UTC.
    assert d.finished_at == utc(2026, 2, 8, 13, 47)
    assert d.finished_at is not None and d.finished_at.tzinfo == UTC
    assert d.strategy is Strategy.CANARY
    assert m.step == "15s" and m.step_seconds == 15.0
    assert m.watch_until == utc(2026, 2, 8, 14, 15)
    assert [s.name for s in m.signals] == [
        "request_rate",
        "error_ratio",
        "latency_p95",
        "memory_bytes",
    ]
    errors = m.signal("error_ratio")
    assert errors.kind is SignalKind.ERRORS
    assert errors.unit is SignalUnit.RATIO
    assert errors.bad_direction == "up"
    assert errors.slo == 0.01
    assert errors.critical is True
    assert errors.events == "request_rate"
    assert errors.query == (
        'sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests[1m]))'
    )
    assert errors.is_ratio
    traffic = m.signal("request_rate")
    assert traffic.kind is SignalKind.TRAFFIC and traffic.unit is SignalUnit.PER_SECOND
    assert (traffic.slo, traffic.critical, traffic.events, traffic.query) == (
        None,
        False,
        None,
        None,
    )
    assert m.signal("memory_bytes").bad_direction == "both"
    assert m.expect is not None
    assert m.expect.tier == 3
    assert m.expect.onset == utc(2026, 2, 8, 13, 46, 30)
    assert m.expect.deploy_caused is True
    assert m.expect.culprit_file == "src/payments/validation.py"
    assert m.expect.log_signature == "card number rejected"


def test_read_manifest_alone_and_from_the_file_path(good: Path) -> None:
    assert read_manifest(good) == read_manifest(good / "bundle.yaml")
    assert read_manifest(good).name == "checkout-card-regex"
    assert read_bundle(good / "bundle.yaml").path == good


def test_series_are_sorted_with_gaps_removed(good: Path) -> None:
    data = read_bundle(good).signals
    # Declared order of signals, then "", baseline, canary.
    assert list(data) == ["request_rate", "error_ratio", "latency_p95", "memory_bytes"]
    assert list(data["error_ratio"]) == ["", "baseline", "canary"]
    assert_series(data, "request_rate", "", [T0, T0 + 15], [200.0, 210.5])
    # T0+15 (empty) and T0+45 (NaN) are gaps: absent, not NaN.
    assert_series(data, "error_ratio", "", [T0, T0 + 30], [0.0011, 0.0009])
    assert_series(data, "memory_bytes", "", [T0], [1228455911.0])
    whole = data.series("error_ratio")
    assert whole is not None and not np.isnan(whole.v).any()


def test_integer_and_decimal_timestamps(good: Path) -> None:
    data = read_bundle(good).signals
    assert_series(data, "latency_p95", "", [T0 + 0.5, T0 + 15.25, T0 + 30], [0.182, 0.19, 0.2])


def test_cohort_series_are_separate(good: Path) -> None:
    data = read_bundle(good).signals
    assert data.has_cohorts
    assert_series(data, "error_ratio", "canary", [T0 + 45, T0 + 60], [0.043, 0.041])
    assert_series(data, "error_ratio", "baseline", [T0 + 60, T0 + 75], [0.0012, 0.0013])
    assert data.series("latency_p95", "canary") is None
    assert data.series("request_rate", "baseline") is None
    assert list(data["latency_p95"]) == [""]


def test_series_until_has_no_look_ahead(good: Path) -> None:
    data = read_bundle(good).signals.until(T0 + 30)
    assert_series(data, "error_ratio", "", [T0, T0 + 30], [0.0011, 0.0009])
    assert_series(data, "error_ratio", "canary", [], [])
    assert_series(data, "latency_p95", "", [T0 + 0.5, T0 + 15.25, T0 + 30], [0.182, 0.19, 0.2])


def test_logs_are_typed_and_keep_extra_keys(good: Path) -> None:
    logs = read_bundle(good).logs
    assert logs is not None
    assert len(logs) == 2  # the blank line is not a log line
    first, second = logs
    assert first.ts == datetime(2026, 2, 8, 13, 46, 41, 120000, tzinfo=UTC)
    assert (first.level, first.service, first.message) == (
        "error",
        "checkout",
        "card number rejected",
    )
    assert first.labels == {"pod": "checkout-7d9f-x2"}
    assert first.model_extra == {"trace_id": "abc123", "attempt": 2}
    assert second.ts == utc(2026, 2, 8, 13, 46, 42)
    assert second.service is None and second.labels == {}
    assert second.message == "GET /health 200"
    assert second.model_extra == {}


def test_diff_and_alert_are_read_as_written(good: Path) -> None:
    b = read_bundle(good)
    assert b.diff == DIFF  # CRLF line endings kept
    assert b.alert == ALERT
    assert b.path == good
    assert b.name == "checkout-card-regex"


def test_optional_files_absent_are_none(tmp_path: Path) -> None:
    folder = make_bundle(
        tmp_path / "b", {"logs.jsonl": None, "change.diff": None, "alert.json": None}
    )
    b = read_bundle(folder)
    assert (b.logs, b.diff, b.alert) == (None, None, None)
    assert len(b.signals) == 4


def test_no_expect_and_empty_logs(tmp_path: Path) -> None:
    manifest = MANIFEST[: MANIFEST.index("expect:")]
    folder = make_bundle(tmp_path / "b", {"bundle.yaml": manifest, "logs.jsonl": ""})
    b = read_bundle(folder)
    assert b.manifest.expect is None
    assert b.logs == ()  # present but empty: not the same as absent


def test_with_logs_false_skips_logs(good: Path) -> None:
    b = read_bundle(good, with_logs=False)
    assert b.logs is None
    assert b.alert == ALERT


def test_bom_crlf_and_blank_lines_in_signals(tmp_path: Path) -> None:
    text = "\ufeff" + SIGNALS.replace("\n", "\r\n").replace(
        f"{T0},request_rate,200,", f"\r\n{T0},request_rate,200,"
    )
    folder = make_bundle(tmp_path / "b", {"signals.csv": text, "bundle.yaml": "\ufeff" + MANIFEST})
    data = read_bundle(folder).signals
    assert_series(data, "request_rate", "", [T0, T0 + 15], [200.0, 210.5])
    assert_series(data, "error_ratio", "canary", [T0 + 45, T0 + 60], [0.043, 0.041])


def test_only_gaps_gives_an_empty_series_and_undeclared_rows_none(tmp_path: Path) -> None:
    text = f"timestamp,signal,value,cohort\n{T0},memory_bytes,,\n{T0 + 15},memory_bytes,nan,\n"
    folder = make_bundle(tmp_path / "b", {"signals.csv": text})
    data = read_bundle(folder).signals
    assert_series(data, "memory_bytes", "", [], [])
    assert data.series("error_ratio") is None  # declared, but no rows
    assert not data.has_cohorts


def test_diff_with_bytes_of_another_encoding_is_still_read(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path / "b", {"change.diff": None})
    (folder / "change.diff").write_bytes(b"+name = '\xe9t\xe9'\n")
    assert read_diff(folder) == "+name = '\ufffdt\ufffd'\n"


@pytest.mark.parametrize("name", SMALL_BUNDLES)
def test_every_small_suite_bundle_reads(name: str) -> None:
    folder = SMALL / name
    b = read_bundle(folder)
    m = b.manifest
    assert m.name == name
    assert m.expect is not None
    assert m.deploy.started_at < m.watch_until
    declared = {s.name for s in m.signals}
    assert set(b.signals) <= declared
    # Every non-gap row of signals.csv, counted independently of the reader.
    with (folder / "signals.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["timestamp", "signal", "value", "cohort"]
    samples = [r for r in rows[1:] if r and r[2].strip() and r[2].strip().lower() != "nan"]
    assert sum(len(s) for cs in b.signals.values() for s in cs.values()) == len(samples)
    first = samples[0]
    series = b.signals.series(first[1], first[3])
    assert series is not None
    at = np.flatnonzero(series.t == float(first[0]))
    assert at.size == 1 and series.v[at[0]] == float(first[2])
    for cohorts in b.signals.values():
        for s in cohorts.values():
            assert bool(np.all(np.diff(s.t) > 0))
            assert not np.isnan(s.v).any()
    assert b.logs is not None and len(b.logs) > 0
    assert all(line.ts.tzinfo == UTC for line in b.logs)
    assert b.diff is not None and b.diff.startswith("diff --git")
    assert (b.alert is not None) == (folder / "alert.json").is_file()
    if b.alert is not None:
        assert b.alert["version"] == "4" and isinstance(b.alert["alerts"], list)


def test_small_suite_has_bundles() -> None:
    assert len(SMALL_BUNDLES) >= 10


def test_iter_bundles_lists_a_suite_sorted() -> None:
    assert [p.name for p in iter_bundles([SMALL])] == SMALL_BUNDLES
    assert all(p.parent == SMALL for p in iter_bundles([SMALL]))


def test_iter_bundles_nested_hidden_and_single(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    make_bundle(suite / "b-2")
    make_bundle(suite / "a-1")
    make_bundle(suite / "group" / "c-3")
    make_bundle(suite / ".hidden" / "d-4")
    # A bundle is not descended: a folder inside it is not another bundle.
    make_bundle(suite / "a-1" / "inner")
    (suite / "empty").mkdir()
    found = list(iter_bundles([suite]))
    assert found == [suite / "a-1", suite / "b-2", suite / "group" / "c-3"]
    # A bundle itself, its bundle.yaml, and several paths in order.
    assert list(iter_bundles([suite / "b-2"])) == [suite / "b-2"]
    assert list(iter_bundles([suite / "b-2" / "bundle.yaml", suite / "group"])) == [
        suite / "b-2",
        suite / "group" / "c-3",
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nope", "no such bundle or suite folder"),
        (lambda p: (p / "file.txt", (p / "file.txt").write_text("x"))[0], "neither a bundle"),
        (lambda p: (p / "empty", (p / "empty").mkdir())[0], "no bundles in this suite folder"),
    ],
    ids=["missing", "a-file", "empty-suite"],
)
def test_iter_bundles_errors(tmp_path: Path, make: Callable[[Path], Path], message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(BundleError) as info:
        list(iter_bundles([path]))
    assert info.value.path == path
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}:")


# --- malformed input -----------------------------------------------------------------------


def line_with(text: str, needle: str) -> int:
    """1-based number of the one line of `text` that contains `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def swap(old: str, new: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        assert text.count(old) == 1, old
        return text.replace(old, new)

    return mutate


def append(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


def replace_all(new: str) -> Callable[[str], str]:
    return lambda _text: new


@dataclass(frozen=True)
class Bad:
    file: str
    mutate: Callable[[str], str]
    field: str | None
    fragment: str
    # The expected line: the one line of the broken file holding `at`, or `line` as given.
    at: str | None = None
    line: int | None = None


YAML_CASES: dict[str, Bad] = {
    "yaml-syntax": Bad(
        "bundle.yaml",
        swap("service: checkout", "service: checkout: shop"),
        None,
        "not valid YAML: mapping values are not allowed",
        at="service: checkout: shop",
    ),
    "yaml-tab": Bad(
        "bundle.yaml",
        swap("  version: v2.4.1\n", "  version: v2.4.1\n\tcommit: 1\n"),
        None,
        "not valid YAML: found a tab character",
        at="\tcommit: 1",
    ),
    "yaml-two-documents": Bad(
        "bundle.yaml", append("---\nformat: 1\n"), None, "not valid YAML", at="---"
    ),
    "yaml-not-a-mapping": Bad(
        "bundle.yaml", replace_all("- format: 1\n"), None, "must be a YAML mapping", line=1
    ),
    "yaml-empty": Bad("bundle.yaml", replace_all(""), None, "must be a YAML mapping", line=1),
    "duplicate-key": Bad(
        "bundle.yaml",
        swap("service: checkout\n", "service: checkout\nservice: payments\n"),
        "service",
        "key written twice",
        at="service: payments",
    ),
    "missing-top-level": Bad(
        "bundle.yaml",
        swap("service: checkout\n", ""),
        "service",
        "required field is missing",
        line=1,
    ),
    "missing-nested": Bad(
        "bundle.yaml",
        swap("  version: v2.4.1\n", ""),
        "deploy.version",
        "required field is missing",
        at="deploy:",
    ),
    "missing-in-list": Bad(
        "bundle.yaml",
        swap("    unit: seconds\n", ""),
        "signals[2].unit",
        "required field is missing",
        at="- name: latency_p95",
    ),
    "unknown-field": Bad(
        "bundle.yaml",
        swap("    slo: 0.5\n", "    slo: 0.5\n    owner: payments\n"),
        "signals[2].owner",
        "unknown field",
        at="owner: payments",
    ),
    "bad-format": Bad(
        "bundle.yaml", swap("format: 1", "format: 2"), "format", "(got 2)", at="format: 2"
    ),
    "bad-kind": Bad(
        "bundle.yaml",
        swap("kind: latency", "kind: foo"),
        "signals[2].kind",
        "(got 'foo')",
        at="kind: foo",
    ),
    "bad-direction": Bad(
        "bundle.yaml",
        swap("bad_direction: both", "bad_direction: sideways"),
        "signals[3].bad_direction",
        "Input should be 'up', 'down' or 'both' (got 'sideways')",
        at="sideways",
    ),
    "bad-unit": Bad(
        "bundle.yaml",
        swap("unit: bytes", "unit: gigabytes"),
        "signals[3].unit",
        "(got 'gigabytes')",
        at="gigabytes",
    ),
    "bad-strategy": Bad(
        "bundle.yaml",
        swap("strategy: canary", "strategy: big-bang"),
        "deploy.strategy",
        "'rolling', 'canary' or 'blue-green' (got 'big-bang')",
        at="big-bang",
    ),
    "tier-not-int": Bad(
        "bundle.yaml",
        swap("tier: 3", "tier: high"),
        "expect.tier",
        "valid integer",
        at="tier: high",
    ),
    "tier-out-of-range": Bad(
        "bundle.yaml",
        swap("tier: 3", "tier: 7"),
        "expect.tier",
        "less than or equal to 3 (got 7)",
        at="tier: 7",
    ),
    "slo-not-number": Bad(
        "bundle.yaml",
        swap("slo: 0.01", "slo: low"),
        "signals[1].slo",
        "valid number",
        at="slo: low",
    ),
    "critical-not-bool": Bad(
        "bundle.yaml",
        swap("    slo: 0.5\n    critical: true", "    slo: 0.5\n    critical: maybe"),
        "signals[2].critical",
        "valid boolean",
        at="critical: maybe",
    ),
    "step-not-duration": Bad(
        "bundle.yaml", swap("step: 15s", "step: soon"), "step", "not a duration", at="step: soon"
    ),
    "time-without-zone": Bad(
        "bundle.yaml",
        swap("started_at: 2026-02-08T13:45:00Z", "started_at: 2026-02-08T13:45:00"),
        "deploy.started_at",
        "timezone",
        at="started_at:",
    ),
    "time-not-a-time": Bad(
        "bundle.yaml",
        swap("onset: 2026-02-08T13:46:30Z", "onset: soon"),
        "expect.onset",
        "valid datetime",
        at="onset: soon",
    ),
    "events-undeclared": Bad(
        "bundle.yaml",
        swap("events: request_rate", "events: rps"),
        "signals[1].events",
        "'rps' is not a declared signal",
        at="events: rps",
    ),
    "duplicate-signal": Bad(
        "bundle.yaml",
        swap("- name: memory_bytes", "- name: latency_p95"),
        "signals[3].name",
        "duplicate signal name 'latency_p95'",
        line=35,
    ),
    "watch-before-start": Bad(
        "bundle.yaml",
        swap("watch_until: 2026-02-08T14:15:00Z", "watch_until: 2026-02-08T13:00:00Z"),
        "watch_until",
        "must be after deploy.started_at",
        at="watch_until:",
    ),
    "empty-name": Bad(
        "bundle.yaml",
        swap("name: checkout-card-regex", "name: ''"),
        "name",
        "at least 1",
        at="name: ''",
    ),
}

CSV_CASES: dict[str, Bad] = {
    "unknown-signal": Bad(
        "signals.csv",
        swap(f"{T0 + 30},latency_p95,0.2,", f"{T0 + 30},latency_p99,0.2,"),
        "signal",
        "'latency_p99' is not declared in bundle.yaml",
        at="latency_p99",
    ),
    "non-numeric-value": Bad(
        "signals.csv",
        swap(f"{T0},memory_bytes,1228455911,", f"{T0},memory_bytes,1.2GB,"),
        "value",
        "not a finite number: '1.2GB'",
        at="1.2GB",
    ),
    "infinite-value": Bad(
        "signals.csv",
        swap(f"{T0 + 15},request_rate,210.5,", f"{T0 + 15},request_rate,inf,"),
        "value",
        "not finite: 'inf'",
        at="inf",
    ),
    "bad-timestamp": Bad(
        "signals.csv",
        swap(f"{T0 + 30},latency_p95,0.2,", "2026-02-08T13:45:30Z,latency_p95,0.2,"),
        "timestamp",
        "not a Unix time in seconds: '2026-02-08T13:45:30Z'",
        at="2026-02-08T13:45:30Z",
    ),
    "empty-timestamp": Bad(
        "signals.csv",
        swap(f"{T0 + 30},latency_p95,0.2,", ",latency_p95,0.2,"),
        "timestamp",
        "not a Unix time in seconds: ''",
        at=",latency_p95,0.2,",
    ),
    "nan-timestamp": Bad(
        "signals.csv",
        swap(f"{T0 + 30},latency_p95,0.2,", "nan,latency_p95,0.2,"),
        "timestamp",
        "not a Unix time",
        at="nan,latency_p95",
    ),
    "wrong-header": Bad(
        "signals.csv",
        swap("timestamp,signal,value,cohort", "time,signal,value,cohort"),
        "header",
        "must be timestamp,signal,value,cohort (found 'time,signal,value,cohort')",
        line=1,
    ),
    "header-missing-cohort": Bad(
        "signals.csv",
        swap("timestamp,signal,value,cohort", "timestamp,signal,value"),
        "header",
        "must be timestamp,signal,value,cohort",
        line=1,
    ),
    "empty-file": Bad("signals.csv", replace_all(""), "header", "empty file", line=1),
    "unknown-cohort": Bad(
        "signals.csv",
        swap(f"{T0 + 75},error_ratio,0.0013,baseline", f"{T0 + 75},error_ratio,0.0013,green"),
        "cohort",
        "unknown cohort 'green'",
        at="green",
    ),
    "too-few-columns": Bad(
        "signals.csv",
        swap(f"{T0 + 30},latency_p95,0.2,", f"{T0 + 30},latency_p95,0.2"),
        "cohort",
        "3 columns, expected 4",
        line=13,
    ),
    "too-many-columns": Bad(
        "signals.csv",
        swap(f"{T0 + 30},latency_p95,0.2,", f"{T0 + 30},latency_p95,0.2,,pod-1"),
        "cohort",
        "5 columns, expected 4",
        at="pod-1",
    ),
    "duplicate-sample": Bad(
        "signals.csv",
        append(f"{T0 + 15}.250,latency_p95,0.3,\n"),
        "timestamp",
        "second sample of latency_p95 at this time",
        at=f"{T0 + 15}.250",
    ),
    "duplicate-cohort-sample": Bad(
        "signals.csv",
        append(f"{T0 + 45},error_ratio,0.05,canary\n"),
        "timestamp",
        "second sample of error_ratio (canary) at this time",
        at=f"{T0 + 45},error_ratio,0.05,canary",
    ),
    "bad-row-after-blank-lines": Bad(
        "signals.csv",
        append(f"\n\n{T0 + 90},error_ratio,high,\n"),
        "value",
        "not a finite number: 'high'",
        line=18,
    ),
    "bad-value-of-a-known-series": Bad(
        "signals.csv",
        swap(f"{T0 + 75},error_ratio,0.0013,baseline", f"{T0 + 75},error_ratio,n/a,baseline"),
        "value",
        "'n/a'",
        at="n/a",
    ),
}

LOG_LINE = '{"ts": "2026-02-08T13:47:00Z", "level": "warn", "message": "slow"}\n'

LOG_CASES: dict[str, Bad] = {
    "log-invalid-json": Bad(
        "logs.jsonl",
        append('{"ts": "2026-02-08T13:47:00Z", level: "warn"}\n'),
        None,
        "not valid JSON",
        line=4,
    ),
    "log-truncated-line": Bad(
        "logs.jsonl",
        append(LOG_LINE + '{"ts": "2026-02-08T13:47:00Z", "lev\n'),
        None,
        "not valid JSON",
        line=5,
    ),
    "log-missing-message": Bad(
        "logs.jsonl",
        append('{"ts": "2026-02-08T13:47:00Z", "level": "warn"}\n'),
        "message",
        "required field is missing",
        line=4,
    ),
    "log-missing-ts": Bad(
        "logs.jsonl",
        append(LOG_LINE + '{"level": "warn", "message": "slow"}\n'),
        "ts",
        "required field is missing",
        line=5,
    ),
    "log-missing-level": Bad(
        "logs.jsonl",
        append('{"ts": "2026-02-08T13:47:00Z", "message": "slow"}\n'),
        "level",
        "required field is missing",
        line=4,
    ),
    "log-bad-ts": Bad(
        "logs.jsonl",
        append('{"ts": "yesterday", "level": "warn", "message": "slow"}\n'),
        "ts",
        "valid datetime",
        line=4,
    ),
    "log-ts-without-zone": Bad(
        "logs.jsonl",
        append('{"ts": "2026-02-08T13:47:00", "level": "warn", "message": "slow"}\n'),
        "ts",
        "timezone",
        line=4,
    ),
    "log-not-an-object": Bad(
        "logs.jsonl", append('["2026-02-08T13:47:00Z", "warn"]\n'), None, "one JSON object", line=4
    ),
    "log-label-not-text": Bad(
        "logs.jsonl",
        append(
            '{"ts": "2026-02-08T13:47:00Z", "level": "warn", "message": "x", "labels": {"n": 1}}\n'
        ),
        "labels.n",
        "valid string",
        line=4,
    ),
}

ALERT_CASES: dict[str, Bad] = {
    "alert-invalid-json": Bad(
        "alert.json",
        swap('"status": "firing",\n  "receiver"', '"status": "firing"\n  "receiver"'),
        None,
        "not valid JSON: Expecting ',' delimiter",
        at='"receiver": "vigil"',
    ),
    "alert-truncated": Bad(
        "alert.json", lambda t: t[: t.index('"alerts"')], None, "not valid JSON", line=12
    ),
    "alert-not-an-object": Bad(
        "alert.json", replace_all("[]\n"), None, "Alertmanager webhook payload", line=1
    ),
    "alert-wrong-version": Bad(
        "alert.json",
        swap('"version": "4"', '"version": "3"'),
        "version",
        "must be \"4\" (Alertmanager webhook payload version 4), found '3'",
        at='"version": "3"',
    ),
    "alert-version-missing": Bad(
        "alert.json",
        swap('  "version": "4",\n', ""),
        "version",
        "found 'nothing'",
        line=1,
    ),
    "alert-alerts-not-a-list": Bad(
        "alert.json",
        lambda t: json.dumps({**ALERT, "alerts": {"a": 1}}, indent=2) + "\n",
        "alerts",
        "must be a list of alerts",
        at='"alerts": {',
    ),
}

ALL_CASES = {**YAML_CASES, **CSV_CASES, **LOG_CASES, **ALERT_CASES}


@pytest.mark.parametrize("case", list(ALL_CASES.values()), ids=list(ALL_CASES))
def test_malformed_input_names_file_line_and_field(tmp_path: Path, case: Bad) -> None:
    broken = case.mutate(FILES[case.file])
    folder = make_bundle(tmp_path / "bad", {case.file: broken})
    expected_line = line_with(broken, case.at) if case.at is not None else case.line
    assert expected_line is not None
    with pytest.raises(BundleError) as info:
        read_bundle(folder)
    error = info.value
    assert error.path == folder / case.file
    assert error.line == expected_line
    assert error.field == case.field
    text = str(error)
    where = f"{folder / case.file}:{expected_line}:"
    if case.field is not None:
        where += f" field '{case.field}':"
    assert text.startswith(where), text
    assert case.fragment in text, text
    # One error tree: what the CLI catches.
    assert isinstance(error, InputError) and isinstance(error, VigilError)


def test_missing_bundle_folder(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as info:
        read_bundle(tmp_path / "nope")
    assert info.value.path == tmp_path / "nope"
    assert str(info.value) == f"{tmp_path / 'nope'}: no such bundle folder"


@pytest.mark.parametrize("file", ["bundle.yaml", "signals.csv"])
def test_missing_required_file(tmp_path: Path, file: str) -> None:
    folder = make_bundle(tmp_path / "b", {file: None})
    with pytest.raises(BundleError) as info:
        read_bundle(folder)
    assert info.value.path == folder / file
    assert info.value.line is None
    assert str(info.value) == f"{folder / file}: missing: every bundle needs a {file}"


def test_log_line_not_utf8_names_its_line(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path / "b", {"logs.jsonl": None})
    (folder / "logs.jsonl").write_bytes(
        LOG_LINE.encode() + b'{"ts": "2026-02-08T13:47:00Z", "level": "x", "message": "\xff"}\n'
    )
    with pytest.raises(BundleError) as info:
        read_logs(folder)
    assert info.value.line == 2
    assert "not UTF-8" in str(info.value)


def test_csv_errors_name_the_line_among_many_rows(tmp_path: Path) -> None:
    rows = [f"{T0 + 15 * i},request_rate,{100 + i}," for i in range(500)]
    rows[376] = f"{T0 + 15 * 376},request_rate,12,canry"
    text = "timestamp,signal,value,cohort\n" + "\n".join(rows) + "\n"
    folder = make_bundle(tmp_path / "b", {"signals.csv": text})
    manifest = read_manifest(folder)
    with pytest.raises(BundleError) as info:
        read_signals(folder, manifest)
    assert info.value.line == 378  # the header is line 1
    assert info.value.field == "cohort"


def test_alert_reader_alone(good: Path) -> None:
    assert read_alert(good) == ALERT
    (good / "alert.json").unlink()
    assert read_alert(good) is None


def test_error_survives_pickling() -> None:
    import pickle

    error = BundleError(Path("b/signals.csv"), "bad", line=3, field="value")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is BundleError
    assert (again.path, again.line, again.field, str(again)) == (
        Path("b/signals.csv"),
        3,
        "value",
        "b/signals.csv:3: field 'value': bad",
    )


def test_a_real_bundle_with_one_bad_row(tmp_path: Path) -> None:
    folder = tmp_path / "real"
    shutil.copytree(SMALL / SMALL_BUNDLES[0], folder)
    lines = (folder / "signals.csv").read_text().splitlines(keepends=True)
    ts, name, _value, cohort = lines[99].rstrip("\n").split(",")
    lines[99] = f"{ts},{name},12%,{cohort}\n"
    (folder / "signals.csv").write_text("".join(lines))
    with pytest.raises(BundleError) as info:
        read_bundle(folder)
    assert (info.value.line, info.value.field) == (100, "value")


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def bad_kind(tmp_path: Path) -> tuple[Path, int]:
    """A real bundle whose bundle.yaml has `kind: foo`; returns it and that line."""
    folder = tmp_path / "suite" / "bad-kind"
    shutil.copytree(SMALL / "error_step-0001", folder)
    text = (folder / "bundle.yaml").read_text()
    text = text.replace("kind: latency", "kind: foo", 1)
    (folder / "bundle.yaml").write_text(text)
    return folder, line_with(text, "kind: foo")


@pytest.fixture
def bad_cohort(tmp_path: Path) -> tuple[Path, int]:
    folder = tmp_path / "suite" / "bad-cohort"
    shutil.copytree(SMALL / "healthy_steady-0000", folder)
    lines = (folder / "signals.csv").read_text().splitlines(keepends=True)
    cells = lines[41].rstrip("\n").split(",")
    assert cells[3] == ""
    lines[41] = ",".join([*cells[:3], "green"]) + "\n"
    (folder / "signals.csv").write_text("".join(lines))
    return folder, 42


def _field_of_kind(folder: Path, line: int) -> str:
    text = (folder / "bundle.yaml").read_text().splitlines()
    index = sum(1 for row in text[:line] if row.startswith("- name:")) - 1
    return f"signals[{index}].kind"


def test_cli_judge_bad_bundle_exits_2_without_traceback(bad_kind: tuple[Path, int]) -> None:
    folder, line = bad_kind
    result = runner.invoke(app, ["judge", str(folder)])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    field = _field_of_kind(folder, line)
    assert f"{folder / 'bundle.yaml'}:{line}: field '{field}':" in result.stderr
    assert "(got 'foo')" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_cli_replay_bad_signals_exits_2(bad_cohort: tuple[Path, int]) -> None:
    folder, line = bad_cohort
    result = runner.invoke(app, ["replay", str(folder), "--json"])
    assert result.exit_code == 2
    assert f"{folder / 'signals.csv'}:{line}: field 'cohort': unknown cohort 'green'" in (
        result.stderr
    )
    assert "Traceback" not in result.output


def test_cli_replay_suite_stops_at_the_bad_bundle(
    tmp_path: Path, bad_kind: tuple[Path, int]
) -> None:
    folder, line = bad_kind
    good = tmp_path / "suite" / "a-good"  # sorted before bad-kind: replayed first
    shutil.copytree(SMALL / "healthy_steady-0000", good)
    result = runner.invoke(app, ["replay", str(tmp_path / "suite"), "--json"])
    assert result.exit_code == 2
    printed = [json.loads(row) for row in result.stdout.splitlines()]
    assert [row["bundle"] for row in printed] == ["healthy_steady-0000"]
    assert f"bundle.yaml:{line}: field '{_field_of_kind(folder, line)}'" in result.stderr
    assert "Traceback" not in result.output


def test_cli_eval_bad_bundle_exits_2(bad_cohort: tuple[Path, int]) -> None:
    folder, line = bad_cohort
    result = runner.invoke(app, ["eval", str(folder.parent)])
    assert result.exit_code == 2
    assert f"signals.csv:{line}: field 'cohort'" in result.stderr
    assert "Traceback" not in result.output


def test_cli_missing_bundle_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["judge", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert f"{tmp_path / 'nope'}: no such bundle folder" in result.stderr


def test_vigil_process_bad_bundle(bad_kind: tuple[Path, int]) -> None:
    """The real entry point: exit status 2, the message on stderr, nothing on stdout."""
    folder, line = bad_kind
    done = subprocess.run(
        [sys.executable, "-c", "from agent.cli import main; main()", "judge", str(folder)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert f"{folder / 'bundle.yaml'}:{line}: field '{_field_of_kind(folder, line)}':" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr


def test_nan_literal_is_a_gap_in_any_case(tmp_path: Path) -> None:
    text = (
        "timestamp,signal,value,cohort\n"
        f"{T0},request_rate,NaN,\n{T0 + 15},request_rate,nan,\n{T0 + 30},request_rate, ,\n"
        f"{T0 + 45},request_rate,1e3,\n"
    )
    folder = make_bundle(tmp_path / "b", {"signals.csv": text})
    data = read_bundle(folder).signals
    assert_series(data, "request_rate", "", [T0 + 45], [1000.0])
