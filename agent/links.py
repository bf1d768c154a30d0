"""Links to a deploy's change in the repository's web interface: the comparison between the
previous and the new version, and each suspect file as of the new version.

The repository's web address is `repository.web_url` in vigil.yaml, or for `github: owner/repo`
derived from the GitHub API address (api.github.com → github.com, an Enterprise server's
`https://host/api/v3` → `https://host`). The link shapes are templates (`compare_url`,
`file_url`) so GitLab, Gitea or anything else fits; refs and paths are URL-quoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

from agent.backends.base import DeployInfo, SourceUnavailable
from agent.config import LINK_FIELD, GitHubConfig, RepositoryConfig, VigilConfig
from tools.backends.git import ref_for


@dataclass(frozen=True)
class ChangeLinks:
    """Where a human reads the change: `compare` (None when unknown) and a link per file."""

    compare: str | None = None
    files: dict[str, str] = field(default_factory=dict)


def web_url(repo: RepositoryConfig, github: GitHubConfig | None) -> str | None:
    """The repository's web address, configured or derived from GitHub's API address."""
    if repo.web_url:
        return repo.web_url.rstrip("/")
    if repo.github is None:
        return None  # a local clone has no web address unless one is configured
    api = (github or GitHubConfig()).base_url.rstrip("/")
    if re.fullmatch(r"https://api\.github\.com", api):
        host = "https://github.com"
    elif api.endswith("/api/v3"):
        host = api[: -len("/api/v3")]
    else:
        return None  # an API address we cannot map to a web one: say nothing, invent nothing
    return f"{host}/{repo.github}"


def _fill(template: str, values: dict[str, str]) -> str:
    return LINK_FIELD.sub(lambda m: values[m.group(1)], template)


def change_links(cfg: VigilConfig, deploy: DeployInfo, files: list[str]) -> ChangeLinks:
    """Links for a deploy of a configured service; empty when there is no repository, no web
    address, or a version that does not make a valid ref."""
    svc = cfg.services.get(deploy.service)
    repo = svc.repository if svc is not None else None
    if repo is None:
        return ChangeLinks()
    base_url = web_url(repo, cfg.github)
    if base_url is None:
        return ChangeLinks()
    try:
        head = ref_for(deploy.version, repo.ref_template, "links")
        base = (
            ref_for(deploy.previous_version, repo.ref_template, "links")
            if deploy.previous_version
            else None
        )
    except SourceUnavailable:
        return ChangeLinks()
    values = {"web_url": base_url, "head": quote(head, safe="")}
    compare = None
    if base is not None:
        compare = _fill(repo.compare_url, {**values, "base": quote(base, safe="")})
    return ChangeLinks(
        compare=compare,
        files={p: _fill(repo.file_url, {**values, "path": quote(p, safe="/")}) for p in files},
    )
