"""The post-deploy health report (`vigil report deploy`), on the example suite's bundles."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from agent.bundle.model import Bundle, LogLine
from agent.bundle.reader import read_bundle
from agent.bundle.writer import write_bundle
from agent.cli_report import report_app
from agent.judge.core import judge
from agent.judge.replay import look_times, replay
from agent.judge.vigil import VigilJudge
from agent.report import build_report, render_html, render_markdown
from agent.report.charts import DPI, FIGSIZE, signal_figure
from tests import builders
from tests.promserver import (
    PROMETHEUS,
    PROMTOOL,
    backfill,
    bundle_openmetrics,
    bundle_queries,
    prometheus,
)

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# bundle -> (tier at the end, peak tier, decision)
CASES = {
    "error_step-0001": (3, 3, "roll back"),
    "memory_leak-0013": (2, 2, "pause"),
    "healthy_steady-0000": (0, 0, "keep"),
    "canary_regression-0019": (1, 3, "roll back"),
}


def _run(*args: str) -> Any:
    return CliRunner().invoke(report_app, ["deploy", *args])


@dataclasses.dataclass(frozen=True)
class Written:
    bundle: Bundle
    out: Path
    data: dict[str, Any]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Written]:
    """Each case's report, written once by the CLI."""
    done = {}
    for name in CASES:
        bundle = read_bundle(SUITE / name)
        out = tmp_path_factory.mktemp("report") / name
        result = _run(bundle.manifest.deploy.id, "--bundle", str(SUITE / name), "--out", str(out))
        assert result.exit_code == 0, result.output
        data = json.loads((out / "report.json").read_text())
        done[name] = Written(bundle, out, data)
    return done


