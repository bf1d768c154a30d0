"""The scorecard: false rollbacks, recall and detection delay, against hand-computed numbers."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from agent.bundle import Bundle, BundleManifest, write_bundle
from agent.cli import app
from agent.errors import ConfigError
from agent.evaluation import (
    FINE_STEP_S,
    TARGETS,
    FamilyRow,
    Outcome,
    Scorecard,
    delay_reference,
    evaluate_suite,
    exp,
    family_of,
    make_judge,
    outcome,
    score,
)
from agent.judge.reference import FlaggerJudge, KayentaJudge, StaticThresholdJudge
from agent.judge.replay import ReplayResult
from agent.judge.vigil import VigilJudge
from tests.builders import ERRORS, LATENCY, MEMORY, START, STEP, TRAFFIC, bundle, manifest, service
from tests.builders import times as grid

T0 = START.timestamp()
SMALL_SUITE = Path(__file__).parent.parent / "evals" / "suites" / "small"
runner = CliRunner()


# ----------------------------------------------------------------------------- helpers


def out(
    name: str,
    expected: int | None,
    max_tier: int,
    *,
    delay: float | None = None,
    rollback: float | None = None,
    step: float = 15.0,
) -> Outcome:
    """An outcome as `outcome()` would record it; first_at is consistent with max_tier."""
    first_at: dict[int, float | None] = {
        tier: (T0 + 60.0 if tier <= max_tier else None) for tier in (1, 2, 3)
    }
    return Outcome(
        name=name,
        family=family_of(name),
        expected_tier=expected,
        deploy_caused=None if expected is None else expected > 0,
        max_tier=max_tier,
        first_at=first_at,
        reference=None if not expected else T0,
        delay_s=delay,
        delay_to_rollback_s=rollback,
        step_s=step,
    )


def mixed() -> list[Outcome]:
    """Fifteen outcomes whose scorecard is worked out by hand in the tests below."""
    return [
        # healthy (expected 0): one warn, one false rollback, one false pause
        out("healthy-0001", 0, 0),
        out("healthy-0002", 0, 1),
        out("healthy-0003", 0, 3),
        out("healthy-0004", 0, 0),
        out("healthy-0005", 0, 2),
        # expected warn: one right, one over (a false pause)
        out("minor-0006", 1, 1, delay=30.0),
        out("minor-0007", 1, 2, delay=45.0),
        # expected pause: one right, one missed
        out("pause-0008", 2, 2, delay=60.0),
        out("pause-0009", 2, 1),
        # expected rollback: three caught (one on a 30 s scrape), one only paused
        out("step-0010", 3, 3, delay=20.0, rollback=20.0),
        out("step-0011", 3, 3, delay=40.0, rollback=40.0),
        out("step-0012", 3, 3, delay=90.0, rollback=90.0, step=30.0),
        out("step-0013", 3, 2),
        # a rollback on a finer scrape than 15 s
        out("ramp-0014", 3, 3, delay=100.0, rollback=100.0, step=10.0),
        # no ground truth: counted as a bundle, never scored
        out("mystery-0015", None, 3),
    ]


def with_expect(
    b: Bundle,
    name: str,
    tier: int,
    onset_rel: float | None = None,
    *,
    step: str | None = None,
    deploy_caused: bool | None = None,
) -> Bundle:
    expect: dict[str, Any] = {"tier": tier}
    if onset_rel is not None:
        expect["onset"] = START.timestamp() + onset_rel
    if deploy_caused is not None:
        expect["deploy_caused"] = deploy_caused
    data = {**b.manifest.model_dump(), "name": name, "expect": expect}
    if step is not None:
        data["step"] = step
    return Bundle(manifest=BundleManifest.model_validate(data), signals=b.signals)


def replayed(name: str, max_tier: int, **first: float) -> ReplayResult:
    at: dict[int, float | None] = {1: None, 2: None, 3: None}
    for key, value in first.items():
        at[int(key[1:])] = T0 + value
    return ReplayResult(bundle=name, max_tier=max_tier, first_at=at)


def error_bundle(
    values: np.ndarray, *, cohort: str = "", signals: list[dict[str, Any]] | None = None
) -> Bundle:
    """Error ratio (critical, SLO 1 %) with exactly these values on the builder's grid."""
    t = grid()
    specs: list[dict[str, Any]] = signals if signals is not None else [TRAFFIC, ERRORS]
    series: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {
        "request_rate": {"": (t, np.full(t.shape, 200.0))},
        "error_ratio": {cohort: (t, values)},
    }
    if cohort:
        series["error_ratio"][""] = (t, np.full(t.shape, 0.002))
    return bundle(manifest(specs), series)


def rel() -> np.ndarray:
    return grid() - T0


# ----------------------------------------------------------------------------- score()


