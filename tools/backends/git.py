"""A local git clone as the change source: what a deploy shipped, as a diff and as commits.

A deploy names versions, not commits. `ref_for` turns a version into a ref with the
configured template (`{version}`, `v{version}`, `refs/tags/{version}`, ...); a version that
looks like a commit SHA (7-64 hex digits with at least one letter) is used as it is. Every
ref is validated against git's ref-name rules before git sees it (so a version such as
`--output=/x` can never become an option), then resolved to a commit SHA with
`git rev-parse --verify`; only SHAs reach `git diff` and `git log`.

`diff` is `git diff -M <previous> <version>` (unified, renames detected, no colour, no external
diff or textconv drivers, `a/` and `b/` prefixes whatever the user's configuration says).
Without a previous version the new commit is compared with its first parent (the empty tree
for a root commit), and the diff says so in a leading `# vigil: ...` note line. The output is
read up to `max_diff_bytes`; a longer diff is cut at a line, the last hunk's header is
rewritten to the lines kept (so the text still parses), and a trailing
`# vigil: diff truncated at N bytes` note marks it. `diff_notes` returns such notes.

Any failure — git missing, a path that is not a repository, an unknown version, a timeout,
git exiting with an error — raises `SourceUnavailable("git: ...")` with git's own reason.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from agent.backends.base import DeployInfo, SourceUnavailable
from agent.errors import ConfigError
from tools.backends.http import short

NOTE_PREFIX = "# vigil: "
DEFAULT_MAX_DIFF_BYTES = 1_000_000
DEFAULT_MAX_COMMITS = 500

_log = logging.getLogger(__name__)
_SHA = re.compile(r"[0-9a-f]{7,64}")
# Characters git never allows in a ref name (git check-ref-format), plus whitespace.
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_FIELD, _RECORD = "\x1f", "\x1e"


class CommitInfo(BaseModel):
    """One commit of a deploy's range."""

    model_config = ConfigDict(frozen=True)

    sha: str
    author: str
    date: datetime  # the author date, with its offset
    subject: str


class CommitRange(BaseModel):
    """A deploy resolved to commits: `base` is None when `head` is a root commit."""

    model_config = ConfigDict(frozen=True)

    base_ref: str | None  # the ref the previous version maps to; None: none was given
    head_ref: str
    base: str | None
    head: str
    note: str | None = None  # how the range was chosen when it is not previous..version


# --------------------------------------------------------------------------- refs


def looks_like_sha(version: str) -> bool:
    """7-64 lowercase hex digits with a letter among them (all digits reads as a build number)."""
    return _SHA.fullmatch(version) is not None and not version.isdigit()


def check_ref_template(template: str, system: str) -> str:
    if "{version}" not in template:
        raise ConfigError(f"{system}: ref_template {template!r} must contain {{version}}")
    return template


def ref_for(version: str, template: str, system: str) -> str:
    """The ref a version maps to; SourceUnavailable when it is not a safe ref name."""
    ref = version if looks_like_sha(version) else template.replace("{version}", version)
    problem = _ref_problem(ref)
    if problem is not None:
        raise SourceUnavailable(
            f"{system}: version {short(version, 80)!r} does not make a valid ref "
            f"({short(ref, 80)!r} {problem})"
        )
    return ref


def _ref_problem(ref: str) -> str | None:
    """Why `ref` is not a ref name git accepts (a subset of git check-ref-format), or None."""
    if not ref:
        return "is empty"
    if len(ref) > 255:
        return "is longer than 255 characters"
    if ref.startswith("-"):
        return "starts with '-'"
    if _BAD_REF_CHARS.search(ref):
        return "contains whitespace, a control character or one of ~ ^ : ? * [ \\"
    if ".." in ref or "@{" in ref or "//" in ref:
        return "contains '..', '@{' or '//'"
    if ref == "@" or ref.startswith("/") or ref.endswith(("/", ".")):
        return "is '@' or starts with '/' or ends with '/' or '.'"
    if any(part.startswith(".") or part.endswith(".lock") for part in ref.split("/")):
        return "has a component starting with '.' or ending with '.lock'"
    return None


# --------------------------------------------------------------------------- diff text


def note(text: str) -> str:
    """A note line for a diff: visible to readers, ignored by diff parsers between files."""
    return NOTE_PREFIX + " ".join(text.split()) + "\n"


def diff_notes(diff_text: str) -> list[str]:
    """The `# vigil:` notes of a diff from this module (a fallback range, a truncation)."""
    return [
        line[len(NOTE_PREFIX) :].strip()
        for line in diff_text.splitlines()
        if line.startswith(NOTE_PREFIX)
    ]


def cap_diff(data: bytes, max_bytes: int) -> str:
    """`data` (read up to max_bytes + 1) as text; longer than max_bytes: cut and marked.

    The cut falls at a line end; a partial file header is dropped, and a partial last hunk
    keeps its lines with its header's counts rewritten to them, so the text still parses.
    """
    if len(data) <= max_bytes:
        return data.decode("utf-8", errors="replace")
    kept = _complete(data[:max_bytes].split(b"\n")[:-1])
    body = b"".join(line + b"\n" for line in kept).decode("utf-8", errors="replace")
    if not body:
        raise SourceUnavailable(
            f"the diff's first file does not fit in {max_bytes} bytes (raise max_diff_bytes)"
        )
    return body + note(f"diff truncated at {max_bytes} bytes")


