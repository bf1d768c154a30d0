"""The parsed change: `parse_change` turns `git diff` output into typed file and hunk records
(with the `unidiff` package); `diff_summary` renders it compactly for a language model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from unidiff.errors import UnidiffParseError
from unidiff.patch import Hunk as _UnidiffHunk
from unidiff.patch import PatchedFile, PatchSet

# --------------------------------------------------------------------------- the parsed change


class ChangeType(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    REMOVED = "removed"
    RENAMED = "renamed"


@dataclass(frozen=True)
class DiffLine:
    """One line of a hunk: `+` added, `-` removed or ` ` context, without its newline."""

    kind: str
    text: str
    source_line: int | None = None
    target_line: int | None = None


@dataclass(frozen=True)
class Hunk:
    """One `@@ -a,b +c,d @@ section` block."""

    section: str
    source_start: int
    source_length: int
    target_start: int
    target_length: int
    lines: tuple[DiffLine, ...] = ()
    source_no_newline: bool = False  # "\ No newline at end of file" after an old line
    target_no_newline: bool = False  # ... after a new line

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(line.text for line in self.lines if line.kind == "+")

    @property
    def removed(self) -> tuple[str, ...]:
        return tuple(line.text for line in self.lines if line.kind == "-")

    @property
    def context(self) -> tuple[str, ...]:
        return tuple(line.text for line in self.lines if line.kind == " ")

    @property
    def source_range(self) -> tuple[int, int]:
        """First and last line of the hunk in the old file (last < first when empty)."""
        return self.source_start, self.source_start + self.source_length - 1

    @property
    def target_range(self) -> tuple[int, int]:
        """First and last line of the hunk in the new file (last < first when empty)."""
        return self.target_start, self.target_start + self.target_length - 1

    @property
    def header(self) -> str:
        tail = f" {self.section}" if self.section else ""
        return (
            f"@@ -{self.source_start},{self.source_length} "
            f"+{self.target_start},{self.target_length} @@{tail}"
        )


@dataclass(frozen=True)
class ChangedFile:
    """One file of the change; `path` is the new path (the old one for a removed file)."""

    path: str
    change_type: ChangeType
    added: int
    removed: int
    hunks: tuple[Hunk, ...] = ()
    old_path: str | None = None  # set for renames
    binary: bool = False

    @property
    def size(self) -> int:
        return self.added + self.removed


@dataclass(frozen=True)
class Change:
    """A whole deploy's diff, files in the order the diff lists them."""

    files: tuple[ChangedFile, ...]

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed for f in self.files)

    def file(self, path: str) -> ChangedFile:
        for changed in self.files:
            if changed.path == path:
                return changed
        raise KeyError(path)


_DEV_NULL = "/dev/null"
_PREFIX = re.compile(r"^[abciow12]/")


def parse_change(diff_text: str) -> Change:
    """Parse unified diff text (git diff output); malformed text raises ValueError."""
    if not diff_text.strip():
        return Change(files=())
    # unidiff splits on "\n" only; a CRLF diff keeps its "\r" inside the values, stripped below.
    try:
        patch = PatchSet(diff_text)
    except UnidiffParseError as exc:
        raise ValueError(f"malformed diff: {exc}") from None
    if not patch:
        first = next(line for line in diff_text.splitlines() if line.strip())
        raise ValueError(
            "malformed diff: no file headers ('diff --git' or '---'/'+++') found; "
            f"first line is {first[:80]!r}"
        )
    return Change(files=tuple(_changed_file(f) for f in patch))


def _clean_path(raw: str | None) -> str | None:
    if raw is None:
        return None
    path = raw.strip()
    if path.startswith('"') and path.endswith('"') and len(path) >= 2:
        path = path[1:-1]
    if path == _DEV_NULL:
        return None
    return _PREFIX.sub("", path, count=1)


def _changed_file(patched: PatchedFile) -> ChangedFile:
    source = _clean_path(patched.source_file)
    target = _clean_path(patched.target_file)
    hunks = tuple(_hunk(h) for h in patched)
    if patched.is_added_file and source is None:
        kind = ChangeType.ADDED
    elif patched.is_removed_file and target is None:
        kind = ChangeType.REMOVED
    elif source is not None and target is not None and source != target:
        kind = ChangeType.RENAMED
    else:
        kind = ChangeType.MODIFIED
    path = target if target is not None else source
    if path is None:
        raise ValueError(f"malformed diff: file entry without a path ({patched!r})")
    return ChangedFile(
        path=path,
        change_type=kind,
        added=sum(len(h.added) for h in hunks),
        removed=sum(len(h.removed) for h in hunks),
        hunks=hunks,
        old_path=source if kind is ChangeType.RENAMED else None,
        binary=bool(patched.is_binary_file),
    )