def test_counts_of_bundles_healthy_faulty_and_unscored() -> None:
    card = score(mixed(), "vigil")
    assert card.judge == "vigil"
    assert card.bundles == 15
    assert card.unscored == 1
    assert card.healthy == 5
    assert card.faulty == 9  # every scored bundle expected above tier 0, warn included


def test_false_rollback_rates() -> None:
    card = score(mixed())
    # 1 of the 5 healthy deploys was rolled back.
    assert card.false_rollback_healthy_pct == pytest.approx(20.0)
    # 1 of the 9 bundles expected below tier 3 (5 healthy, 2 warn, 2 pause) was rolled back.
    assert card.false_rollback_pct == pytest.approx(100.0 / 9)


def test_false_pause_counts_tier_2_or_more_on_expected_0_or_1() -> None:
    card = score(mixed())
    # Expected <= 1: 5 healthy + 2 warn = 7; tier >= 2 reached by healthy-0003 (3),
    # healthy-0005 (2) and minor-0007 (2).
    assert card.false_pause_pct == pytest.approx(300.0 / 7)


def test_rollback_and_action_recall() -> None:
    card = score(mixed())
    # Expected 3: five bundles, four reached tier 3.
    assert card.rollback_recall_pct == pytest.approx(80.0)
    # Expected >= 2: seven bundles; only pause-0009 stayed below tier 2 (step-0013 paused).
    assert card.action_recall_pct == pytest.approx(600.0 / 7)


def test_warn_on_healthy() -> None:
    # healthy-0002 (1), healthy-0003 (3), healthy-0005 (2): 3 of 5.
    assert score(mixed()).warn_healthy_pct == pytest.approx(60.0)


def test_rollback_delay_targets_use_only_fine_steps() -> None:
    card = score(mixed())
    assert FINE_STEP_S == 15.0
    # step <= 15 s: 20, 40, 100 -> median 40; p90 at rank 1.8 -> 40 + 0.8 * 60 = 88.
    assert card.median_delay_to_rollback_s == pytest.approx(40.0)
    assert card.p90_delay_to_rollback_s == pytest.approx(88.0)
    # Every step: 20, 40, 90, 100 -> median 65; p90 at rank 2.7 -> 90 + 0.7 * 10 = 97.
    assert card.median_delay_to_rollback_all_s == pytest.approx(65.0)
    assert card.p90_delay_to_rollback_all_s == pytest.approx(97.0)


def test_delay_to_expected_tier_covers_every_step() -> None:
    card = score(mixed())
    # Delays of bundles expected >= 1 that reached their tier, whatever their step:
    # 20, 30, 40, 45, 60, 90, 100 -> median 45; p90 at rank 5.4 -> 90 + 0.4 * 10 = 94.
    assert card.median_delay_s == pytest.approx(45.0)
    assert card.p90_delay_s == pytest.approx(94.0)


def test_a_bundle_at_exactly_fifteen_seconds_is_fine_and_sixteen_is_not() -> None:
    rows = [
        out("a-1", 3, 3, delay=10.0, rollback=10.0, step=15.0),
        out("a-2", 3, 3, delay=70.0, rollback=70.0, step=16.0),
    ]
    card = score(rows)
    assert card.median_delay_to_rollback_s == pytest.approx(10.0)
    assert card.p90_delay_to_rollback_s == pytest.approx(10.0)
    assert card.median_delay_to_rollback_all_s == pytest.approx(40.0)
    assert card.p90_delay_to_rollback_all_s == pytest.approx(64.0)  # 10 + 0.9 * 60


def test_only_coarse_rollbacks_leave_the_fine_delay_unknown() -> None:
    card = score([out("c-1", 3, 3, delay=60.0, rollback=60.0, step=30.0)])
    assert card.median_delay_to_rollback_s is None
    assert card.p90_delay_to_rollback_s is None
    assert card.median_delay_to_rollback_all_s == pytest.approx(60.0)
    assert card.meets_targets()["median_delay_to_rollback_s"] is False


def test_rollback_delays_come_only_from_bundles_expected_at_tier_3() -> None:
    # A delay_to_rollback_s on a bundle expected at 2 is not a rollback delay of the scorecard.
    rows = [out("p-1", 2, 3, delay=30.0, rollback=30.0), out("r-1", 3, 3, delay=50, rollback=50)]
    card = score(rows)
    assert card.median_delay_to_rollback_s == pytest.approx(50.0)
    assert card.median_delay_s == pytest.approx(40.0)


