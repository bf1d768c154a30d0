"""The report as Markdown (`report.md`); every string from the data escaped."""

from __future__ import annotations

import html
import re

from agent.report.facts import clock
from agent.report.model import HealthReport
from agent.report.text import fact_rows, first_lines, signal_table, verdict_line

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md(text: str) -> str:
    """Untrusted text as inert Markdown: one line, no markup, no HTML."""
    flat = " ".join(text.split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def render_markdown(report: HealthReport) -> str:
    out = [f"# Deploy health report: {md(report.service)} {md(report.deploy_id)}", ""]
    out += ["| | |", "|---|---|"]
    out += [f"| {name} | {md(value)} |" for name, value in fact_rows(report)]
    out += ["", "## Conclusion", ""]
    out += [f"**{report.conclusion.decision.upper()}**: {md(report.conclusion.why)}", ""]
    out += ["## Verdict", "", md(verdict_line(report)), ""]
    out += [f"- {md(reason)}" for reason in report.verdict.reasons]
    head, rows = signal_table(report)
    out += ["", "## Signals before and after the deploy", ""]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(md(cell) for cell in row) + " |" for row in rows]
    out += ["", "\\* critical signal; the p-value is adjusted for the windows tested.", ""]
    out += ["## Anomalies and their resolution", "", "The deploy first reached:", ""]
    out += [f"- {md(line)}" for line in first_lines(report)]
    out += [""] + [f"- {md(sig.story)}" for sig in report.signals]
    out += ["", "## Log evidence", ""]
    if report.logs is not None:
        lg = report.logs
        out.append(
            md(
                f"{lg.lines_before} warning/error lines from {clock(lg.before_from)} to the "
                f"deploy, {lg.lines_after} since (to {clock(lg.after_to)}); patterns new: "
                f"{lg.new}, grown: {lg.grew}."
            )
        )
        out.append("")
    if report.logs is not None and report.logs.patterns:
        out += ["| status | before | after | first seen | pattern | example |", "|---" * 6 + "|"]
        for p in report.logs.patterns:
            seen = "-" if p.first_seen_after is None else clock(p.first_seen_after)
            cells = [p.status, str(p.before), str(p.after), seen, p.template, p.example]
            out.append("| " + " | ".join(md(c) for c in cells) + " |")
    if report.logs_note:
        out.append(md(report.logs_note.capitalize() + "."))
    for source, why in sorted(report.missing.items()):
        out.append(f"- {md(source)} unavailable: {md(why)}")
    charted = [sig for sig in report.signals if sig.chart]
    if charted:
        out += ["", "## Charts", ""]
        for sig in charted:
            assert sig.chart is not None
            out += [f"![{md(sig.name)}]({sig.chart})", ""]
    return "\n".join(out).rstrip("\n") + "\n"
