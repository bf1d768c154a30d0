"""FileLogSource over real files in a temp dir, and the line parsing it shares with Loki."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.backends.base import SourceUnavailable
from agent.bundle.reader import read_bundle
from tools.backends.logfile import FileLogSource, normalize_level, parse_line, parse_time

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"
T0 = 1_778_680_000  # 2026-05-13T13:46:40Z


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(T0 + seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def jsonl(path: Path, *rows: dict[str, Any] | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def read(source: FileLogSource, service: str = "checkout", **kw: Any) -> list[str]:
    return [line.message for line in source.read(service, T0, T0 + 3600, **kw)]


# Parsing one line


def test_times_are_rfc3339_or_epoch_seconds_ms_or_ns() -> None:
    moment = datetime(2026, 5, 13, 13, 46, 40, 250000, tzinfo=UTC)
    assert parse_time("2026-05-13T13:46:40.25Z") == moment
    assert parse_time("2026-05-13T15:46:40.250000123+02:00") == moment
    assert parse_time(T0 + 0.25) == moment
    assert parse_time(T0 * 1000 + 250) == moment
    assert parse_time(str((T0 * 1000 + 250) * 10**6)) == moment
    assert parse_time(T0 * 10**6 + 250_000) == moment
    for bad in ("2026-05-13T13:46:40", "yesterday", None, True, float("nan"), "2026-13-01T00:00Z"):
        assert parse_time(bad) is None


def test_levels_are_normalised_and_unknown_ones_are_none() -> None:
    assert [normalize_level(v) for v in ("WARNING", "[err]", "Fatal", 50, "30", "verbose")] == [
        "warn",
        "error",
        "fatal",
        "error",
        "info",
        None,
    ]


def test_one_line_in_each_shape() -> None:
    js = parse_line('{"ts": 1778680000, "lvl": "warn", "event": "cache miss", "key": "k1"}')
    assert (js.format, js.level, js.message, js.fields) == (
        "json",
        "warn",
        "cache miss",
        {"key": "k1"},
    )
    assert js.ts == datetime.fromtimestamp(T0, tz=UTC)
    lf = parse_line('time=2026-05-13T13:46:40Z level=error msg="db \\"down\\"" err="dial tcp"')
    assert (lf.format, lf.level, lf.message, lf.fields) == (
        "logfmt",
        "error",
        'db "down"',
        {"err": "dial tcp"},
    )
    text = parse_line("2026-05-13T13:46:40.5+00:00 [WARN] disk 91% full")
    assert (text.format, text.level, text.message) == ("text", "warn", "disk 91% full")
    # A sentence that starts with a level-like word keeps it; `a=b` prose is not logfmt.
    assert parse_line("Error budget is fine").level is None
    assert parse_line("retry count=3 of max=5").format == "text"
    assert parse_line('{"ts": 1, "msg": ').format == "text"


# JSONL files


def test_jsonl_lines_are_read_mapped_and_filtered(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "checkout.jsonl",
        {"ts": iso(1), "level": "info", "message": "started"},
        {"time": T0 + 2, "severity": "ERROR", "msg": "KeyError: 'customer'", "stack": ["a", "b"]},
        {"timestamp": (T0 + 3) * 1000, "level": "warning", "msg": "slow"},
        {"ts": (T0 + 4) * 10**9, "level": "trace", "msg": "noise"},
        {"ts": iso(7200), "level": "error", "msg": "too late"},
        {"ts": iso(-5), "level": "error", "msg": "too early"},
    )
    source = FileLogSource(path)
    lines = source.read("checkout", T0 + 1, T0 + 4)
    assert [(line.level, line.message) for line in lines] == [
        ("info", "started"),
        ("error", "KeyError: 'customer'"),
        ("warn", "slow"),
        ("trace", "noise"),
    ]  # both ends inclusive
    assert (lines[1].model_extra or {})["stack"] == "a\nb"
    assert read(source, levels=("error", "WARNING")) == ["KeyError: 'customer'", "slow"]
    assert read(source, contains="keyerror") == ["KeyError: 'customer'"]  # case-insensitive
    assert read(source, limit=2) == ["started", "KeyError: 'customer'"]
    assert source.skipped == 0


def test_bad_jsonl_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "app.jsonl",
        {"ts": iso(1), "level": "error", "message": "good one"},
        "{not json",
        "[1, 2, 3]",
        {"level": "error", "message": "no time"},
        {"ts": "last tuesday", "message": "bad time"},
        "",
        {"ts": iso(2), "message": "no level"},
    )
    source = FileLogSource(path)
    lines = source.read("checkout", T0, T0 + 10)
    assert [(line.level, line.message) for line in lines] == [
        ("error", "good one"),
        ("info", "no level"),
    ]
    assert source.skipped == 4  # the blank line is not a bad line


def test_a_bundles_logs_read_as_a_file_equal_the_bundles_own(tmp_path: Path) -> None:
    bundle = read_bundle(SUITE / "error_step-0001")
    assert bundle.logs is not None
    source = FileLogSource(SUITE / "error_step-0001" / "logs.jsonl")
    start, end = bundle.logs[0].ts.timestamp(), bundle.logs[-1].ts.timestamp()
    assert source.read("reviews", start, end, limit=10_000) == list(bundle.logs)
    assert source.read("ratings", start, end) == []  # every line names another service
    assert source.skipped == 0


# Plain-text files


def test_plain_text_entries_carry_their_stack_traces(tmp_path: Path) -> None:
    path = tmp_path / "checkout.log"
    path.write_text(
        "starting up (no timestamp yet)\n"
        f"{iso(1)} INFO listening on :8080\n"
        f"{iso(2)} ERROR unhandled exception\n"
        "Traceback (most recent call last):\n"
        '  File "/app/orders.py", line 9, in handle\n'
        "KeyError: 'customer'\n"
        "\n"
        "2026-05-13 13:46:43 WARN local time without an offset\n"
        "  a continuation of a line that could not be placed\n"
        f"{iso(4)} [warning] queue depth 40\n"
        f'ts={iso(5)} level=error msg="logfmt works too"\n',
        encoding="utf-8",
    )
    source = FileLogSource(path)
    lines = source.read("checkout", T0, T0 + 10)
    assert [(line.level, line.message.partition("\n")[0]) for line in lines] == [
        ("info", "listening on :8080"),
        ("error", "unhandled exception"),
        ("warn", "queue depth 40"),
        ("error", "logfmt works too"),
    ]
    assert lines[1].message.endswith(
        "  File \"/app/orders.py\", line 9, in handle\nKeyError: 'customer'"
    )
    assert source.skipped == 3


def test_a_long_trace_is_cut_to_the_entry_line_cap(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text(f"{iso(1)} ERROR boom\n" + "  at frame\n" * 50, encoding="utf-8")
    (line,) = FileLogSource(path, max_entry_lines=5).read("a", T0, T0 + 5)
    assert line.message.count("\n") == 5


# Finding the files


def test_a_template_with_a_glob_reads_rotated_and_gzipped_files_in_time_order(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "checkout"
    jsonl(folder / "app.jsonl", {"ts": iso(5), "level": "info", "message": "newest"})
    jsonl(folder / "app.jsonl.1", {"ts": iso(3), "level": "info", "message": "middle"})
    with gzip.open(folder / "app.jsonl.2.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"ts": iso(1), "level": "info", "message": "oldest"}) + "\n")
    jsonl(tmp_path / "payments" / "app.jsonl", {"ts": iso(2), "level": "info", "message": "x"})
    source = FileLogSource(str(tmp_path / "{service}" / "app.jsonl*"))
    assert [p.name for p in source.files("checkout")] == [
        "app.jsonl",
        "app.jsonl.1",
        "app.jsonl.2.gz",
    ]
    assert read(source) == ["oldest", "middle", "newest"]
    assert read(source, "payments") == ["x"]


def test_a_mapping_of_services_to_paths_and_folders(tmp_path: Path) -> None:
    jsonl(tmp_path / "logs" / "one.jsonl", {"ts": iso(1), "level": "info", "message": "one"})
    jsonl(tmp_path / "logs" / "two.jsonl", {"ts": iso(2), "level": "info", "message": "two"})
    source = FileLogSource({"checkout": tmp_path / "logs"})
    assert read(source) == ["one", "two"]
    with pytest.raises(
        SourceUnavailable, match=r"no path configured for service 'cart' \(known: checkout\)"
    ):
        read(source, "cart")


def test_missing_files_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "checkout.jsonl"
    with pytest.raises(SourceUnavailable) as err:
        read(FileLogSource(missing))
    assert str(err.value) == f"log files: {missing} does not exist"
    pattern = str(tmp_path / "{service}" / "*.log")
    with pytest.raises(SourceUnavailable, match=r"no file matches .*/checkout/\*\.log"):
        read(FileLogSource(pattern))


def test_a_service_name_cannot_walk_out_of_the_template(tmp_path: Path) -> None:
    jsonl(tmp_path / "secret.jsonl", {"ts": iso(1), "level": "info", "message": "secret"})
    source = FileLogSource(str(tmp_path / "logs" / "{service}.jsonl"))
    with pytest.raises(SourceUnavailable, match="not a valid service name"):
        read(source, "../secret")