def _ts(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize("name", list(CASES))
def test_the_table_holds_the_judges_numbers(written: dict[str, Written], name: str) -> None:
    w = written[name]
    end_tier, peak, decision = CASES[name]
    verdict = judge(w.bundle, w.bundle.manifest.watch_until.timestamp())
    assert w.data["verdict"]["tier"] == verdict.tier == end_tier
    assert w.data["verdict"]["status"] == verdict.status
    assert w.data["verdict"]["deploy_caused"] == verdict.deploy_caused
    assert tuple(w.data["verdict"]["reasons"]) == verdict.reasons
    assert w.data["peak_tier"] == peak
    assert w.data["conclusion"]["decision"] == decision
    assert [s["name"] for s in w.data["signals"]] == [f.signal for f in verdict.findings]
    for sig, f in zip(w.data["signals"], verdict.findings, strict=True):
        row = sig["row"]
        # Every ratio here is judged in its own unit: the table shows the judge's numbers.
        assert (row["baseline"], row["current"]) == (f.baseline, f.current), f.signal
        assert (row["p_value"], row["threshold"], row["slo"]) == (f.p_value, f.threshold, f.slo)
        assert (row["baseline_samples"], row["current_samples"]) == (
            f.baseline_samples,
            f.current_samples,
        )
        assert (row["baseline_events"], row["current_events"]) == (
            f.baseline_events,
            f.current_events,
        )
        assert (row["tier"], row["status"], row["past_slo"]) == (f.tier, f.status, f.past_slo)
        assert row["reason"] == f.reason
        if f.baseline and f.current is not None:
            assert row["change"] == pytest.approx((f.current - f.baseline) / abs(f.baseline))
    md = (w.out / "report.md").read_text()
    assert f"**{decision.upper()}**" in md
    assert w.bundle.manifest.deploy.version in md and w.bundle.manifest.deploy.id in md


def test_the_tier_3_row_reads_as_the_judge_said(written: dict[str, Written]) -> None:
    md = (written["error_step-0001"].out / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| error\\_ratio"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # baseline, current, change, samples, p, threshold, SLO, past SLO, tier, status
    assert cells[1:] == [
        "0.054%",
        "11.363%",
        "+20810.3%",
        "120 / 6",
        "0",
        "0.00017",
        "3.000%",
        "yes",
        "3",
        "breach",
    ]


@pytest.mark.parametrize("name", list(CASES))
def test_onsets_are_where_the_judge_first_reached_tier_1(
    written: dict[str, Written], name: str
) -> None:
    w = written[name]
    verdicts = [judge(w.bundle, t) for t in look_times(w.bundle)]
    for i, sig in enumerate(w.data["signals"]):
        first = next((v.at for v in verdicts if v.findings[i].tier >= 1), None)
        assert _ts(sig["history"]["onset"]) == first, sig["name"]
    # The deploy as a whole: exactly what `vigil replay` reports.
    want = replay(w.bundle, VigilJudge()).first_at
    assert {int(k): _ts(v) for k, v in w.data["first_at"].items()} == want
    if name == "error_step-0001":
        onset = w.data["signals"][1]["history"]["onset"]
        assert onset == "2026-05-13T14:44:15Z"  # +3m15s; the ground truth says 14:43:55
        assert w.data["expected"]["onset"] == "2026-05-13T14:43:55Z"
        assert w.data["signals"][1]["history"]["resolved_at"] is None


def _lines(fig: Any) -> dict[str, Any]:
    return {line.get_gid(): line for line in fig.axes[0].get_lines()}


def _report(name: str) -> tuple[Bundle, Any]:
    bundle = read_bundle(SUITE / name)
    return bundle, build_report(bundle)


def test_the_chart_marks_the_deploy_rollout_and_onsets() -> None:
    bundle, report = _report("error_step-0001")
    sig = report.signals[1]
    spec = bundle.manifest.signal(sig.name)
    lines = _lines(signal_figure(bundle, spec, sig, report))
    start = bundle.manifest.deploy.started_at

    def minutes(moment: datetime) -> float:
        return (moment - start).total_seconds() / 60

    assert list(lines["deploy_start"].get_xdata()) == [0.0, 0.0]
    assert bundle.manifest.deploy.finished_at is not None
    assert (
        list(lines["rollout_end"].get_xdata()) == [minutes(bundle.manifest.deploy.finished_at)] * 2
    )
    assert sig.history.onset is not None
    assert list(lines["onset"].get_xdata()) == [minutes(sig.history.onset)] * 2 == [3.25, 3.25]
    assert bundle.manifest.expect is not None and bundle.manifest.expect.onset is not None
    expected = minutes(bundle.manifest.expect.onset)
    assert list(lines["expected_onset"].get_xdata()) == [expected] * 2
    assert lines["expected_onset"].get_label() == "expected onset (ground truth)"
    # Ratios are drawn in %: the baseline level and the SLO too.
    assert lines["slo"].get_ydata()[0] == pytest.approx(3.0)
    assert lines["baseline"].get_ydata()[0] == pytest.approx(sig.row.baseline * 100)
    assert lines["baseline"].get_linestyle() == "-" and lines["slo"].get_linestyle() == "--"
    series = bundle.signals["error_ratio"][""]
    drawn = lines["cohort:service"]
    keep = (series.t >= report.baseline_from.timestamp()) & (series.t <= report.at.timestamp())
    assert np.allclose(drawn.get_ydata(), series.v[keep] * 100)
    # A healthy signal has no onset mark.
    quiet = report.signals[2]
    quiet_lines = _lines(signal_figure(bundle, bundle.manifest.signal(quiet.name), quiet, report))
    assert "onset" not in quiet_lines and "deploy_start" in quiet_lines


def test_canary_cohorts_are_drawn_separately() -> None:
    bundle, report = _report("canary_regression-0019")
    sig = next(s for s in report.signals if s.name == "error_ratio")
    lines = _lines(signal_figure(bundle, bundle.manifest.signal(sig.name), sig, report))
    for cohort, gid in (("baseline", "cohort:baseline cohort"), ("canary", "cohort:canary cohort")):
        series = bundle.signals["error_ratio"][cohort]
        keep = series.t <= report.at.timestamp()
        assert np.allclose(lines[gid].get_ydata(), series.v[keep] * 100), cohort
    assert not np.allclose(
        lines["cohort:canary cohort"].get_ydata()[-10:],
        lines["cohort:baseline cohort"].get_ydata()[-10:],
    )


@pytest.mark.parametrize("name", list(CASES))
def test_charts_are_valid_pngs_one_per_signal(written: dict[str, Written], name: str) -> None:
    w = written[name]
    html = (w.out / "report.html").read_text()
    seen = set()
    for sig in w.data["signals"]:
        path = w.out / sig["chart"]
        assert path == w.out / "charts" / f"{sig['name']}.png"
        raw = path.read_bytes()
        assert raw.startswith(PNG_SIGNATURE)
        image = matplotlib.image.imread(path)
        assert image.shape[:2] == (round(FIGSIZE[1] * DPI), round(FIGSIZE[0] * DPI))
        assert image.std() > 0  # something was drawn
        seen.add(raw)
        assert base64.b64encode(raw).decode() in html  # the page embeds the same chart
        assert (
            f"![{sig['name'].replace('_', chr(92) + '_')}]({sig['chart']})"
            in (w.out / "report.md").read_text()
        )
    assert len(seen) == len(w.data["signals"])  # every signal's chart is its own


def test_the_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    outs = []
    for i in range(2):
        out = tmp_path / str(i)
        result = _run(
            "deploy-5089", "--bundle", str(SUITE / "healthy_steady-0000"), "--out", str(out)
        )
        assert result.exit_code == 0, result.output
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert len(files) == 3 + 5
    for rel in files:
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel
    assert result.output.splitlines() == [
        str(outs[1] / f)
        for f in (
            "report.md",
            "report.json",
            "report.html",
            *(f"charts/{s}.png" for s in ("request_rate", "error_ratio", "latency_p95")),
            *(f"charts/{s}.png" for s in ("memory_bytes", "cpu_usage")),
        )
    ]


def test_log_evidence_counts_the_new_error_pattern(written: dict[str, Written]) -> None:
    w = written["error_step-0001"]
    start = w.bundle.manifest.deploy.started_at
    end = w.bundle.manifest.watch_until
    assert w.bundle.logs is not None
    signature = "KeyError: 'customer' in serialize_order"
    after = [
        line
        for line in w.bundle.logs
        if start <= line.ts <= end and signature in line.message and line.level == "error"
    ]
    logs = w.data["logs"]
    top = logs["patterns"][0]
    assert (top["status"], top["before"], top["after"]) == ("new", 0, len(after))
    assert len(after) == 94
    assert top["example"].startswith(signature)
    assert _ts(top["first_seen_after"]) == min(line.ts for line in after).timestamp()
    md = (w.out / "report.md").read_text()
    assert "| new | 0 | 94 |" in md
    # The healthy deploy has logs, but nothing new or grown in them.
    healthy = written["healthy_steady-0000"].data
    assert healthy["logs"]["patterns"] == []
    assert healthy["logs_note"] == "no new or grown warning or error patterns"


def test_a_signal_that_recovers_is_reported_resolved(tmp_path: Path) -> None:
    def burst(t: np.ndarray, rel: np.ndarray) -> np.ndarray:
        return np.where((rel >= 300) & (rel < 480), 0.05, 0.002)

    bundle = builders.service(error_fn=burst, after_min=30, seed=3)
    report = build_report(bundle)
    sig = next(s for s in report.signals if s.name == "error_ratio")
    tiers = [(t, judge(bundle, t).findings[1].tier) for t in look_times(bundle)]
    last_bad = max(i for i, (_, tier) in enumerate(tiers) if tier >= 1)
    assert all(tier == 0 for _, tier in tiers[last_bad + 1 :])
    assert sig.history.resolved_at is not None
    assert sig.history.resolved_at.timestamp() == tiers[last_bad + 1][0]
    assert sig.history.peak_tier == 3 and sig.history.end_tier == 0
    assert "back to healthy at 2026-02-08T14:01:30Z (+16m30s)" in sig.story
    # The judge would have rolled it back when it reached tier 3; the end is said too.
    assert report.conclusion.decision == "roll back"
    assert "at the end (2026-02-08T14:15:00Z) the verdict is tier 0" in report.conclusion.why
    lines = _lines(signal_figure(bundle, bundle.manifest.signal(sig.name), sig, report))
    assert list(lines["resolved"].get_xdata()) == [16.5, 16.5]
    assert "expected_onset" not in lines  # no ground truth in this bundle


def test_at_reports_as_of_that_moment_without_look_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bundle = SUITE / "error_step-0001"
    result = _run("deploy-6704", "--bundle", str(bundle), "--at", "+2m")
    assert result.exit_code == 0, result.output
    out = Path("vigil-report-deploy-6704")  # the default folder
    assert result.output.splitlines()[0] == str(out / "report.md")
    data = json.loads((out / "report.json").read_text())
    b = read_bundle(bundle)
    moment = b.manifest.deploy.started_at + timedelta(minutes=2)
    assert data["at"] == "2026-05-13T14:43:00Z" and data["looks"] == 9
    assert data["verdict"]["tier"] == judge(b, moment.timestamp()).tier == 0
    assert data["conclusion"]["decision"] == "keep"
    assert all(s["history"]["onset"] is None for s in data["signals"])
    assert data["logs"]["after_to"] == "2026-05-13T14:43:00Z"


def test_html_escapes_untrusted_text(tmp_path: Path) -> None:
    base = read_bundle(SUITE / "error_step-0001")
    evil = "<script>alert('x')</script>"
    start = base.manifest.deploy.started_at
    assert base.logs is not None
    logs = (
        *base.logs,
        *(
            LogLine(
                ts=start + timedelta(seconds=200 + 10 * i),
                level="error",
                message=f"{evil} failed for <img src=x onerror=alert(1)> {i}",
            )
            for i in range(30)
        ),
    )
    manifest = base.manifest.model_copy(update={"service": f"svc{evil}"})
    path = write_bundle(dataclasses.replace(base, manifest=manifest, logs=logs), tmp_path / "b")
    out = tmp_path / "out"
    result = _run("deploy-6704", "--bundle", str(path), "--out", str(out))
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    markdown = (out / "report.md").read_text()
    for text in (page, markdown):
        assert "<script" not in text.lower() and "<img src=x" not in text
        assert "&lt;script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<script") == 0 and "default-src 'none'" in page
    # Signal names and reasons are data too.
    report = build_report(base)
    renamed = tuple(s.model_copy(update={"name": evil, "story": evil}) for s in report.signals)
    report = report.model_copy(
        update={
            "signals": renamed,
            "verdict": report.verdict.model_copy(update={"reasons": (evil,)}),
        }
    )
    for text in (render_html(report, {evil: b"\x89PNG"}), render_markdown(report)):
        assert "<script" not in text.lower()
        assert "&lt;script&gt;" in text


def test_a_wrong_deploy_id_exits_2_naming_the_field(tmp_path: Path) -> None:
    result = _run("deploy-1", "--bundle", str(SUITE / "error_step-0001"), "--out", str(tmp_path))
    assert result.exit_code == 2
    want = (
        f"{SUITE / 'error_step-0001' / 'bundle.yaml'}:7: field 'deploy.id': this bundle is "
        "deploy 'deploy-6704', not 'deploy-1'"
    )
    assert want in " ".join(result.output.split())
    assert not (tmp_path / "report.md").exists()


def test_a_malformed_bundle_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    shutil.copytree(SUITE / "error_step-0001", folder)
    csv = folder / "signals.csv"
    lines = csv.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 2)[0] + ",lots,"
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = _run("deploy-6704", "--bundle", str(folder), "--out", str(out))
    assert result.exit_code == 2
    assert f"{csv}:3: field 'value': not a finite number: 'lots'" in " ".join(result.output.split())
    assert not out.exists()
    broken = tmp_path / "c"
    shutil.copytree(SUITE / "healthy_steady-0000", broken)
    (broken / "bundle.yaml").write_text(
        (broken / "bundle.yaml").read_text().replace("strategy: rolling", "strategy: yolo")
    )
    result = _run("deploy-5089", "--bundle", str(broken), "--out", str(out))
    assert result.exit_code == 2
    assert f"{broken / 'bundle.yaml'}:12: field 'deploy.strategy'" in " ".join(
        result.output.split()
    )


