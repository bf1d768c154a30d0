"""Which files of a deploy's change most likely caused an incident.

`parse_change` turns `git diff prev..version` output into typed file and hunk records (with the
`unidiff` package); `rank_suspects` scores every changed file against the incident's evidence;
`diff_summary` renders the change compactly for a language model.

Ranking adds up five kinds of evidence per file (weights are the constants below):

1. Mentions: a file path, a basename or a dotted module name (`payments.validation`) in the
   log messages or stack traces names the file; a mentioned line number inside one of the
   file's changed hunks adds a bonus. Outer stack frames count half as much as the innermost.
2. Shared text: identifiers and string literals of the added and removed lines (and, at half
   weight, of the hunk's context lines and section header) that also occur in the error text.
   Rare tokens weigh more than ones many changed files share.
3. Kind hints: what a regressed signal's kind suggests: database code for db dependencies,
   timeouts, pool sizes, caches and blocking I/O for latency, unbounded collections for memory,
   feature flags and checkout code for business signals, HTTP clients and retries for
   upstream dependencies.
4. Priors: application code before configuration before tests, docs, lock files and CI files,
   whose evidence is also damped so that they rank near the bottom.
5. Size: a slightly larger change wins a tie; remaining ties go by path.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from unidiff.errors import UnidiffParseError
from unidiff.patch import Hunk as _UnidiffHunk
from unidiff.patch import PatchedFile, PatchSet

from agent.bundle.model import SignalKind

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


# --------------------------------------------------------------------------- the evidence


class RegressedSignal(BaseModel):
    """A signal the judge found regressed, e.g. `latency_p95` of kind `latency`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: SignalKind


