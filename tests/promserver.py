"""A real Prometheus server for tests: backfilled from OpenMetrics with promtool, started on
127.0.0.1 on a free port, stopped (and waited for) at the end."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from agent.bundle.model import Bundle, SignalUnit
from tests.processes import free_port, running

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


def backfill(openmetrics: str, data_dir: Path) -> None:
    """Write `openmetrics` (text ending in `# EOF`) into TSDB blocks in `data_dir`."""
    assert PROMTOOL is not None
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / "backfill.om"
    source.write_text(openmetrics)
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextmanager
def prometheus(
    workdir: Path, *, config: str = "global:\n  scrape_interval: 15s\n", lookback: str = "10s"
) -> Iterator[str]:
    """A Prometheus serving `workdir/data`; yields its base URL."""
    assert PROMETHEUS is not None
    port = free_port()
    cfg = workdir / "prometheus.yml"
    cfg.write_text(config)
    (workdir / "data").mkdir(exist_ok=True)
    args = [
        PROMETHEUS,
        f"--config.file={cfg}",
        f"--storage.tsdb.path={workdir / 'data'}",
        "--storage.tsdb.retention.time=100y",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--query.lookback-delta={lookback}",
        "--web.enable-lifecycle",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(args, workdir / "prometheus.log", f"{url}/-/ready"):
        yield url


TRACK = {"": None, "baseline": "stable", "canary": "canary"}


def bundle_openmetrics(bundle: Bundle) -> str:
    """A bundle's signals as the raw metrics a service would expose.

    Ratio signals with an events signal become request counters split by `code` (what
    `http_requests_total` is); every other signal becomes a gauge `vigil_test_<name>`. Cohorts
    carry a `track` label. Counters get one extra sample a step before their first, so a
    per-step increase exists from the first sample on."""
    m = bundle.manifest
    step = m.step_seconds
    lines: list[str] = []
    counted = {s.name: s.events for s in m.signals if s.events and s.unit == SignalUnit.RATIO}
    event_signals = set(counted.values())
    for ratio, events in counted.items():
        assert events is not None
        lines.append("# TYPE http_requests counter")
        for cohort, series in bundle.signals[ratio].items():
            rate = bundle.signals[events][cohort]
            assert np.array_equal(rate.t, series.t), "ratio and events on the same grid"
            total = rate.v * step
            bad = total * series.v
            track = TRACK[cohort]
            for code, counts in (("500", bad), ("200", total - bad)):
                labels = f'service="{m.service}",code="{code}"'
                if track:
                    labels += f',track="{track}"'
                cum = np.concatenate([[0.0], np.cumsum(counts)])
                times = np.concatenate([[series.t[0] - step], series.t])
                for t, v in zip(times, cum, strict=True):
                    lines.append(f"http_requests_total{{{labels}}} {float(v)!r} {int(t)}")
    for spec in m.signals:
        if spec.name in counted or spec.name in event_signals:
            continue
        lines.append(f"# TYPE vigil_test_{spec.name} gauge")
        for cohort, series in bundle.signals[spec.name].items():
            track = TRACK[cohort]
            labels = f'service="{m.service}"' + (f',track="{track}"' if track else "")
            for t, v in zip(series.t, series.v, strict=True):
                lines.append(f"vigil_test_{spec.name}{{{labels}}} {float(v)!r} {int(t)}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def bundle_queries(bundle: Bundle, step: int = 15) -> dict[str, str]:
    """PromQL that turns `bundle_openmetrics` back into each signal, per cohort."""
    m = bundle.manifest
    svc = m.service
    by = " by (track)" if bundle.signals.has_cohorts else ""
    counted = {s.name: s.events for s in m.signals if s.events and s.unit == SignalUnit.RATIO}
    out: dict[str, str] = {}

    def delta(selector: str) -> str:
        return f"sum{by}({selector} - {selector} offset {step}s)"

    for ratio, events in counted.items():
        assert events is not None
        every = f'http_requests_total{{service="{svc}"}}'
        errors = f'http_requests_total{{service="{svc}",code="500"}}'
        out[ratio] = f"{delta(errors)} / {delta(every)}"
        out[events] = f"{delta(every)} / {step}"
    for spec in m.signals:
        if spec.name not in out:
            out[spec.name] = f'max{by}(vigil_test_{spec.name}{{service="{svc}"}})'
    return out
