"""Suspect files of a deploy: parsing git diffs, ranking rules, the summary, and accuracy."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.bundle.model import Bundle, SignalKind
from agent.bundle.reader import iter_bundles, read_bundle
from agent.suspects import (
    Change,
    ChangeType,
    Evidence,
    RegressedSignal,
    diff_summary,
    parse_change,
    rank_suspects,
)

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"


def _file(path: str, section: str, before: list[str], after: list[str], start: int = 10) -> str:
    """A one-hunk modification of `path`: every `before` line replaced by the `after` lines."""
    lines = [
        f"diff --git a/{path} b/{path}",
        "index 1111111..2222222 100644",
        f"--- a/{path}",
        f"+++ b/{path}",
        f"@@ -{start},{len(before)} +{start},{len(after)} @@ {section}".rstrip(),
        *(f"-{line}" for line in before),
        *(f"+{line}" for line in after),
    ]
    return "\n".join(lines) + "\n"


def _new_file(path: str, content: list[str]) -> str:
    lines = [
        f"diff --git a/{path} b/{path}",
        "new file mode 100644",
        "index 0000000..3333333",
        "--- /dev/null",
        f"+++ b/{path}",
        f"@@ -0,0 +1,{len(content)} @@",
        *(f"+{line}" for line in content),
    ]
    return "\n".join(lines) + "\n"


def _signal(name: str, kind: str) -> RegressedSignal:
    return RegressedSignal(name=name, kind=SignalKind(kind))


def _top(diff: str, evidence: Evidence) -> str:
    return rank_suspects(parse_change(diff), evidence)[0].path


# --------------------------------------------------------------------------- parsing

TWO_HUNKS = """\
diff --git a/src/payments/validation.py b/src/payments/validation.py
index 3f2a1b0..9c8d7e6 100644
--- a/src/payments/validation.py
+++ b/src/payments/validation.py
@@ -12,6 +12,6 @@ from payments.errors import ValidationError
 import re
 
-CARD = re.compile(r"^\\d{13,19}$")
+CARD = re.compile(r"^\\d{16}$")
 
 
 def normalise(number: str) -> str:
@@ -80,5 +80,7 @@ def validate_card_number(number: str) -> str:
     digits = normalise(number)
     if not CARD.match(digits):
-        raise ValidationError("card number rejected")
+        log.warning("rejecting card", extra={"length": len(digits)})
+        raise ValidationError("card number rejected")
+    audit(digits)
     return digits
 
"""


def test_a_modified_file_with_two_hunks() -> None:
    change = parse_change(TWO_HUNKS)
    assert len(change.files) == 1
    f = change.files[0]
    assert f.path == "src/payments/validation.py"
    assert f.change_type is ChangeType.MODIFIED
    assert (f.added, f.removed) == (4, 2)
    assert (change.added, change.removed) == (4, 2)
    first, second = f.hunks
    assert first.section == "from payments.errors import ValidationError"
    assert (first.source_start, first.source_length) == (12, 6)
    assert (first.target_start, first.target_length) == (12, 6)
    assert first.removed == ('CARD = re.compile(r"^\\d{13,19}$")',)
    assert first.added == ('CARD = re.compile(r"^\\d{16}$")',)
    assert second.section == "def validate_card_number(number: str) -> str:"
    assert second.target_range == (80, 86)
    assert second.source_range == (80, 84)
    assert second.added[-1] == "    audit(digits)"
    assert second.context[0] == "    digits = normalise(number)"
    assert second.header == "@@ -80,5 +80,7 @@ def validate_card_number(number: str) -> str:"
    # Line numbers of each side are kept.
    added = [line for line in second.lines if line.kind == "+"]
    assert [line.target_line for line in added] == [82, 83, 84]
    assert change.file("src/payments/validation.py") is f
    with pytest.raises(KeyError):
        change.file("src/nope.py")


def test_added_removed_and_renamed_files() -> None:
    diff = (
        _new_file("migrations/0042_add_index.sql", ["CREATE INDEX idx ON t (c);"])
        + """\