class Evidence(BaseModel):
    """What the incident shows: new or grown error text, regressed signals, free terms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: tuple[str, ...] = ()  # log messages of new or grown error patterns
    stack_traces: tuple[str, ...] = ()
    signals: tuple[RegressedSignal, ...] = ()
    terms: tuple[str, ...] = ()  # e.g. words of the alert's summary and description


@dataclass(frozen=True)
class Suspect:
    path: str
    score: float  # 0-1; scores of different files need not sum to 1
    reasons: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- weights

# (1) mentions
_MENTION_PATH = 3.0  # the file's path, or a path ending with it (/app/src/x.py)
_MENTION_MODULE = 2.5  # a dotted module name ending with the file's (payments.validation)
_MENTION_BASENAME = 1.5  # only the file name (validation.py)
_OUTER_FRAME = 0.5  # factor for a stack frame that is not the innermost one
_LINE_IN_HUNK = 1.5  # a mentioned line number falls inside a changed hunk
# (2) shared text, saturating at _TEXT_MAX
_IDENTIFIER = 1.0  # a compound identifier (snake_case, CamelCase) on a changed line
_WORD = 0.3  # a plain word of 4+ letters on a changed line
_LITERAL = 1.5  # a string literal's fixed text found in the error text
_NEARBY = 0.5  # factor for context lines and the hunk's section header
_TERMS = 0.5  # factor for a match with the free terms only
_TEXT_MAX = 3.5
# (3) kind hints, saturating at _HINT_MAX
_HINT_MAX = 2.0
# (4) priors, and the damping of evidence for files that rarely break production
_DAMPED = 0.25
# (5) size tie-breaker
_SIZE_MAX = 0.05
_SCALE = 3.0  # score = 1 - exp(-raw / _SCALE)


# --------------------------------------------------------------------------- (4) priors


@dataclass(frozen=True)
class _Role:
    name: str
    prior: float
    damped: bool


_SOURCE = _Role("application code", 0.30, False)
_CONFIG = _Role("configuration", 0.25, False)
_MIGRATION = _Role("database migration", 0.25, False)
_MANIFEST = _Role("dependency manifest", 0.10, False)
_BINARY = _Role("binary file", 0.05, False)
_TEST = _Role("test code", 0.03, True)
_LOCK = _Role("lock file", 0.02, True)
_DOCS = _Role("documentation", 0.02, True)
_CI = _Role("CI configuration", 0.02, True)

_CI_PATH = re.compile(
    r"^(?:\.github/|\.gitlab/|\.circleci/|\.buildkite/)|(?:^|/)(?:\.gitlab-ci\.ya?ml|"
    r"Jenkinsfile|\.travis\.ya?ml|azure-pipelines\.ya?ml|\.pre-commit-config\.yaml)$"
)
_TEST_PATH = re.compile(
    r"(?:^|/)(?:tests?|__tests__|spec|testdata|fixtures)/|(?:^|/)test_[^/]*$|"
    r"_test\.[a-z]+$|\.(?:test|spec)\.[a-z]+$|(?:^|/)conftest\.py$|Test\.(?:java|kt)$"
)
_DOCS_PATH = re.compile(
    r"(?:^|/)docs?/|\.(?:md|rst|adoc|txt)$|(?:^|/)(?:LICENSE|NOTICE|AUTHORS|CHANGELOG|"
    r"CHANGES|HISTORY|README|CODEOWNERS)(?:\.[^/]*)?$",
    re.IGNORECASE,
)
_LOCK_PATH = re.compile(
    r"(?:\.lock|-lock\.json|-lock\.ya?ml|(?:^|/)go\.sum|(?:^|/)npm-shrinkwrap\.json)$"
)
_MANIFEST_PATH = re.compile(
    r"(?:^|/)(?:requirements[^/]*\.(?:txt|in)|pyproject\.toml|setup\.(?:py|cfg)|"
    r"package\.json|go\.mod|Cargo\.toml|Gemfile|pom\.xml|build\.gradle(?:\.kts)?)$"
)
_MIGRATION_PATH = re.compile(r"(?:^|/)(?:migrations?|alembic|flyway|liquibase)/|\.sql$")
_CONFIG_PATH = re.compile(
    r"(?:^|/)(?:config|configs|conf|settings|deploy|helm|k8s|charts)/|"
    r"\.(?:ya?ml|toml|ini|cfg|conf|env|properties|json)$"
)


def _role(changed: ChangedFile) -> _Role:
    path = changed.path
    if _CI_PATH.search(path):
        return _CI
    if _LOCK_PATH.search(path):
        return _LOCK
    if _MANIFEST_PATH.search(path):
        return _MANIFEST
    if _TEST_PATH.search(path):
        return _TEST
    if _DOCS_PATH.search(path):
        return _DOCS
    if changed.binary:
        return _BINARY
    if _MIGRATION_PATH.search(path):
        return _MIGRATION
    if _CONFIG_PATH.search(path):
        return _CONFIG
    return _SOURCE


# --------------------------------------------------------------------------- (1) mentions

_EXTENSIONS = (
    "py|pyx|go|js|mjs|cjs|ts|tsx|jsx|java|kt|kts|scala|rb|rs|cs|php|swift|c|cc|cpp|h|hpp|"
    "ex|exs|erl|clj|sql|ya?ml|json|toml|ini|cfg|conf|properties|xml|html|sh|tf|proto"
)
_PATHLIKE = re.compile(
    rf"(?P<path>(?:[A-Za-z]:)?[\w.@+\-/\\]*[\w\-]\.(?:{_EXTENSIONS}))\b"
    r"(?:\"?,\s*line\s+(?P<pyline>\d+)|:(?P<line>\d+))?"
)
_JAVA_FRAME = re.compile(r"\bat\s+(?P<qual>[\w$.]+)\((?P<file>[\w$]+\.\w+):(?P<line>\d+)\)")
_DOTTED = re.compile(r"(?<![\w./\\-])(?:[A-Za-z_]\w*\.){1,8}[A-Za-z_]\w*(?![\w/\\-])")
_RECENT_LAST = re.compile(r"most recent call last", re.IGNORECASE)


@dataclass(frozen=True)
class _Mention:
    path: str  # as written, normalised to forward slashes without leading ./ or /
    line: int | None
    module: bool  # a dotted module name rather than a path
    weight: float  # 1 for a message or the innermost frame, _OUTER_FRAME for outer frames
    where: str  # "stack frame" or "log message"


def _normalise(path: str) -> str:
    path = path.replace("\\", "/")
    while path.startswith(("./", "/")):
        path = path[1:] if path.startswith("/") else path[2:]
    return path


def _mentions_in(text: str, *, trace: bool) -> list[_Mention]:
    """Paths (with line numbers) and dotted module names named in one text."""
    found: list[tuple[int, str, int | None, bool]] = []  # (offset, path, line, module)
    spans: list[tuple[int, int]] = []
    for m in _JAVA_FRAME.finditer(text):
        package = m.group("qual").rsplit(".", 2)[0] if m.group("qual").count(".") >= 2 else ""
        path = (package.replace(".", "/") + "/" if package else "") + m.group("file")
        found.append((m.start(), path, int(m.group("line")), False))
        spans.append(m.span())
    for m in _PATHLIKE.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        line_text = m.group("pyline") or m.group("line")
        found.append((m.start(), _normalise(m.group("path")), _int(line_text), False))
        spans.append(m.span())
    for m in _DOTTED.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        found.append((m.start(), m.group(0), None, True))
    found.sort(key=lambda item: item[0])
    if not trace:
        return [_Mention(p, n, mod, 1.0, "log message") for _, p, n, mod in found]
    # The innermost frame is the last file mention of a Python traceback, the first otherwise.
    files = [i for i, item in enumerate(found) if not item[3]]
    inner = None
    if files:
        inner = files[-1] if _RECENT_LAST.search(text) else files[0]
    return [
        _Mention(p, n, mod, 1.0 if i == inner or mod else _OUTER_FRAME, "stack frame")
        for i, (_, p, n, mod) in enumerate(found)
    ]


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def _match_strength(mention: _Mention, path: str) -> float:
    if mention.module:
        parts = mention.path.split(".")
        stem = posixpath.splitext(path)[0].split("/")
        # payments.validation.CardError names src/payments/validation.py: try the longest
        # prefix of at least two parts that ends the file's path.
        for k in range(len(parts), 1, -1):
            if len(stem) >= k and stem[-k:] == parts[:k]:
                return _MENTION_MODULE
        return 0.0
    said = mention.path
    if said == path or said.endswith("/" + path) or ("/" in said and path.endswith("/" + said)):
        return _MENTION_PATH
    if posixpath.basename(said) == posixpath.basename(path):
        return _MENTION_BASENAME
    return 0.0


def _hunk_with_line(changed: ChangedFile, line: int) -> Hunk | None:
    for hunk in changed.hunks:
        first, last = (
            hunk.source_range if changed.change_type is ChangeType.REMOVED else (hunk.target_range)
        )
        if first <= line <= last:
            return hunk
    return None


def _mention_score(changed: ChangedFile, mentions: Sequence[_Mention]) -> tuple[float, list[str]]:
    best, best_reason = 0.0, ""
    bonus, bonus_reason = 0.0, ""
    for mention in mentions:
        strength = _match_strength(mention, changed.path)
        if strength == 0.0 and changed.old_path is not None:
            strength = _match_strength(mention, changed.old_path)
        if strength == 0.0:
            continue
        value = strength * mention.weight
        if value > best:
            kind = "module" if mention.module else "file"
            outer = " (an outer frame)" if mention.weight < 1.0 else ""
            best = value
            best_reason = f"{mention.where}{outer} names {kind} {mention.path}"
        if mention.line is None:
            continue
        hunk = _hunk_with_line(changed, mention.line)
        if hunk is not None and _LINE_IN_HUNK * mention.weight > bonus:
            first, last = (
                hunk.source_range
                if changed.change_type is ChangeType.REMOVED
                else hunk.target_range
            )
            bonus = _LINE_IN_HUNK * mention.weight
            bonus_reason = (
                f"{mention.where} {changed.path}:{mention.line} is in a changed hunk "
                f"(lines {first}-{last})"
            )
    reasons = [r for r in (best_reason, bonus_reason) if r]
    return best + bonus, reasons


# --------------------------------------------------------------------------- (2) shared text

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SUBWORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_LITERAL_RE = re.compile(r"\"((?:\\.|[^\"\\])*)\"|'((?:\\.|[^'\\])*)'")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}|%[-+ #0]*\d*(?:\.\d+)?[sdifrxXeEgGv]|\$\{[^}]*\}")
# Words too common in code and in log text to say anything about a file.
_STOP_WORDS = """
    about above after again against also and another any are args async await back been
    before being below between both bool break but bytes call called case catch class code
    const continue could data date def default does done each elif else error errors except
    exception false fail failed failure file final finally float from func function given
    have here import info into item items kwargs lambda like list make more most must none
    null number object only other over pass print private protected public raise raised
    request response result return returns self should since some static status str string
    such than that their them then there these they this those through time took true type
    under until upon value values very void warn warning what when where which while will
    with within would yield your http https