@dataclass
class _OpenHunk:
    at: int  # index of the header line
    old_left: int
    new_left: int


def _complete(lines: list[bytes]) -> list[bytes]:
    """The longest prefix of diff lines that is a whole diff (see `cap_diff`)."""
    safe = 0  # lines[:safe] is a whole diff
    file_at: int | None = None  # a file header started here and has no finished hunk yet
    hunk: _OpenHunk | None = None
    for i, line in enumerate(lines):
        if hunk is not None:
            if line.startswith(b"\\"):  # "\ No newline at end of file"
                safe = i + 1 if hunk.old_left == hunk.new_left == 0 else safe
                continue
            if hunk.old_left > 0 or hunk.new_left > 0:
                kind = line[:1]
                if kind in (b" ", b""):
                    hunk.old_left -= 1
                    hunk.new_left -= 1
                elif kind == b"-":
                    hunk.old_left -= 1
                elif kind == b"+":
                    hunk.new_left -= 1
                if hunk.old_left <= 0 and hunk.new_left <= 0:
                    hunk.old_left = hunk.new_left = 0
                    safe = i + 1
                continue
            hunk = None
        match = _HUNK.match(line)
        if match is not None:
            old = int(match.group(2)) if match.group(2) is not None else 1
            new = int(match.group(4)) if match.group(4) is not None else 1
            hunk, file_at = _OpenHunk(i, old, new), None
            if old == new == 0:
                safe = i + 1
        elif line.startswith(b"diff --git "):
            safe, file_at = i, i
        elif file_at is not None and line.startswith(b"Binary files "):
            safe = i + 1
    if hunk is None or (hunk.old_left == 0 and hunk.new_left == 0):
        return lines[:safe] if file_at is not None or hunk is not None else lines
    return _keep_partial(lines, hunk)


def _keep_partial(lines: list[bytes], hunk: _OpenHunk) -> list[bytes]:
    body = lines[hunk.at + 1 :]
    if all(line.startswith(b"\\") for line in body):
        return lines[: hunk.at]
    match = _HUNK.match(lines[hunk.at])
    assert match is not None
    old = sum(1 for line in body if line[:1] in (b" ", b"", b"-"))
    new = sum(1 for line in body if line[:1] in (b" ", b"", b"+"))
    header = b"@@ -%s,%d +%s,%d @@%s" % (match.group(1), old, match.group(3), new, match.group(5))
    return [*lines[: hunk.at], header, *body]


# --------------------------------------------------------------------------- the source


