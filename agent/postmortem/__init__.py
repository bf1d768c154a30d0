"""A postmortem draft for a stored incident, built from the facts Vigil recorded.

`gather_facts` turns the incident's triage result, audit trail and timeline into facts, each
citing the record it comes from (`audit#7`, `incident:evidence`, `deploy:<id>`). The draft is
those facts rendered as Markdown; with a model client, the model writes the prose from the
same facts instead, and its draft is kept only if every time, number, identifier, file name and
reference in it can be found in the facts. Otherwise the rendered draft is used, saying why.
"""

from __future__ import annotations

from agent.postmortem.check import check_draft
from agent.postmortem.draft import render_draft
from agent.postmortem.facts import gather_facts
from agent.postmortem.model import SECTIONS, Fact, Postmortem, PostmortemFacts
from agent.postmortem.write import deterministic, facts_for, write_postmortem

__all__ = [
    "SECTIONS",
    "Fact",
    "Postmortem",
    "PostmortemFacts",
    "check_draft",
    "deterministic",
    "facts_for",
    "gather_facts",
    "render_draft",
    "write_postmortem",
]