def test_per_family_rows() -> None:
    card = score(mixed())
    assert [row.family for row in card.families] == ["healthy", "minor", "pause", "ramp", "step"]
    rows = {row.family: row for row in card.families}
    assert rows["healthy"] == FamilyRow(
        family="healthy",
        n=5,
        expected_tier=0,
        mean_max_tier=1.2,
        reached_pct=100.0,
        over_pct=60.0,
        median_delay_s=None,
    )
    assert rows["minor"] == FamilyRow(
        family="minor",
        n=2,
        expected_tier=1,
        mean_max_tier=1.5,
        reached_pct=100.0,
        over_pct=50.0,
        median_delay_s=37.5,
    )
    assert rows["pause"] == FamilyRow(
        family="pause",
        n=2,
        expected_tier=2,
        mean_max_tier=1.5,
        reached_pct=50.0,
        over_pct=0.0,
        median_delay_s=60.0,
    )
    assert rows["ramp"] == FamilyRow(
        family="ramp",
        n=1,
        expected_tier=3,
        mean_max_tier=3.0,
        reached_pct=100.0,
        over_pct=0.0,
        median_delay_s=100.0,
    )
    assert rows["step"] == FamilyRow(
        family="step",
        n=4,
        expected_tier=3,
        mean_max_tier=2.75,
        reached_pct=75.0,
        over_pct=0.0,
        median_delay_s=40.0,
    )
    assert "mystery" not in rows  # unscored bundles have no family row


def test_a_family_with_mixed_expectations_reports_its_highest() -> None:
    card = score(
        [
            out("mix-0001", 0, 1),
            out("mix-0002", 3, 3, delay=30.0, rollback=30.0),
            out("mix-0003", 2, 1),
        ]
    )
    # mix-0001 reached (and passed) tier 0, mix-0002 reached 3, mix-0003 stopped at 1 of 2.
    [row] = card.families
    assert (row.family, row.n, row.expected_tier) == ("mix", 3, 3)
    assert row.mean_max_tier == pytest.approx(5 / 3)
    assert row.reached_pct == pytest.approx(200 / 3)
    assert row.over_pct == pytest.approx(100 / 3)
    assert row.median_delay_s == 30.0


def test_misses_list_every_disagreement_on_rollback_or_action() -> None:
    assert score(mixed()).misses == [
        "healthy-0003(exp 0, got 3)",
        "healthy-0005(exp 0, got 2)",
        "minor-0007(exp 1, got 2)",
        "pause-0009(exp 2, got 1)",
        "step-0013(exp 3, got 2)",
    ]


def test_a_warning_on_a_healthy_deploy_is_not_a_miss() -> None:
    card = score([out("h-1", 0, 1), out("w-1", 1, 0)])
    assert card.misses == []


def test_targets_on_the_mixed_card() -> None:
    met = score(mixed()).meets_targets()
    assert list(met) == list(TARGETS)
    assert met == {
        "false_rollback_healthy_pct": False,  # 20 > 0.5
        "false_pause_pct": False,  # 42.9 > 2
        "rollback_recall_pct": False,  # 80 < 99
        "action_recall_pct": False,  # 85.7 < 95
        "median_delay_to_rollback_s": False,  # 40 > 30
        "p90_delay_to_rollback_s": True,  # 88 <= 150
    }


def test_targets_are_the_documented_ones() -> None:
    assert TARGETS == {
        "false_rollback_healthy_pct": ("<=", 0.5),
        "false_pause_pct": ("<=", 2.0),
        "rollback_recall_pct": (">=", 99.0),
        "action_recall_pct": (">=", 95.0),
        "median_delay_to_rollback_s": ("<=", 30.0),
        "p90_delay_to_rollback_s": ("<=", 150.0),
    }


def test_one_false_rollback_in_200_healthy_meets_the_target_and_in_199_does_not() -> None:
    caught = [out("r-1", 3, 3, delay=15.0, rollback=15.0)]
    ok = score([out(f"h-{i}", 0, 3 if i == 0 else 0) for i in range(200)] + caught)
    assert ok.false_rollback_healthy_pct == pytest.approx(0.5)
    assert ok.meets_targets()["false_rollback_healthy_pct"] is True
    bad = score([out(f"h-{i}", 0, 3 if i == 0 else 0) for i in range(199)] + caught)
    assert bad.false_rollback_healthy_pct == pytest.approx(100 / 199)
    assert bad.meets_targets()["false_rollback_healthy_pct"] is False


@pytest.mark.parametrize(
    ("key", "at_bound", "past_bound"),
    [
        ("false_rollback_healthy_pct", 0.5, 0.51),
        ("false_pause_pct", 2.0, 2.01),
        ("rollback_recall_pct", 99.0, 98.99),
        ("action_recall_pct", 95.0, 94.99),
        ("median_delay_to_rollback_s", 30.0, 30.01),
        ("p90_delay_to_rollback_s", 150.0, 150.01),
    ],
)
def test_targets_are_inclusive_at_their_bound(key: str, at_bound: float, past_bound: float) -> None:
    card = score(mixed())
    assert card.model_copy(update={key: at_bound}).meets_targets()[key] is True
    assert card.model_copy(update={key: past_bound}).meets_targets()[key] is False
    assert card.model_copy(update={key: None}).meets_targets()[key] is False


