"""The deploy simulator: reproducible, valid bundles whose data match their ground truth."""

from __future__ import annotations

import filecmp
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from agent.bundle import Bundle, BundleManifest, Series, read_bundle, write_bundle
from evals.sim import FAMILIES, FAULTY, HEALTHY, generate_bundle, generate_suite, suite_plan
from evals.simulate import main as simulate_main

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"

# The family table of the brief, written out again so the code is checked against it.
EXPECTED = {
    "error_step": (3, True),
    "error_ramp": (3, True),
    "latency_step": (3, True),
    "latency_minor": (2, True),
    "crash_loop": (3, True),
    "business_drop": (3, True),
    "memory_leak": (2, True),
    "dependency_outage_pre": (1, False),
    "canary_both_cohorts": (1, False),
    "canary_regression": (3, True),
    "low_traffic_error": (3, True),
}
CANARY_FAMILIES = ("healthy_canary", "canary_both_cohorts", "canary_regression")


def _ts(moment: datetime | None) -> float:
    assert moment is not None
    return moment.timestamp()


def _start(b: Bundle) -> float:
    return b.manifest.deploy.started_at.timestamp()


def _current(b: Bundle) -> str:
    """The cohort running the new version after the start."""
    return "canary" if b.signals.has_cohorts else ""


def _after(b: Bundle, name: str, cohort: str, moment: float) -> Series:
    return b.signals[name][cohort].between(moment, float("inf"))


def _pooled(b: Bundle, name: str, cohort: str, lo: float, hi: float) -> float:
    """Bad events over all events for a counted ratio signal in [lo, hi)."""
    spec = b.manifest.signal(name)
    assert spec.events is not None
    ratio = b.signals[name][cohort].between(lo, hi)
    rate = b.signals[spec.events][cohort].between(lo, hi)
    common, ri, ei = np.intersect1d(ratio.t, rate.t, return_indices=True)
    assert len(common) > 0
    events = rate.v[ei] * b.manifest.step_seconds
    return float(np.sum(ratio.v[ri] * events) / np.sum(events))


def _assert_same(a: Bundle, b: Bundle) -> None:
    assert a.manifest == b.manifest
    assert set(a.signals) == set(b.signals)
    for name, cohorts in a.signals.items():
        assert set(cohorts) == set(b.signals[name])
        for cohort, series in cohorts.items():
            other = b.signals[name][cohort]
            assert np.array_equal(series.t, other.t)
            assert np.array_equal(series.v, other.v)
    assert a.logs == b.logs
    assert a.diff == b.diff
    assert a.alert == b.alert


@pytest.mark.parametrize("family", ["healthy_gaps", "error_ramp", "canary_regression"])
def test_same_seed_gives_identical_bundle(family: str) -> None:
    _assert_same(generate_bundle(family, 11, 5), generate_bundle(family, 11, 5))


def test_different_seeds_give_different_bundles() -> None:
    a, b = generate_bundle("healthy_steady", 1, 0), generate_bundle("healthy_steady", 2, 0)
    assert a.manifest.deploy.started_at != b.manifest.deploy.started_at
    assert not np.array_equal(a.signals["error_ratio"][""].v, b.signals["error_ratio"][""].v)


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown family"):
        generate_bundle("healthy_typo", 1, 0)


