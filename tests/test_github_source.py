"""GitHubChangeSource against a local server playing GitHub's REST API from a real git repo."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from agent.backends.base import SourceUnavailable
from agent.errors import ConfigError
from agent.suspects import parse_change
from tests.fakes.github_server import FakeGitHub, Fault, fake_github, rate_limited, server_error
from tests.fakes.sleeps import Sleeps
from tests.test_git_source import SampleRepo, build_repo, deploy
from tools.backends.git import CommitInfo, GitChangeSource, diff_notes
from tools.backends.github import GitHubChangeSource

TOKEN = "ghp_example-token-0123456789"
COMPARE = "/repos/acme/shop/compare/v1.0.0...v1.1.0"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleRepo:
    return build_repo(tmp_path_factory.mktemp("github") / "shop")


@pytest.fixture
def github(sample: SampleRepo) -> Iterator[FakeGitHub]:
    with fake_github(sample.path, token=TOKEN) as fake:
        yield fake


def source(fake: FakeGitHub | str, client: httpx.Client, **kw: Any) -> GitHubChangeSource:
    kw.setdefault("sleep", Sleeps())
    kw.setdefault("token", TOKEN)
    kw.setdefault("ref_template", "v{version}")
    url = fake if isinstance(fake, str) else fake.url
    return GitHubChangeSource(kw.pop("repo", "acme/shop"), client=client, base_url=url, **kw)


def local(sample: SampleRepo, **kw: Any) -> GitChangeSource:
    return GitChangeSource(sample.path, ref_template="v{version}", **kw)


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- the diff


def test_diff_asks_the_compare_api_for_the_diff_media_type(
    github: FakeGitHub, client: httpx.Client, sample: SampleRepo
) -> None:
    text = source(github, client).diff(deploy("1.1.0", "1.0.0"))

    assert text == local(sample).diff(deploy("1.1.0", "1.0.0"))
    change = parse_change(text)
    assert change.file("app/common/helpers.py").old_path == "app/legacy_utils.py"
    (request,) = github.requests
    assert request.method == "GET"
    assert request.path == COMPARE
    assert request.params == {}
    assert request.headers["accept"] == "application/vnd.github.diff"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.headers["user-agent"] == "vigil"


def test_github_enterprise_base_url_with_a_path_prefix(
    sample: SampleRepo, client: httpx.Client
) -> None:
    with fake_github(sample.path, prefix="/api/v3", token=TOKEN) as ghe:
        assert ghe.url.endswith("/api/v3")
        text = source(ghe.url + "/", client).diff(deploy("1.1.0", "1.0.0"))
        commits = source(ghe, client).commits(deploy("1.1.0", "1.0.0"))
    assert text == local(sample).diff(deploy("1.1.0", "1.0.0"))
    assert [c.subject for c in commits] == [
        "Move helpers into app/common",
        "Read the customer id for fraud checks",
    ]
    assert ghe.paths() == ["/api/v3" + COMPARE, "/api/v3" + COMPARE]


def test_refs_with_slashes_and_plus_signs_are_encoded_in_the_path(
    github: FakeGitHub, client: httpx.Client, sample: SampleRepo
) -> None:
    gh = source(github, client, ref_template="{version}")
    expected = local(sample).diff(deploy("1.2.0", "1.0.0"))
    assert gh.diff(deploy("v1.2.0+build.7", "v1.0.0")) == expected
    assert gh.diff(deploy("release/1.2.0", "v1.0.0")) == expected
    assert github.paths() == [
        "/repos/acme/shop/compare/v1.0.0...v1.2.0%2Bbuild.7",
        "/repos/acme/shop/compare/v1.0.0...release/1.2.0",
    ]


def test_commit_shas_are_used_as_they_are(
    github: FakeGitHub, client: httpx.Client, sample: SampleRepo
) -> None:
    one, three = sample.shas["one"][:10], sample.shas["three"]
    text = source(github, client).diff(deploy(three, one))
    assert text == local(sample).diff(deploy("1.1.0", "1.0.0"))
    assert github.paths() == [f"/repos/acme/shop/compare/{one}...{three}"]


def test_without_a_previous_version_the_first_parent_is_compared_and_said(
    github: FakeGitHub, client: httpx.Client, sample: SampleRepo
) -> None:
    gh = source(github, client)
    text = gh.diff(deploy("1.2.0"))
    three, four = sample.shas["three"], sample.shas["four"]
    assert github.paths() == [
        "/repos/acme/shop/commits/v1.2.0",
        f"/repos/acme/shop/compare/{three}...{four}",
    ]
    assert github.requests[0].headers["accept"] == "application/vnd.github+json"
    assert diff_notes(text) == [
        f"deploy dep-42 names no previous version: showing v1.2.0 ({four[:12]}) "
        f"against its first parent {three[:12]}"
    ]
    assert [f.path for f in parse_change(text).files] == ["app/checkout/api.py"]
    assert [c.sha for c in gh.commits(deploy("1.2.0"))] == [four]

    span = gh.resolve(deploy("1.2.0"))
    assert (span.base, span.head, span.base_ref) == (three, four, None)
    with pytest.raises(SourceUnavailable, match=r"v1\.0\.0 is a root commit of acme/shop"):
        gh.diff(deploy("1.0.0"))


def test_a_long_diff_is_cut_like_the_git_source_cuts_it(
    github: FakeGitHub, client: httpx.Client, sample: SampleRepo
) -> None:
    cap = 700
    text = source(github, client, max_diff_bytes=cap).diff(deploy("1.1.0", "1.0.0"))
    assert text == local(sample, max_diff_bytes=cap).diff(deploy("1.1.0", "1.0.0"))
    assert text.endswith(f"# vigil: diff truncated at {cap} bytes\n")
    assert len(parse_change(text).files) < 4


# --------------------------------------------------------------------------- commits


def test_commits_come_from_the_json_comparison_newest_first(
    github: FakeGitHub, client: httpx.Client, sample: SampleRepo
) -> None:
    commits = source(github, client).commits(deploy("1.2.0", "1.0.0"))
    assert commits == local(sample).commits(deploy("1.2.0", "1.0.0"))
    assert commits[0] == CommitInfo(
        sha=sample.shas["four"],
        author="Grace Hopper",
        date=datetime(2024, 5, 4, 10, tzinfo=UTC),
        subject="Tune the checkout timeout",
    )
    (request,) = github.requests
    assert request.path == "/repos/acme/shop/compare/v1.0.0...v1.2.0"
    assert request.params == {"per_page": "100", "page": "1"}
    assert request.headers["accept"] == "application/vnd.github+json"


def test_commits_are_read_page_by_page_keeping_the_newest(
    github: FakeGitHub, client: httpx.Client, sample: SampleRepo
) -> None:
    paged = source(github, client, page_size=1).commits(deploy("1.2.0", "1.0.0"))
    assert paged == local(sample).commits(deploy("1.2.0", "1.0.0"))
    assert [r.params["page"] for r in github.requests] == ["1", "3", "2"]

    github.http.forget()
    capped = source(github, client, page_size=1, max_commits=1).commits(deploy("1.2.0", "1.0.0"))
    assert [c.sha for c in capped] == [sample.shas["four"]]
    assert [r.params["page"] for r in github.requests] == ["1", "3"]


# --------------------------------------------------------------------------- failures


def test_an_unknown_version_is_named(github: FakeGitHub, client: httpx.Client) -> None:
    gh = source(github, client)
    with pytest.raises(SourceUnavailable) as new:
        gh.diff(deploy("9.9.9", "1.0.0"))
    assert str(new.value) == "github: unknown version '9.9.9': no commit at 'v9.9.9' in acme/shop"
    assert github.paths() == [
        "/repos/acme/shop/compare/v1.0.0...v9.9.9",
        "/repos/acme/shop",
        "/repos/acme/shop/commits/v9.9.9",
    ]
    with pytest.raises(SourceUnavailable, match=r"unknown version '0\.0\.1': no commit at 'v0"):
        gh.commits(deploy("1.1.0", "0.0.1"))
    with pytest.raises(SourceUnavailable, match=r"unknown version '9\.9\.9'"):
        gh.diff(deploy("9.9.9"))  # the first-parent lookup fails the same way


def test_an_unknown_repository_is_named(github: FakeGitHub, client: httpx.Client) -> None:
    with pytest.raises(SourceUnavailable) as unknown:
        source(github, client, repo="acme/nope").diff(deploy("1.1.0", "1.0.0"))
    assert str(unknown.value) == (
        f"github: repository acme/nope not found at {github.url} (or the token cannot see it)"
    )
    # Without a token GitHub hides a private repository behind the same 404.
    with pytest.raises(SourceUnavailable, match="repository acme/shop not found"):
        source(github, client, token=None).diff(deploy("1.1.0", "1.0.0"))
    assert "authorization" not in github.requests[-1].headers


def test_a_refused_token_is_reported_without_the_token(
    github: FakeGitHub, client: httpx.Client
) -> None:
    sleeps = Sleeps()
    secret = "ghp_wrong-token-9876"
    with pytest.raises(SourceUnavailable) as refused:
        source(github, client, token=secret, sleep=sleeps).diff(deploy("1.1.0", "1.0.0"))
    message = str(refused.value)
    assert message == (
        "github: HTTP 401 from compare v1.0.0...v1.1.0: Bad credentials (check the token)"
    )
    assert secret not in message
    assert len(github.requests) == 1 and sleeps == []
    assert github.requests[0].headers["authorization"] == f"Bearer {secret}"


def test_rate_limits_are_reported_with_when_to_come_back(
    github: FakeGitHub, client: httpx.Client
) -> None:
    sleeps = Sleeps()
    gh = source(github, client, sleep=sleeps)
    github.fail(rate_limited())
    with pytest.raises(SourceUnavailable) as limited:
        gh.diff(deploy("1.1.0", "1.0.0"))
    assert str(limited.value) == (
        "github: rate limited (HTTP 403 from compare v1.0.0...v1.1.0): API rate limit exceeded "
        "for 127.0.0.1.; the limit resets at 2030-03-17T17:46:40Z"
    )
    github.fail(rate_limited(retry_after=60))
    with pytest.raises(SourceUnavailable, match=r"rate limited .*; retry after 60s$"):
        gh.commits(deploy("1.1.0", "1.0.0"))
    github.fail(Fault(403, {"message": "Resource not accessible by integration"}))
    with pytest.raises(SourceUnavailable) as forbidden:
        gh.diff(deploy("1.1.0", "1.0.0"))
    assert str(forbidden.value) == (
        "github: HTTP 403 from compare v1.0.0...v1.1.0: Resource not accessible by "
        "integration (can the token read acme/shop?)"
    )
    assert len(github.requests) == 3 and sleeps == []  # none of these is retried


def test_server_errors_are_retried_with_backoff(
    github: FakeGitHub, client: httpx.Client, sample: SampleRepo
) -> None:
    sleeps = Sleeps()
    gh = source(github, client, sleep=sleeps)
    github.fail(server_error(502))
    assert gh.diff(deploy("1.1.0", "1.0.0")) == local(sample).diff(deploy("1.1.0", "1.0.0"))
    assert github.paths() == [COMPARE, COMPARE]
    assert sleeps == [0.5]

    sleeps.clear()
    github.fail(Fault(503, {"message": "busy"}, {"Retry-After": "3"}), server_error())
    assert len(gh.commits(deploy("1.1.0", "1.0.0"))) == 2
    assert sleeps == [3.0, 1.0]  # Retry-After when it says more than the backoff

    sleeps.clear()
    github.fail(server_error(), server_error(), server_error())
    with pytest.raises(SourceUnavailable) as failed:
        gh.diff(deploy("1.1.0", "1.0.0"))
    assert str(failed.value) == (
        "github: HTTP 500 from compare v1.0.0...v1.1.0 after 3 tries: Server Error"
    )
    assert sleeps == [0.5, 1.0]


def test_network_failures(github: FakeGitHub, client: httpx.Client) -> None:
    sleeps = Sleeps()
    url = closed_port()
    with pytest.raises(SourceUnavailable) as refused:
        source(url.replace("//", "//user:hunter2@"), client, sleep=sleeps).diff(
            deploy("1.1.0", "1.0.0")
        )
    message = str(refused.value)
    assert message.startswith(f"github: cannot reach {url} (3 tries): ")
    assert "hunter2" not in message and TOKEN not in message
    assert sleeps == [0.5, 1.0]

    github.fail(Fault(200, {"message": "late"}, delay_s=0.5))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as slow:
        source(github, client, timeout_s=0.1).diff(deploy("1.1.0", "1.0.0"))
    assert str(slow.value) == (
        f"github: no answer from {github.url} within 0.1s (compare v1.0.0...v1.1.0)"
    )
    assert time.monotonic() - started < 0.45


def test_answers_in_the_wrong_shape(github: FakeGitHub, client: httpx.Client) -> None:
    gh = source(github, client)
    github.fail(Fault(200, "<html>maintenance</html>"))
    with pytest.raises(SourceUnavailable, match=r"github: unexpected answer to compare v1\.0\.0"):
        gh.commits(deploy("1.1.0", "1.0.0"))
    github.fail(Fault(200, {"total_commits": "many", "commits": []}))
    with pytest.raises(SourceUnavailable, match=r"unexpected answer .*total_commits"):
        gh.commits(deploy("1.1.0", "1.0.0"))
    github.fail(Fault(200, {"message": "not a diff"}))
    with pytest.raises(SourceUnavailable, match="for a diff and got application/json"):
        gh.diff(deploy("1.1.0", "1.0.0"))
    github.fail(Fault(422, {"message": "Sorry, this diff is taking too long to generate."}))
    with pytest.raises(SourceUnavailable) as large:
        gh.diff(deploy("1.1.0", "1.0.0"))
    assert str(large.value) == (
        "github: HTTP 422 from compare v1.0.0...v1.1.0: "
        "Sorry, this diff is taking too long to generate."
    )


@pytest.mark.parametrize("version", ["--output=/tmp/x", "1.1.0..HEAD", "a b", "x:y", "1.1.0~1"])
def test_malformed_versions_are_rejected_before_any_request(
    github: FakeGitHub, client: httpx.Client, version: str
) -> None:
    gh = source(github, client, ref_template="{version}")
    with pytest.raises(SourceUnavailable, match=r"github: version .* does not make a valid ref"):
        gh.diff(deploy(version, "v1.0.0"))
    with pytest.raises(SourceUnavailable, match="does not make a valid ref"):
        gh.commits(deploy("v1.1.0", version))
    assert github.requests == []


def test_configuration_mistakes(client: httpx.Client) -> None:
    with pytest.raises(ConfigError, match="owner/name"):
        GitHubChangeSource("acme", client=client)
    with pytest.raises(ConfigError, match="owner/name"):
        GitHubChangeSource("acme/..", client=client)
    with pytest.raises(ConfigError, match="base URL"):
        GitHubChangeSource("acme/shop", client=client, base_url="ghe.example.com/api/v3")
    with pytest.raises(ConfigError, match="must contain"):
        GitHubChangeSource("acme/shop", client=client, ref_template="main")
