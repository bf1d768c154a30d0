"""Writing deploy bundles exactly as format version 1 lays them out."""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from agent.bundle.model import Bundle, BundleManifest, LogLine, format_time
from agent.bundle.reader import ALERT, DIFF, LOGS, MANIFEST, SIGNALS

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


class _Dumper(yaml.SafeDumper):
    """Keeps key order and writes multi-line strings as blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _time(dumper: yaml.SafeDumper, value: datetime) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", format_time(value))


_Dumper.add_representer(str, _str)
_Dumper.add_representer(datetime, _time)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    return value


def _pick(model: Any, keys: tuple[str, ...], *, skip_false: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        value = getattr(model, key)
        if value is None or (key in skip_false and value is False):
            continue
        out[key] = _plain(value)
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
    out["signals"] = [_pick(s, _SIGNAL_KEYS, skip_false=("critical",)) for s in m.signals]
    if m.expect is not None:
        out["expect"] = _pick(m.expect, _EXPECT_KEYS)
    return out


def _num(value: float) -> str:
    if math.isnan(value):
        return ""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def signal_rows(bundle: Bundle) -> list[tuple[float, str, str, float]]:
    rows: list[tuple[float, str, str, float]] = []
    for name, cohorts in bundle.signals.items():
        for cohort, series in cohorts.items():
            rows.extend(
                (float(t), name, cohort, float(v))
                for t, v in zip(series.t.tolist(), series.v.tolist(), strict=True)
            )
    rows.sort()
    return rows


def _log_json(line: LogLine) -> str:
    raw = line.model_dump(exclude_none=True)
    out: dict[str, Any] = {
        "ts": line.ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{line.ts.microsecond // 1000:03d}Z",
        "level": line.level,
    }
    if line.service is not None:
        out["service"] = line.service
    out["message"] = line.message
    if line.labels:
        out["labels"] = line.labels
    for key, value in raw.items():
        if key not in out and key != "labels":
            out[key] = value
    return json.dumps(out, ensure_ascii=False, default=str)


def _atomic_write(file: Path, text: str) -> None:
    handle, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bundle(bundle: Bundle, path: Path) -> Path:
    """Write `bundle` into folder `path` (created if needed); returns the folder."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["timestamp,signal,value,cohort"]
    lines.extend(
        f"{_num(t)},{name},{_num(v)},{cohort}" for t, name, cohort, v in signal_rows(bundle)
    )
    _atomic_write(folder / SIGNALS, "\n".join(lines) + "\n")
    if bundle.logs is not None:
        _atomic_write(folder / LOGS, "".join(_log_json(line) + "\n" for line in bundle.logs))
    if bundle.diff is not None:
        _atomic_write(folder / DIFF, bundle.diff)
    if bundle.alert is not None:
        _atomic_write(folder / ALERT, json.dumps(bundle.alert, indent=2) + "\n")
    # bundle.yaml last: a folder with a bundle.yaml is a complete bundle.
    text = yaml.dump(
        manifest_dict(bundle.manifest),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=120,
    )
    _atomic_write(folder / MANIFEST, text)
    return folder


__all__ = ["manifest_dict", "signal_rows", "write_bundle"]