def test_family_table_matches_the_brief() -> None:
    assert len(HEALTHY) == 11 and len(FAULTY) == 11
    assert set(FAULTY) == set(EXPECTED)
    for name in FAMILIES:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", name), "family names use underscores only"
    for name, (tier, caused) in EXPECTED.items():
        assert (FAMILIES[name].tier, FAMILIES[name].deploy_caused) == (tier, caused)
        assert not FAMILIES[name].healthy
    for name in HEALTHY:
        assert FAMILIES[name].healthy and FAMILIES[name].tier == 0
        assert FAMILIES[name].deploy_caused is None


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_generates_a_valid_bundle(family: str, tmp_path: Path) -> None:
    for index in (3, 8):
        b = generate_bundle(family, 5, index)
        m = b.manifest
        assert BundleManifest.model_validate(m.model_dump()) == m
        assert m.name == f"{family}-{index:04d}"
        assert m.name.rsplit("-", 1)[0] == family
        assert 5 <= len(m.signals) <= 8
        assert {"request_rate", "error_ratio", "latency_p95", "memory_bytes"} <= set(b.signals)
        assert set(b.signals) == {s.name for s in m.signals}
        step, start = m.step_seconds, _start(b)
        assert step in (15.0, 30.0)
        assert start % step == 0
        assert m.deploy.started_at.year == 2026
        finished = _ts(m.deploy.finished_at) - start
        assert 60 <= finished <= 300
        watch = m.watch_until.timestamp() - start
        assert 20 * 60 - step <= watch <= 30 * 60 + step
        for name, cohorts in b.signals.items():
            for cohort, series in cohorts.items():
                assert len(series) > 0, (name, cohort)
                assert np.all(np.diff(series.t) > 0)
                assert np.all(np.isfinite(series.v))
                assert np.all((series.t - start) % step == 0), "samples sit on the step grid"
                assert series.t[-1] <= m.watch_until.timestamp()
                baseline = start - series.t[0] if cohort == "" else None
                if baseline is not None:
                    assert 30 * 60 <= baseline <= 45 * 60 + step
                unit = m.signal(name).unit.value
                if unit == "ratio":
                    assert np.all((series.v >= 0) & (series.v <= 1))
                else:
                    assert np.all(series.v >= 0)
        _assert_same(read_bundle(write_bundle(b, tmp_path / m.name)), b)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_ground_truth_matches_the_family(family: str) -> None:
    spec = FAMILIES[family]
    for index in (1, 4, 9):
        b = generate_bundle(family, 2, index)
        e = b.manifest.expect
        assert e is not None and e.tier == spec.tier
        assert e.deploy_caused is spec.deploy_caused
        start, step = _start(b), b.manifest.step_seconds
        assert b.diff is not None and b.logs is not None
        if spec.healthy:
            assert e.onset is None and e.culprit_file is None and e.log_signature is None
            assert b.alert is None
            continue
        onset = _ts(e.onset)
        assert (onset - start) % step != 0, "the onset falls between two samples"
        if family == "dependency_outage_pre":
            assert start - 600 <= onset <= start - 120
        elif family == "crash_loop":
            assert start < onset <= start + 60 + step
        elif family == "canary_both_cohorts":
            assert start + 30 <= onset <= start + 240 + step
        else:
            assert start + 15 <= onset <= start + 180 + step
        assert e.log_signature
        hits = [x for x in b.logs if e.log_signature in x.message]
        assert len(hits) >= 2
        assert min(x.ts.timestamp() for x in hits) >= onset
        if spec.deploy_caused:
            assert e.culprit_file is not None
            assert f"diff --git a/{e.culprit_file} b/{e.culprit_file}" in b.diff
            # Only pods of the new version log the new error.
            assert {x.labels["version"] for x in hits} == {b.manifest.deploy.version}
        else:
            assert e.culprit_file is None
            assert e.log_signature.split(":")[0].endswith("Error")
        assert b.alert is not None
        assert b.alert["version"] == "4" and b.alert["status"] == "firing"
        alert = b.alert["alerts"][0]
        assert alert["labels"]["service"] == b.manifest.service
        fired = datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00")).timestamp()
        assert onset + 60 <= fired <= onset + 180


def test_strategies_follow_the_family() -> None:
    for family in CANARY_FAMILIES:
        for index in range(4):
            strategy = generate_bundle(family, 3, index).manifest.deploy.strategy.value
            assert strategy == "canary"
    seen = {generate_bundle("error_step", 3, i).manifest.deploy.strategy.value for i in range(40)}
    assert seen == {"rolling", "canary", "blue-green"}
    low = {
        generate_bundle("healthy_low_traffic", 3, i).manifest.deploy.strategy.value
        for i in range(20)
    }
    assert "canary" not in low


@pytest.mark.parametrize("family", CANARY_FAMILIES)
def test_canary_bundles_have_cohort_series_after_start(family: str) -> None:
    for index in range(3):
        b = generate_bundle(family, 4, index)
        start = _start(b)
        for name, cohorts in b.signals.items():
            assert set(cohorts) == {"", "baseline", "canary"}, name
            assert cohorts[""].t[-1] <= start
            for cohort in ("baseline", "canary"):
                assert cohorts[cohort].t[0] > start
                assert len(cohorts[cohort]) >= 60
        whole = np.median(b.signals["request_rate"][""].v[-40:])
        canary = np.median(b.signals["request_rate"]["canary"].v)
        baseline = np.median(b.signals["request_rate"]["baseline"].v)
        assert 0.03 <= canary / whole <= 0.3
        assert 0.6 <= (canary + baseline) / whole <= 1.4