diff --git a/src/legacy.py b/src/legacy.py
deleted file mode 100644
index 4444444..0000000
--- a/src/legacy.py
+++ /dev/null
@@ -1,2 +0,0 @@
-def old():
-    return 1
diff --git a/src/util.py b/src/helpers.py
similarity index 100%
rename from src/util.py
rename to src/helpers.py
diff --git a/src/a.py b/src/b.py
similarity index 75%
rename from src/a.py
rename to src/b.py
index 5555555..6666666 100644
--- a/src/a.py
+++ b/src/b.py
@@ -1,2 +1,2 @@
 x = 1
-y = 2
+y = 3
"""
    )
    files = {f.path: f for f in parse_change(diff).files}
    assert list(files) == [
        "migrations/0042_add_index.sql",
        "src/legacy.py",
        "src/helpers.py",
        "src/b.py",
    ]
    added = files["migrations/0042_add_index.sql"]
    assert (added.change_type, added.added, added.removed) == (ChangeType.ADDED, 1, 0)
    removed = files["src/legacy.py"]
    assert (removed.change_type, removed.added, removed.removed) == (ChangeType.REMOVED, 0, 2)
    assert removed.hunks[0].removed == ("def old():", "    return 1")
    pure = files["src/helpers.py"]
    assert (pure.change_type, pure.old_path, pure.hunks) == (ChangeType.RENAMED, "src/util.py", ())
    edited = files["src/b.py"]
    assert edited.change_type is ChangeType.RENAMED
    assert edited.old_path == "src/a.py"
    assert (edited.added, edited.removed) == (1, 1)


def test_no_newline_at_end_markers() -> None:
    diff = """\
diff --git a/VERSION b/VERSION
index 1111111..2222222 100644
--- a/VERSION
+++ b/VERSION
@@ -1 +1 @@
-1.4.2
\\ No newline at end of file
+1.4.3
diff --git a/src/tail.py b/src/tail.py
index 1111111..2222222 100644
--- a/src/tail.py
+++ b/src/tail.py
@@ -1,2 +1,2 @@
-A = 1
+A = 2
 B = 2
\\ No newline at end of file
"""
    version, tail = parse_change(diff).files
    assert version.hunks[0].removed == ("1.4.2",)
    assert version.hunks[0].added == ("1.4.3",)
    assert version.hunks[0].source_no_newline and not version.hunks[0].target_no_newline
    assert (version.added, version.removed) == (1, 1)  # the marker is not a line
    assert tail.hunks[0].source_no_newline and tail.hunks[0].target_no_newline
    assert [line.kind for line in tail.hunks[0].lines] == ["-", "+", " "]


def test_binary_file_notes() -> None:
    diff = """\
