"""The `vigil` command line: outputs, JSON contracts and clean failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agent.bundle import write_bundle
from agent.cli import app
from tests.builders import service

runner = CliRunner()


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    healthy = service(seed=1)
    bad = service(seed=2, error_fn=lambda t, r: np.where(r >= 100, 0.05, 0.002))
    for name, b, tier in (("healthy-0000", healthy, 0), ("error_step-0001", bad, 3)):
        expect = {"tier": tier}
        if tier:
            expect.update(onset=b.manifest.deploy.started_at.timestamp() + 100, deploy_caused=True)
        m = b.manifest.model_copy(update={"name": name})
        m = type(m).model_validate({**m.model_dump(), "expect": expect})
        write_bundle(type(b)(manifest=m, signals=b.signals), tmp_path / "suite" / name)
    return tmp_path / "suite"


def test_replay_json_is_the_spec_format(suite: Path) -> None:
    result = runner.invoke(app, ["replay", str(suite), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [line["bundle"] for line in lines] == ["error_step-0001", "healthy-0000"]
    bad, healthy = lines
    assert list(bad) == ["bundle", "max_tier", "first_at"]
    assert bad["max_tier"] == 3
    assert set(bad["first_at"]) == {"1", "2", "3"}
    assert all(v.endswith("Z") for v in bad["first_at"].values())
    assert healthy == {
        "bundle": "healthy-0000",
        "max_tier": 0,
        "first_at": {"1": None, "2": None, "3": None},
    }


def test_judge_json_and_at(suite: Path) -> None:
    result = runner.invoke(app, ["judge", str(suite / "error_step-0001"), "--at", "+5m", "--json"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.output)
    assert verdict["tier"] == 3
    assert verdict["at"] == "2026-02-08T13:50:00Z"
    early = runner.invoke(
        app, ["judge", str(suite / "error_step-0001"), "--at", "2026-02-08T13:45:30Z", "--json"]
    )
    assert json.loads(early.output)["tier"] == 0


def test_judge_human_output_explains(suite: Path) -> None:
    result = runner.invoke(app, ["judge", str(suite / "error_step-0001")])
    assert result.exit_code == 0
    assert "tier 3" in result.output and "error_ratio" in result.output


def test_eval_scorecard(suite: Path) -> None:
    result = runner.invoke(app, ["eval", str(suite), "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    assert card["bundles"] == 2 and card["healthy"] == 1 and card["faulty"] == 1
    assert card["rollback_recall_pct"] == 100.0
    assert card["false_rollback_pct"] == 0.0


def test_malformed_bundle_exits_2_with_file_line_field(suite: Path) -> None:
    manifest = suite / "healthy-0000" / "bundle.yaml"
    text = manifest.read_text().replace("kind: errors", "kind: errros")
    manifest.write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "errros" in s)
    result = runner.invoke(app, ["judge", str(suite / "healthy-0000")])
    assert result.exit_code == 2
    assert f"bundle.yaml:{line}" in result.output
    assert "signals[1].kind" in result.output
    assert "Traceback" not in result.output


def test_missing_bundle_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["replay", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such bundle" in result.output


def test_unknown_judge_is_a_usage_error(suite: Path) -> None:
    result = runner.invoke(app, ["eval", str(suite), "--judge", "oracle"])
    assert result.exit_code == 2


def test_every_command_has_help_and_a_readme_line() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for command in app.registered_commands:
        name = command.name or ""
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
        assert f"vigil {name}" in readme, name
