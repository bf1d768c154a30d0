"""The report as one self-contained HTML page (`report.html`), charts inlined; every string
from the data escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping

from agent.report.facts import clock
from agent.report.model import HealthReport
from agent.report.text import fact_rows, first_lines, signal_table, verdict_line

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.n{text-align:right}
.t0{color:#1a7f37}.t1{color:#9a6700}.t2{color:#bc4c00}.t3{color:#cf222e;font-weight:bold}
.decision{font-size:1.2em}figure{margin:1em 0}img{max-width:100%}code{white-space:pre-wrap}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_html(report: HealthReport, charts: Mapping[str, bytes] | None = None) -> str:
    """A self-contained page; `charts` (signal -> PNG bytes) are embedded as data URIs."""
    charts = charts or {}
    title = f"Deploy health report: {report.service} {report.deploy_id}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        "<table>",
    ]
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in fact_rows(report)]
    out.append("</table>")
    c = report.conclusion
    tier = report.peak_tier
    out += [
        "<h2>Conclusion</h2>",
        f'<p class="decision t{tier}"><strong>{_e(c.decision.upper())}</strong></p>',
        f"<p>{_e(c.why)}</p>",
        "<h2>Verdict</h2>",
        f'<p class="t{report.verdict.tier}">{_e(verdict_line(report))}</p><ul>',
    ]
    out += [f"<li>{_e(reason)}</li>" for reason in report.verdict.reasons]
    out.append("</ul><h2>Signals before and after the deploy</h2><table><tr>")
    head, rows = signal_table(report)
    out += [f"<th>{_e(h)}</th>" for h in head]
    out.append("</tr>")
    for sig, row in zip(report.signals, rows, strict=True):
        cells = "".join(
            f'<td class="n">{_e(cell)}</td>' if 0 < i < 8 else f"<td>{_e(cell)}</td>"
            for i, cell in enumerate(row)
        )
        out.append(f'<tr class="t{sig.row.tier}">{cells}</tr>')
    out += [
        "</table><p>* critical signal; the p-value is adjusted for the windows tested.</p>",
        "<h2>Anomalies and their resolution</h2><p>The deploy first reached:</p><ul>",
    ]
    out += [f"<li>{_e(line)}</li>" for line in first_lines(report)]
    out.append("</ul><ul>")
    out += [f'<li class="t{sig.history.peak_tier}">{_e(sig.story)}</li>' for sig in report.signals]
    out.append("</ul><h2>Log evidence</h2>")
    if report.logs is not None:
        lg = report.logs
        out.append(
            f"<p>{lg.lines_before} warning/error lines from {_e(clock(lg.before_from))} to the "
            f"deploy, {lg.lines_after} since (to {_e(clock(lg.after_to))}); patterns new: "
            f"{lg.new}, grown: {lg.grew}.</p>"
        )
    if report.logs is not None and report.logs.patterns:
        out.append(
            "<table><tr><th>status</th><th>before</th><th>after</th><th>first seen</th>"
            "<th>pattern</th><th>example</th></tr>"
        )
        for p in report.logs.patterns:
            seen = "-" if p.first_seen_after is None else clock(p.first_seen_after)
            out.append(
                f"<tr><td>{_e(p.status)}</td><td class='n'>{p.before}</td>"
                f"<td class='n'>{p.after}</td><td>{_e(seen)}</td>"
                f"<td><code>{_e(p.template)}</code></td><td><code>{_e(p.example)}</code></td></tr>"
            )
        out.append("</table>")
    if report.logs_note:
        out.append(f"<p>{_e(report.logs_note.capitalize())}.</p>")
    if report.missing:
        out.append("<ul>")
        out += [
            f"<li>{_e(src)} unavailable: {_e(why)}</li>"
            for src, why in sorted(report.missing.items())
        ]
        out.append("</ul>")
    shown = [sig for sig in report.signals if sig.name in charts]
    if shown:
        out.append("<h2>Charts</h2>")
    for sig in shown:
        data = base64.b64encode(charts[sig.name]).decode("ascii")
        out.append(
            f'<figure><img alt="{_e(sig.name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(sig.story)}</figcaption></figure>"
        )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