diff --git a/static/logo.png b/static/logo.png
index 1111111..2222222 100644
Binary files a/static/logo.png and b/static/logo.png differ
diff --git a/static/new.woff2 b/static/new.woff2
new file mode 100644
index 0000000..3333333
Binary files /dev/null and b/static/new.woff2 differ
""" + _file("src/app.py", "", ["A = 1"], ["A = 2"])
    logo, font, app = parse_change(diff).files
    assert (logo.path, logo.binary, logo.change_type) == (
        "static/logo.png",
        True,
        ChangeType.MODIFIED,
    )
    assert (logo.hunks, logo.added, logo.removed) == ((), 0, 0)
    assert (font.path, font.binary, font.change_type) == (
        "static/new.woff2",
        True,
        ChangeType.ADDED,
    )
    assert not app.binary and app.added == 1


def test_crlf_diffs_parse_like_lf() -> None:
    lf = parse_change(TWO_HUNKS)
    crlf = parse_change(TWO_HUNKS.replace("\n", "\r\n"))
    assert crlf == lf


def test_empty_text_is_an_empty_change() -> None:
    assert parse_change("") == Change(files=())
    assert parse_change("  \n\n") == Change(files=())


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("this is not a diff\nat all\n", "no file headers"),
        ("--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@\n-a\n+b\n", "shorter than expected"),
        ("--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n?a\n+b\n", "Hunk diff line expected"),
    ],
)
def test_malformed_diff_text_raises_value_error(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match="malformed diff") as caught:
        parse_change(text)
    assert needle in str(caught.value)


# --------------------------------------------------------------------------- ranking rules

NEUTRAL = _file("src/shop/reports.py", "def weekly():", ["    n = 1"], ["    n = 2"])


def test_rule_1_a_stack_frame_names_the_file_and_its_line_is_in_a_changed_hunk() -> None:
    diff = (
        _file("src/payments/api.py", "", ["    a = 1"], ["    a = 2"], start=40)
        + _file("src/payments/validation.py", "", ["x = 1"] * 10, ["x = 2"] * 16, start=80)
        + NEUTRAL
    )
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/app/src/payments/api.py", line 41, in handle\n'
        "    return check(request)\n"
        '  File "/app/src/payments/validation.py", line 88, in check\n'
        "    raise ValueError(number)\n"
        "ValueError: 4111"
    )
    ranked = rank_suspects(parse_change(diff), Evidence(stack_traces=(trace,)))
    assert [s.path for s in ranked][:2] == ["src/payments/validation.py", "src/payments/api.py"]
    assert (
        "stack frame src/payments/validation.py:88 is in a changed hunk (lines 80-95)"
        in ranked[0].reasons
    )
    # The caller's frame counts, but only half as much as the innermost one.
    assert any("an outer frame" in r for r in ranked[1].reasons)
    assert ranked[1].score > ranked[2].score


def test_rule_1_the_line_bonus_needs_the_line_inside_a_hunk() -> None:
    diff = _file("src/a/core.py", "", ["x = 1"], ["x = 2"], start=80) + _file(
        "src/b/core.py", "", ["y = 1"], ["y = 2"], start=10
    )
    inside = Evidence(stack_traces=('File "src/a/core.py", line 80, in f',))
    outside = Evidence(stack_traces=('File "src/a/core.py", line 200, in f',))
    scored_inside = rank_suspects(parse_change(diff), inside)[0]
    scored_outside = rank_suspects(parse_change(diff), outside)[0]
    assert scored_inside.path == scored_outside.path == "src/a/core.py"
    assert scored_inside.score > scored_outside.score
    assert not any("changed hunk" in r for r in scored_outside.reasons)


def test_rule_1_java_and_go_frames_put_the_innermost_first() -> None:
    diff = _file("src/main/java/com/shop/Cart.java", "", ["a"], ["b"]) + _file(
        "src/main/java/com/shop/Api.java", "", ["c"], ["d"]
    )
    java = (
        "java.lang.IllegalStateException: empty\n"
        "\tat com.shop.Cart.total(Cart.java:10)\n"
        "\tat com.shop.Api.handle(Api.java:10)"
    )
    assert _top(diff, Evidence(stack_traces=(java,))) == "src/main/java/com/shop/Cart.java"
    go = _file("pkg/cart/cart.go", "", ["a"], ["b"]) + _file("pkg/api/api.go", "", ["c"], ["d"])
    trace = "panic: boom\n\ngoroutine 1:\n/app/pkg/cart/cart.go:10 +0x1d\n/app/pkg/api/api.go:10"
    assert _top(go, Evidence(stack_traces=(trace,))) == "pkg/cart/cart.go"


def test_rule_1_module_names_and_basenames_in_log_messages() -> None:
    diff = _file("src/payments/validation.py", "", ["a = 1"], ["a = 2"]) + NEUTRAL
    by_module = Evidence(messages=("error in payments.validation: bad input",))
    ranked = rank_suspects(parse_change(diff), by_module)
    assert ranked[0].path == "src/payments/validation.py"
    assert "log message names module payments.validation" in ranked[0].reasons
    by_name = Evidence(messages=("validation.py blew up",))
    assert _top(diff, by_name) == "src/payments/validation.py"
    # A full path weighs more than a module name, which weighs more than a bare file name.
    scores = [
        rank_suspects(parse_change(diff), Evidence(messages=(m,)))[0].score
        for m in ("at src/payments/validation.py", "in payments.validation", "in validation.py")
    ]
    assert scores[0] > scores[1] > scores[2]


def test_rule_2_identifiers_on_changed_lines_that_appear_in_the_error() -> None:
    diff = _file(
        "config/orders.yaml",
        "upstreams:",
        ["    timeout_ms: 2000"],
        ["    timeout_ms: 250"],
    ) + _file("src/orders/api.py", "", ["    limit = 10"], ["    limit = 20"])
    evidence = Evidence(messages=("TimeoutError: tax-service exceeded timeout_ms=250",))
    ranked = rank_suspects(parse_change(diff), evidence)
    assert ranked[0].path == "config/orders.yaml"
    assert any("identifier timeout_ms" in r for r in ranked[0].reasons)


def test_rule_2_an_added_error_message_that_matches_the_new_log_signature() -> None:
    diff = _file(
        "src/shop/pricing.py",
        "",
        ["    return total"],
        ['    raise PricingError(f"no price for sku {sku} in region {region}")'],
    ) + _file("src/shop/stock.py", "", ["    return n"], ['    log.info("stock checked")'])
    evidence = Evidence(messages=("PricingError: no price for sku 123 in region eu",))
    ranked = rank_suspects(parse_change(diff), evidence)
    assert ranked[0].path == "src/shop/pricing.py"
    assert any('"no price for sku" appears in' in r for r in ranked[0].reasons)


def test_rule_2_changed_lines_weigh_more_than_context_lines() -> None:
    changed = _file("src/a.py", "", ["    load_order_history(c)"], ["    load_order_history(c, 1)"])
    context = """\
