"""A GitHub (or GitHub Enterprise) repository as the change source, over the REST API.

`diff` asks the compare API, `GET /repos/{owner}/{repo}/compare/{base}...{head}`, for the
`application/vnd.github.diff` media type: the unified diff (with renames) from the merge base
of the previous version to the version, which for a deploy that moves forward is the same as
`git diff previous version`. `commits` reads the JSON form of the same comparison, page by
page, newest first. Versions become refs as in `tools.backends.git` (the template, or a SHA
as it is; validated, then percent-encoded in the path). Without a previous version, the
commit's first parent comes from `GET /repos/{owner}/{repo}/commits/{ref}` and the diff says
so in a leading `# vigil:` note. The diff is read up to `max_diff_bytes` and cut as the git
source cuts it.

`base_url` is `https://api.github.com` or an Enterprise server's `https://host/api/v3`. A
token goes into `Authorization: Bearer` only. 5xx answers and refused connections are retried
a few times with a capped backoff (the sleep is injectable); 404 names the version (or the
repository) GitHub does not know, 401 a refused token, 403/429 a rate limit with the time it
resets. Every failure raises `SourceUnavailable("github: ...")`; the token never appears in it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from agent.backends.base import DeployInfo, SourceUnavailable
from agent.errors import ConfigError
from tools.backends.git import (
    DEFAULT_MAX_COMMITS,
    DEFAULT_MAX_DIFF_BYTES,
    CommitInfo,
    CommitRange,
    cap_diff,
    check_ref_template,
    note,
    ref_for,
)
from tools.backends.http import (
    Backoff,
    GaveUp,
    Retry,
    header_seconds,
    network_failure,
    retried,
    short,
    tries_text,
)

API_URL = "https://api.github.com"
DIFF_MEDIA_TYPE = "application/vnd.github.diff"
JSON_MEDIA_TYPE = "application/vnd.github+json"
API_VERSION = "2022-11-28"
PAGE_SIZE = 100  # the compare API's largest page of commits

_log = logging.getLogger(__name__)
_OWNER_REPO = re.compile(r"[\w.-]+/[\w.-]+")
_ERROR_BYTES = 64_000  # of an error answer read for its message


class _Person(BaseModel):
    name: str | None = None
    date: datetime | None = None


class _GitCommit(BaseModel):
    author: _Person | None = None
    message: str = ""


class _Account(BaseModel):
    login: str | None = None


class _Parent(BaseModel):
    sha: str


class _Commit(BaseModel):
    sha: str
    commit: _GitCommit
    author: _Account | None = None
    parents: list[_Parent] = []


class _Comparison(BaseModel):
    total_commits: int
    commits: list[_Commit]


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def message(self) -> str:
        """GitHub's `message` from a JSON error body, else the body's text."""
        text = self.body.decode("utf-8", errors="replace")
        try:
            data = json.loads(text)
        except ValueError:
            return short(text)
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return short(data["message"])
        return short(text)


class GitHubChangeSource:
    """`ChangeSource` over the GitHub REST API; `owner_repo` is `owner/name`."""

    def __init__(
        self,
        owner_repo: str,
        *,
        client: httpx.Client,
        base_url: str = API_URL,
        token: str | None = None,
        ref_template: str = "{version}",
        timeout_s: float = 20.0,
        attempts: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 4.0,
        max_diff_bytes: int = DEFAULT_MAX_DIFF_BYTES,
        max_commits: int = DEFAULT_MAX_COMMITS,
        page_size: int = PAGE_SIZE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not _OWNER_REPO.fullmatch(owner_repo) or any(
            part in (".", "..") for part in owner_repo.split("/")
        ):
            raise ConfigError(f"github: repository must be owner/name, not {owner_repo!r}")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"github: base URL must be http(s)://host[/path], not {base_url!r}")
        if attempts < 1 or max_diff_bytes < 1 or max_commits < 1 or not 1 <= page_size <= 100:
            raise ConfigError(
                "github: attempts, max_diff_bytes and max_commits must be positive, page_size 1-100"
            )
        self.owner_repo = owner_repo
        self.base_url = base_url.rstrip("/")
        # Shown in messages: the URL without any user:password@ in it.
        port = f":{parts.port}" if parts.port else ""
        self.where = f"{parts.scheme}://{parts.hostname}{port}{parts.path.rstrip('/')}"
        self.ref_template = check_ref_template(ref_template, "github")
        self._client = client
        self._token = token
        self.timeout_s = timeout_s
        self._backoff = Backoff(attempts, backoff_s, max_backoff_s, sleep)
        self.max_diff_bytes = max_diff_bytes
        self.max_commits = max_commits
        self.page_size = page_size

    # Ranges

    def resolve(self, deploy: DeployInfo) -> CommitRange:
        """The deploy's commits as SHAs: previous version..version, or first parent..version."""
        head_ref = ref_for(deploy.version, self.ref_template, "github")
        head = self._commit(head_ref, deploy.version)
        if deploy.previous_version is not None:
            base_ref = ref_for(deploy.previous_version, self.ref_template, "github")
            base = self._commit(base_ref, deploy.previous_version)
            return CommitRange(base_ref=base_ref, head_ref=head_ref, base=base.sha, head=head.sha)
        return self._first_parent(deploy, head_ref, head)

    def _refs(self, deploy: DeployInfo) -> tuple[str, str, str | None]:
        """(base, head, note) for a comparison: refs as configured, or the first parent."""
        head_ref = ref_for(deploy.version, self.ref_template, "github")
        if deploy.previous_version is not None:
            return ref_for(deploy.previous_version, self.ref_template, "github"), head_ref, None
        span = self._first_parent(deploy, head_ref, self._commit(head_ref, deploy.version))
        assert span.base is not None
        return span.base, span.head, span.note

    def _first_parent(self, deploy: DeployInfo, head_ref: str, head: _Commit) -> CommitRange:
        if not head.parents:
            raise SourceUnavailable(
                f"github: deploy {deploy.id} names no previous version and {head_ref} is a "
                f"root commit of {self.owner_repo}: nothing to compare it with"
            )
        parent = head.parents[0].sha
        why = (
            f"deploy {deploy.id} names no previous version: showing {head_ref} "
            f"({head.sha[:12]}) against its first parent {parent[:12]}"
        )
        return CommitRange(base_ref=None, head_ref=head_ref, base=parent, head=head.sha, note=why)

    def _commit(self, ref: str, version: str) -> _Commit:
        path = f"{self._repo_path()}/commits/{quote(ref, safe='/')}"
        answer = self._get(path, JSON_MEDIA_TYPE, what=f"commit {ref}")
        if answer.status in (404, 422):  # 422: "No commit found for SHA"
            raise self._not_found([(ref, version)])
        self._check(answer, f"commit {ref}")
        try:
            return _Commit.model_validate_json(answer.body)
        except ValidationError as exc:
            raise SourceUnavailable(
                f"github: unexpected answer for commit {ref}: {_first(exc)}"
            ) from None

    # ChangeSource

    def diff(self, deploy: DeployInfo) -> str:
        base, head, why = self._refs(deploy)
        what = f"compare {base}...{head}"
        answer = self._get(self._compare_path(base, head), DIFF_MEDIA_TYPE, what=what, diff=True)
        if answer.status == 404:
            raise self._not_found(self._named(deploy, base, head))
        self._check(answer, what)
        kind = answer.headers.get("content-type", "")
        if "json" in kind:
            raise SourceUnavailable(
                f"github: asked {self.where} for a diff and got {kind}: does it support "
                f"{DIFF_MEDIA_TYPE}?"
            )
        try:
            text = cap_diff(answer.body, self.max_diff_bytes)
        except SourceUnavailable as exc:
            raise SourceUnavailable(f"github: {exc}") from None
        return note(why) + text if why is not None and text else text

    # What changed

    def commits(self, deploy: DeployInfo) -> list[CommitInfo]:
        """The commits the deploy shipped, newest first (at most `max_commits`)."""
        base, head, _ = self._refs(deploy)
        first = self._comparison(deploy, base, head, 1)
        last = max(1, math.ceil(first.total_commits / self.page_size))
        newest: list[_Commit] = []  # oldest first, gathered from the last page backwards
        for page in range(last, 0, -1):
            chunk = first if page == 1 else self._comparison(deploy, base, head, page)
            newest = [*chunk.commits, *newest]
            if len(newest) >= self.max_commits:
                break
        if first.total_commits > self.max_commits:
            _log.warning(
                "github: %s has %d commits; only the newest %d are listed",
                deploy.version,
                first.total_commits,
                self.max_commits,
            )
        return [_commit_info(c) for c in reversed(newest)][: self.max_commits]

    def _comparison(self, deploy: DeployInfo, base: str, head: str, page: int) -> _Comparison:
        what = f"compare {base}...{head}"
        params = {"per_page": str(self.page_size), "page": str(page)}
        answer = self._get(
            self._compare_path(base, head), JSON_MEDIA_TYPE, what=what, params=params
        )
        if answer.status == 404:
            raise self._not_found(self._named(deploy, base, head))
        self._check(answer, what)
        try:
            return _Comparison.model_validate_json(answer.body)
        except ValidationError as exc:
            raise SourceUnavailable(f"github: unexpected answer to {what}: {_first(exc)}") from None

    # Paths and errors

    def _repo_path(self) -> str:
        owner, name = self.owner_repo.split("/")
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    def _compare_path(self, base: str, head: str) -> str:
        return f"{self._repo_path()}/compare/{quote(base, safe='/')}...{quote(head, safe='/')}"

    def _named(self, deploy: DeployInfo, base: str, head: str) -> list[tuple[str, str]]:
        named = [(head, deploy.version)]
        if deploy.previous_version is not None:
            named.append((base, deploy.previous_version))
        return named

    def _not_found(self, named: list[tuple[str, str]]) -> SourceUnavailable:
        """Which of the repository and the refs GitHub does not know (a 404 names none)."""
        try:
            if self._get(self._repo_path(), JSON_MEDIA_TYPE, what="repository").status == 404:
                return SourceUnavailable(
                    f"github: repository {self.owner_repo} not found at {self.where} "
                    "(or the token cannot see it)"
                )
            for ref, version in named:
                path = f"{self._repo_path()}/commits/{quote(ref, safe='/')}"
                if self._get(path, JSON_MEDIA_TYPE, what=f"commit {ref}").status in (404, 422):
                    return SourceUnavailable(
                        f"github: unknown version {short(version, 80)!r}: no commit at "
                        f"{ref!r} in {self.owner_repo}"
                    )
        except SourceUnavailable:
            pass  # the plain message below will do
        refs = " or ".join(repr(ref) for ref, _ in named)
        return SourceUnavailable(f"github: {self.owner_repo} has no commit at {refs} (HTTP 404)")

    def _check(self, answer: _Answer, what: str) -> None:
        status = answer.status
        if status < 400:
            return
        headers = answer.headers
        if status == 401:
            hint = "check the token" if self._token else "a token is needed"
            raise SourceUnavailable(f"github: HTTP 401 from {what}: {answer.message} ({hint})")
        remaining = headers.get("x-ratelimit-remaining")
        limited = remaining == "0" or "retry-after" in headers or status == 429
        if status in (403, 429) and (limited or "rate limit" in answer.message.lower()):
            raise SourceUnavailable(
                f"github: rate limited (HTTP {status} from {what}): {answer.message}; "
                f"{_when(headers)}"
            )
        if status == 403:
            raise SourceUnavailable(
                f"github: HTTP 403 from {what}: {answer.message} "
                f"(can the token read {self.owner_repo}?)"
            )
        raise SourceUnavailable(f"github: HTTP {status} from {what}: {answer.message}")

    # HTTP

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {
            "Accept": accept,
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "vigil",
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _get(
        self,
        path: str,
        accept: str,
        *,
        what: str,
        params: dict[str, str] | None = None,
        diff: bool = False,
    ) -> _Answer:
        """One GET, retried on 5xx and refused connections; 2xx-4xx answers are returned."""

        def send() -> _Answer:
            answer = self._once(path, accept, params, diff)
            if answer.status >= 500:
                after = header_seconds(answer.headers.get("retry-after"))
                raise Retry(answer, answer.status, after)
            return answer

        try:
            answer, _ = retried(send, self._backoff, _RETRY_ON)
        except GaveUp as failed:
            error, tries = failed.error, failed.tries
            if isinstance(error, Retry):
                after = f" after {tries_text(tries)}" if tries > 1 else ""
                raise SourceUnavailable(
                    f"github: HTTP {error.status} from {what}{after}: {error.answer.message}"
                ) from None
            failure = network_failure(error, self.where, self.timeout_s, tries, what)
            raise SourceUnavailable(f"github: {failure}") from None
        return answer

    def _once(self, path: str, accept: str, params: dict[str, str] | None, diff: bool) -> _Answer:
        with self._client.stream(
            "GET",
            self.base_url + path,
            params=params,
            headers=self._headers(accept),
            timeout=self.timeout_s,
        ) as response:
            ok = response.status_code < 300
            # A diff is read one byte past the cap (to know it was cut); anything else whole,
            # except an error page, which only needs its message.
            limit = self.max_diff_bytes + 1 if diff and ok else None if ok else _ERROR_BYTES
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if limit is not None and len(body) >= limit:
                    break
            data = bytes(body) if limit is None else bytes(body[:limit])
            return _Answer(response.status_code, response.headers, data)


# Refused or broken connections are worth another try; a read that timed out is not.
_RETRY_ON = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


def _commit_info(commit: _Commit) -> CommitInfo:
    person = commit.commit.author
    if person is None or person.date is None:
        raise SourceUnavailable(f"github: commit {commit.sha[:12]} has no author date")
    login = commit.author.login if commit.author is not None else None
    return CommitInfo(
        sha=commit.sha,
        author=person.name or login or "unknown",
        date=person.date,
        subject=commit.commit.message.split("\n", 1)[0].strip(),
    )


def _when(headers: httpx.Headers) -> str:
    after = header_seconds(headers.get("retry-after"))
    if after is not None:
        return f"retry after {after:g}s"
    reset = header_seconds(headers.get("x-ratelimit-reset"))
    if reset is not None:
        at = datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"the limit resets at {at}"
    return "try again later"


def _first(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "(body)"
    return f"{where}: {err['msg']}"
