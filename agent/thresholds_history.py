"""A service's metric history and its known incidents: what `vigil thresholds` tunes against.

History comes from Prometheus (the configured signals over the last days), from a folder of
deploy bundles (each bundle one slice of history; its ground truth marks the incidents), or
from the simulator. Known incidents come from bundles, from a YAML file or from the store.
Times are Unix seconds; hours of the day are UTC, as PromQL's `hour()` counts them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from agent.backends.base import MetricsSource, SourceUnavailable
from agent.bundle import yamlpos
from agent.bundle.model import SignalSpec
from agent.bundle.series import Series
from agent.config import ServiceConfig
from agent.errors import InputError, VigilError

FloatArray = npt.NDArray[np.float64]


class KnownIncident(BaseModel):
    """A time span the service was really broken; `signal` when it is known where it showed."""

    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    signal: str | None = None
    source: str


@dataclass(frozen=True)
class SignalHistory:
    """One signal's samples (sorted, gaps absent) and what the signal is."""

    spec: SignalSpec
    t: FloatArray
    v: FloatArray

    @property
    def name(self) -> str:
        return self.spec.name

    def __len__(self) -> int:
        return int(self.t.shape[0])


@dataclass(frozen=True)
class History:
    service: str
    step_s: float
    signals: dict[str, SignalHistory]
    incidents: tuple[KnownIncident, ...] = ()
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def span(self) -> tuple[float, float]:
        starts = [float(s.t[0]) for s in self.signals.values() if len(s)]
        ends = [float(s.t[-1]) for s in self.signals.values() if len(s)]
        if not starts:
            return (0.0, 0.0)
        return min(starts), max(ends)

    @property
    def covered_s(self) -> float:
        """How much time the samples cover (bundles are slices with gaps between them)."""
        return max((len(s) for s in self.signals.values()), default=0) * self.step_s

    @property
    def samples(self) -> int:
        return sum(len(s) for s in self.signals.values())

    def with_incidents(self, more: Iterable[KnownIncident]) -> History:
        return History(
            service=self.service,
            step_s=self.step_s,
            signals=self.signals,
            incidents=(*self.incidents, *more),
            source=self.source,
            notes=self.notes,
        )


def worst_of(cohorts: Mapping[str, Series], direction: str) -> tuple[FloatArray, FloatArray]:
    """One series from several cohorts: at each moment the worst cohort, as an alert on the
    per-cohort query would see it (it fires when any cohort is past the threshold)."""
    ts = [c.t for c in cohorts.values() if len(c)]
    if not ts:
        return np.empty(0), np.empty(0)
    if len(ts) == 1:
        only = next(c for c in cohorts.values() if len(c))
        return only.t.copy(), only.v.copy()
    t = np.unique(np.concatenate(ts))
    worse = np.minimum if direction == "down" else np.maximum
    out = np.full(t.shape, np.inf if direction == "down" else -np.inf)
    for series in cohorts.values():
        idx = np.searchsorted(t, series.t)
        out[idx] = worse(out[idx], series.v)
    return t, out


# --- deploy bundles --------------------------------------------------------------------------


def from_bundles(folder: Path, service: str) -> History:
    """The bundles of `service` under `folder`, one slice of history each; every bundle whose
    ground truth (`expect`) says tier 2 or more, with an onset, is an incident from the onset
    to the end of the bundle."""
    from agent.bundle.reader import iter_bundles, read_bundle

    bundles = [read_bundle(p, with_logs=False) for p in iter_bundles([folder])]
    if not bundles:
        raise VigilError(f"{folder}: no deploy bundles found")
    mine = [b for b in bundles if b.manifest.service == service]
    if not mine:
        known = ", ".join(sorted({b.manifest.service for b in bundles}))
        raise VigilError(f"no bundles of service {service!r} in {folder} (services: {known})")
    specs: dict[str, SignalSpec] = {}
    parts: dict[str, list[tuple[FloatArray, FloatArray]]] = {}
    incidents: list[KnownIncident] = []
    step = 0.0
    for bundle in mine:
        m = bundle.manifest
        step = max(step, m.step_seconds)
        for spec in m.signals:
            known_spec = specs.setdefault(spec.name, spec)
            if spec.query and not known_spec.query:
                specs[spec.name] = spec
            cohorts = bundle.signals.get(spec.name, {})
            t, v = worst_of(cohorts, spec.bad_direction)
            parts.setdefault(spec.name, []).append((t, v))
        expect = m.expect
        if expect is not None and expect.tier >= 2 and expect.onset is not None:
            incidents.append(
                KnownIncident(
                    start=expect.onset.timestamp(),
                    end=m.watch_until.timestamp(),
                    source=f"bundle {m.name} (tier {expect.tier})",
                )
            )
    signals = {}
    for name, pieces in parts.items():
        t = np.concatenate([p[0] for p in pieces])
        v = np.concatenate([p[1] for p in pieces])
        order = np.argsort(t, kind="stable")
        signals[name] = SignalHistory(specs[name], t[order], v[order])
    return History(
        service=service,
        step_s=step,
        signals=signals,
        incidents=tuple(incidents),
        source=f"{len(mine)} bundles of {service} in {folder}",
    )