def test_bad_invocations_exit_2(tmp_path: Path) -> None:
    result = _run("deploy-6704", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "pass --bundle DIR, or --service S with --started TIME" in " ".join(
        result.output.split()
    )
    bundle = str(SUITE / "error_step-0001")
    result = _run("deploy-6704", "--bundle", bundle, "--at", "2026-05-13T14:00:00Z")
    assert result.exit_code == 2
    assert "is before the deploy started" in result.output


# ---------------------------------------------------------------------------------------------
# Live: the same deploy read back from a real Prometheus (and its log file)


@pytest.fixture(scope="module")
def live_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if PROMETHEUS is None or PROMTOOL is None:
        pytest.skip("needs Debian's prometheus package (installed by .ci/run)")
    work = tmp_path_factory.mktemp("prom")
    backfill(bundle_openmetrics(read_bundle(SUITE / "error_step-0001")), work / "blocks")
    (work / "data").mkdir()
    for block in (work / "blocks").iterdir():
        if block.is_dir():
            block.rename(work / "data" / block.name)
    with prometheus(work) as url:
        yield url


def test_live_report_matches_the_bundles(
    live_prometheus: str, written: dict[str, Written], tmp_path: Path
) -> None:
    w = written["error_step-0001"]
    m = w.bundle.manifest
    queries = bundle_queries(w.bundle)
    first = min(float(s.t[0]) for cs in w.bundle.signals.values() for s in cs.values())
    service = {
        "environment": m.environment,
        "step": m.step,
        "baseline": f"{int(m.deploy.started_at.timestamp() - first)}s",
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
        "logs": {"source": "file", "path": str(SUITE / "error_step-0001" / "logs.jsonl")},
    }
    config = tmp_path / "vigil.yaml"
    config.write_text(
        yaml.safe_dump(
            {"version": 1, "prometheus": {"url": live_prometheus}, "services": {m.service: service}}
        )
    )
    out = tmp_path / "live"
    assert m.deploy.finished_at is not None
    result = _run(
        m.deploy.id,
        "--config",
        str(config),
        "--service",
        m.service,
        "--started",
        m.deploy.started_at.isoformat(),
        "--finished",
        m.deploy.finished_at.isoformat(),
        "--version",
        m.deploy.version,
        "--previous-version",
        m.deploy.previous_version,
        "--at",
        m.watch_until.isoformat(),
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    live = json.loads((out / "report.json").read_text())
    want = w.data
    assert live["source"] == "live: Prometheus (reviews)"
    for key in ("verdict", "first_at", "peak_tier", "conclusion", "logs", "at", "finished_at"):
        assert live[key] == want[key], key
    for got, sig in zip(live["signals"], want["signals"], strict=True):
        assert got["history"] == sig["history"], sig["name"]
        for key in ("tier", "status", "baseline_samples", "current_samples", "past_slo"):
            assert got["row"][key] == sig["row"][key], (sig["name"], key)
        for key in ("baseline", "current"):
            assert got["row"][key] == pytest.approx(sig["row"][key], rel=1e-6), sig["name"]
    assert (out / "charts" / "error_ratio.png").read_bytes().startswith(PNG_SIGNATURE)
    assert live["expected"] is None  # a live deploy has no ground truth


def test_live_report_with_prometheus_down_exits_2(tmp_path: Path) -> None:
    from tests.processes import free_port

    config = tmp_path / "vigil.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "prometheus": {"url": f"http://127.0.0.1:{free_port()}", "retries": 0},
                "services": {
                    "api": {
                        "signals": [
                            {
                                "name": "errors",
                                "query": "sum(rate(errors_total[1m]))",
                                "kind": "errors",
                                "unit": "per_second",
                                "bad_direction": "up",
                            }
                        ]
                    }
                },
            }
        )
    )
    started = datetime(2026, 2, 8, 13, 45, tzinfo=UTC).isoformat()
    result = _run(
        "d-1", "--config", str(config), "--service", "api", "--started", started, "--at", "+5m"
    )
    assert result.exit_code == 2
    assert "cannot report on api live:" in result.output
    assert "Traceback" not in result.output