diff --git a/src/b.py b/src/b.py
index 1111111..2222222 100644
--- a/src/b.py
+++ b/src/b.py
@@ -1 +1 @@ def load_order_history(customer):
-    x = 1
+    x = 2
"""
    ranked = rank_suspects(
        parse_change(changed + context),
        Evidence(messages=("PoolTimeout in load_order_history",)),
    )
    assert [s.path for s in ranked] == ["src/a.py", "src/b.py"]
    assert ranked[1].score > 0.1  # the section header still counts


def test_rule_2_free_terms_count_less_than_error_text() -> None:
    diff = _file("src/a.py", "", ["    x = 1"], ["    refund_window = 3"]) + _file(
        "src/b.py", "", ["    y = 1"], ["    settle_batch = 3"]
    )
    both = Evidence(messages=("settle_batch failed",), terms=("refund_window",))
    assert _top(diff, both) == "src/b.py"
    assert _top(diff, Evidence(terms=("refund_window",))) == "src/a.py"


# Two application files with no evidence of their own, so each kind hint must decide.
_NEUTRAL_PAIR = _file(
    "src/shop/formatting.py", "", ["    return s.title()"], ["    return s.strip().title()"]
) + _file("src/shop/views.py", "", ['    title = "Home"'], ['    title = "Welcome"'])


@pytest.mark.parametrize(
    ("signal", "culprit"),
    [
        (
            _signal("db_latency_p95", "dependency"),
            _new_file("migrations/0042_orders_total.sql", ["ALTER TABLE orders ADD total int;"]),
        ),
        (
            _signal("db_latency_p95", "dependency"),
            _file(
                "src/shop/store.py",
                "",
                ["    with pool.connection() as conn:"],
                ["    conn = pool.getconn()"],
            ),
        ),
        (
            _signal("latency_p95", "latency"),
            _file("config/shop.yaml", "upstreams:", ["  timeout_ms: 2000"], ["  timeout_ms: 9000"]),
        ),
        (
            _signal("latency_p95", "latency"),
            _file(
                "src/shop/tenants.py",
                "",
                ["@lru_cache(maxsize=4096)", "def rules(t):"],
                ["def rules(t):"],
            ),
        ),
        (
            _signal("memory_bytes", "saturation"),
            _file(
                "src/shop/sessions.py",
                "",
                ["    _seen.set(key, value, ttl=300)"],
                ["    _seen[key] = value"],
            ),
        ),
        (
            _signal("checkout_success_ratio", "business"),
            _file(
                "src/shop/promotions.py",
                "",
                ["    if coupon.expires_at < now:"],
                ["    if coupon.expires_at > now:"],
            ),
        ),
        (
            _signal("checkout_success_ratio", "business"),
            _file(
                "config/flags.yaml",
                "features:",
                ["  new_checkout: false"],
                ["  new_checkout: true"],
            ),
        ),
        (
            _signal("upstream_error_ratio", "dependency"),
            _file(
                "src/shop/tax_client.py",
                "",
                ['    base_url = "https://tax.internal"', "    retries = 3"],
                ['    base_url = "https://tax.example"', "    retries = 0"],
            ),
        ),
    ],
    ids=[
        "db-migration",
        "db-pool",
        "latency-timeout",
        "latency-cache",
        "memory-growth",
        "business-pricing",
        "business-flag",
        "upstream-client",
    ],
)
def test_rule_3_kind_hints(signal: RegressedSignal, culprit: str) -> None:
    change = parse_change(_NEUTRAL_PAIR + culprit)
    ranked = rank_suspects(change, Evidence(signals=(signal,)))
    path = change.files[-1].path
    assert ranked[0].path == path
    assert any(signal.name in r for r in ranked[0].reasons)
    # Without the signal the hint is gone: nothing favours the file any more.
    plain = rank_suspects(change, Evidence())
    assert next(s.score for s in plain if s.path == path) < ranked[0].score


def test_rule_3_errors_and_traffic_signals_bring_no_hints() -> None:
    diff = _file("config/shop.yaml", "", ["  timeout_ms: 2000"], ["  timeout_ms: 9000"])
    change = parse_change(diff + _NEUTRAL_PAIR)
    errors = Evidence(signals=(_signal("error_ratio", "errors"), _signal("rps", "traffic")))
    assert rank_suspects(change, errors) == rank_suspects(change, Evidence())


def test_rule_3_a_package_name_shared_by_the_changed_paths_is_no_hint() -> None:
    diff = _new_file(
        "migrations/0007_add_checkout_index.sql",
        ["CREATE INDEX idx_checkout_ts ON checkout_x (ts);"],
    ) + _file("src/checkout/addresses.py", "", ["    return ok"], ["    return bool(postcode)"])
    diff += _file("config/checkout.yaml", "", ["  workers: 4"], ["  workers: 4 # unchanged"])
    evidence = Evidence(signals=(_signal("checkout_success_ratio", "business"),))
    ranked = rank_suspects(parse_change(diff), evidence)
    assert ranked[0].path == "src/checkout/addresses.py"
    migration = next(s for s in ranked if s.path.startswith("migrations/"))
    assert not any("checkout" in r for r in migration.reasons)


def test_rule_4_priors_without_any_evidence() -> None:
    diff = "".join(
        _file(path, "", ["a = 1"], ["a = 2"])
        for path in (
            ".github/workflows/ci.yml",
            "CHANGELOG.md",
            "README.md",
            "config/shop.yaml",
            "docs/guide.rst",
            "poetry.lock",
            "src/shop/api.py",
            "tests/test_api.py",
            "requirements.txt",
        )
    )
    ranked = [s.path for s in rank_suspects(parse_change(diff), Evidence())]
    assert ranked[:3] == ["src/shop/api.py", "config/shop.yaml", "requirements.txt"]
    assert set(ranked[3:]) == {
        ".github/workflows/ci.yml",
        "CHANGELOG.md",
        "README.md",
        "docs/guide.rst",
        "poetry.lock",
        "tests/test_api.py",
    }


def test_rule_4_tests_and_docs_stay_low_even_when_named() -> None:
    diff = _file("tests/test_pricing.py", "", ["a = 1"], ["a = 2"]) + _file(
        "docs/pricing.md", "", ["a"], ["b"]
    )
    diff += _file("src/shop/pricing.py", "", ["a = 1"], ["a = 2"])
    evidence = Evidence(messages=("tests/test_pricing.py and docs/pricing.md and pricing.py",))
    ranked = rank_suspects(parse_change(diff), evidence)
    assert ranked[0].path == "src/shop/pricing.py"
    assert any("rarely the cause" in r for r in ranked[1].reasons)


def test_rule_5_size_breaks_ties_and_then_the_path() -> None:
    small = _file("src/b.py", "", ["a"], ["b"])
    big = _file("src/c.py", "", ["a"] * 5, ["b"] * 9)
    same = _file("src/a.py", "", ["a"], ["b"])
    ranked = rank_suspects(parse_change(small + big + same), Evidence())
    assert [s.path for s in ranked] == ["src/c.py", "src/a.py", "src/b.py"]
    assert ranked[1].score == ranked[2].score


def test_ranking_is_deterministic_and_independent_of_file_order() -> None:
    parts = [
        _file(f"src/m{i}.py", f"def f{i}():", ["    x = 1"], [f"    x = {i}"] * (i % 3 + 1))
        for i in range(12)
    ]
    evidence = Evidence(
        messages=("KeyError in f3 of m3.py", "f7 failed"),
        stack_traces=('File "/app/src/m5.py", line 10, in f5',),
        signals=(_signal("latency_p95", "latency"),),
        terms=("x",),
    )
    expected = rank_suspects(parse_change("".join(parts)), evidence)
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(parts)
        assert rank_suspects(parse_change("".join(parts)), evidence) == expected
    assert len(expected) == len({s.path for s in expected}) == 12
    assert all(0.0 <= s.score <= 1.0 and s.reasons for s in expected)
    assert [s.score for s in expected] == sorted((s.score for s in expected), reverse=True)


def test_evidence_is_a_frozen_validated_boundary() -> None:
    evidence = Evidence.model_validate(
        {"signals": [{"name": "memory_bytes", "kind": "saturation"}], "messages": ["oom"]}
    )
    assert evidence.signals[0].kind is SignalKind.SATURATION
    with pytest.raises(ValidationError):
        Evidence.model_validate({"signals": [{"name": "x", "kind": "vibes"}]})
    with pytest.raises(ValidationError):
        Evidence.model_validate({"logs": ["unknown field"]})
    with pytest.raises(ValidationError):
        evidence.messages = ()  # type: ignore[misc]


def test_an_empty_change_has_no_suspects() -> None:
    assert rank_suspects(parse_change(""), Evidence(messages=("boom",))) == []


# --------------------------------------------------------------------------- the summary


def test_summary_lists_files_hunk_headers_and_changed_lines_only() -> None:
    diff = TWO_HUNKS + _new_file("migrations/0042_x.sql", ["CREATE INDEX i ON t (c);"])
    text = diff_summary(parse_change(diff), 4000)
    assert text.splitlines()[0] == "2 files changed, +5 -2"
    assert "M src/payments/validation.py (+4 -2)" in text
    assert "@@ -80,5 +80,7 @@ def validate_card_number(number: str) -> str:" in text
    assert "+    audit(digits)" in text
    assert "digits = normalise(number)" not in text  # context lines are left out
    assert "A migrations/0042_x.sql (+1 -0)" in text
    assert "truncated" not in text


def test_summary_truncates_with_an_explicit_marker() -> None:
    diff = "".join(_file(f"src/m{i:02}.py", "", ["a"] * 3, ["b"] * 3) for i in range(30))
    change = parse_change(diff)
    text = diff_summary(change, 600)
    assert len(text) <= 600
    assert text.endswith("more files]")
    marker = text.splitlines()[-1]
    missing = int(marker.removeprefix("[truncated: ").split()[0])
    shown = sum(1 for line in text.splitlines() if line.startswith("M src/"))
    assert shown + missing == 30
    for limit in (1, 10, 40, 80, 123, 250, 1000, 5000):
        assert len(diff_summary(change, limit)) <= limit
    with pytest.raises(ValueError):
        diff_summary(change, 0)


def test_summary_cuts_a_long_file_inside_and_can_put_suspects_first() -> None:
    old, new = [f"old {i}" for i in range(200)], [f"new {i}" for i in range(200)]
    big = _file("src/big.py", "", old, new)
    change = parse_change(big + _file("src/small.py", "", ["a"], ["b"]))
    text = diff_summary(change, 500)
    assert "more lines]" in text and "[truncated: 1 more files]" in text
    first = diff_summary(change, 500, first=["src/small.py"])
    assert first.splitlines()[1].startswith("M src/small.py")


# --------------------------------------------------------------------------- accuracy


def _kinds(family: str) -> tuple[SignalKind, ...]:
    """The kinds of signal a family's name says regressed."""
    if family.startswith(("error_", "low_traffic_error")):
        return (SignalKind.ERRORS,)
    if family.startswith("latency_"):
        return (SignalKind.LATENCY,)
    if family.startswith("memory_"):
        return (SignalKind.SATURATION,)
    if family.startswith("business_"):
        return (SignalKind.BUSINESS,)
    if family.startswith(("crash_loop", "canary_regression")):
        return (SignalKind.ERRORS, SignalKind.LATENCY)
    return ()