def test_a_perfect_card_meets_every_target() -> None:
    rows = [out(f"healthy-{i:04d}", 0, 0) for i in range(10)] + [
        out("minor-0100", 1, 1, delay=60.0),
        out("pause-0101", 2, 2, delay=45.0),
        out("step-0102", 3, 3, delay=15.0, rollback=15.0),
        out("step-0103", 3, 3, delay=30.0, rollback=30.0),
    ]
    card = score(rows)
    assert card.false_rollback_pct == 0.0
    assert card.false_rollback_healthy_pct == 0.0
    assert card.false_pause_pct == 0.0
    assert card.rollback_recall_pct == 100.0
    assert card.action_recall_pct == 100.0
    assert card.warn_healthy_pct == 0.0
    assert card.median_delay_to_rollback_s == pytest.approx(22.5)
    assert card.p90_delay_to_rollback_s == pytest.approx(28.5)
    assert all(card.meets_targets().values())
    assert card.misses == []


def test_no_faulty_bundles_leaves_recall_and_delays_unknown() -> None:
    card = score([out("healthy-0001", 0, 0), out("healthy-0002", 0, 1)])
    assert card.healthy == 2 and card.faulty == 0
    assert card.false_rollback_healthy_pct == 0.0
    assert card.false_rollback_pct == 0.0
    assert card.false_pause_pct == 0.0
    assert card.warn_healthy_pct == pytest.approx(50.0)
    assert card.rollback_recall_pct is None
    assert card.action_recall_pct is None
    for key in (
        "median_delay_to_rollback_s",
        "p90_delay_to_rollback_s",
        "median_delay_to_rollback_all_s",
        "p90_delay_to_rollback_all_s",
        "median_delay_s",
        "p90_delay_s",
    ):
        assert getattr(card, key) is None, key
    met = card.meets_targets()
    assert met["rollback_recall_pct"] is False and met["action_recall_pct"] is False
    assert met["false_rollback_healthy_pct"] is True


def test_no_healthy_bundles_leaves_false_rollback_of_healthy_unknown() -> None:
    card = score([out("step-0001", 3, 3, delay=30.0, rollback=30.0), out("minor-0002", 1, 3)])
    assert card.healthy == 0
    assert card.false_rollback_healthy_pct is None
    assert card.warn_healthy_pct is None
    assert card.false_rollback_pct == pytest.approx(100.0)  # the warn bundle was rolled back
    assert card.false_pause_pct == pytest.approx(100.0)
    assert card.meets_targets()["false_rollback_healthy_pct"] is False


def test_empty_input_gives_an_empty_card() -> None:
    card = score([], "static")
    assert card.judge == "static"
    assert (card.bundles, card.unscored, card.healthy, card.faulty) == (0, 0, 0, 0)
    for key in (
        "false_rollback_pct",
        "false_rollback_healthy_pct",
        "false_pause_pct",
        "rollback_recall_pct",
        "action_recall_pct",
        "warn_healthy_pct",
        "median_delay_s",
        "p90_delay_s",
    ):
        assert getattr(card, key) is None, key
    assert card.families == [] and card.misses == []
    assert card.meets_targets() == dict.fromkeys(TARGETS, False)
    data = card.to_json()
    assert json.loads(json.dumps(data)) == data
    buffer = io.StringIO()
    card.render(Console(file=buffer, width=120))
    text = buffer.getvalue()
    assert "Scorecard: static on 0 bundles (0 healthy, 0 faulty)" in text


def test_only_unscored_bundles() -> None:
    card = score([out("x-1", None, 3), out("x-2", None, 0)])
    assert card.bundles == 2 and card.unscored == 2
    assert card.healthy == 0 and card.faulty == 0
    assert card.false_rollback_pct is None and card.rollback_recall_pct is None
    assert card.families == [] and card.misses == []


def test_score_accepts_a_one_shot_iterator() -> None:
    assert score(iter(mixed())) == score(mixed())


def test_to_json_is_the_model_plus_target_flags() -> None:
    card = score(mixed())
    data = card.to_json()
    assert set(data) == set(Scorecard.model_fields) | {"meets_targets"}
    assert data["meets_targets"] == card.meets_targets()
    assert data["families"][0] == card.families[0].model_dump()
    assert json.loads(json.dumps(data)) == data


def test_render_shows_every_target_and_the_misses() -> None:
    buffer = io.StringIO()
    score(mixed(), "flagger").render(Console(file=buffer, width=160))
    text = buffer.getvalue()
    assert "Scorecard: flagger on 15 bundles (5 healthy, 9 faulty)" in text
    for key in TARGETS:
        assert key in text
    assert "88.0" in text and "40.0" in text
    assert "misses: healthy-0003(exp 0, got 3)" in text
    assert "step" in text and "ramp" in text


