"""Writing the report: `report.md`, `report.json`, `report.html` and a PNG chart per signal."""

from __future__ import annotations

import re
from pathlib import Path

from agent.bundle.model import Bundle
from agent.errors import VigilError
from agent.report.markdown import render_markdown
from agent.report.model import HealthReport, ReportFiles
from agent.report.page import render_html

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def safe_name(text: str) -> str:
    """`text` as one path component: no separators, no leading dot."""
    return _UNSAFE.sub("_", text).lstrip(".") or "_"


def default_out(deploy_id: str) -> Path:
    return Path(f"vigil-report-{safe_name(deploy_id)}")


def write_report(bundle: Bundle, report: HealthReport, out: Path) -> ReportFiles:
    """Charts, then `report.md`, `report.json` and `report.html`, in `out`."""
    from agent.report.charts import chart_png

    try:
        (out / "charts").mkdir(parents=True, exist_ok=True)
        pngs: dict[str, bytes] = {}
        chart_paths: dict[str, Path] = {}
        used: set[str] = set()
        signals = []
        for sig in report.signals:
            name = safe_name(sig.name)
            while name in used:
                name += "_"
            used.add(name)
            relative = f"charts/{name}.png"
            pngs[sig.name] = chart_png(bundle, bundle.manifest.signal(sig.name), sig, report)
            chart_paths[sig.name] = out / relative
            chart_paths[sig.name].write_bytes(pngs[sig.name])
            signals.append(sig.model_copy(update={"chart": relative}))
        report = report.model_copy(update={"signals": tuple(signals)})
        files = ReportFiles(
            out / "report.md", out / "report.json", out / "report.html", chart_paths
        )
        files.markdown.write_text(render_markdown(report), encoding="utf-8")
        files.json.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        files.html.write_text(render_html(report, pngs), encoding="utf-8")
    except OSError as exc:
        raise VigilError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return files
