"""Property tests: the judge is deterministic, never looks ahead, and is monotone."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.bundle.model import Bundle
from agent.judge.core import judge
from tests.builders import ERRORS, LATENCY, MEMORY, START, TRAFFIC, bundle, service

T0 = START.timestamp()
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def deploys(draw: st.DrawFn) -> Bundle:
    seed = draw(st.integers(0, 10_000))
    rps = draw(st.sampled_from([0.5, 5.0, 50.0, 400.0]))
    onset = draw(st.floats(-600, 900))
    error_to = draw(st.sampled_from([0.002, 0.006, 0.02, 0.2]))
    latency_x = draw(st.sampled_from([1.0, 1.3, 2.0, 4.0]))
    return service(
        seed=seed,
        rps=rps,
        error_fn=lambda t, r: np.where(r >= onset, error_to, 0.002),
        latency_fn=lambda t, r: np.where(r >= onset, latency_x, 1.0),
    )


looks = st.floats(-120, 20 * 60)


@SLOW
@given(deploys(), looks)
def test_same_input_same_verdict(b: Bundle, offset: float) -> None:
    first = judge(b, T0 + offset)
    again = judge(b, T0 + offset)
    assert first == again
    assert first.to_json() == again.to_json()


@SLOW
@given(deploys(), looks, st.floats(1, 600))
def test_no_look_ahead(b: Bundle, offset: float, extra: float) -> None:
    at = T0 + offset
    cut = Bundle(manifest=b.manifest, signals=b.signals.until(at))
    assert judge(b, at) == judge(cut, at)
    # Changing the future changes nothing either.
    future = {
        name: {c: (s.t, np.where(s.t > at, s.v * 10 + 1, s.v)) for c, s in cs.items()}
        for name, cs in b.signals.items()
    }
    assert judge(bundle(b.manifest, future), at) == judge(b, at)


def _worsen(b: Bundle, shift: dict[str, float], per_sample: np.random.Generator | None) -> Bundle:
    """Make post-deploy values worse in each signal's bad direction (never the events signal)."""
    out = {}
    for name, cohorts in b.signals.items():
        spec = b.manifest.signal(name)
        out[name] = {}
        for c, s in cohorts.items():
            v = s.v.copy()
            post = s.t >= T0
            amount = shift.get(name, 0.0)
            if per_sample is not None:
                amount = amount * per_sample.uniform(0, 1, int(post.sum()))
            if spec.bad_direction == "up":
                v[post] = v[post] + amount
            if spec.unit == "ratio":
                v = np.clip(v, 0, 1)
            out[name][c] = (s.t, v)
    return bundle(b.manifest, out)


@SLOW
@given(deploys(), st.floats(0, 20 * 60), st.floats(0, 0.2), st.floats(0, 2.0), st.integers(0, 99))
def test_worse_current_window_never_lowers_the_tier(
    b: Bundle, offset: float, d_err: float, d_lat: float, seed: int
) -> None:
    at = T0 + offset
    before = judge(b, at).tier
    shift = {"error_ratio": d_err, "latency_p95": d_lat}
    assert judge(_worsen(b, shift, None), at).tier >= before
    assert judge(_worsen(b, shift, np.random.default_rng(seed)), at).tier >= before


@SLOW
@given(st.integers(0, 1000), st.floats(0, 5e8), st.floats(5 * 60, 30 * 60))
def test_uniformly_higher_memory_never_lowers_the_tier(seed: int, d: float, offset: float) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(T0 - 1800, T0 + 1800 + 1, 15.0)
    rel = t - T0
    growth = rng.uniform(0, 1.5)
    v = 5e8 * (1 + np.where(rel > 0, growth * rel / 1800, 0)) * (1 + rng.normal(0, 0.01, t.shape))
    from tests.builders import manifest

    m = manifest([MEMORY], watch_min=30)
    base = bundle(m, {"memory_bytes": {"": (t, v)}})
    worse = bundle(m, {"memory_bytes": {"": (t, np.where(rel >= 0, v + d, v))}})
    assert judge(worse, T0 + offset).tier >= judge(base, T0 + offset).tier


def test_signals_used_in_properties_are_the_builders() -> None:
    # Guards the property tests above against silently testing nothing.
    b = service()
    assert {s.name for s in b.manifest.signals} == {
        TRAFFIC["name"],
        ERRORS["name"],
        LATENCY["name"],
    }