"""
_STOP = frozenset(_STOP_WORDS.split())


def _is_compound(token: str) -> bool:
    if "_" in token.strip("_"):
        return True
    return any(c.isupper() for c in token[1:]) and any(c.islower() for c in token)


def _tokens(text: str) -> tuple[set[str], set[str]]:
    """Compound identifiers and plain words of a text, lower-cased."""
    compounds: set[str] = set()
    words: set[str] = set()
    for token in _TOKEN.findall(text):
        if _is_compound(token) and len(token) >= 5:
            compounds.add(token.lower())
        for part in _SUBWORD.findall(token):
            low = part.lower()
            if len(low) >= 4 and low not in _STOP:
                words.add(low)
    return compounds, words


def _literals(text: str) -> set[str]:
    """Fixed pieces (8+ characters, lower-cased) of the string literals on a code line."""
    pieces: set[str] = set()
    for m in _LITERAL_RE.finditer(text):
        body = m.group(1) if m.group(1) is not None else m.group(2)
        for piece in _PLACEHOLDER.split(body):
            piece = piece.strip(" :=,.;-")
            # Several words: one word alone is an identifier, which the tokens already match.
            if len(piece) >= 8 and " " in piece:
                pieces.add(piece.lower())
    return pieces


@dataclass(frozen=True)
class _FileText:
    """Tokens of a file's changed lines and, separately, of its hunks' surroundings."""

    compounds: frozenset[str]
    words: frozenset[str]
    literals: frozenset[str]
    near_compounds: frozenset[str]
    near_words: frozenset[str]
    near_literals: frozenset[str]
    changed_text: str  # added and removed lines, one per line
    near_text: str  # context lines and section headers

    path_words: frozenset[str]  # words of the file's path, for the document frequency only

    @property
    def every_token(self) -> frozenset[str]:
        every = self.compounds | self.words | self.near_compounds | self.near_words
        return every | self.path_words


def _file_text(changed: ChangedFile) -> _FileText:
    changed_lines = [line for h in changed.hunks for line in (*h.removed, *h.added)]
    near_lines = [line for h in changed.hunks for line in (h.section, *h.context) if line]
    c_comp, c_words = _tokens("\n".join(changed_lines))
    n_comp, n_words = _tokens("\n".join(near_lines))
    c_lit = set().union(*(_literals(line) for line in changed_lines)) if changed_lines else set()
    n_lit = set().union(*(_literals(line) for line in near_lines)) if near_lines else set()
    path_compounds, path_words = _tokens(re.sub(r"[^A-Za-z0-9]+", " ", changed.path))
    return _FileText(
        frozenset(c_comp),
        frozenset(c_words),
        frozenset(c_lit),
        frozenset(n_comp - c_comp),
        frozenset(n_words - c_words),
        frozenset(n_lit - c_lit),
        "\n".join(changed_lines),
        "\n".join(near_lines),
        frozenset(path_compounds | path_words),
    )


@dataclass(frozen=True)
class _EvidenceText:
    texts: tuple[str, ...]  # messages and traces, unique, in order
    compounds: frozenset[str]
    words: frozenset[str]
    lowered: str
    term_compounds: frozenset[str]
    term_words: frozenset[str]
    terms_lowered: str


def _evidence_text(evidence: Evidence) -> _EvidenceText:
    texts = tuple(dict.fromkeys(t for t in (*evidence.messages, *evidence.stack_traces) if t))
    compounds, words = _tokens("\n".join(texts))
    term_text = "\n".join(evidence.terms)
    t_comp, t_words = _tokens(term_text)
    return _EvidenceText(
        texts,
        frozenset(compounds),
        frozenset(words),
        "\n".join(texts).lower(),
        frozenset(t_comp - compounds),
        frozenset(t_words - words),
        term_text.lower(),
    )


def _example(ev: _EvidenceText, needle: str) -> str:
    """The first evidence text containing `needle`, shortened, for a reason string."""
    low = needle.lower()
    for text in ev.texts:
        if low in text.lower():
            first = text.strip().splitlines()[0] if text.strip() else text
            return first if len(first) <= 90 else first[:87] + "..."
    return "the alert's terms"


def _text_score(
    ft: _FileText, ev: _EvidenceText, document_frequency: dict[str, int]
) -> tuple[float, list[str]]:
    total = 0.0
    notes: list[tuple[float, str]] = []

    def add(weight: float, token: str, note: str) -> None:
        nonlocal total
        value = weight / max(1, document_frequency.get(token, 1))
        total += value
        notes.append((value, note))

    groups = (
        (ft.compounds, ev.compounds, _IDENTIFIER, "changed lines use"),
        (ft.near_compounds, ev.compounds, _IDENTIFIER * _NEARBY, "the changed hunk's context has"),
        (ft.compounds, ev.term_compounds, _IDENTIFIER * _TERMS, "changed lines use"),
    )
    covered: set[str] = set()
    for mine, theirs, weight, where in groups:
        for token in sorted(mine & theirs):
            covered.update(p.lower() for p in _SUBWORD.findall(token) if len(p) >= 4)
            covered.update(part for part in token.split("_") if len(part) >= 4)
            add(weight, token, f"{where} identifier {token}, also in: {_example(ev, token)}")
    word_groups = (
        (ft.words, ev.words, _WORD, "changed lines use"),
        (ft.near_words, ev.words, _WORD * _NEARBY, "the changed hunk's context has"),
        (ft.words, ev.term_words, _WORD * _TERMS, "changed lines use"),
    )
    for mine, theirs, weight, where in word_groups:
        for word in sorted((mine & theirs) - covered):
            add(weight, word, f"{where} the word {word!r}, also in: {_example(ev, word)}")
    for literals, weight, where in (
        (ft.literals, _LITERAL, "a changed line's string"),
        (ft.near_literals, _LITERAL * _NEARBY, "a string in the changed hunk"),
    ):
        for piece in sorted(literals):
            if piece in ev.lowered:
                total += weight
                notes.append((weight, f'{where} "{piece}" appears in: {_example(ev, piece)}'))
            elif piece in ev.terms_lowered:
                total += weight * _TERMS
                notes.append((weight * _TERMS, f'{where} "{piece}" appears in the alert terms'))
    score = _TEXT_MAX * (1.0 - math.exp(-total / _TEXT_MAX))
    notes.sort(key=lambda n: (-n[0], n[1]))
    return score, [note for _, note in notes[:3]]


# --------------------------------------------------------------------------- (3) kind hints


@dataclass(frozen=True)
class _Hint:
    label: str
    pattern: re.Pattern[str]
    weight: float = 1.0
    on: str = "lines"  # "lines": changed lines (context at half weight); "name": the basename
    config_only: bool = False


def _rx(pattern: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    return re.compile(pattern, flags)


_SQL = _rx(
    r"\b(?:select\b.+\bfrom|insert\s+into|update\b.+\bset|delete\s+from|create\s+(?:unique\s+)?"
    r"index|alter\s+table|create\s+table|drop\s+(?:table|index)|join)\b"
)
_DB_CALL = _rx(
    r"\b(?:execute(?:many)?|fetch_?(?:one|all|many|row|val)|fetchone|fetchall|cursor|query|"
    r"select_related|prefetch_related|objects\.(?:get|filter|all)|session\.(?:query|execute|"
    r"add|commit|get)|find_?(?:one|many|all)|\w+_SQL)\b"
)
_LOOP_WITH_QUERY = _rx(
    r"\b(?:for\s+\w+(?:\s*,\s*\w+)*\s+in\b|\.for_?each\(|\.map\()[^\n]*\n(?:[^\n]*\n){0,2}"
    r"[^\n]*\b(?:fetch\w*|query|execute|select|find\w*|get)\s*\("
)
_HINTS: dict[str, tuple[_Hint, ...]] = {
    # A database dependency slowed or failing: migrations, SQL, ORM and connection handling.
    "db": (
        _Hint(
            "database code",
            _rx(
                r"(?:^|[_.])(?:db|database|models?|repository|repositories|"
                r"dao|orm|schema|queries|sql)(?:[_.]|$)"
            ),
            on="name",
        ),
        _Hint("a migration", _MIGRATION_PATH, on="path"),
        _Hint("SQL", _SQL),
        _Hint("database queries", _DB_CALL),
        _Hint(
            "connection pool handling",
            _rx(
                r"\b(?:pool|getconn|putconn|connection|conn|pool_size|max_connections|"
                r"max_overflow)\b"
            ),
        ),
        _Hint("transactions or indexes", _rx(r"\b(?:transaction|rollback|index|lock)\b"), 0.5),
    ),
    # Slower responses: tuning knobs, timeouts and retries, caches, blocking I/O, compression,
    # queries in loops (N+1) and, more weakly, any database access.
    "latency": (
        _Hint(
            "a numeric setting in configuration",
            _rx(r"^\s*[\w.\-\"']+\s*[:=]\s*\"?\d+(?:\.\d+)?(?:ms|s|m|mb|kb|gb)?\"?\s*,?\s*$"),
            config_only=True,
        ),
        _Hint("timeouts or retries", _rx(r"timeout|deadline|retr(?:y|ies)|backoff")),
        _Hint(
            "pool or concurrency sizes",
            _rx(
                r"pool_?size|max_?conn\w*|\bworkers\b|\bthreads\b|\bconcurrency\b|max_?concurren\w*|"
                r"semaphore|"
                r"batch_?size|max_?inflight|queue_?size|\bmaxsize\b|\bprefetch\b"
            ),
        ),
        _Hint("caching", _rx(r"lru_cache|@cache\b|\bcache[ds]?\b|memoi[sz]|\bttl\b")),
        _Hint(
            "blocking I/O or locking",
            _rx(
                r"\bfsync\b|\bsleep\(|\bflush\(|\bblocking\b|\block\b|\.acquire\(|"
                r"\bsynchronous\b|put_nowait|run_in_executor|\bawait\s+\w+(?:\.\w+)*\.write\b"
            ),
        ),
        _Hint("compression", _rx(r"compress|gzip|zstd|brotli|deflate")),
        _Hint("a query inside a loop", _LOOP_WITH_QUERY, on="hunk"),
        _Hint("database access", _DB_CALL, 0.5),
    ),
    # Memory growth: caches without bounds or expiry, collections that only grow, listeners
    # and references kept alive, bulk loading.
    "memory": (
        _Hint("cache code", _rx(r"cache|memo|buffer|registry|pool"), 0.5, on="name"),
        _Hint(
            "cache bounds or expiry",
            _rx(
                r"lru_cache|\bttl\b|maxsize|max_?size|max_?entries|expir\w*|evict\w*|\bcache[ds]?\b|"
                r"memoi[sz]"
            ),
        ),
        _Hint(
            "a growing collection",
            _rx(
                r"=\s*(?:\[\]|\{\}|list\(\)|dict\(\)|set\(\))|\bdeque\(|defaultdict\(|\.append\(|"
                r"\.extend\(|\.add\(|^\s*_?\w+\[[^\]]+\]\s*=[^=]|history"
            ),
        ),
        _Hint(
            "listeners or references kept alive",
            _rx(r"\bweak\w*|subscribe|listener|add_handler|on_event|register|global\s+\w+"),
        ),
        _Hint(
            "bulk loading",
            _rx(
                r"preload|load_all|\.all\(\)|readlines\(|\.read\(\)|include_\w+|\blimit\b|"
                r"bytearray|buffer"
            ),
        ),
    ),
    # CPU saturation: compression, hashing, serialisation, regular expressions, loops.
    "cpu": (
        _Hint(
            "CPU-heavy work",
            _rx(
                r"compress|gzip|zstd|brotli|bcrypt|scrypt|pbkdf2|hashlib|re\.compile|regex|"
                r"json\.(?:dumps|loads)|serializ\w*|validate=True|\blevel\b"
            ),
        ),
        _Hint("caching", _rx(r"lru_cache|@cache\b|\bcache[ds]?\b|memoi[sz]")),
    ),
    # Business conversion: checkout, pricing, promotions, payment and address rules, flags.
    "business": (
        _Hint(
            "checkout or pricing code",
            _rx(
                r"checkout|cart|pricing|price|promo\w*|coupon|discount|payment|billing|invoice|"
                r"refund|tax|currency|address\w*|postcode|postal|order"
            ),
            on="name",
        ),
        _Hint(
            "checkout or pricing logic",
            _rx(
                r"checkout|\bcart\b|pric(?:e|es|ing)\b|promo\w*|coupon|discount|voucher|\btax\b|"
                r"currency|payment|\bcard\b|refund|postcode|postal|zip_?code|address|country|"
                r"shipping_?(?:fee|cost|rate)|subtotal|\btotal\b|amount"
            ),
        ),
        _Hint(
            "a feature flag",
            _rx(
                r"\bfeatures?\b|feature_?flag|\bflags?\b|toggle|rollout|experiment|variant|"
                r"launchdarkly|unleash"
            ),
        ),
    ),
    # An upstream service failing: HTTP clients, endpoints, retries and timeouts.
    "upstream": (
        _Hint(
            "an HTTP client",
            _rx(r"client|http|gateway|upstream|sdk|rpc|grpc|api_?client"),
            0.5,
            on="name",
        ),
        _Hint(
            "HTTP client settings",
            _rx(
                r"https?://|base_?url|endpoint|\burl\b|httpx|requests\.|aiohttp|urllib|okhttp|"
                r"grpc|circuit_?breaker"
            ),
        ),
        _Hint("timeouts or retries", _rx(r"timeout|deadline|retr(?:y|ies)|backoff")),
    ),
}
_MEMORY_NAME = _rx(r"mem|rss|heap|oom|working_set|resident")
_CPU_NAME = _rx(r"cpu|throttl")
_DB_NAME = _rx(r"db|sql|postgres|mysql|mongo|database|query|redis|dynamo|cassandra")


def _themes(signal: RegressedSignal) -> tuple[str, ...]:
    """Which hint families a regressed signal calls for."""
    name = signal.name
    if signal.kind is SignalKind.LATENCY:
        return ("latency", "db") if _DB_NAME.search(name) else ("latency",)
    if signal.kind is SignalKind.SATURATION:
        if _MEMORY_NAME.search(name):
            return ("memory",)
        if _CPU_NAME.search(name):
            return ("cpu",)
        return ("memory", "cpu")
    if signal.kind is SignalKind.BUSINESS:
        return ("business",)
    if signal.kind is SignalKind.DEPENDENCY:
        return ("db",) if _DB_NAME.search(name) else ("upstream",)
    return ()  # errors and traffic: the error text says more than the signal's kind


def _path_words(path: str) -> set[str]:
    return {w for w in re.split(r"[^A-Za-z]+", path.lower()) if len(w) >= 3}


def _shared_words(change: Change) -> re.Pattern[str] | None:
    """Words in the paths of half the changed files or more: package or service names.

    `checkout` in src/checkout/api.py and config/checkout.yaml says nothing about either file,
    so these words are blanked out (also inside identifiers) before the hints look.
    """
    counts: dict[str, int] = {}
    for changed in change.files:
        for word in _path_words(changed.path):
            counts[word] = counts.get(word, 0) + 1
    needed = max(2, math.ceil(len(change.files) / 2))
    words = sorted(w for w, n in counts.items() if n >= needed)
    if not words:
        return None
    return re.compile(r"(?<![A-Za-z])(?:" + "|".join(words) + r")(?![A-Za-z])", re.IGNORECASE)


def _hint_score(
    changed: ChangedFile,
    ft: _FileText,
    role: _Role,
    signals: Sequence[RegressedSignal],
    shared: re.Pattern[str] | None,
) -> tuple[float, list[str]]:
    wanted: dict[str, list[str]] = {}
    for signal in signals:
        for theme in _themes(signal):
            wanted.setdefault(theme, []).append(signal.name)
    if not wanted:
        return 0.0, []
    changed_text = ft.changed_text if shared is None else shared.sub(" ", ft.changed_text)
    near_text = ft.near_text if shared is None else shared.sub(" ", ft.near_text)
    stem = posixpath.splitext(posixpath.basename(changed.path))[0]
    if shared is not None:
        stem = shared.sub(" ", stem)
    hunk_texts = [changed_text]
    best_total, reasons = 0.0, []
    for theme in sorted(wanted):
        found: dict[str, float] = {}
        for hint in _HINTS[theme]:
            weight = _hint_weight(hint, changed, role, stem, changed_text, near_text, hunk_texts)
            if weight > found.get(hint.label, 0.0):
                found[hint.label] = weight
        raw = sum(found.values())
        if raw <= 0.0:
            continue
        score = _HINT_MAX * (1.0 - math.exp(-raw / _HINT_MAX))
        best_total = max(best_total, score)
        labels = ", ".join(sorted(found, key=lambda k: (-found[k], k)))
        names = ", ".join(sorted(set(wanted[theme])))
        reasons.append((score, f"touches {labels}: fits the regressed {names}"))
    reasons.sort(key=lambda r: (-r[0], r[1]))
    # Several themes of one incident each add a little beyond the best one.
    total = best_total + 0.25 * (sum(s for s, _ in reasons) - best_total)
    return min(total, _HINT_MAX * 1.25), [text for _, text in reasons]


def _hint_weight(
    hint: _Hint,
    changed: ChangedFile,
    role: _Role,
    stem: str,
    changed_text: str,
    near_text: str,
    hunk_texts: Sequence[str],
) -> float:
    if hint.on == "name":
        return hint.weight if hint.pattern.search(stem) else 0.0
    if hint.on == "path":
        return hint.weight if hint.pattern.search(changed.path) else 0.0
    if hint.on == "hunk":
        return hint.weight if any(hint.pattern.search(t + "\n") for t in hunk_texts) else 0.0
    if hint.config_only and role is not _CONFIG:
        return 0.0
    if any(hint.pattern.search(line) for line in changed_text.splitlines()):
        return hint.weight
    if any(hint.pattern.search(line) for line in near_text.splitlines()):
        return hint.weight * _NEARBY
    return 0.0


# --------------------------------------------------------------------------- ranking


def rank_suspects(change: Change, evidence: Evidence) -> list[Suspect]:
    """Every changed file, most likely culprit first; deterministic, ties broken by path."""
    mentions: list[_Mention] = []
    for message in dict.fromkeys(evidence.messages):
        mentions.extend(_mentions_in(message, trace=False))
    for trace in dict.fromkeys(evidence.stack_traces):
        mentions.extend(_mentions_in(trace, trace=True))
    for term in dict.fromkeys(evidence.terms):
        mentions.extend(
            _Mention(m.path, m.line, m.module, _TERMS, "alert text")
            for m in _mentions_in(term, trace=False)
        )
    ev = _evidence_text(evidence)
    shared = _shared_words(change)
    texts = {f.path: _file_text(f) for f in change.files}
    document_frequency: dict[str, int] = {}
    for ft in texts.values():
        for token in ft.every_token:
            document_frequency[token] = document_frequency.get(token, 0) + 1
    scored: list[tuple[float, str, tuple[str, ...]]] = []
    for changed in change.files:
        raw, reasons = _file_score(
            changed, texts[changed.path], ev, mentions, evidence, document_frequency, shared
        )
        scored.append((round(raw, 9), changed.path, reasons))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [
        Suspect(path, round(1.0 - math.exp(-raw / _SCALE), 4), reasons)
        for raw, path, reasons in scored
    ]


def _file_score(
    changed: ChangedFile,
    ft: _FileText,
    ev: _EvidenceText,
    mentions: Sequence[_Mention],
    evidence: Evidence,
    document_frequency: dict[str, int],
    shared: re.Pattern[str] | None,
) -> tuple[float, tuple[str, ...]]:
    role = _role(changed)
    mention, mention_reasons = _mention_score(changed, mentions)
    text, text_reasons = _text_score(ft, ev, document_frequency)
    hints, hint_reasons = _hint_score(changed, ft, role, evidence.signals, shared)
    found = mention + text + hints
    damping = _DAMPED if role.damped else 1.0
    size = _SIZE_MAX * min(1.0, math.log1p(changed.size) / math.log1p(500))
    raw = found * damping + role.prior + size
    reasons = [*mention_reasons, *text_reasons, *hint_reasons]
    if role.damped:
        reasons.append(f"{role.name}: rarely the cause of a production regression")
    elif not reasons:
        reasons.append(f"{role.name}, no evidence points at it")
    return raw, tuple(reasons)


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
