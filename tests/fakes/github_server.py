"""A local HTTP server that plays GitHub's REST API for one repository, backed by a real
local git repository (answers come from git itself, so they cannot drift from what git says).

Under an optional path prefix (`/api/v3` for GitHub Enterprise):

- `GET /repos/{owner}/{repo}`: the repository.
- `GET /repos/{owner}/{repo}/commits/{ref}`: one commit (`sha`, `parents`, `commit.author`,
  `commit.message`); an unknown ref is 422 "No commit found for SHA", as GitHub answers.
- `GET /repos/{owner}/{repo}/compare/{base}...{head}`: with `Accept:
  application/vnd.github.diff` the diff from the merge base to head (`git diff -M`); otherwise
  the JSON comparison, commits oldest first, paged by `per_page` (at most 100) and `page`.
  An unknown ref is 404 "Not Found".

A configured token must come as `Authorization: Bearer <token>` (or `token <token>`): a wrong
one is 401 "Bad credentials", none at all 404 (GitHub hides private repositories). Faults
queue up (`fail`) and are served one per request before normal answers (`rate_limited()` and
`server_error()` build the usual ones). Every request is recorded (by `HttpRecorder`), its
path still percent-encoded as it arrived.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tests.fakes.http_recorder import HttpRecorder, RecordedRequest, Reply

DIFF_TYPES = ("application/vnd.github.diff", "application/vnd.github.v3.diff")
RESET_AT = 1_900_000_000  # X-RateLimit-Reset of a rate-limited answer: 2030-03-17T17:46:40Z


@dataclass
class Fault:
    status: int = 500
    body: Any = field(default_factory=lambda: {"message": "Server Error"})
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # wait this long before answering


def server_error(status: int = 500) -> Fault:
    return Fault(status, {"message": "Server Error"})


def rate_limited(*, retry_after: int | None = None) -> Fault:
    headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0"}
    headers["X-RateLimit-Reset"] = str(RESET_AT)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    message = "API rate limit exceeded for 127.0.0.1."
    return Fault(
        403, {"message": message, "documentation_url": "https://docs.github.com/rest"}, headers
    )


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent, percent-encoding included
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names


class FakeGitHub:
    def __init__(
        self,
        repo: Path,
        *,
        owner_repo: str = "acme/shop",
        prefix: str = "",
        token: str | None = None,
    ) -> None:
        self.repo = repo
        self.owner_repo = owner_repo
        self.prefix = prefix.rstrip("/")
        self.token = token
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self.http = HttpRecorder().fallback(self._respond)
        self.url = f"{self.http.url}{self.prefix}"

    @property
    def requests(self) -> list[Request]:
        return [
            Request(r.method, r.path, {k: v[-1] for k, v in r.query.items()}, r.headers)
            for r in self.http.received()
        ]

    def fail(self, *faults: Fault) -> None:
        """Serve these answers, one per request, before any normal answer."""
        with self._lock:
            self.faults.extend(faults)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # git

    def _git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.repo), *args],
            capture_output=True,
            check=False,
            timeout=10,
        )
        if done.returncode != 0:
            raise LookupError(done.stderr.decode(errors="replace").strip())
        return done.stdout.decode("utf-8", errors="replace")

    def _sha(self, ref: str) -> str | None:
        if not ref or ref.startswith("-"):
            return None
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
        except LookupError:
            return None

    def _commits(self, *spec: str) -> list[dict[str, Any]]:
        fmt = "%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%B%x1e"
        out = self._git("log", "--reverse", f"--format={fmt}", *spec, "--")
        commits = []
        for record in out.split("\x1e"):
            if not record.strip():
                continue
            sha, parents, name, email, date, message = record.strip("\n").split("\x1f")
            when = datetime.fromisoformat(date).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            person = {"name": name, "email": email, "date": when}
            commits.append(
                {
                    "sha": sha,
                    "commit": {"author": person, "committer": person, "message": message.strip()},
                    "author": {"login": name.lower().replace(" ", "-")},
                    "parents": [{"sha": p} for p in parents.split()],
                }
            )
        return commits

    # answers

    def answer(self, path: str, params: Mapping[str, str], accept: str) -> tuple[int, Any, str]:
        """(status, body, content type) for a request that passed faults and auth."""
        repo = f"/repos/{self.owner_repo}"
        if not path.startswith(self.prefix + repo):
            return _not_found()
        rest = path[len(self.prefix + repo) :]
        if rest == "":
            return 200, {"full_name": self.owner_repo, "default_branch": "main"}, _JSON
        if rest.startswith("/commits/"):
            ref = unquote(rest[len("/commits/") :])
            sha = self._sha(ref)
            if sha is None:
                return 422, {"message": f"No commit found for SHA: {ref}"}, _JSON
            return 200, self._commits("-n", "1", sha)[0], _JSON
        if rest.startswith("/compare/"):
            base_head = rest[len("/compare/") :]
            if "..." not in base_head:
                return _not_found()
            base_ref, head_ref = (unquote(part) for part in base_head.split("...", 1))
            base, head = self._sha(base_ref), self._sha(head_ref)
            if base is None or head is None:
                return _not_found()
            merge_base = self._git("merge-base", base, head).strip()
            if accept in DIFF_TYPES:
                text = self._git(
                    "diff",
                    "--no-color",
                    "--no-ext-diff",
                    "--no-textconv",
                    "-M",
                    "--src-prefix=a/",
                    "--dst-prefix=b/",
                    merge_base,
                    head,
                )
                return 200, text, f"{accept}; charset=utf-8"
            return 200, self._comparison(base, head, merge_base, params), _JSON
        return _not_found()

    def _comparison(
        self, base: str, head: str, merge_base: str, params: Mapping[str, str]
    ) -> dict[str, Any]:
        commits = self._commits(f"{merge_base}..{head}")
        per_page = min(100, int(params.get("per_page", "250")))
        page = int(params.get("page", "1"))
        behind = len(self._commits(f"{head}..{base}"))
        return {
            "status": "ahead" if not behind else "diverged" if commits else "behind",
            "ahead_by": len(commits),
            "behind_by": behind,
            "total_commits": len(commits),
            "base_commit": {"sha": base},
            "merge_base_commit": {"sha": merge_base},
            "commits": commits[(page - 1) * per_page : page * per_page],
        }

    def _refusal(self, headers: Mapping[str, str]) -> tuple[int, Any, str] | None:
        if self.token is None:
            return None
        auth = headers.get("authorization")
        if auth is None:
            return _not_found()
        if auth not in (f"Bearer {self.token}", f"token {self.token}"):
            body = {"message": "Bad credentials", "documentation_url": "https://docs.github.com"}
            return 401, body, _JSON
        return None

    # server

    def _respond(self, request: RecordedRequest) -> Reply:
        with self._lock:
            fault = self.faults.pop(0) if self.faults else None
        media = {"X-GitHub-Media-Type": "github.v3"}
        if fault is not None:
            headers = {"Content-Type": _JSON, **media, **fault.headers}
            return Reply(fault.status, fault.body, headers, delay_s=fault.delay_s)
        refused = self._refusal(request.headers)
        if refused is None:
            params = {k: v[-1] for k, v in request.query.items()}
            try:
                refused = self.answer(request.path, params, request.headers.get("accept", ""))
            except LookupError as exc:
                refused = 500, {"message": f"git failed: {exc}"}, _JSON
        status, body, kind = refused
        return Reply(status, body, {"Content-Type": kind, **media})

    def start(self) -> FakeGitHub:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()


_JSON = "application/json; charset=utf-8"


def _not_found() -> tuple[int, Any, str]:
    return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, _JSON


@contextmanager
def fake_github(repo: Path, **kw: Any) -> Iterator[FakeGitHub]:
    server = FakeGitHub(repo, **kw).start()
    try:
        yield server
    finally:
        server.stop()