def evidence_of(bundle: Bundle) -> Evidence:
    """Error lines logged after the deploy started, and the signals the family regresses."""
    start = bundle.manifest.deploy.started_at
    lines = [line for line in bundle.logs or () if line.level == "error" and line.ts >= start]
    traces = [(line.model_extra or {}).get("exception") for line in lines]
    kinds = _kinds(bundle.name.rsplit("-", 1)[0])
    signals = tuple(
        RegressedSignal(name=spec.name, kind=spec.kind)
        for spec in bundle.manifest.signals
        if spec.kind in kinds and (spec.kind is not SignalKind.SATURATION or "mem" in spec.name)
    )
    return Evidence(
        messages=tuple(dict.fromkeys(line.message for line in lines)),
        stack_traces=tuple(dict.fromkeys(t for t in traces if isinstance(t, str))),
        signals=signals,
    )


def test_top_1_accuracy_over_the_small_suite() -> None:
    hits: list[str] = []
    misses: list[str] = []
    for folder in iter_bundles([SUITE]):
        bundle = read_bundle(folder)
        expect = bundle.manifest.expect
        if expect is None or expect.culprit_file is None:
            continue
        assert bundle.diff is not None
        ranked = rank_suspects(parse_change(bundle.diff), evidence_of(bundle))
        assert expect.culprit_file in {s.path for s in ranked}
        top = ranked[0].path
        (hits if top == expect.culprit_file else misses).append(f"{bundle.name}: {top}")
    total = len(hits) + len(misses)
    accuracy = len(hits) / total
    print(f"suspects top-1 accuracy on {SUITE.name}: {len(hits)}/{total} = {accuracy:.1%}")
    assert total >= 10
    assert accuracy >= 0.9, misses