def test_exp_treats_unknown_as_healthy() -> None:
    assert exp(out("a-1", None, 0)) == 0
    assert exp(out("a-1", 0, 0)) == 0
    assert exp(out("a-1", 2, 0)) == 2


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("error_step-0001", "error_step"),
        ("healthy_diurnal-0046", "healthy_diurnal"),
        ("checkout-card-regex", "checkout-card-regex"),
        ("a-b-12", "a-b"),
        ("healthy", "healthy"),
        ("-0001", "-0001"),
        ("step-", "step-"),
    ],
)
def test_family_of(name: str, family: str) -> None:
    assert family_of(name) == family


# ----------------------------------------------------------------------------- outcome()


def test_outcome_of_a_caught_step_regression() -> None:
    b = with_expect(service(seed=1), "error_step-0007", 3, 100.0, deploy_caused=True)
    o = outcome(b, replayed("error_step-0007", 3, t1=115.0, t2=115.0, t3=130.0))
    assert o.name == "error_step-0007" and o.family == "error_step"
    assert o.expected_tier == 3 and o.deploy_caused is True
    assert o.max_tier == 3
    assert o.first_at == {1: T0 + 115.0, 2: T0 + 115.0, 3: T0 + 130.0}
    # The builder's series never cross the 1 % SLO, so the reference is the onset.
    assert o.reference == T0 + 100.0
    assert o.delay_s == pytest.approx(30.0)
    assert o.delay_to_rollback_s == pytest.approx(30.0)
    assert o.step_s == 15.0


def test_outcome_of_a_missed_rollback_has_no_delay() -> None:
    b = with_expect(service(seed=1), "error_step-0008", 3, 100.0)
    o = outcome(b, replayed("error_step-0008", 2, t1=130.0, t2=145.0))
    assert o.max_tier == 2
    assert o.delay_s is None
    assert o.delay_to_rollback_s is None


def test_outcome_delay_is_to_the_expected_tier() -> None:
    b = with_expect(service(seed=1), "latency_minor-0001", 2, 60.0)
    o = outcome(b, replayed("latency_minor-0001", 3, t1=75.0, t2=120.0, t3=300.0))
    assert o.delay_s == pytest.approx(60.0)
    assert o.delay_to_rollback_s is None  # only bundles expected at tier 3 have one


def test_outcome_of_a_warning_bundle() -> None:
    b = with_expect(service(seed=1), "dependency_outage_pre-0001", 1, -240.0, deploy_caused=False)
    o = outcome(b, replayed("dependency_outage_pre-0001", 1, t1=30.0))
    assert o.deploy_caused is False
    assert o.reference == T0 - 240.0
    assert o.delay_s == pytest.approx(270.0)


def test_outcome_of_a_healthy_bundle_has_no_delay() -> None:
    b = with_expect(service(seed=1), "healthy-0001", 0)
    o = outcome(b, replayed("healthy-0001", 1, t1=300.0))
    assert o.expected_tier == 0 and o.reference is None
    assert o.delay_s is None and o.delay_to_rollback_s is None


def test_outcome_without_ground_truth() -> None:
    b = service(seed=1)
    o = outcome(b, replayed("test-bundle", 3, t1=60.0, t2=60.0, t3=60.0))
    assert o.expected_tier is None and o.deploy_caused is None
    assert o.reference is None and o.delay_s is None and o.delay_to_rollback_s is None
    assert o.family == "test-bundle"


def test_outcome_records_the_bundle_step() -> None:
    b = with_expect(service(seed=1), "coarse-0001", 3, 60.0, step="30s")
    o = outcome(b, replayed("coarse-0001", 3, t1=90.0, t2=90.0, t3=120.0))
    assert o.step_s == 30.0
    assert o.delay_to_rollback_s == pytest.approx(60.0)


# ----------------------------------------------------------------------------- delay reference


def ramp_values(onset_rel: float, per_step: float = 0.001, base: float = 0.002) -> np.ndarray:
    """0.2 % errors, then +0.1 % per 15 s sample from onset (0.2 % at onset itself)."""
    r = rel()
    k = np.maximum((r - onset_rel) / STEP, 0.0)
    return np.where(r >= onset_rel, base + per_step * k, base)


def test_a_ramp_is_measured_from_when_it_crosses_its_objective() -> None:
    # 0.002 + 0.001 k > 0.01 first at k = 9, i.e. 135 s after onset (and k = 10 stays past).
    b = with_expect(error_bundle(ramp_values(60.0)), "error_ramp-0001", 3, 60.0)
    assert delay_reference(b) == T0 + 60.0 + 135.0
    o = outcome(b, replayed("error_ramp-0001", 3, t1=120.0, t2=180.0, t3=225.0))
    assert o.reference == T0 + 195.0
    assert o.delay_s == pytest.approx(30.0)
    assert o.delay_to_rollback_s == pytest.approx(30.0)


