"""(2) Shared text: identifiers and literals of the changed lines that also occur in the error
text, rare ones weighing more.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from agent.suspects.change import ChangedFile
from agent.suspects.evidence import Evidence
from agent.suspects.weights import IDENTIFIER, LITERAL, NEARBY, TERMS, TEXT_MAX, WORD

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SUBWORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
LITERAL_RE = re.compile(r"\"((?:\\.|[^\"\\])*)\"|'((?:\\.|[^'\\])*)'")
PLACEHOLDER = re.compile(r"\{[^{}]*\}|%[-+ #0]*\d*(?:\.\d+)?[sdifrxXeEgGv]|\$\{[^}]*\}")
# Words too common in code and in log text to say anything about a file.
STOP_WORDS = """
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
_STOP = frozenset(STOP_WORDS.split())


def _is_compound(token: str) -> bool:
    if "_" in token.strip("_"):
        return True
    return any(c.isupper() for c in token[1:]) and any(c.islower() for c in token)


def _tokens(text: str) -> tuple[set[str], set[str]]:
    """Compound identifiers and plain words of a text, lower-cased."""
    compounds: set[str] = set()
    words: set[str] = set()
    for token in TOKEN.findall(text):
        if _is_compound(token) and len(token) >= 5:
            compounds.add(token.lower())
        for part in SUBWORD.findall(token):
            low = part.lower()
            if len(low) >= 4 and low not in _STOP:
                words.add(low)
    return compounds, words


def _literals(text: str) -> set[str]:
    """Fixed pieces (8+ characters, lower-cased) of the string literals on a code line."""
    pieces: set[str] = set()
    for m in LITERAL_RE.finditer(text):
        body = m.group(1) if m.group(1) is not None else m.group(2)
        for piece in PLACEHOLDER.split(body):
            piece = piece.strip(" :=,.;-")
            # Several words: one word alone is an identifier, which the tokens already match.
            if len(piece) >= 8 and " " in piece:
                pieces.add(piece.lower())
    return pieces


@dataclass(frozen=True)
class FileText:
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


def file_text(changed: ChangedFile) -> FileText:
    changed_lines = [line for h in changed.hunks for line in (*h.removed, *h.added)]
    near_lines = [line for h in changed.hunks for line in (h.section, *h.context) if line]
    c_comp, c_words = _tokens("\n".join(changed_lines))
    n_comp, n_words = _tokens("\n".join(near_lines))
    c_lit = set().union(*(_literals(line) for line in changed_lines)) if changed_lines else set()
    n_lit = set().union(*(_literals(line) for line in near_lines)) if near_lines else set()
    path_compounds, path_words = _tokens(re.sub(r"[^A-Za-z0-9]+", " ", changed.path))
    return FileText(
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
class EvidenceText:
    texts: tuple[str, ...]  # messages and traces, unique, in order
    compounds: frozenset[str]
    words: frozenset[str]
    lowered: str
    term_compounds: frozenset[str]
    term_words: frozenset[str]
    terms_lowered: str


def evidence_text(evidence: Evidence) -> EvidenceText:
    texts = tuple(dict.fromkeys(t for t in (*evidence.messages, *evidence.stack_traces) if t))
    compounds, words = _tokens("\n".join(texts))
    term_text = "\n".join(evidence.terms)
    t_comp, t_words = _tokens(term_text)
    return EvidenceText(
        texts,
        frozenset(compounds),
        frozenset(words),
        "\n".join(texts).lower(),
        frozenset(t_comp - compounds),
        frozenset(t_words - words),
        term_text.lower(),
    )


def _example(ev: EvidenceText, needle: str) -> str:
    """The first evidence text containing `needle`, shortened, for a reason string."""
    low = needle.lower()
    for text in ev.texts:
        if low in text.lower():
            first = text.strip().splitlines()[0] if text.strip() else text
            return first if len(first) <= 90 else first[:87] + "..."
    return "the alert's terms"


def text_score(
    ft: FileText, ev: EvidenceText, document_frequency: dict[str, int]
) -> tuple[float, list[str]]:
    total = 0.0
    notes: list[tuple[float, str]] = []

    def add(weight: float, token: str, note: str) -> None:
        nonlocal total
        value = weight / max(1, document_frequency.get(token, 1))
        total += value
        notes.append((value, note))

    groups = (
        (ft.compounds, ev.compounds, IDENTIFIER, "changed lines use"),
        (ft.near_compounds, ev.compounds, IDENTIFIER * NEARBY, "the changed hunk's context has"),
        (ft.compounds, ev.term_compounds, IDENTIFIER * TERMS, "changed lines use"),
    )
    covered: set[str] = set()
    for mine, theirs, weight, where in groups:
        for token in sorted(mine & theirs):
            covered.update(p.lower() for p in SUBWORD.findall(token) if len(p) >= 4)
            covered.update(part for part in token.split("_") if len(part) >= 4)
            add(weight, token, f"{where} identifier {token}, also in: {_example(ev, token)}")
    word_groups = (
        (ft.words, ev.words, WORD, "changed lines use"),
        (ft.near_words, ev.words, WORD * NEARBY, "the changed hunk's context has"),
        (ft.words, ev.term_words, WORD * TERMS, "changed lines use"),
    )
    for mine, theirs, weight, where in word_groups:
        for word in sorted((mine & theirs) - covered):
            add(weight, word, f"{where} the word {word!r}, also in: {_example(ev, word)}")
    for literals, weight, where in (
        (ft.literals, LITERAL, "a changed line's string"),
        (ft.near_literals, LITERAL * NEARBY, "a string in the changed hunk"),
    ):
        for piece in sorted(literals):
            if piece in ev.lowered:
                total += weight
                notes.append((weight, f'{where} "{piece}" appears in: {_example(ev, piece)}'))
            elif piece in ev.terms_lowered:
                total += weight * TERMS
                notes.append((weight * TERMS, f'{where} "{piece}" appears in the alert terms'))
    score = TEXT_MAX * (1.0 - math.exp(-total / TEXT_MAX))
    notes.sort(key=lambda n: (-n[0], n[1]))
    return score, [note for _, note in notes[:3]]
