"""Links to a deploy's change: derived for GitHub (and Enterprise), configured for anything
else, quoted, and absent rather than invented when the address or the refs are unknown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.backends.base import DeployInfo
from agent.config import VigilConfig
from agent.links import ChangeLinks, change_links

SIGNAL = {
    "name": "error_ratio",
    "kind": "errors",
    "unit": "ratio",
    "bad_direction": "up",
    "query": "sum(rate(errors_total[1m]))",
}


def _cfg(repository: dict[str, Any] | None, github: dict[str, Any] | None = None) -> VigilConfig:
    service: dict[str, Any] = {"signals": [SIGNAL]}
    if repository is not None:
        service["repository"] = repository
    data: dict[str, Any] = {"services": {"reviews": service}}
    if github is not None:
        data["github"] = github
    return VigilConfig.model_validate(data)


def _deploy(version: str = "v5.6.0", previous: str | None = "v5.5.2") -> DeployInfo:
    return DeployInfo(
        id="deploy-6704",
        service="reviews",
        environment="production",
        version=version,
        previous_version=previous,
        started_at=datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
        finished_at=None,
        strategy="rolling",
    )


def test_github_links_compare_the_versions_and_point_at_files_as_deployed() -> None:
    links = change_links(
        _cfg({"github": "acme/reviews"}), _deploy(), ["src/reviews/serializers.py"]
    )
    assert links.compare == "https://github.com/acme/reviews/compare/v5.5.2...v5.6.0"
    assert links.files == {
        "src/reviews/serializers.py": (
            "https://github.com/acme/reviews/blob/v5.6.0/src/reviews/serializers.py"
        )
    }


def test_enterprise_refs_and_paths_are_quoted() -> None:
    cfg = _cfg(
        {"github": "acme/reviews", "ref_template": "release/{version}"},
        {"base_url": "https://ghe.example.com/api/v3"},
    )
    links = change_links(cfg, _deploy(), ["docs/a b#c.md"])
    assert links.compare == (
        "https://ghe.example.com/acme/reviews/compare/release%2Fv5.5.2...release%2Fv5.6.0"
    )
    assert links.files["docs/a b#c.md"] == (
        "https://ghe.example.com/acme/reviews/blob/release%2Fv5.6.0/docs/a%20b%23c.md"
    )


def test_commit_shas_are_used_as_they_are() -> None:
    sha_new, sha_old = "4f2a9c1d" * 5, "9b8e7d6c" * 5
    links = change_links(
        _cfg({"github": "acme/reviews", "ref_template": "v{version}"}),
        _deploy(sha_new, sha_old),
        [],
    )
    assert links.compare == f"https://github.com/acme/reviews/compare/{sha_old}...{sha_new}"


def test_gitlab_and_local_clones_use_the_configured_address(tmp_path: Path) -> None:
    gitlab = _cfg(
        {
            "git": str(tmp_path),
            "web_url": "https://gitlab.example.com/acme/reviews/",
            "compare_url": "{web_url}/-/compare/{base}...{head}",
            "file_url": "{web_url}/-/blob/{head}/{path}",
        }
    )
    links = change_links(gitlab, _deploy(), ["app.py"])
    assert links.compare == "https://gitlab.example.com/acme/reviews/-/compare/v5.5.2...v5.6.0"
    assert links.files["app.py"] == "https://gitlab.example.com/acme/reviews/-/blob/v5.6.0/app.py"


@pytest.mark.parametrize(
    ("cfg", "deploy"),
    [
        (_cfg(None), _deploy()),  # no repository
        (_cfg({"git": "/srv/reviews"}), _deploy()),  # a clone, no web address configured
        (  # an API address that has no known web address: nothing is invented
            _cfg({"github": "acme/reviews"}, {"base_url": "http://127.0.0.1:8080"}),
            _deploy(),
        ),
        (_cfg({"github": "acme/reviews"}), _deploy(version="v1..2")),  # not a valid ref
        (_cfg({"github": "acme/reviews"}), _deploy(previous="-x")),  # nor is this
    ],
)
def test_no_link_rather_than_a_wrong_one(cfg: VigilConfig, deploy: DeployInfo) -> None:
    assert change_links(cfg, deploy, ["a.py"]) == ChangeLinks()


def test_without_a_previous_version_only_the_files_are_linked() -> None:
    links = change_links(_cfg({"github": "acme/reviews"}), _deploy(previous=None), ["a.py"])
    assert links.compare is None
    assert links.files == {"a.py": "https://github.com/acme/reviews/blob/v5.6.0/a.py"}


def test_another_service_has_no_links() -> None:
    other = _deploy().model_copy(update={"service": "checkout"})
    assert change_links(_cfg({"github": "acme/reviews"}), other, ["a.py"]) == ChangeLinks()