def test_a_step_is_measured_from_its_onset() -> None:
    r = rel()
    b = with_expect(error_bundle(np.where(r >= 60, 0.05, 0.002)), "error_step-0001", 3, 60.0)
    assert delay_reference(b) == T0 + 60.0


@pytest.mark.parametrize(("cross_rel", "reference_rel"), [(90.0, 60.0), (105.0, 105.0)])
def test_crossing_two_steps_after_onset_is_not_a_ramp_three_is(
    cross_rel: float, reference_rel: float
) -> None:
    r = rel()
    values = np.where(r >= cross_rel, 0.05, np.where(r >= 60, 0.008, 0.002))
    b = with_expect(error_bundle(values), "error_ramp-0002", 3, 60.0)
    assert delay_reference(b) == T0 + reference_rel


def test_a_crossing_must_hold_for_two_samples() -> None:
    r = rel()
    values = np.where((r == 90) | (r >= 300), 0.05, 0.002)  # one-sample blip at +90 s
    b = with_expect(error_bundle(values), "error_ramp-0003", 3, 60.0)
    assert delay_reference(b) == T0 + 300.0


def test_samples_before_onset_never_start_a_crossing() -> None:
    r = rel()
    # Past the SLO up to the sample before onset (+45 s), under it from onset, past again
    # from +255 s: the pre-onset sample does not pair with the onset one.
    values = np.where(((r >= -300) & (r <= 45)) | (r >= 255), 0.05, 0.002)
    b = with_expect(error_bundle(values), "error_ramp-0004", 3, 60.0)
    assert delay_reference(b) == T0 + 255.0


def test_the_onset_sample_itself_can_start_the_crossing() -> None:
    r = rel()
    # Past the SLO at onset (+60 s) and +75 s only, then again from +300 s.
    values = np.where((r == 60) | (r == 75) | (r >= 300), 0.05, 0.002)
    b = with_expect(error_bundle(values), "error_step-0008", 3, 60.0)
    assert delay_reference(b) == T0 + 60.0


def test_no_crossing_falls_back_to_onset() -> None:
    b = with_expect(error_bundle(ramp_values(60.0, per_step=0.0)), "error_ramp-0005", 3, 60.0)
    assert delay_reference(b) == T0 + 60.0


def test_the_crossing_rule_applies_only_to_expected_rollbacks() -> None:
    b = with_expect(error_bundle(ramp_values(60.0)), "error_ramp-0006", 2, 60.0)
    assert delay_reference(b) == T0 + 60.0


def test_only_critical_signals_with_an_slo_define_the_crossing() -> None:
    t = grid()
    r = t - T0
    memory = {**MEMORY, "slo": 1e9}  # an objective, but not critical
    latency = {**LATENCY, "slo": None}  # critical, but no objective
    specs: list[dict[str, Any]] = [TRAFFIC, ERRORS, memory, latency]
    series = {
        "request_rate": {"": (t, np.full(t.shape, 200.0))},
        "error_ratio": {"": (t, ramp_values(60.0))},
        "memory_bytes": {"": (t, np.where(r >= 60, 5e9, 1e8))},
        "latency_p95": {"": (t, np.where(r >= 60, 9.0, 0.2))},
    }
    b = with_expect(bundle(manifest(specs), series), "error_ramp-0007", 3, 60.0)
    assert delay_reference(b) == T0 + 195.0


def test_a_signal_whose_bad_direction_is_down_crosses_below_its_objective() -> None:
    t = grid()
    r = t - T0
    success = {
        "name": "checkout_success_ratio",
        "kind": "business",
        "unit": "ratio",
        "bad_direction": "down",
        "slo": 0.95,
        "critical": True,
    }
    values = np.where(r >= 60, 0.99 - 0.005 * np.maximum(r - 60, 0) / STEP, 0.99)
    # 0.99 - 0.005 k < 0.95 first at k = 9 (0.945), 135 s after onset.
    b = bundle(manifest([success]), {"checkout_success_ratio": {"": (t, values)}})
    b = with_expect(b, "business_drop-0001", 3, 60.0)
    assert delay_reference(b) == T0 + 195.0


def test_the_canary_cohort_can_cross() -> None:
    b = with_expect(error_bundle(ramp_values(60.0), cohort="canary"), "canary-0001", 3, 60.0)
    assert delay_reference(b) == T0 + 195.0


def test_the_earliest_crossing_of_any_critical_signal_wins() -> None:
    t = grid()
    r = t - T0
    specs: list[dict[str, Any]] = [TRAFFIC, ERRORS, LATENCY]
    series = {
        "request_rate": {"": (t, np.full(t.shape, 200.0))},
        "error_ratio": {"": (t, ramp_values(60.0))},  # crosses at +195 s
        "latency_p95": {"": (t, np.where(r >= 150, 0.9, 0.2))},  # crosses at +150 s
    }
    b = with_expect(bundle(manifest(specs), series), "crash_loop-0001", 3, 60.0)
    assert delay_reference(b) == T0 + 150.0