def _healthy_cases() -> list[tuple[str, int]]:
    return [(family, index) for family in HEALTHY for index in range(100, 106)]


@pytest.mark.parametrize(("family", "index"), _healthy_cases())
def test_healthy_bundles_stay_within_slo(family: str, index: int) -> None:
    b = generate_bundle(family, 9, index)
    step = b.manifest.step_seconds
    for spec in b.manifest.signals:
        if spec.slo is None:
            continue
        for cohort, series in b.signals[spec.name].items():
            lo, hi = series.t[0], series.t[-1] + 1
            if spec.events is not None:
                # Judged on counts: the pooled ratio, and per sample wherever counts are large.
                pooled = _pooled(b, spec.name, cohort, lo, hi)
                rate = b.signals[spec.events][cohort]
                _, ri, ei = np.intersect1d(series.t, rate.t, return_indices=True)
                big = rate.v[ei] * step >= 400
                values = series.v[ri][big]
            else:
                pooled = float(np.median(series.v))
                values = series.v
            if spec.bad_direction == "up":
                assert pooled <= 0.7 * spec.slo, (spec.name, cohort, pooled)
                breaches = values > spec.slo
            else:
                assert pooled >= spec.slo + 0.01, (spec.name, cohort, pooled)
                breaches = values < spec.slo
            # Bursts and GC spikes may cross for a sample, rarely.
            assert breaches.sum() <= max(2, 0.05 * len(values)), (spec.name, cohort)


def test_healthy_breaches_are_rare_over_many_bundles() -> None:
    over = total = 0
    for index in range(60):
        b = generate_bundle(HEALTHY[index % len(HEALTHY)], 13, index)
        latency = b.manifest.signal("latency_p95")
        assert latency.slo is not None
        for series in b.signals["latency_p95"].values():
            over += int(np.sum(series.v > latency.slo))
            total += len(series)
    assert total > 0 and over / total < 0.01


def test_regressions_show_in_the_data() -> None:
    for index in range(3):
        b = generate_bundle("error_step", 6, index)
        cur, onset = _current(b), _ts(b.manifest.expect.onset if b.manifest.expect else None)
        slo = b.manifest.signal("error_ratio").slo
        assert slo is not None
        assert _pooled(b, "error_ratio", cur, onset + 60, float("inf")) > slo
        assert _pooled(b, "error_ratio", "", 0, _start(b) - 120) < slo

        b = generate_bundle("latency_step", 6, index)
        cur, onset = _current(b), _ts(b.manifest.expect.onset if b.manifest.expect else None)
        slo = b.manifest.signal("latency_p95").slo
        assert slo is not None
        assert np.median(_after(b, "latency_p95", cur, onset + 60).v) > slo

        b = generate_bundle("latency_minor", 6, index)
        cur, onset = _current(b), _ts(b.manifest.expect.onset if b.manifest.expect else None)
        slo = b.manifest.signal("latency_p95").slo
        assert slo is not None
        before = np.median(b.signals["latency_p95"][""].between(0, _start(b)).v)
        after = np.median(_after(b, "latency_p95", cur, onset + 60).v)
        assert after >= 1.25 * before
        assert after <= 0.85 * slo

        b = generate_bundle("business_drop", 6, index)
        cur, onset = _current(b), _ts(b.manifest.expect.onset if b.manifest.expect else None)
        success = b.manifest.signal("checkout_success_ratio").slo
        errors = b.manifest.signal("error_ratio").slo
        assert success is not None and errors is not None
        assert _pooled(b, "checkout_success_ratio", cur, onset + 60, float("inf")) < success
        assert _pooled(b, "error_ratio", cur, onset + 60, float("inf")) < 0.7 * errors

        b = generate_bundle("memory_leak", 6, index)
        cur = _current(b)
        before = np.median(b.signals["memory_bytes"][""].between(0, _start(b)).v)
        assert np.median(b.signals["memory_bytes"][cur].v[-12:]) > 1.15 * before

        b = generate_bundle("dependency_outage_pre", 6, index)
        onset = _ts(b.manifest.expect.onset if b.manifest.expect else None)
        slo = b.manifest.signal("error_ratio").slo
        assert slo is not None
        assert _pooled(b, "error_ratio", "", onset + 90, _start(b) + 1) > slo
        assert _pooled(b, "error_ratio", "", 0, onset - 60) < slo
        dependency = "db_latency_p95" if "db_latency_p95" in b.signals else "upstream_error_ratio"
        dep = b.signals[dependency][_current(b)]
        dep_before = b.signals[dependency][""].between(0, onset - 60)
        assert np.median(dep.between(_start(b), float("inf")).v) > 2 * np.median(dep_before.v)