# --- Prometheus ------------------------------------------------------------------------------


def from_prometheus(
    service: str,
    svc: ServiceConfig,
    metrics: MetricsSource,
    start: float,
    end: float,
    step_s: float,
) -> History:
    """The service's configured signals from `start` to `end` on a `step_s` grid."""
    from agent.capture import capture_signals, signal_specs

    grid = svc.model_copy(update={"step": f"{int(step_s)}s"})
    try:
        data = capture_signals(grid, metrics, start, end)
    except SourceUnavailable as exc:
        raise VigilError(f"cannot read the history of {service}: {exc}") from None
    signals = {}
    for spec in signal_specs(svc):
        t, v = worst_of(data.get(spec.name, {}), spec.bad_direction)
        signals[spec.name] = SignalHistory(spec, t, v)
    days = (end - start) / 86400
    return History(
        service=service,
        step_s=step_s,
        signals=signals,
        source=f"Prometheus, {days:g} days of {service} at a {int(step_s)} s step",
    )


# --- known incidents -------------------------------------------------------------------------


class IncidentEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: datetime
    end: datetime
    signal: str | None = Field(None, min_length=1)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a timezone (RFC 3339, e.g. 2026-02-08T13:45:00Z)")
        return value

    @field_validator("end")
    @classmethod
    def _after(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("must be after start")
        return value


class IncidentFile(RootModel[list[IncidentEntry]]):
    pass


def incidents_from_file(path: Path) -> list[KnownIncident]:
    """A YAML list of {start, end, signal?}; a problem names the file, line and field."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read: {exc}") from None
    try:
        data, root = yamlpos.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else int(mark.line) + 1
        raise InputError(
            path, f"not valid YAML: {getattr(exc, 'problem', exc)}", line=line
        ) from None
    if isinstance(data, dict) and set(data) == {"incidents"}:
        data = data["incidents"]
        root = _child(root, "incidents")
    if not isinstance(data, list):
        raise InputError(path, "must be a YAML list of incidents: - {start, end, signal?}")
    try:
        entries = IncidentFile.model_validate(data).root
    except ValidationError as exc:
        raise yamlpos.validation_error(
            path, root, exc, error=InputError, unknown="unknown field (start, end, signal)"
        ) from None
    return [
        KnownIncident(
            start=e.start.timestamp(), end=e.end.timestamp(), signal=e.signal, source=str(path)
        )
        for e in entries
    ]


def _child(root: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if k.value == key:
                node: yaml.Node = v
                return node
    return None


def incidents_from_store(
    db: Path, service: str, *, default_length_s: float, min_tier: int = 2
) -> list[KnownIncident]:
    """The service's stored incidents the judge found real (tier >= `min_tier`): from when the
    alert started (the triage's first audit event) for `default_length_s` or until the triage
    concluded, whichever is later."""
    import sqlite3

    if not db.is_file():
        raise InputError(db, "no such store (pass --db with an existing vigil.db)")
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(db, f"cannot open the store: {exc}") from None
    try:
        rows = conn.execute(
            "SELECT id, created_at, tier, deploy_caused, result FROM incidents "
            "WHERE service = ? AND tier >= ? ORDER BY created_at",
            [service, min_tier],
        ).fetchall()
        out = []
        for incident_id, created_at, tier, caused, result in rows:
            first = conn.execute(
                "SELECT data FROM audit WHERE incident_id = ? ORDER BY seq LIMIT 1", [incident_id]
            ).fetchone()
            start = _started_at(first[0] if first else None) or float(created_at)
            end = max(start + default_length_s, _concluded_at(result) or start)
            how = "deploy-caused" if caused else "not deploy-caused" if caused == 0 else "cause ?"
            out.append(
                KnownIncident(
                    start=start, end=end, source=f"store {incident_id} (tier {tier}, {how})"
                )
            )
    except sqlite3.Error as exc:
        raise InputError(db, f"cannot read incidents from the store: {exc}") from None
    finally:
        conn.close()
    return out


def _started_at(data: str | None) -> float | None:
    try:
        value = json.loads(data or "{}").get("incident", {}).get("started_at")
    except (json.JSONDecodeError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def _concluded_at(result: str | None) -> float | None:
    try:
        at = json.loads(result or "{}").get("at")
        return datetime.fromisoformat(str(at).replace("Z", "+00:00")).timestamp() if at else None
    except (json.JSONDecodeError, ValueError, AttributeError):
        return None


def check_incidents(history: History, incidents: Sequence[KnownIncident]) -> None:
    """An incident naming a signal the history does not hold is a mistake, not a miss."""
    for inc in incidents:
        if inc.signal is not None and inc.signal not in history.signals:
            known = ", ".join(sorted(history.signals))
            raise VigilError(
                f"{inc.source}: incident names signal {inc.signal!r}, not one of {known}"
            )