def test_no_ground_truth_or_no_onset_has_no_reference() -> None:
    assert delay_reference(service(seed=1)) is None
    assert delay_reference(with_expect(service(seed=1), "healthy-0001", 0)) is None


# ----------------------------------------------------------------------------- suites end to end


def judge_names() -> dict[str, type[Any]]:
    return {
        "vigil": VigilJudge,
        "static": StaticThresholdJudge,
        "flagger": FlaggerJudge,
        "kayenta": KayentaJudge,
    }


def test_make_judge_by_name() -> None:
    for name, cls in judge_names().items():
        judge = make_judge(name)
        assert isinstance(judge, cls)
        assert judge.name == name


def test_make_judge_rejects_an_unknown_name() -> None:
    with pytest.raises(ConfigError, match="unknown judge 'oracle'"):
        make_judge("oracle")


@pytest.fixture
def static_suite(tmp_path: Path) -> Path:
    """Five bundles whose static-threshold outcome is known exactly.

    Errors at ~50 % from onset breach the 10 % threshold on every sample, so the static judge
    rolls back at the first look 300 s after onset; a 32 % latency rise is invisible to it.
    """
    suite = tmp_path / "suite"

    def errors_from(onset: float) -> Any:
        return lambda t, r: np.where(r >= onset, 0.5, 0.002)

    bundles = [
        with_expect(service(seed=1), "healthy-0000", 0),
        with_expect(service(seed=2, error_fn=errors_from(60)), "error_step-0001", 3, 60.0),
        with_expect(service(seed=3, error_fn=errors_from(120)), "error_step-0002", 3, 120.0),
        # Judged every 30 s: breach from +75 s is sustained at +375 s, first seen at +390 s.
        with_expect(
            service(seed=4, error_fn=errors_from(75)), "coarse_step-0003", 3, 75.0, step="30s"
        ),
        with_expect(
            service(seed=5, latency_fn=lambda t, r: np.where(r >= 200, 1.6, 1.0)),
            "latency_minor-0004",
            2,
            200.0,
        ),
    ]
    for b in bundles:
        write_bundle(b, suite / b.name)
    return suite


def check_static_card(card: Scorecard) -> None:
    assert card.judge == "static"
    assert (card.bundles, card.unscored, card.healthy, card.faulty) == (5, 0, 1, 4)
    assert card.false_rollback_healthy_pct == 0.0
    assert card.false_rollback_pct == 0.0
    assert card.false_pause_pct == 0.0
    assert card.rollback_recall_pct == 100.0
    assert card.action_recall_pct == pytest.approx(75.0)
    assert card.warn_healthy_pct == 0.0
    # Fine steps: 300, 300. Every step: 300, 300, 315 -> p90 at rank 1.8 = 300 + 0.8 * 15.
    assert card.median_delay_to_rollback_s == pytest.approx(300.0)
    assert card.p90_delay_to_rollback_s == pytest.approx(300.0)
    assert card.median_delay_to_rollback_all_s == pytest.approx(300.0)
    assert card.p90_delay_to_rollback_all_s == pytest.approx(312.0)
    assert card.median_delay_s == pytest.approx(300.0)
    assert card.p90_delay_s == pytest.approx(312.0)
    assert card.misses == ["latency_minor-0004(exp 2, got 0)"]
    assert [row.family for row in card.families] == [
        "coarse_step",
        "error_step",
        "healthy",
        "latency_minor",
    ]
    assert card.meets_targets() == {
        "false_rollback_healthy_pct": True,
        "false_pause_pct": True,
        "rollback_recall_pct": True,
        "action_recall_pct": False,
        "median_delay_to_rollback_s": False,
        "p90_delay_to_rollback_s": False,
    }


def test_evaluate_suite_with_the_static_judge(static_suite: Path) -> None:
    paths = sorted(static_suite.iterdir())
    check_static_card(evaluate_suite(paths, "static"))


def test_evaluate_suite_in_parallel_gives_the_same_card(static_suite: Path) -> None:
    paths = sorted(static_suite.iterdir())
    assert evaluate_suite(paths, "static", workers=2) == evaluate_suite(paths, "static")


def test_evaluate_suite_of_nothing() -> None:
    card = evaluate_suite([], "vigil")
    assert card.bundles == 0 and card.rollback_recall_pct is None


