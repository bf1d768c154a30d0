"""`vigil demo`: the README's main command tells the whole story offline."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from agent.cli import app
from agent.server.intake import Intake


def test_the_demo_keeps_the_good_release_and_rolls_the_bad_one_back(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--fast"])
    assert result.exit_code == 0, result.output
    assert "what happened and why" in result.output
    deploys = {r["id"]: r for r in Intake(out / "vigil.db").deploys()}
    assert set(deploys) == {"deploy-good", "deploy-6704"}
    conn = Intake(out / "vigil.db")._conn()
    states = dict(conn.execute("SELECT deploy_id, state FROM watch_sessions").fetchall())
    assert states == {"deploy-good": "completed", "deploy-6704": "rolled_back"}
    investigation = (out / "investigation.md").read_text()
    assert "src/reviews/serializers.py" in investigation
    timeline = (out / "timeline.md").read_text()
    assert timeline.index("deploy-good: watch ended, completed") < timeline.index(
        "deploy-6704: rollback executed by vigil"
    )
