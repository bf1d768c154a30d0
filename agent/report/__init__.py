"""The post-deploy health report: what the judge saw in every signal, and what to do now.

`build_report` gathers the facts from a deploy bundle (recorded, or captured live): the verdict
at one moment, a before/after row per signal from the verdict's findings, when each signal first
reached each tier and whether it went back to healthy (the judge stepped at every look up to
that moment, with no look-ahead), the error log patterns that are new or grew since the deploy
started, and the conclusion (keep, pause or roll back, and why). `write_report` renders those
facts as `report.md`, `report.json`, a self-contained `report.html` and one PNG chart per signal.

Every string from the data (service, versions, signal names, log lines, reasons) is escaped
for the format it goes into; log lines are redacted first.
"""

from __future__ import annotations

from agent.report.facts import build_report, check_deploy_id
from agent.report.files import default_out, write_report
from agent.report.markdown import render_markdown
from agent.report.model import HealthReport, ReportFiles, SignalReport
from agent.report.page import render_html

__all__ = [
    "HealthReport",
    "ReportFiles",
    "SignalReport",
    "build_report",
    "check_deploy_id",
    "default_out",
    "render_html",
    "render_markdown",
    "write_report",
]