def test_eval_cli_json_with_a_reference_judge(static_suite: Path) -> None:
    result = runner.invoke(app, ["eval", str(static_suite), "--judge", "static", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    check_static_card(Scorecard.model_validate(data))
    assert data["meets_targets"]["action_recall_pct"] is False


@pytest.mark.parametrize("workers", ["1", "2"])
def test_eval_cli_malformed_bundle_is_a_clean_error(static_suite: Path, workers: str) -> None:
    manifest_file = static_suite / "error_step-0002" / "bundle.yaml"
    manifest_file.write_text(manifest_file.read_text().replace("kind: errors", "kind: errros"))
    result = runner.invoke(app, ["eval", str(static_suite), "--json", "--workers", workers])
    assert result.exit_code == 2, result.output
    assert "error_step-0002" in result.output and "kind" in result.output
    assert "Traceback" not in result.output


def test_eval_cli_on_an_empty_folder_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["eval", str(tmp_path / "empty"), "--json"])
    assert result.exit_code == 2
    assert "no bundles" in result.output
    assert "Traceback" not in result.output


# ----------------------------------------------------------------------------- the committed suite


def _strict_json(text: str) -> dict[str, Any]:
    def no_constants(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    data: dict[str, Any] = json.loads(text, parse_constant=no_constants)
    return data


@pytest.fixture(scope="module")
def small_card_json() -> tuple[str, str]:
    first = runner.invoke(app, ["eval", str(SMALL_SUITE), "--json"])
    second = runner.invoke(app, ["eval", str(SMALL_SUITE), "--json"])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    return first.output, second.output


def test_eval_json_on_the_small_suite_is_deterministic(small_card_json: tuple[str, str]) -> None:
    first, second = small_card_json
    assert first == second


def test_eval_json_on_the_small_suite_has_the_scorecard_shape(
    small_card_json: tuple[str, str],
) -> None:
    card = _strict_json(small_card_json[0])
    assert set(card) == set(Scorecard.model_fields) | {"meets_targets"}
    assert card["judge"] == "vigil"
    # 42 committed bundles, all with ground truth; 24 are healthy_* deploys.
    assert card["bundles"] == 42
    assert card["unscored"] == 0
    assert card["healthy"] == 24
    assert card["faulty"] == 18
    for key in (
        "false_rollback_pct",
        "false_rollback_healthy_pct",
        "false_pause_pct",
        "rollback_recall_pct",
        "action_recall_pct",
        "warn_healthy_pct",
    ):
        assert isinstance(card[key], float), key
        assert 0.0 <= card[key] <= 100.0, key
    for median, p90 in (
        ("median_delay_to_rollback_s", "p90_delay_to_rollback_s"),
        ("median_delay_to_rollback_all_s", "p90_delay_to_rollback_all_s"),
        ("median_delay_s", "p90_delay_s"),
    ):
        assert isinstance(card[median], float) and isinstance(card[p90], float)
        assert math.isfinite(card[median]) and math.isfinite(card[p90])
        assert card[median] <= card[p90]
        assert card[p90] <= 20 * 60  # nothing is detected after the 20-minute watch
    assert set(card["meets_targets"]) == set(TARGETS)
    for key, (op, bound) in TARGETS.items():
        value = card[key]
        assert card["meets_targets"][key] is (value <= bound if op == "<=" else value >= bound)
    assert isinstance(card["misses"], list)
    assert all(isinstance(m, str) and "(exp " in m for m in card["misses"])


def test_eval_json_families_on_the_small_suite(small_card_json: tuple[str, str]) -> None:
    card = _strict_json(small_card_json[0])
    names = sorted(p.name for p in SMALL_SUITE.iterdir() if (p / "bundle.yaml").is_file())
    expected_families = sorted({name.rsplit("-", 1)[0] for name in names})
    families = card["families"]
    assert [row["family"] for row in families] == expected_families
    assert sum(row["n"] for row in families) == 42
    for row in families:
        assert set(row) == set(FamilyRow.model_fields)
        assert 0 <= row["expected_tier"] <= 3
        assert 0.0 <= row["mean_max_tier"] <= 3.0
        assert 0.0 <= row["reached_pct"] <= 100.0
        assert 0.0 <= row["over_pct"] <= 100.0
        if row["family"].startswith("healthy"):
            assert row["expected_tier"] == 0
            assert row["reached_pct"] == 100.0  # every bundle reaches tier 0
            assert row["median_delay_s"] is None
    by_name = {row["family"]: row for row in families}
    assert by_name["healthy_diurnal"]["n"] == 3
    assert by_name["error_step"]["expected_tier"] == 3
    assert by_name["latency_minor"]["expected_tier"] == 2


def test_eval_json_is_the_in_process_scorecard(small_card_json: tuple[str, str]) -> None:
    card = evaluate_suite(sorted(p for p in SMALL_SUITE.iterdir() if p.is_dir()), "vigil")
    assert _strict_json(small_card_json[0]) == json.loads(json.dumps(card.to_json()))


def test_eval_human_output_on_the_small_suite() -> None:
    result = runner.invoke(app, ["eval", str(SMALL_SUITE)])
    assert result.exit_code == 0, result.output
    assert "Scorecard: vigil on 42 bundles (24 healthy, 18 faulty)" in result.output
    assert "Per family" in result.output
