"""Reading deploy bundles: every malformed input names the file, the line and the field."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from agent.bundle.model import Bundle, BundleManifest, LogLine
from agent.bundle.series import Series, SignalData
from agent.bundle.yamlpos import dotted, locate
from agent.errors import BundleError

MANIFEST = "bundle.yaml"
SIGNALS = "signals.csv"
LOGS = "logs.jsonl"
DIFF = "change.diff"
ALERT = "alert.json"
COHORTS = frozenset({"", "baseline", "canary"})
_PATH_PREFIX = re.compile(r"^(?:Value error, )?([A-Za-z_][\w]*(?:\[\d+\]|\.[A-Za-z_]\w*)*): (.*)$")


def _folder(path: Path) -> Path:
    path = Path(path)
    return path.parent if path.name == MANIFEST else path


def _loc_from_text(text: str) -> tuple[tuple[str | int, ...], str] | None:
    """A model-level error written as 'signals[1].events: message' -> its loc and message."""
    match = _PATH_PREFIX.match(text)
    if match is None:
        return None
    loc: list[str | int] = []
    for part in re.findall(r"[A-Za-z_]\w*|\[\d+\]", match.group(1)):
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(loc), match.group(2)


def _validation_error(file: Path, root: yaml.Node | None, exc: ValidationError) -> BundleError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc: tuple[str | int, ...] = tuple(first["loc"])
    message = str(first["msg"])
    if not loc and (parsed := _loc_from_text(message)):
        loc, message = parsed
    message = message.removeprefix("Value error, ")
    kind = first["type"]
    line, found = locate(root, loc)
    if kind == "missing":
        message = "required field is missing"
    elif kind == "extra_forbidden":
        message = "unknown field (not in bundle format 1)"
    elif "input" in first and kind not in ("model_type",):
        message += f" (got {first['input']!r})"
    if not found and kind != "missing":
        message += " (location approximate)"
    if len(errors) > 1:
        message += f" [and {len(errors) - 1} more problem(s)]"
    return BundleError(file, message, line=line, field=dotted(loc) or None)


def read_manifest(path: Path) -> BundleManifest:
    """Parse and validate `bundle.yaml` of a bundle folder (or the file itself)."""
    file = _folder(path) / MANIFEST
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BundleError(file, "missing: every bundle needs a bundle.yaml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(file, f"cannot read: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise BundleError(
            file, f"not valid YAML: {problem}", line=None if mark is None else mark.line + 1
        ) from None
    if not isinstance(data, dict):
        raise BundleError(file, "must be a YAML mapping of the bundle's fields", line=1)
    try:
        return BundleManifest.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(file, root, exc) from None


def _number(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("infinite")
    return value


def read_signals(path: Path, manifest: BundleManifest) -> SignalData:
    """Parse `signals.csv` into sorted per-(signal, cohort) series."""
    file = _folder(path) / SIGNALS
    declared = {s.name for s in manifest.signals}
    columns: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    seen: set[tuple[float, str, str]] = set()
    try:
        handle = file.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise BundleError(file, "missing: every bundle needs a signals.csv") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:3]] != [
                "timestamp",
                "signal",
                "value",
            ]:
                raise BundleError(
                    file, "header must be timestamp,signal,value,cohort", line=1, field="header"
                )
            width = len(header)
            if width not in (3, 4) or (width == 4 and header[3].strip() != "cohort"):
                raise BundleError(
                    file, "header must be timestamp,signal,value,cohort", line=1, field="header"
                )
            for row in reader:
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) not in (3, 4):
                    raise BundleError(file, f"expected 4 columns, found {len(row)}", line=line)
                ts_text, name, value_text = row[0].strip(), row[1].strip(), row[2].strip()
                cohort = row[3].strip() if len(row) == 4 else ""
                try:
                    ts = _number(ts_text)
                except ValueError:
                    raise BundleError(
                        file, f"not a Unix time: {ts_text!r}", line=line, field="timestamp"
                    ) from None
                if name not in declared:
                    raise BundleError(
                        file,
                        f"signal {name!r} is not declared in bundle.yaml",
                        line=line,
                        field="signal",
                    )
                if cohort not in COHORTS:
                    raise BundleError(
                        file,
                        f"unknown cohort {cohort!r} (use empty, baseline or canary)",
                        line=line,
                        field="cohort",
                    )
                if value_text in ("", "NaN", "nan"):
                    value = math.nan
                else:
                    try:
                        value = _number(value_text)
                    except ValueError:
                        raise BundleError(
                            file, f"not a number: {value_text!r}", line=line, field="value"
                        ) from None
                key = (ts, name, cohort)
                if key in seen:
                    raise BundleError(
                        file,
                        f"duplicate sample for {name} at {ts_text}"
                        + (f" ({cohort})" if cohort else ""),
                        line=line,
                        field="timestamp",
                    )
                seen.add(key)
                ts_list, v_list = columns.setdefault((name, cohort), ([], []))
                ts_list.append(ts)
                v_list.append(value)
        except csv.Error as exc:
            raise BundleError(file, f"not valid CSV: {exc}", line=reader.line_num) from None
        except UnicodeDecodeError as exc:
            raise BundleError(file, f"not UTF-8 text: {exc}") from None
    data: dict[str, dict[str, Series]] = {}
    for (name, cohort), (ts_list, v_list) in columns.items():
        t = np.asarray(ts_list, dtype=np.float64)
        v = np.asarray(v_list, dtype=np.float64)
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        keep = ~np.isnan(v)
        data.setdefault(name, {})[cohort] = Series(t[keep], v[keep])
    return SignalData(data)


def read_logs(path: Path) -> tuple[LogLine, ...] | None:
    file = _folder(path) / LOGS
    if not file.exists():
        return None
    lines: list[LogLine] = []
    with file.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise BundleError(file, f"not valid JSON: {exc.msg}", line=number) from None
            if not isinstance(raw, dict):
                raise BundleError(file, "each line must be a JSON object", line=number)
            for required in ("ts", "level", "message"):
                if required not in raw:
                    raise BundleError(
                        file, "required field is missing", line=number, field=required
                    )
            try:
                lines.append(LogLine.model_validate(raw))
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                raise BundleError(
                    file, str(first["msg"]), line=number, field=dotted(tuple(first["loc"])) or None
                ) from None
    return tuple(lines)


def read_alert(path: Path) -> dict[str, Any] | None:
    file = _folder(path) / ALERT
    if not file.exists():
        return None
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(file, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(raw, dict):
        raise BundleError(file, "must be an Alertmanager webhook object", line=1)
    if raw.get("version") != "4":
        raise BundleError(
            file, 'must be an Alertmanager payload with "version": "4"', field="version"
        )
    if not isinstance(raw.get("alerts"), list):
        raise BundleError(file, "must hold a list of alerts", field="alerts")
    return raw


def read_bundle(path: Path, *, with_logs: bool = True) -> Bundle:
    """Read a whole bundle folder; logs are skipped when not needed (replays)."""
    folder = _folder(path)
    if not folder.is_dir():
        raise BundleError(folder, "not a bundle folder")
    manifest = read_manifest(folder)
    signals = read_signals(folder, manifest)
    diff_file = folder / DIFF
    return Bundle(
        manifest=manifest,
        signals=signals,
        path=folder,
        logs=read_logs(folder) if with_logs else None,
        diff=diff_file.read_text(encoding="utf-8") if diff_file.exists() else None,
        alert=read_alert(folder),
    )


def iter_bundles(paths: Iterable[Path]) -> Iterator[Path]:
    """Bundle folders under each path (a bundle, or a suite of them), sorted, one at a time."""
    for raw in paths:
        path = _folder(Path(raw))
        if (path / MANIFEST).is_file():
            yield path
            continue
        if not path.is_dir():
            raise BundleError(path, "no such bundle or suite folder")
        found = sorted(p.parent for p in path.rglob(MANIFEST))
        if not found:
            raise BundleError(path, "no bundles here (no bundle.yaml below this folder)")
        yield from found
