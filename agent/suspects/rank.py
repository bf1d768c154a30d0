"""Ranking: every changed file scored by the five kinds of evidence."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from agent.suspects.change import Change, ChangedFile
from agent.suspects.evidence import Evidence, Suspect
from agent.suspects.hints import hint_score, shared_words
from agent.suspects.mentions import Mention, mention_score, mentions_in
from agent.suspects.text import EvidenceText, FileText, evidence_text, file_text, text_score
from agent.suspects.weights import DAMPED, SCALE, SIZE_MAX, TERMS, role_of


def rank_suspects(change: Change, evidence: Evidence) -> list[Suspect]:
    """Every changed file, most likely culprit first; deterministic, ties broken by path."""
    mentions: list[Mention] = []
    for message in dict.fromkeys(evidence.messages):
        mentions.extend(mentions_in(message, trace=False))
    for trace in dict.fromkeys(evidence.stack_traces):
        mentions.extend(mentions_in(trace, trace=True))
    for term in dict.fromkeys(evidence.terms):
        mentions.extend(
            Mention(m.path, m.line, m.module, TERMS, "alert text")
            for m in mentions_in(term, trace=False)
        )
    ev = evidence_text(evidence)
    shared = shared_words(change)
    texts = {f.path: file_text(f) for f in change.files}
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
        Suspect(path, round(1.0 - math.exp(-raw / SCALE), 4), reasons)
        for raw, path, reasons in scored
    ]


def _file_score(
    changed: ChangedFile,
    ft: FileText,
    ev: EvidenceText,
    mentions: Sequence[Mention],
    evidence: Evidence,
    document_frequency: dict[str, int],
    shared: re.Pattern[str] | None,
) -> tuple[float, tuple[str, ...]]:
    role = role_of(changed)
    mention, mention_reasons = mention_score(changed, mentions)
    text, text_reasons = text_score(ft, ev, document_frequency)
    hints, hint_reasons = hint_score(changed, ft, role, evidence.signals, shared)
    found = mention + text + hints
    damping = DAMPED if role.damped else 1.0
    size = SIZE_MAX * min(1.0, math.log1p(changed.size) / math.log1p(500))
    raw = found * damping + role.prior + size
    reasons = [*mention_reasons, *text_reasons, *hint_reasons]
    if role.damped:
        reasons.append(f"{role.name}: rarely the cause of a production regression")
    elif not reasons:
        reasons.append(f"{role.name}, no evidence points at it")
    return raw, tuple(reasons)
