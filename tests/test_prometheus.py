"""Prometheus as a source, against a real Prometheus server started by the tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from agent.backends.base import DeployInfo, SourceUnavailable
from agent.bundle.reader import read_bundle
from agent.capture import capture, capture_signals
from agent.config import load_config
from agent.judge.core import judge
from tests.promserver import (
    PROMETHEUS,
    PROMTOOL,
    backfill,
    bundle_openmetrics,
    bundle_queries,
    prometheus,
)
from tools.backends.prometheus import PrometheusSource, align

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="needs Debian's prometheus package (installed by .ci/run)",
)


def _config(tmp: Path, bundle_name: str, url: str) -> Path:
    bundle = read_bundle(SUITE / bundle_name)
    m = bundle.manifest
    queries = bundle_queries(bundle)
    first = min(float(s.t[0]) for cs in bundle.signals.values() for s in cs.values())
    baseline = int(m.deploy.started_at.timestamp() - first)
    service: dict[str, Any] = {
        "environment": m.environment,
        "step": m.step,
        "baseline": f"{baseline}s",
        "signals": [
            {
                "name": s.name,
                "query": queries[s.name],
                "kind": s.kind.value,
                "unit": s.unit.value,
                "bad_direction": s.bad_direction,
                **({"slo": s.slo} if s.slo is not None else {}),
                **({"critical": True} if s.critical else {}),
                **({"events": s.events} if s.events else {}),
            }
            for s in m.signals
        ],
    }
    if bundle.signals.has_cohorts:
        service["cohorts"] = {"label": "track", "baseline": "stable", "canary": "canary"}
    path = tmp / "vigil.yaml"
    path.write_text(
        yaml.safe_dump({"version": 1, "prometheus": {"url": url}, "services": {m.service: service}})
    )
    return path


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Prometheus holding two bundles' raw metrics (a rolling and a canary deploy)."""
    work = tmp_path_factory.mktemp("prom")
    for i, name in enumerate(("error_step-0001", "canary_regression-0019")):
        backfill(bundle_openmetrics(read_bundle(SUITE / name)), work / f"blocks{i}")
        for block in (work / f"blocks{i}").iterdir():
            if block.is_dir():
                (work / "data").mkdir(exist_ok=True)
                block.rename(work / "data" / block.name)
    with prometheus(work) as url:
        yield url


@pytest.mark.parametrize("name", ["error_step-0001", "canary_regression-0019"])
def test_the_judge_reaches_the_same_verdict_from_prometheus_as_from_the_bundle(
    loaded: str, name: str, tmp_path: Path
) -> None:
    bundle = read_bundle(SUITE / name)
    m = bundle.manifest
    cfg = load_config(_config(tmp_path, name, loaded))
    svc = cfg.service(m.service)
    source = PrometheusSource.connect(loaded)
    deploy = DeployInfo(
        id=m.deploy.id,
        service=m.service,
        version=m.deploy.version,
        previous_version=m.deploy.previous_version,
        started_at=m.deploy.started_at,
        finished_at=m.deploy.finished_at,
        strategy=m.deploy.strategy.value,
    )
    end = m.watch_until.timestamp()
    live = capture(m.service, svc, deploy, end, metrics=source).bundle
    # The same samples came back (counters re-derived: equal to float rounding).
    for signal, cohorts in bundle.signals.items():
        assert set(live.signals[signal]) == set(cohorts), signal
        for cohort, series in cohorts.items():
            got = live.signals[signal][cohort]
            assert got.t.tolist() == series.t.tolist(), (signal, cohort)
            assert got.v == pytest.approx(series.v, rel=1e-9, abs=1e-12), (signal, cohort)
    start = m.deploy.started_at
    looks = [start + timedelta(seconds=s) for s in range(60, int(end - start.timestamp()), 60)]
    verdicts = [(judge(bundle, t.timestamp()), judge(live, t.timestamp())) for t in looks]
    for want, got in verdicts:
        assert (got.tier, got.status, got.deploy_caused) == (
            want.tier,
            want.status,
            want.deploy_caused,
        )
    assert max(v.tier for v, _ in verdicts) == m.expect.tier if m.expect else True


def test_range_queries_are_aligned_and_gaps_stay_gaps(loaded: str) -> None:
    source = PrometheusSource.connect(loaded)
    bundle = read_bundle(SUITE / "error_step-0001")
    t0 = bundle.manifest.deploy.started_at.timestamp()
    got = source.query_range("vigil_test_memory_bytes", t0 + 7, t0 + 307, 15)
    (series,) = got
    assert series.points[0].t == align(t0 + 7, t0 + 307, 15)[0] == t0
    assert [p.t for p in series.points] == [t0 + 15 * i for i in range(21)]
    assert series.labels["service"] == "reviews"
    # Outside the data: every grid point is there, with no value (never a zero).
    far = source.query_range("vigil_test_memory_bytes", t0 + 86400, t0 + 86460, 15)
    assert far == []
    nan = source.query_range("vector(0) / 0", t0, t0 + 30, 15)
    assert [p.v for p in nan[0].points] == [None, None, None]


def test_named_signals_and_instant_queries(loaded: str) -> None:
    source = PrometheusSource.connect(loaded, signals={"mem": "max(vigil_test_memory_bytes)"})
    bundle = read_bundle(SUITE / "error_step-0001")
    t0 = bundle.manifest.deploy.started_at.timestamp()
    assert source.signal_names() == ["mem"]
    (series,) = source.query_instant("mem", t0)
    want = bundle.signals["memory_bytes"][""]
    assert series.points[0].v == pytest.approx(float(want.v[want.t.tolist().index(t0)]))


