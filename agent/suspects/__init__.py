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

from agent.suspects.change import (
    Change,
    ChangedFile,
    ChangeType,
    DiffLine,
    Hunk,
    diff_summary,
    parse_change,
)
from agent.suspects.evidence import Evidence, RegressedSignal, Suspect
from agent.suspects.rank import rank_suspects

__all__ = [
    "Change",
    "ChangeType",
    "ChangedFile",
    "DiffLine",
    "Evidence",
    "Hunk",
    "RegressedSignal",
    "Suspect",
    "diff_summary",
    "parse_change",
    "rank_suspects",
]
