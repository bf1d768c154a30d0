"""Writing deploy bundles exactly as format version 1 lays them out."""

from __future__ import annotations

import json
import math
import os
import uuid
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from agent.bundle.model import Bundle, BundleManifest, LogLine, format_time
from agent.bundle.reader import ALERT, COHORTS, DIFF, HEADER, LOGS, MANIFEST, SIGNALS

_DEPLOY_KEYS = (
    "id",
    "version",
    "previous_version",
    "started_at",
    "finished_at",
    "strategy",
    "commit",
)
_SIGNAL_KEYS = ("name", "kind", "unit", "bad_direction", "slo", "critical", "events", "query")
_EXPECT_KEYS = ("tier", "onset", "deploy_caused", "culprit_file", "log_signature")
_LOG_KEYS = frozenset({"ts", "level", "service", "message", "labels"})
_UNICODE_BREAKS = ("\x85", "\u2028", "\u2029")  # NEL, LINE and PARAGRAPH SEPARATOR


class _Dumper(yaml.SafeDumper):
    """Keeps key order, writes times as RFC 3339 UTC and multi-line text as blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # The emitter still falls back to quotes where a block cannot hold the text exactly.
    style = "|" if "\n" in value else None
    if any(ch in value for ch in _UNICODE_BREAKS):
        # Written raw, a YAML reader folds these breaks into spaces; double quotes escape them.
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _time(dumper: yaml.SafeDumper, value: datetime) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", format_time(value))


_Dumper.add_representer(str, _str)
_Dumper.add_representer(datetime, _time)


def _pick(model: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        value = getattr(model, key)
        if value is None or (key == "critical" and value is False):
            continue
        out[key] = value.value if isinstance(value, Enum) else value
    return out


def manifest_dict(m: BundleManifest) -> dict[str, Any]:
    """bundle.yaml as an ordered mapping (the spec's key order, optional keys omitted)."""
    out: dict[str, Any] = {"format": m.format, "name": m.name}
    if m.description is not None:
        out["description"] = m.description
    out["service"] = m.service
    if m.environment is not None:
        out["environment"] = m.environment
    out["deploy"] = _pick(m.deploy, _DEPLOY_KEYS)
    out["step"] = m.step
    out["watch_until"] = m.watch_until
    out["signals"] = [_pick(s, _SIGNAL_KEYS) for s in m.signals]
    if m.expect is not None:
        out["expect"] = _pick(m.expect, _EXPECT_KEYS)
    return out


def manifest_yaml(m: BundleManifest) -> str:
    """The text of bundle.yaml for `m`."""
    # No line folding: long queries stay on one line, as people write them.
    return yaml.dump(
        manifest_dict(m), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=2**31 - 1
    )


def _timestamp(t: float) -> str:
    if not math.isfinite(t):
        raise ValueError(f"signals.csv: timestamp must be finite, got {t!r}")
    return str(int(t)) if t.is_integer() else repr(t)


def _value(v: float) -> str:
    if math.isnan(v):
        return ""
    if math.isinf(v):
        raise ValueError(f"signals.csv: values must be finite or NaN (a gap), got {v!r}")
    # Whole numbers (counters, bytes) are written without ".0"; below 2**53 this is exact.
    return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)


def signal_rows(bundle: Bundle) -> list[tuple[float, str, str, float]]:
    """Every sample as (timestamp, signal, cohort, value), sorted as signals.csv holds them."""
    declared = {spec.name for spec in bundle.manifest.signals}
    rows: list[tuple[float, str, str, float]] = []
    for name, cohorts in bundle.signals.items():
        if name not in declared:
            raise ValueError(f"signals.csv: signal {name!r} is not declared in the manifest")
        for cohort, series in cohorts.items():
            if cohort not in COHORTS:
                raise ValueError(f"signals.csv: unknown cohort {cohort!r} of signal {name!r}")
            rows.extend(
                (t, name, cohort, v)
                for t, v in zip(series.t.tolist(), series.v.tolist(), strict=True)
            )
    rows.sort(key=lambda row: row[:3])
    return rows


def signals_csv(bundle: Bundle) -> str:
    """The text of signals.csv for `bundle`."""
    lines = [",".join(HEADER)]
    lines.extend(
        f"{_timestamp(t)},{name},{_value(v)},{cohort}" for t, name, cohort, v in signal_rows(bundle)
    )
    return "\n".join(lines) + "\n"


def log_json(line: LogLine) -> str:
    """One line of logs.jsonl: ts (milliseconds, Z), level, service?, message, labels?, extras."""
    ts = line.ts.astimezone(UTC)
    out: dict[str, Any] = {
        "ts": f"{ts:%Y-%m-%dT%H:%M:%S}.{ts.microsecond // 1000:03d}Z",
        "level": line.level,
    }
    if line.service is not None:
        out["service"] = line.service
    out["message"] = line.message
    if line.labels:
        out["labels"] = line.labels
    for key, value in (line.model_extra or {}).items():
        if key not in _LOG_KEYS:
            out[key] = value
    return json.dumps(out, ensure_ascii=False)


def _atomic_write(file: Path, text: str) -> None:
    """Write `text` to `file` through a temporary sibling and a rename: all of it or none."""
    tmp = file.with_name(f".{file.name}.{uuid.uuid4().hex}.tmp")
    try:
        # Mode "x" with a plain open (not mkstemp) keeps the usual umask-based permissions.
        with tmp.open("x", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(tmp, file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_optional(file: Path, text: str | None) -> None:
    if text is None:
        # A file left from an earlier bundle in this folder would be read back as this one's.
        file.unlink(missing_ok=True)
    else:
        _atomic_write(file, text)


def write_bundle(bundle: Bundle, path: Path) -> Path:
    """Write `bundle` into folder `path` (created if needed); returns the folder.

    Optional files the bundle lacks are removed from the folder, so reading it back gives
    this bundle (note: a bundle read with `with_logs=False` has no logs). bundle.yaml is
    written last, so a folder with a bundle.yaml holds a complete bundle.
    """
    folder = Path(path)
    manifest = manifest_yaml(bundle.manifest)
    signals = signals_csv(bundle)  # before touching the folder: it refuses unwritable data
    logs = None
    if bundle.logs is not None:
        logs = "".join(log_json(line) + "\n" for line in bundle.logs)
    alert = None if bundle.alert is None else json.dumps(bundle.alert, indent=2) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / SIGNALS, signals)
    _write_optional(folder / LOGS, logs)
    _write_optional(folder / DIFF, bundle.diff)
    _write_optional(folder / ALERT, alert)
    _atomic_write(folder / MANIFEST, manifest)
    return folder


__all__ = [
    "log_json",
    "manifest_dict",
    "manifest_yaml",
    "signal_rows",
    "signals_csv",
    "write_bundle",
]
