"""Reading deploy bundles: every malformed input names the file, the line and the field."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from agent.bundle import yamlpos
from agent.bundle.model import Bundle, BundleManifest, LogLine
from agent.bundle.series import Series, SignalData
from agent.errors import BundleError

MANIFEST = "bundle.yaml"
SIGNALS = "signals.csv"
LOGS = "logs.jsonl"
DIFF = "change.diff"
ALERT = "alert.json"
HEADER = ("timestamp", "signal", "value", "cohort")
COHORTS = ("", "baseline", "canary")
_LOG_REQUIRED = ("ts", "level", "message")


def _folder(path: Path) -> Path:
    path = Path(path)
    return path.parent if path.name == MANIFEST else path


def read_manifest(path: Path) -> BundleManifest:
    """Parse and validate `bundle.yaml` of a bundle folder (or the file itself)."""
    file = _folder(path) / MANIFEST
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BundleError(file, "missing: every bundle needs a bundle.yaml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(file, f"cannot read: {exc}") from None
    try:
        data, root = yamlpos.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = None if mark is None else int(mark.line) + 1
        raise BundleError(file, f"not valid YAML: {problem}", line=line) from None
    if not isinstance(data, dict) or root is None:
        raise BundleError(file, "must be a YAML mapping of the bundle's fields", line=1)
    if (duplicate := yamlpos.duplicate_key(root)) is not None:
        line, loc = duplicate
        raise BundleError(file, "key written twice", line=line, field=yamlpos.dotted(loc))
    try:
        return BundleManifest.model_validate(data)
    except ValidationError as exc:
        raise yamlpos.validation_error(file, root, exc) from None


def _csv_error(file: Path, line: int, field: str | None, message: str) -> BundleError:
    return BundleError(file, message, line=line, field=field)


def _timestamp(text: str, file: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise _csv_error(file, line, "timestamp", f"not a Unix time in seconds: {text!r}")
    return value


def _bad_value(text: str, file: Path, line: int) -> float:
    """The value of a cell that did not parse as a finite number: a gap, or an error."""
    stripped = text.strip()
    if not stripped or stripped.lower() in ("nan", "+nan", "-nan"):
        return math.nan
    raise _csv_error(file, line, "value", f"not a finite number: {text!r} (a gap is empty or NaN)")


def read_signals(path: Path, manifest: BundleManifest) -> SignalData:
    """Parse `signals.csv` in one pass into sorted series per (signal, cohort)."""
    file = _folder(path) / SIGNALS
    declared = {spec.name for spec in manifest.signals}
    # Cells repeat across rows: each distinct timestamp and (signal, cohort) text is checked once.
    stamps: dict[str, float] = {}
    buckets: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    by_text: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    try:
        handle = file.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise BundleError(file, "missing: every bundle needs a signals.csv") from None
    except OSError as exc:
        raise BundleError(file, f"cannot read: {exc}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            _check_header(file, next(reader, None))
            for row in reader:
                if len(row) != 4:
                    if not row:
                        continue  # a blank line
                    raise _width_error(file, reader.line_num, len(row))
                ts_text, name, value_text, cohort = row
                ts = stamps.get(ts_text)
                if ts is None:
                    ts = stamps[ts_text] = _timestamp(ts_text, file, reader.line_num)
                bucket = by_text.get((name, cohort))
                if bucket is None:
                    key = _series_key(file, reader.line_num, name, cohort, declared)
                    bucket = by_text[(name, cohort)] = buckets.setdefault(key, ([], []))
                try:
                    value = float(value_text)
                except ValueError:
                    value = _bad_value(value_text, file, reader.line_num)
                if math.isinf(value):
                    raise _csv_error(file, reader.line_num, "value", f"not finite: {value_text!r}")
                bucket[0].append(ts)
                bucket[1].append(value)
        except csv.Error as exc:
            raise _csv_error(file, reader.line_num, None, f"not valid CSV: {exc}") from None
        except UnicodeDecodeError as exc:
            raise BundleError(file, f"not UTF-8 text: {exc}") from None
    order = {spec.name: i for i, spec in enumerate(manifest.signals)}
    data: dict[str, dict[str, Series]] = {}
    for name, cohort in sorted(buckets, key=lambda k: (order[k[0]], COHORTS.index(k[1]))):
        times, values = buckets[(name, cohort)]
        data.setdefault(name, {})[cohort] = _series(file, name, cohort, times, values)
    return SignalData(data)


def _check_header(file: Path, header: list[str] | None) -> None:
    if header is None:
        raise _csv_error(file, 1, "header", "empty file: expected the header " + ",".join(HEADER))
    if tuple(cell.strip() for cell in header) != HEADER:
        found = ",".join(header)
        raise _csv_error(file, 1, "header", f"must be {','.join(HEADER)} (found {found[:80]!r})")


def _width_error(file: Path, line: int, width: int) -> BundleError:
    if width < len(HEADER):
        missing = HEADER[width]
        message = f"{width} columns, expected 4: no {missing} column (cohort may be empty)"
        return _csv_error(file, line, missing, message)
    return _csv_error(file, line, "cohort", f"{width} columns, expected 4: extra cells after it")


def _series_key(
    file: Path, line: int, name: str, cohort: str, declared: set[str]
) -> tuple[str, str]:
    name, cohort = name.strip(), cohort.strip()
    if name not in declared:
        raise _csv_error(file, line, "signal", f"{name!r} is not declared in bundle.yaml")
    if cohort not in COHORTS:
        message = f"unknown cohort {cohort!r} (empty for the whole service, baseline or canary)"
        raise _csv_error(file, line, "cohort", message)
    return name, cohort


def _series(file: Path, name: str, cohort: str, times: list[float], values: list[float]) -> Series:
    t = np.array(times, dtype=np.float64)
    v = np.array(values, dtype=np.float64)
    steps = np.diff(t)
    if steps.size and not bool(np.all(steps > 0)):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        repeated = np.flatnonzero(np.diff(t) == 0)
        if repeated.size:
            moment = float(t[repeated[0]])
            line = _duplicate_line(file, name, cohort, moment)
            where = f"{name}" + (f" ({cohort})" if cohort else "")
            raise _csv_error(file, line, "timestamp", f"second sample of {where} at this time")
    keep = ~np.isnan(v)
    if not bool(keep.all()):
        t, v = t[keep], v[keep]
    return Series(t, v)


def _duplicate_line(file: Path, name: str, cohort: str, moment: float) -> int:
    """Line of the second row for (moment, name, cohort); the file is read again only then."""
    seen = False
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)  # the header
        for row in reader:
            same = len(row) == 4 and (row[1].strip(), row[3].strip()) == (name, cohort)
            if same and float(row[0]) == moment:
                if seen:
                    return reader.line_num
                seen = True
    raise AssertionError("duplicate row vanished while reading")  # pragma: no cover


def read_logs(path: Path) -> tuple[LogLine, ...] | None:
    """Parse `logs.jsonl` if the bundle has one."""
    file = _folder(path) / LOGS
    if not file.is_file():
        return None
    lines: list[LogLine] = []
    # Lines are split as bytes so an encoding error still names its own line.
    for number, raw in enumerate(file.read_bytes().splitlines(), start=1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise BundleError(file, f"not UTF-8 text: {exc.reason}", line=number) from None
        if text.strip():
            lines.append(_log_line(file, number, text))
    return tuple(lines)


def _log_line(file: Path, number: int, text: str) -> LogLine:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(file, f"not valid JSON: {exc.msg}", line=number) from None
    if not isinstance(raw, dict):
        raise BundleError(file, "each line must be one JSON object", line=number)
    for required in _LOG_REQUIRED:
        if required not in raw:
            raise BundleError(file, "required field is missing", line=number, field=required)
    try:
        return LogLine.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        field = yamlpos.dotted(tuple(first["loc"])) or None
        raise BundleError(file, message, line=number, field=field) from None


def read_alert(path: Path) -> dict[str, Any] | None:
    """Parse `alert.json` (an Alertmanager webhook payload, version 4) if present."""
    file = _folder(path) / ALERT
    if not file.is_file():
        return None
    try:
        text = file.read_text(encoding="utf-8-sig")
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(file, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    except UnicodeDecodeError as exc:
        raise BundleError(file, f"not UTF-8 text: {exc}") from None
    if not isinstance(raw, dict):
        raise BundleError(file, "must be an Alertmanager webhook payload (a JSON object)", line=1)
    if raw.get("version") != "4":
        got = raw.get("version", "nothing")
        message = f'must be "4" (Alertmanager webhook payload version 4), found {got!r}'
        raise BundleError(file, message, line=_json_key_line(text, "version"), field="version")
    if not isinstance(raw.get("alerts"), list):
        line = _json_key_line(text, "alerts")
        raise BundleError(file, "must be a list of alerts", line=line, field="alerts")
    return raw


def _json_key_line(text: str, key: str) -> int:
    """1-based line of `key` in the top-level object `text` (valid JSON); its brace if absent."""
    decoder = json.JSONDecoder()
    pos = found = _skip_space(text, 0)
    while text[pos] != "}":  # at "{" or ",": the next member (or the end) follows
        pos = _skip_space(text, pos + 1)
        if text[pos] == "}":
            break
        name, end = decoder.raw_decode(text, pos)  # the key, a JSON string
        if name == key:
            found = pos  # json.loads keeps the last of repeated keys: so does this
        colon = _skip_space(text, end)
        _, end = decoder.raw_decode(text, _skip_space(text, colon + 1))
        pos = _skip_space(text, end)
    return text.count("\n", 0, found) + 1


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


def read_diff(path: Path) -> str | None:
    """`change.diff` as written, line endings included, if present."""
    file = _folder(path) / DIFF
    if not file.is_file():
        return None
    # A diff may carry bytes of files in other encodings; they must not make the bundle unreadable.
    with file.open(encoding="utf-8", errors="replace", newline="") as handle:
        return handle.read()


def read_bundle(path: Path, *, with_logs: bool = True) -> Bundle:
    """Read a whole bundle folder; logs are skipped when not needed (replays)."""
    folder = _folder(path)
    if not folder.is_dir():
        raise BundleError(folder, "no such bundle folder")
    manifest = read_manifest(folder)
    return Bundle(
        manifest=manifest,
        signals=read_signals(folder, manifest),
        path=folder,
        logs=read_logs(folder) if with_logs else None,
        diff=read_diff(folder),
        alert=read_alert(folder),
    )


def iter_bundles(paths: Iterable[Path]) -> Iterator[Path]:
    """Bundle folders under each path (a bundle, or a suite of them), sorted, one at a time.

    Suites are walked depth first in sorted order, so the first bundle comes before the rest
    are listed; folders whose name starts with a dot are skipped, bundles are not descended.
    """
    for raw in paths:
        path = _folder(Path(raw))
        if (path / MANIFEST).is_file():
            yield path
            continue
        if not path.exists():
            raise BundleError(path, "no such bundle or suite folder")
        if not path.is_dir():
            raise BundleError(path, "neither a bundle folder (with bundle.yaml) nor a suite folder")
        found = False
        for bundle in _walk(path, set()):
            found = True
            yield bundle
        if not found:
            raise BundleError(path, "no bundles in this suite folder (no bundle.yaml below it)")


def _walk(folder: Path, visited: set[Path]) -> Iterator[Path]:
    real = folder.resolve()
    if real in visited:
        return  # a symlink back up the tree
    visited.add(real)
    try:
        children = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir())
    except OSError as exc:
        raise BundleError(folder, f"cannot list the suite folder: {exc}") from None
    for child in children:
        if (child / MANIFEST).is_file():
            yield child
        else:
            yield from _walk(child, visited)