def _hunk(raw: _UnidiffHunk) -> Hunk:
    lines: list[DiffLine] = []
    source_nl = target_nl = False
    for line in raw:
        kind = line.line_type
        if kind == "\\":  # the marker applies to the line before it
            previous = lines[-1].kind if lines else " "
            source_nl = source_nl or previous in ("-", " ")
            target_nl = target_nl or previous in ("+", " ")
            continue
        if kind not in ("+", "-", " "):
            continue  # a blank separator line after the hunk
        text = line.value.rstrip("\r\n")
        lines.append(DiffLine(kind, text, line.source_line_no, line.target_line_no))
    return Hunk(
        section=raw.section_header.strip(),
        source_start=raw.source_start,
        source_length=raw.source_length,
        target_start=raw.target_start,
        target_length=raw.target_length,
        lines=tuple(lines),
        source_no_newline=source_nl,
        target_no_newline=target_nl,
    )


# --------------------------------------------------------------------------- summary

_LINE_MAX = 160
_STATUS = {
    ChangeType.ADDED: "A",
    ChangeType.MODIFIED: "M",
    ChangeType.REMOVED: "D",
    ChangeType.RENAMED: "R",
}


def _clip(text: str) -> str:
    return text if len(text) <= _LINE_MAX else text[: _LINE_MAX - 3] + "..."


def _render_file(changed: ChangedFile) -> list[str]:
    name = changed.path
    if changed.change_type is ChangeType.RENAMED and changed.old_path is not None:
        name = f"{changed.old_path} -> {changed.path}"
    kind = " binary" if changed.binary else ""
    out = [f"{_STATUS[changed.change_type]} {name} (+{changed.added} -{changed.removed}){kind}"]
    for hunk in changed.hunks:
        out.append(_clip(hunk.header))
        out.extend(_clip(f"{line.kind}{line.text}") for line in hunk.lines if line.kind != " ")
    return out


def _ordered(files: Iterable[ChangedFile], first: Sequence[str]) -> list[ChangedFile]:
    rank = {path: i for i, path in enumerate(first)}
    listed = list(files)
    return sorted(listed, key=lambda f: (rank.get(f.path, len(rank)), listed.index(f)))


def diff_summary(change: Change, max_chars: int = 4000, *, first: Sequence[str] = ()) -> str:
    """The change as files, hunk headers and changed lines, at most `max_chars` long.

    Files come in diff order, those named in `first` (e.g. ranked suspects) before the rest.
    What does not fit is cut with a "[... N more lines]" note inside a file and a
    "[truncated: N more files]" marker at the end.
    """
    if max_chars <= 0:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    files = _ordered(change.files, first)
    noun = "file" if len(files) == 1 else "files"
    out = [f"{len(files)} {noun} changed, +{change.added} -{change.removed}"]
    used = len(out[0])
    shown = 0
    for index, changed in enumerate(files):
        block = _render_file(changed)
        rest = len(files) - index - 1
        reserve = len(_files_marker(rest)) + 1 if rest else 0
        size = sum(len(line) + 1 for line in block)
        if used + size + reserve <= max_chars:
            out.extend(block)
            used += size
            shown += 1
            continue
        # Show as much of this file as fits, with a note of what is left out.
        room = max_chars - used - len(_files_marker(rest)) - 1
        taken: list[str] = []
        for i, line in enumerate(block):
            note = f"  [... {len(block) - i - 1} more lines]"
            if sum(len(x) + 1 for x in taken) + len(line) + 1 + len(note) + 1 > room:
                break
            taken.append(line)
        if len(taken) >= 2:
            left = len(block) - len(taken)
            out.extend([*taken, f"  [... {left} more lines]"])
            used += sum(len(x) + 1 for x in out[-len(taken) - 1 :])
            shown += 1
        break
    missing = len(files) - shown
    if missing:
        out.append(_files_marker(missing))
    text = "\n".join(out)
    if len(text) > max_chars:  # only when even the first line and the marker do not fit
        marker = _files_marker(len(files))
        return marker[:max_chars]
    return text


def _files_marker(count: int) -> str:
    return f"[truncated: {count} more files]"
