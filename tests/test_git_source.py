"""GitChangeSource against real git repositories built in temporary directories."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.backends.base import DeployInfo, SourceUnavailable
from agent.errors import ConfigError
from agent.suspects import ChangeType, Evidence, parse_change, rank_suspects
from tools.backends.git import CommitInfo, GitChangeSource, cap_diff, diff_notes, ref_for

# --------------------------------------------------------------------------- the sample repo

VALIDATION_V1 = '''"""Payment validation."""


def validate_card(card):
    if not card.get("number"):
        raise ValueError("card number missing")
    return True


def validate_amount(order):
    total = order["total"]
    currency = order["currency"]
    if total <= 0:
        raise ValueError("amount must be positive")
    return total, currency
'''
# Line 13 is the new one: the KeyError of the end-to-end test's stack trace points at it.
VALIDATION_V2 = VALIDATION_V1.replace(
    '    currency = order["currency"]\n',
    '    currency = order["currency"]\n    customer = order["customer"]\n',
).replace("return total, currency\n", "return total, currency, customer\n")

API_V1 = '''"""Checkout API."""

from app.payments.validation import validate_amount

TIMEOUT_S = 5


def create_order(order):
    validate_amount(order)
    return {"status": "created", "total": order["total"]}
'''
HELPERS = "".join(
    f"def helper_{i}(value):\n    return value * {i} + {i * 7}  # helper number {i}\n\n\n"
    for i in range(12)
)
LOGO_V1 = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
LOGO_V2 = LOGO_V1 + b"\x00\x01\x02 more pixels"

ADA = ("Ada Lovelace", "ada@example.com")
GRACE = ("Grace Hopper", "grace@example.com")


@dataclass(frozen=True)
class SampleRepo:
    """Four commits on main: one (v1.0.0) .. four (v1.2.0, release/1.2.0, v1.2.0+build.7)."""

    path: Path
    shas: dict[str, str]


def run_git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        check=True,
        env={**base, **(env or {})},
    )
    return done.stdout.decode()


def identity(who: tuple[str, str], day: int) -> dict[str, str]:
    when = f"2024-05-0{day}T10:00:00+00:00"
    return {
        "GIT_AUTHOR_NAME": who[0],
        "GIT_AUTHOR_EMAIL": who[1],
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_NAME": who[0],
        "GIT_COMMITTER_EMAIL": who[1],
        "GIT_COMMITTER_DATE": when,
    }


def commit(repo: Path, message: str, who: tuple[str, str], day: int) -> str:
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", message, env=identity(who, day))
    return run_git(repo, "rev-parse", "HEAD").strip()


def write(repo: Path, path: str, content: str | bytes) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)


def build_repo(path: Path) -> SampleRepo:
    path.mkdir(parents=True)
    run_git(path, "init", "-q", "-b", "main")
    write(path, "app/payments/validation.py", VALIDATION_V1)
    write(path, "app/checkout/api.py", API_V1)
    write(path, "app/legacy_utils.py", HELPERS)
    write(path, "assets/logo.png", LOGO_V1)
    write(path, "README.md", "# shop\n")
    one = commit(path, "Initial import", ADA, 1)
    run_git(path, "tag", "v1.0.0")

    write(path, "app/payments/validation.py", VALIDATION_V2)
    write(path, "assets/logo.png", LOGO_V2)
    two = commit(path, "Read the customer id for fraud checks", GRACE, 2)

    (path / "app/common").mkdir()
    run_git(path, "mv", "app/legacy_utils.py", "app/common/helpers.py")
    write(path, "app/common/helpers.py", HELPERS.replace("helper number 3", "helper three"))
    write(path, "README.md", "# shop\n\nHelpers live in app/common.\n")
    three = commit(path, "Move helpers into app/common\n\nThey were never legacy.", ADA, 3)
    # An annotated tag: it must be peeled to its commit.
    run_git(path, "tag", "-a", "v1.1.0", "-m", "release 1.1.0", env=identity(ADA, 3))

    write(path, "app/checkout/api.py", API_V1.replace("TIMEOUT_S = 5", "TIMEOUT_S = 30"))
    four = commit(path, "Tune the checkout timeout", GRACE, 4)
    for tag in ("v1.2.0", "release/1.2.0", "v1.2.0+build.7"):
        run_git(path, "tag", tag)
    return SampleRepo(path, {"one": one, "two": two, "three": three, "four": four})


def deploy(version: str, previous: str | None = None) -> DeployInfo:
    return DeployInfo(
        id="dep-42",
        service="shop",
        version=version,
        previous_version=previous,
        started_at=datetime(2024, 5, 5, tzinfo=UTC),
    )


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleRepo:
    return build_repo(tmp_path_factory.mktemp("git") / "shop")


# --------------------------------------------------------------------------- diffs


def test_diff_between_tags_has_renames_binaries_and_hunks(sample: SampleRepo) -> None:
    source = GitChangeSource(sample.path, ref_template="v{version}")
    text = source.diff(deploy("1.1.0", "1.0.0"))

    change = parse_change(text)
    kinds = {f.path: f.change_type for f in change.files}
    assert kinds == {
        "README.md": ChangeType.MODIFIED,
        "app/common/helpers.py": ChangeType.RENAMED,
        "app/payments/validation.py": ChangeType.MODIFIED,
        "assets/logo.png": ChangeType.MODIFIED,
    }
    renamed = change.file("app/common/helpers.py")
    assert renamed.old_path == "app/legacy_utils.py"
    assert renamed.added == renamed.removed == 1
    assert change.file("assets/logo.png").binary
    validation = change.file("app/payments/validation.py")
    (hunk,) = validation.hunks
    assert hunk.added == (
        '    customer = order["customer"]',
        "    return total, currency, customer",
    )
    assert hunk.removed == ("    return total, currency",)
    assert "rename from app/legacy_utils.py" in text
    assert "Binary files a/assets/logo.png and b/assets/logo.png differ" in text
    assert "\x1b[" not in text and diff_notes(text) == []
    # Exactly what git itself says between the two tags.
    expected = run_git(sample.path, "diff", "-M", "v1.0.0", "v1.1.0")
    assert text == expected


@pytest.mark.parametrize(
    ("template", "version", "previous"),
    [
        ("{version}", "v1.1.0", "v1.0.0"),
        ("v{version}", "1.1.0", "1.0.0"),
        ("refs/tags/v{version}", "1.1.0", "1.0.0"),
    ],
)
def test_the_ref_template_maps_versions_to_tags(
    sample: SampleRepo, template: str, version: str, previous: str
) -> None:
    source = GitChangeSource(sample.path, ref_template=template)
    span = source.resolve(deploy(version, previous))
    assert (span.base, span.head) == (sample.shas["one"], sample.shas["three"])
    assert span.note is None
    assert span.head_ref == template.replace("{version}", version)


def test_commit_shas_are_used_as_they_are_whatever_the_template(sample: SampleRepo) -> None:
    source = GitChangeSource(sample.path, ref_template="v{version}")
    by_tag = source.diff(deploy("1.1.0", "1.0.0"))
    by_sha = source.diff(deploy(sample.shas["three"], sample.shas["one"][:10]))
    assert by_sha == by_tag
    assert ref_for(sample.shas["three"], "v{version}", "git") == sample.shas["three"]
    # All digits read as a build number, not a SHA: the template applies.
    assert ref_for("1000000", "v{version}", "git") == "v1000000"


def test_commits_in_the_range_newest_first(sample: SampleRepo) -> None:
    source = GitChangeSource(sample.path, ref_template="v{version}")
    commits = source.commits(deploy("1.2.0", "1.0.0"))
    assert commits == [
        CommitInfo(
            sha=sample.shas["four"],
            author="Grace Hopper",
            date=datetime(2024, 5, 4, 10, tzinfo=UTC),
            subject="Tune the checkout timeout",
        ),
        CommitInfo(
            sha=sample.shas["three"],
            author="Ada Lovelace",
            date=datetime(2024, 5, 3, 10, tzinfo=UTC),
            subject="Move helpers into app/common",
        ),
        CommitInfo(
            sha=sample.shas["two"],
            author="Grace Hopper",
            date=datetime(2024, 5, 2, 10, tzinfo=UTC),
            subject="Read the customer id for fraud checks",
        ),
    ]
    capped = GitChangeSource(sample.path, ref_template="v{version}", max_commits=2)
    assert [c.sha for c in capped.commits(deploy("1.2.0", "1.0.0"))] == [
        sample.shas["four"],
        sample.shas["three"],
    ]
    assert source.commits(deploy("1.1.0", "1.1.0")) == []


def test_without_a_previous_version_the_first_parent_is_used_and_said(sample: SampleRepo) -> None:
    source = GitChangeSource(sample.path, ref_template="v{version}")
    text = source.diff(deploy("1.2.0"))
    (why,) = diff_notes(text)
    assert why == (
        f"deploy dep-42 names no previous version: showing v1.2.0 ({sample.shas['four'][:12]}) "
        f"against its first parent {sample.shas['three'][:12]}"
    )
    assert text.startswith("# vigil: deploy dep-42 names no previous version")
    change = parse_change(text)  # the note does not get in the parser's way
    assert [f.path for f in change.files] == ["app/checkout/api.py"]
    assert change.file("app/checkout/api.py").hunks[0].added == ("TIMEOUT_S = 30",)
    assert [c.sha for c in source.commits(deploy("1.2.0"))] == [sample.shas["four"]]

    root = source.diff(deploy("1.0.0"))
    assert "is a root commit" in diff_notes(root)[0]
    added = parse_change(root).files
    assert {f.change_type for f in added} == {ChangeType.ADDED}
    assert len(added) == 5
    assert [c.subject for c in source.commits(deploy("1.0.0"))] == ["Initial import"]


# --------------------------------------------------------------------------- failures


def test_an_unknown_version_names_the_version_and_ref(sample: SampleRepo) -> None:
    source = GitChangeSource(sample.path, ref_template="v{version}")
    with pytest.raises(SourceUnavailable) as new:
        source.diff(deploy("9.9.9", "1.0.0"))
    assert str(new.value) == f"git: unknown version '9.9.9': no commit at 'v9.9.9' in {sample.path}"
    with pytest.raises(SourceUnavailable, match=r"unknown version '0\.0\.1'.*'v0\.0\.1'"):
        source.commits(deploy("1.1.0", "0.0.1"))
    with pytest.raises(SourceUnavailable, match="unknown version 'deadbee'"):
        source.diff(deploy("deadbee", "1.0.0"))  # looks like a SHA, is none


def test_a_directory_that_is_not_a_repository(tmp_path: Path, sample: SampleRepo) -> None:
    with pytest.raises(SourceUnavailable) as plain:
        GitChangeSource(tmp_path).diff(deploy("v1.1.0", "v1.0.0"))
    assert str(plain.value) == f"git: {tmp_path} is not a git repository"
    # A folder inside a clone is not the clone: git must not walk up into it.
    with pytest.raises(SourceUnavailable, match="is not a git repository"):
        GitChangeSource(sample.path / "app").diff(deploy("v1.1.0", "v1.0.0"))
    with pytest.raises(SourceUnavailable, match=r"git: .*/missing is not a directory"):
        GitChangeSource(tmp_path / "missing").diff(deploy("v1.1.0", "v1.0.0"))


def test_git_missing_or_too_slow(tmp_path: Path, sample: SampleRepo) -> None:
    missing = GitChangeSource(sample.path, git=str(tmp_path / "no-git-here"))
    with pytest.raises(SourceUnavailable, match=r"git executable .*no-git-here.* was not found"):
        missing.diff(deploy("v1.1.0", "v1.0.0"))

    slow_git = tmp_path / "slow-git"
    slow_git.write_text("#!/bin/sh\nsleep 5\necho never\n")  # the sleep is a child process
    slow_git.chmod(0o755)
    slow = GitChangeSource(sample.path, git=str(slow_git), timeout_s=0.2)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match=r"`git rev-parse` .* within 0\.2s"):
        slow.diff(deploy("v1.1.0", "v1.0.0"))
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "version",
    [
        "--output={out}",
        "-c",
        "v1.0.0..v1.1.0",
        "v1.1.0 --stat",
        "v1.1.0\n--output={out}",
        "HEAD~1",
        "v1.1.0^",
        "v1.1.0:README.md",
        "@{-1}",
        "refs/tags/../heads/main",
        "v1.1.0.lock",
        ".hidden",
        "",
    ],
)
def test_malicious_or_malformed_versions_never_reach_git(
    tmp_path: Path, sample: SampleRepo, version: str
) -> None:
    out = tmp_path / "pwned"
    version = version.replace("{out}", str(out))
    source = GitChangeSource(sample.path)
    with pytest.raises(SourceUnavailable, match="does not make a valid ref"):
        source.diff(deploy(version, "v1.0.0"))
    with pytest.raises(SourceUnavailable, match="does not make a valid ref"):
        source.commits(deploy("v1.1.0", version))
    assert not out.exists()


def test_a_bad_template_is_a_configuration_error(sample: SampleRepo) -> None:
    with pytest.raises(ConfigError, match="must contain"):
        GitChangeSource(sample.path, ref_template="v1.0.0")


# --------------------------------------------------------------------------- the environment


def test_the_callers_git_environment_and_user_config_do_not_leak_in(
    tmp_path: Path, sample: SampleRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = GitChangeSource(sample.path).diff(deploy("v1.1.0", "v1.0.0"))
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(sample.path), str(clone))
    for key, value in [
        ("diff.noprefix", "true"),
        ("color.diff", "always"),
        ("diff.external", "false"),
        ("diff.renames", "false"),
    ]:
        run_git(clone, "config", key, value)
    other = build_repo(tmp_path / "other")
    monkeypatch.setenv("GIT_DIR", str(other.path / ".git"))
    assert GitChangeSource(clone).diff(deploy("v1.1.0", "v1.0.0")) == expected
    with pytest.raises(SourceUnavailable, match="is not a git repository"):
        GitChangeSource(tmp_path / "other" / "app").diff(deploy("v1.1.0", "v1.0.0"))


def test_a_bare_clone_works(tmp_path: Path, sample: SampleRepo) -> None:
    bare = tmp_path / "shop.git"
    run_git(tmp_path, "clone", "-q", "--bare", str(sample.path), str(bare))
    source = GitChangeSource(bare, ref_template="v{version}")
    expected = GitChangeSource(sample.path, ref_template="v{version}")
    assert source.diff(deploy("1.2.0", "1.0.0")) == expected.diff(deploy("1.2.0", "1.0.0"))


# --------------------------------------------------------------------------- truncation


def test_a_long_diff_is_cut_at_the_cap_and_still_parses(sample: SampleRepo) -> None:
    full = GitChangeSource(sample.path).diff(deploy("v1.1.0", "v1.0.0")).encode()
    # Cut inside the new line of validation.py: the hunk keeps the lines before it.
    cap = full.index(b"+    customer") + 5
    text = GitChangeSource(sample.path, max_diff_bytes=cap).diff(deploy("v1.1.0", "v1.0.0"))
    assert text.endswith(f"\n# vigil: diff truncated at {cap} bytes\n")
    assert diff_notes(text) == [f"diff truncated at {cap} bytes"]
    change = parse_change(text)
    assert [f.path for f in change.files] == [
        "README.md",
        "app/common/helpers.py",
        "app/payments/validation.py",
    ]
    (hunk,) = change.file("app/payments/validation.py").hunks
    assert hunk.added == () and hunk.removed == ()
    assert (hunk.source_length, hunk.target_length) == (3, 3)  # the rewritten header
    assert len(text.encode()) - len(f"# vigil: diff truncated at {cap} bytes\n") <= cap

    # Cut inside the header of the next file: that file is left out whole.
    cap = full.index(b"diff --git a/assets/logo.png") + 20
    text = GitChangeSource(sample.path, max_diff_bytes=cap).diff(deploy("v1.1.0", "v1.0.0"))
    change = parse_change(text)
    assert "assets/logo.png" not in [f.path for f in change.files]
    assert change.file("app/payments/validation.py").added == 2
    assert text.endswith(f"# vigil: diff truncated at {cap} bytes\n")

    # A cap that fits exactly cuts nothing.
    exact = GitChangeSource(sample.path, max_diff_bytes=len(full))
    assert exact.diff(deploy("v1.1.0", "v1.0.0")) == full.decode()


def test_cap_diff_keeps_whole_hunks_and_rewrites_a_partial_one() -> None:
    diff = (
        b"diff --git a/x.py b/x.py\n"
        b"--- a/x.py\n"
        b"+++ b/x.py\n"
        b"@@ -1,2 +1,2 @@ def f():\n"
        b"-a\n"
        b"+b\n"
        b" c\n"
        b"\\ No newline at end of file\n"
        b"@@ -10,3 +10,4 @@ def g():\n"
        b" d\n"
        b"-e\n"
        b"+f\n"
        b"+g\n"
        b" h\n"
    )
    cut = cap_diff(diff, diff.index(b"+g") + 1)
    assert cut.splitlines()[-5:] == [
        "@@ -10,2 +10,2 @@ def g():",
        " d",
        "-e",
        "+f",
        f"# vigil: diff truncated at {diff.index(b'+g') + 1} bytes",
    ]
    first_hunk_only = cap_diff(diff, diff.index(b"@@ -10") + 3)
    assert first_hunk_only.splitlines()[-2:] == [
        "\\ No newline at end of file",
        f"# vigil: diff truncated at {diff.index(b'@@ -10') + 3} bytes",
    ]
    assert [h.target_range for h in parse_change(cut).files[0].hunks] == [(1, 2), (10, 11)]
    with pytest.raises(SourceUnavailable, match="first file does not fit in 10 bytes"):
        cap_diff(diff, 10)


# --------------------------------------------------------------------------- end to end


def test_the_changed_file_in_the_stack_trace_ranks_first(sample: SampleRepo) -> None:
    source = GitChangeSource(sample.path, ref_template="v{version}")
    change = parse_change(source.diff(deploy("1.2.0", "1.0.0")))
    assert len(change.files) == 5
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/srv/shop/app/checkout/api.py", line 9, in create_order\n'
        "    validate_amount(order)\n"
        '  File "/srv/shop/app/payments/validation.py", line 13, in validate_amount\n'
        '    customer = order["customer"]\n'
        "KeyError: 'customer'\n"
    )
    evidence = Evidence(messages=("order failed: KeyError: 'customer'",), stack_traces=(trace,))
    ranked = rank_suspects(change, evidence)
    assert ranked[0].path == "app/payments/validation.py"
    assert ranked[0].score > ranked[1].score
    assert any("validation.py:13 is in a changed hunk" in r for r in ranked[0].reasons)
    assert ranked[-1].path in {"README.md", "assets/logo.png"}