def test_canary_faults_hit_the_right_cohorts() -> None:
    for index in range(4):
        b = generate_bundle("canary_both_cohorts", 8, index)
        onset = _ts(b.manifest.expect.onset if b.manifest.expect else None)
        slo = b.manifest.signal("error_ratio").slo
        assert slo is not None
        for cohort in ("baseline", "canary"):
            assert _pooled(b, "error_ratio", cohort, onset + 120, float("inf")) > slo

        b = generate_bundle("canary_regression", 8, index)
        onset = _ts(b.manifest.expect.onset if b.manifest.expect else None)
        err, lat = b.manifest.signal("error_ratio").slo, b.manifest.signal("latency_p95").slo
        assert err is not None and lat is not None
        canary_err = _pooled(b, "error_ratio", "canary", onset + 60, float("inf"))
        canary_lat = float(np.median(_after(b, "latency_p95", "canary", onset + 60).v))
        assert canary_err > err or canary_lat > lat
        assert _pooled(b, "error_ratio", "baseline", onset + 60, float("inf")) < err
        assert np.median(_after(b, "latency_p95", "baseline", onset + 60).v) < lat


def test_crash_loop_and_low_traffic_faults() -> None:
    for index in range(3):
        b = generate_bundle("crash_loop", 10, index)
        cur, onset = _current(b), _ts(b.manifest.expect.onset if b.manifest.expect else None)
        slo = b.manifest.signal("error_ratio").slo
        assert slo is not None
        assert _pooled(b, "error_ratio", cur, onset + 60, float("inf")) > 0.15
        memory = _after(b, "memory_bytes", cur, onset + 60).v
        assert np.sum(np.diff(memory) < -0.1 * np.median(memory)) >= 2, "restarts drop memory"

        b = generate_bundle("low_traffic_error", 10, index)
        onset = _ts(b.manifest.expect.onset if b.manifest.expect else None)
        assert np.median(b.signals["request_rate"][""].v) <= 3
        assert _pooled(b, "error_ratio", "", onset + 30, float("inf")) > 0.07


def test_gaps_are_written_as_empty_values(tmp_path: Path) -> None:
    paths = generate_suite(tmp_path, 21, healthy=8, faulty=0)
    gaps = [p for p in paths if p.name.startswith("healthy_gaps")]
    assert gaps
    text = (gaps[0] / "signals.csv").read_text()
    empty = [row for row in text.splitlines() if row.split(",")[2] == ""]
    assert empty
    b = read_bundle(gaps[0])
    step = b.manifest.step_seconds
    grid = (b.manifest.watch_until.timestamp() - b.signals["error_ratio"][""].t[0]) / step + 1
    shortest = min(len(s) for cs in b.signals.values() for s in cs.values())
    assert shortest < grid


def test_suite_plan_spreads_families_evenly() -> None:
    plan = suite_plan(24, 18)
    names = [f"{family}-{index:04d}" for family, index in plan]
    assert len(set(names)) == 42
    assert {family for family, _ in plan} == set(FAMILIES)
    for group, size in ((HEALTHY, 24), (FAULTY, 18)):
        counts = [sum(1 for f, _ in plan if f == family) for family in group]
        assert sum(counts) == size and max(counts) - min(counts) <= 1
    small, large = dict((i, f) for f, i in suite_plan(3, 2)), dict((i, f) for f, i in plan)
    assert all(large[i] == f for i, f in small.items())


def test_bundle_does_not_depend_on_suite_size(tmp_path: Path) -> None:
    small = generate_suite(tmp_path / "small", 4, healthy=2, faulty=2)
    large = generate_suite(tmp_path / "large", 4, healthy=5, faulty=4)
    assert {p.name for p in small} < {p.name for p in large}
    for path in small:
        other = tmp_path / "large" / path.name
        files = sorted(f.name for f in path.iterdir())
        assert files == sorted(f.name for f in other.iterdir())
        _, mismatch, errors = filecmp.cmpfiles(path, other, files, shallow=False)
        assert not mismatch and not errors