class GitChangeSource:
    """`ChangeSource` over a local clone (bare or not); git runs with list arguments only."""

    def __init__(
        self,
        repo_path: str | Path,
        *,
        ref_template: str = "{version}",
        git: str = "git",
        timeout_s: float = 30.0,
        max_diff_bytes: int = DEFAULT_MAX_DIFF_BYTES,
        max_commits: int = DEFAULT_MAX_COMMITS,
    ) -> None:
        if timeout_s <= 0 or max_diff_bytes < 1 or max_commits < 1:
            raise ConfigError("git: timeout_s, max_diff_bytes and max_commits must be positive")
        self.repo_path = Path(repo_path).expanduser().absolute()
        self.ref_template = check_ref_template(ref_template, "git")
        self.git = git
        self.timeout_s = timeout_s
        self.max_diff_bytes = max_diff_bytes
        self.max_commits = max_commits

    # Ranges

    def resolve(self, deploy: DeployInfo) -> CommitRange:
        """The deploy's commits: previous version..version, or the first parent..version."""
        head_ref = ref_for(deploy.version, self.ref_template, "git")
        head = self._commit(head_ref, deploy.version)
        if deploy.previous_version is not None:
            base_ref = ref_for(deploy.previous_version, self.ref_template, "git")
            base = self._commit(base_ref, deploy.previous_version)
            return CommitRange(base_ref=base_ref, head_ref=head_ref, base=base, head=head)
        parent = self._parent(head)
        if parent is None:
            why = (
                f"deploy {deploy.id} names no previous version and {head_ref} "
                f"({head[:12]}) is a root commit: showing everything in it"
            )
        else:
            why = (
                f"deploy {deploy.id} names no previous version: showing {head_ref} "
                f"({head[:12]}) against its first parent {parent[:12]}"
            )
        return CommitRange(base_ref=None, head_ref=head_ref, base=parent, head=head, note=why)

    def _commit(self, ref: str, version: str) -> str:
        out = self._run(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], ok=(0, 1))
        sha = out.text.strip()
        if out.code != 0 or not _SHA.fullmatch(sha):
            raise SourceUnavailable(
                f"git: unknown version {short(version, 80)!r}: no commit at {ref!r} "
                f"in {self.repo_path}"
            )
        return sha

    def _parent(self, sha: str) -> str | None:
        out = self._run(["rev-list", "--parents", "-n", "1", sha])
        shas = out.text.split()
        return shas[1] if len(shas) > 1 else None

    # ChangeSource

    def diff(self, deploy: DeployInfo) -> str:
        span = self.resolve(deploy)
        base = span.base if span.base is not None else self._empty_tree()
        args = [
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-relative",
            "-M",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            base,
            span.head,
            "--",
        ]
        out = self._run(args, limit=self.max_diff_bytes)
        try:
            text = cap_diff(out.data, self.max_diff_bytes)
        except SourceUnavailable as exc:
            raise SourceUnavailable(f"git: {exc}") from None
        if span.note is None or not text:
            return text
        return note(span.note) + text

    # What changed

    def commits(self, deploy: DeployInfo) -> list[CommitInfo]:
        """The commits the deploy shipped, newest first (at most `max_commits`)."""
        span = self.resolve(deploy)
        fmt = _FIELD.join(("%H", "%an", "%aI", "%s")) + _RECORD
        args = [
            "log",
            "--no-color",
            "--no-show-signature",
            f"--format={fmt}",
            "-n",
            str(self.max_commits + 1),
            span.head if span.base is None else f"{span.base}..{span.head}",
            "--",
        ]
        out = self._run(args)
        commits = [_commit_info(r) for r in out.text.split(_RECORD) if r.strip()]
        if len(commits) > self.max_commits:
            _log.warning(
                "git: %s has more than %d commits; only the newest are listed",
                deploy.version,
                self.max_commits,
            )
        return commits[: self.max_commits]

    def _empty_tree(self) -> str:
        return self._run(["hash-object", "-t", "tree", "--stdin"]).text.strip()

    # Running git

    def _env(self) -> dict[str, str]:
        # The caller's GIT_DIR and friends must not point us at another repository.
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            LC_ALL="C",
            GIT_TERMINAL_PROMPT="0",
            GIT_OPTIONAL_LOCKS="0",
            # Never walk up from a non-repository into an enclosing one.
            GIT_CEILING_DIRECTORIES=str(self.repo_path.parent),
        )
        return env

    def _run(
        self, args: list[str], *, limit: int | None = None, ok: tuple[int, ...] = (0,)
    ) -> _Output:
        if not self.repo_path.is_dir():
            raise SourceUnavailable(f"git: {self.repo_path} is not a directory")
        cmd = [
            self.git,
            "-C",
            str(self.repo_path),
            "-c",
            "core.quotepath=off",
            "-c",
            "core.fsmonitor=false",
            "-c",
            "i18n.logOutputEncoding=UTF-8",
            *args,
        ]
        timed_out = threading.Event()
        with tempfile.TemporaryFile() as errors:
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    env=self._env(),
                    start_new_session=True,  # a timeout kills git and anything it started
                )
            except FileNotFoundError:
                raise SourceUnavailable(
                    f"git: the git executable {self.git!r} was not found (install git)"
                ) from None
            except OSError as exc:
                raise SourceUnavailable(f"git: cannot run {self.git!r}: {exc.strerror}") from None

            def kill() -> None:
                timed_out.set()
                _kill(proc)

            timer = threading.Timer(self.timeout_s, kill)
            timer.start()
            done = False
            try:
                assert proc.stdout is not None
                with proc.stdout:
                    data = proc.stdout.read() if limit is None else proc.stdout.read(limit + 1)
                truncated = limit is not None and len(data) > limit
                done = not truncated
            finally:
                timer.cancel()
                if not done:
                    _kill(proc)  # the rest is not wanted (or reading it failed)
                code = proc.wait()
            errors.seek(0)
            stderr = errors.read().decode("utf-8", errors="replace")
        if timed_out.is_set():
            raise SourceUnavailable(
                f"git: `git {args[0]}` in {self.repo_path} did not finish within "
                f"{self.timeout_s:g}s"
            )
        if not truncated and code not in ok:
            raise SourceUnavailable(self._failure(args[0], code, stderr))
        return _Output(code, data)

    def _failure(self, command: str, code: int, stderr: str) -> str:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        reason = next((line for line in lines if line.startswith("fatal:")), None)
        reason = reason or (lines[-1] if lines else f"exit code {code}")
        if "not a git repository" in reason:
            return f"git: {self.repo_path} is not a git repository"
        if "dubious ownership" in stderr:
            return (
                f"git: {self.repo_path} belongs to another user and git refuses to read it "
                "(add it to git's safe.directory)"
            )
        return f"git: `git {command}` failed in {self.repo_path}: {short(reason)}"


@dataclass(frozen=True)
class _Output:
    code: int
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _commit_info(record: str) -> CommitInfo:
    parts = record.strip("\n").split(_FIELD)
    if len(parts) != 4:
        raise SourceUnavailable(f"git: unexpected log output {short(record, 80)!r}")
    sha, author, date, subject = parts
    try:
        when = datetime.fromisoformat(date)
    except ValueError:
        raise SourceUnavailable(f"git: unexpected commit date {date!r}") from None
    return CommitInfo(sha=sha, author=author, date=when, subject=subject)