def test_a_bad_query_names_the_query_and_the_reason(loaded: str) -> None:
    source = PrometheusSource.connect(loaded)
    with pytest.raises(SourceUnavailable, match=r"range query 'sum\(rate\(x\)\)' failed.*range"):
        source.query_range("sum(rate(x))", 0, 60, 15)


def test_an_unreachable_server_is_unavailable_not_healthy() -> None:
    from tests.processes import free_port

    source = PrometheusSource.connect(f"http://127.0.0.1:{free_port()}", retries=0, timeout_s=2)
    with pytest.raises(SourceUnavailable, match="unreachable"):
        source.query_range("up", 0, 60, 15)


class _Recorder(BaseHTTPRequestHandler):
    answers: ClassVar[list[tuple[int, bytes]]] = []
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        status, body = type(self).answers.pop(0) if type(self).answers else (200, b"")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("H", (_Recorder,), {"answers": [], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_garbage_and_errors_from_the_server_are_unavailable(
    recorder: tuple[str, type[_Recorder]],
) -> None:
    url, handler = recorder
    source = PrometheusSource.connect(url, retries=0)
    handler.answers += [(200, b"<html>not prometheus</html>")]
    with pytest.raises(SourceUnavailable, match="prometheus"):
        source.query_range("up", 0, 60, 15)
    handler.answers += [(503, b'{"status":"error","error":"overloaded"}')]
    with pytest.raises(SourceUnavailable, match=r"503|overloaded"):
        source.query_range("up", 0, 60, 15)
    bad = {"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1]]}]}}
    handler.answers += [(200, json.dumps(bad).encode())]
    with pytest.raises(SourceUnavailable, match="malformed"):
        source.query_range("up", 0, 60, 15)


def test_auth_and_retries_reach_the_server(recorder: tuple[str, type[_Recorder]]) -> None:
    url, handler = recorder
    ok = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    handler.answers += [(503, b"{}"), (200, json.dumps(ok).encode())]
    source = PrometheusSource.connect(url, headers={"Authorization": "Bearer s3cr3t"}, retries=2)
    assert source.query_range("up", 0, 60, 15) == []
    assert len(handler.seen) == 2
    assert handler.seen[-1]["authorization"] == "Bearer s3cr3t"
    basic = PrometheusSource.connect(url, basic=("vigil", "pw"), retries=0)
    handler.answers += [(200, json.dumps(ok).encode())]
    basic.query_range("up", 0, 60, 15)
    assert handler.seen[-1]["authorization"].startswith("Basic ")


def test_capture_refuses_a_query_that_returns_several_series(loaded: str, tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, "error_step-0001", loaded))
    svc = cfg.service("reviews")
    several = 'http_requests_total{service="reviews"}'
    raw = svc.model_copy(update={"signals": [svc.signals[0].model_copy(update={"query": several})]})
    source = PrometheusSource.connect(loaded)
    t0 = read_bundle(SUITE / "error_step-0001").manifest.deploy.started_at.timestamp()
    with pytest.raises(SourceUnavailable, match="several series; aggregate it"):
        capture_signals(raw, source, t0, t0 + 60)


def test_vigil_judge_live_reads_prometheus(loaded: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agent.cli import app

    bundle = read_bundle(SUITE / "error_step-0001")
    m = bundle.manifest
    path = _config(tmp_path, "error_step-0001", loaded)
    at = m.deploy.started_at + timedelta(minutes=8)
    args = ["judge", "--live", "reviews", "--config", str(path), "--json"]
    args += ["--started", m.deploy.started_at.isoformat(), "--version", m.deploy.version]
    result = CliRunner().invoke(app, [*args, "--at", at.isoformat()])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    want = judge(bundle, at.timestamp())
    assert (got["tier"], got["deploy_caused"]) == (want.tier, want.deploy_caused) == (3, True)
    missing = CliRunner().invoke(app, ["judge", "--live", "reviews", "--config", str(path)])
    assert missing.exit_code == 2 and "--started" in missing.output
    down = path.read_text().replace(loaded, "http://127.0.0.1:1")
    (tmp_path / "down.yaml").write_text(down)
    unreachable = CliRunner().invoke(
        app, ["judge", "--live", "reviews", "--config", str(tmp_path / "down.yaml"), *args[5:]]
    )
    assert unreachable.exit_code == 2 and "cannot judge reviews live" in unreachable.output


def test_vigil_judge_live_finds_the_deploy_vigil_serve_recorded(
    loaded: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from agent.cli import app
    from agent.server.intake import Intake
    from agent.server.replay import deploy_started

    bundle = read_bundle(SUITE / "error_step-0001")
    m = bundle.manifest
    path = _config(tmp_path, "error_step-0001", loaded)
    db = tmp_path / "vigil.db"
    event, dedup = deploy_started(bundle)
    Intake(db).accept_deploy(event, dedup, m.deploy.started_at.timestamp())
    at = m.deploy.started_at + timedelta(minutes=8)
    args = ["judge", "--live", "reviews", "--config", str(path), "--db", str(db), "--json"]
    result = CliRunner().invoke(app, [*args, "--at", at.isoformat()])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    assert (got["deploy_id"], got["tier"]) == (m.deploy.id, judge(bundle, at.timestamp()).tier)
    empty = CliRunner().invoke(app, [*args[:-3], "--db", str(tmp_path / "none.db")])
    assert empty.exit_code == 2 and "no deploy of reviews recorded" in empty.output