def test_parallel_suite_equals_serial(tmp_path: Path) -> None:
    serial = generate_suite(tmp_path / "a", 12, healthy=3, faulty=3, jobs=1)
    parallel = generate_suite(tmp_path / "b", 12, healthy=3, faulty=3, jobs=2)
    assert [p.name for p in serial] == [p.name for p in parallel]
    for a, b in zip(serial, parallel, strict=True):
        files = sorted(f.name for f in a.iterdir())
        assert not filecmp.cmpfiles(a, b, files, shallow=False)[1]


def _hunks(diff: str) -> list[tuple[int, int, list[str]]]:
    """(old count, new count, body lines) of every hunk."""
    out: list[tuple[int, int, list[str]]] = []
    for line in diff.split("\n"):
        match = re.match(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@", line)
        if match:
            out.append((int(match.group(1) or 1), int(match.group(2) or 1), []))
        elif line.startswith("diff --git"):
            out.append((0, 0, []))  # a file header ends the previous hunk
        elif out and line:
            out[-1][2].append(line)
    return [h for h in out if h[0] or h[1]]


def test_change_diff_is_a_unified_diff() -> None:
    for index, family in enumerate(FAMILIES):
        diff = generate_bundle(family, 14, index).diff
        assert diff is not None and diff.endswith("\n")
        files = re.findall(r"^diff --git a/(\S+) b/(\S+)$", diff, flags=re.M)
        assert 2 <= len(files) <= 6 and all(a == b for a, b in files)
        assert len(set(files)) == len(files)
        assert [a for a, _ in files] == sorted(a for a, _ in files)
        indexes = re.findall(r"^index [0-9a-f]{7}\.\.[0-9a-f]{7}", diff, flags=re.M)
        assert len(indexes) == len(files)
        hunks = _hunks(diff)
        assert len(hunks) >= len(files)
        for old, new, body in hunks:
            body = [x for x in body if not x.startswith(("index ", "--- ", "+++ ", "new file"))]
            assert sum(1 for x in body if x[0] in " -") == old
            assert sum(1 for x in body if x[0] in " +") == new
            assert any(x[0] in "+-" for x in body)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_logs_surround_the_deploy(family: str) -> None:
    for index in range(6):
        b = generate_bundle(family, 15, index)
        assert b.logs is not None and 100 <= len(b.logs) <= 400
        times = [x.ts.timestamp() for x in b.logs]
        assert times == sorted(times)
        assert min(times) < _start(b) < max(times) <= b.manifest.watch_until.timestamp() + 15
        assert {x.level for x in b.logs} <= {"info", "warn", "error"}
        assert all(x.labels.get("pod", "").startswith(b.manifest.service) for x in b.logs)
        started = [x for x in b.logs if x.message.startswith(f"starting {b.manifest.service}")]
        assert started and all(x.ts.timestamp() >= _start(b) - 30 for x in started)


def test_cli_writes_a_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "suite"
    code = simulate_main(["--seed", "3", "--healthy", "2", "--faulty", "1", "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "error_step-0001",
        "healthy_diurnal-0002",
        "healthy_steady-0000",
    ]
    assert "wrote 3 bundles" in capsys.readouterr().out


def test_committed_small_suite_is_reproducible(tmp_path: Path) -> None:
    committed = sorted(p.name for p in SUITE.iterdir() if p.is_dir())
    assert len(committed) == 42
    assert {name.rsplit("-", 1)[0] for name in committed} == set(FAMILIES)
    fresh = generate_suite(tmp_path, 1, healthy=24, faulty=18)
    assert [p.name for p in fresh] == sorted(committed, key=lambda n: int(n.rsplit("-", 1)[1]))
    for path in fresh:
        files = sorted(f.name for f in path.iterdir())
        assert files == sorted(f.name for f in (SUITE / path.name).iterdir())
        _, mismatch, errors = filecmp.cmpfiles(path, SUITE / path.name, files, shallow=False)
        assert not mismatch and not errors, (path.name, mismatch)
    size = sum(f.stat().st_size for f in SUITE.rglob("*") if f.is_file())
    assert size < 6_000_000
