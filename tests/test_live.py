"""Live investigations over real servers: Prometheus (real, backfilled), a git repository
(real), log files, and the rollout and escalation webhooks (local HTTP servers)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner
from unidiff import PatchSet

from agent.alerts import incident_from_alert, load_alert_file
from agent.backends.base import DeployInfo
from agent.bundle.reader import read_bundle
from agent.cli import app
from agent.config import load_config
from agent.judge.core import judge
from agent.live import live_context
from agent.triage import triage
from tests.fakes.http_recorder import HttpRecorder, Reply
from tests.test_prometheus import SUITE, _config, loaded  # noqa: F401  (a module fixture)
from tools.backends.webhook import verify_signature

NAME = "error_step-0001"


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={
            "GIT_AUTHOR_NAME": "dev",
            "GIT_AUTHOR_EMAIL": "dev@example.com",
            "GIT_COMMITTER_NAME": "dev",
            "GIT_COMMITTER_EMAIL": "dev@example.com",
            "HOME": str(repo),
            "PATH": "/usr/bin:/bin",
        },
    )
    return out.stdout


def repo_from_diff(diff: str, repo: Path, old: str, new: str) -> None:
    """A repository whose `old..new` diff is `diff`: the old side of every hunk is written at
    its line numbers (filler elsewhere), committed and tagged, then the diff is applied."""
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    for patched in PatchSet(diff):
        if patched.is_added_file:
            continue
        lines: list[str] = []
        for hunk in patched:
            while len(lines) < hunk.source_start - 1:
                lines.append(f"# line {len(lines) + 1}\n")
            lines += [line.value for line in hunk if line.is_context or line.is_removed]
        file = repo / patched.source_file.removeprefix("a/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("".join(lines))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"release {old}")
    _git(repo, "tag", old)
    (repo / "change.diff").write_text(diff)
    _git(repo, "apply", "change.diff")
    (repo / "change.diff").unlink()
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"release {new}")
    _git(repo, "tag", new)


@pytest.fixture
def world(
    loaded: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, HttpRecorder, HttpRecorder]:
    """vigil.yaml for `reviews` over the live servers; yields (config, deployer, on-call)."""
    bundle = read_bundle(SUITE / NAME)
    m = bundle.manifest
    repo_from_diff(
        bundle.diff or "", tmp_path / "repo", m.deploy.previous_version, m.deploy.version
    )
    logs = tmp_path / "logs" / "reviews.jsonl"
    logs.parent.mkdir()
    logs.write_text((SUITE / NAME / "logs.jsonl").read_text())
    deployer, oncall = HttpRecorder(), HttpRecorder()
    deployer.__enter__()
    oncall.__enter__()
    deployer.on("POST", "/hooks/vigil", Reply(202, {"status": "accepted"}))
    oncall.on("POST", "/hooks/oncall", Reply(202, {"status": "accepted"}))
    cfg = yaml.safe_load(_config(tmp_path, NAME, loaded).read_text())
    cfg["services"]["reviews"].update(
        logs={"source": "file", "path": str(tmp_path / "logs" / "{service}.jsonl")},
        repository={"git": str(tmp_path / "repo")},
        rollout={
            "kind": "webhook",
            "url": f"{deployer.url}/hooks/vigil",
            "secret_env": "DEPLOY_KEY",
        },
        escalation={
            "kind": "webhook",
            "url": f"{oncall.url}/hooks/oncall",
            "secret_env": "PAGE_KEY",
        },
    )
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("DEPLOY_KEY", "deploy-secret")
    monkeypatch.setenv("PAGE_KEY", "page-secret")
    yield path, deployer, oncall
    deployer.__exit__(None, None, None)
    oncall.__exit__(None, None, None)


def _deploy() -> DeployInfo:
    m = read_bundle(SUITE / NAME).manifest
    return DeployInfo(
        id=m.deploy.id,
        service=m.service,
        environment=m.environment,
        version=m.deploy.version,
        previous_version=m.deploy.previous_version,
        started_at=m.deploy.started_at,
    )


def test_a_live_triage_judges_from_prometheus_finds_the_change_and_rolls_back(
    world: tuple[Path, HttpRecorder, HttpRecorder],
) -> None:
    path, deployer, _ = world
    cfg = load_config(path)
    incident = incident_from_alert(load_alert_file(SUITE / NAME / "alert.json"))
    now = incident.started_at + 30
    ctx = live_context(cfg, incident, [_deploy()], now)
    result = triage(ctx)
    bundle = read_bundle(SUITE / NAME)
    assert result.tier == judge(bundle, now).tier == 3
    assert result.deploy_caused is True
    assert result.missing_sources == []
    assert result.suspect_files[0] == "src/reviews/serializers.py"
    assert ("rollback", "executed") in [(a.name, a.status) for a in result.actions]
    (sent,) = deployer.received("POST", "/hooks/vigil")
    assert verify_signature("deploy-secret", sent.body, sent.headers["x-vigil-signature-256"])
    body = sent.json()
    assert (body["action"], body["deploy_id"], body["previous_version"]) == (
        "rollback",
        "deploy-6704",
        "v5.5.6",
    )


def test_every_source_down_is_named_and_nothing_crashes(
    world: tuple[Path, HttpRecorder, HttpRecorder], tmp_path: Path
) -> None:
    path, deployer, oncall = world
    from tests.processes import free_port

    cfg = yaml.safe_load(path.read_text())
    cfg["prometheus"]["url"] = f"http://127.0.0.1:{free_port()}"
    cfg["prometheus"]["retries"] = 0
    cfg["services"]["reviews"]["logs"]["path"] = str(tmp_path / "nowhere" / "{service}.log")
    cfg["services"]["reviews"]["repository"]["git"] = str(tmp_path / "no-repo")
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(cfg))
    incident = incident_from_alert(load_alert_file(SUITE / NAME / "alert.json"))
    ctx = live_context(load_config(broken), incident, [_deploy()], incident.started_at + 30)
    result = triage(ctx)
    assert result.missing_sources == ["change", "logs", "metrics"]
    assert result.tier is None and result.deploy_caused is None
    assert not deployer.received("POST", "/hooks/vigil")
    assert [a.name for a in result.actions] == ["escalate"]
    (page,) = oncall.received("POST", "/hooks/oncall")
    assert "could not be judged" in page.json()["message"]
    errors = [
        e.data["error"] for e in ctx.audit.events if e.kind == "tool_call" and not e.data["ok"]
    ]
    assert any("unreachable" in (e or "") for e in errors)
    assert any("no-repo" in (e or "") for e in errors)


def test_cli_live_triage_and_bundle_export_round_trip(
    world: tuple[Path, HttpRecorder, HttpRecorder], tmp_path: Path
) -> None:
    path, deployer, _ = world
    m = read_bundle(SUITE / NAME).manifest
    incident = incident_from_alert(load_alert_file(SUITE / NAME / "alert.json"))
    live = ["--config", str(path), "--started", m.deploy.started_at.isoformat()]
    live += ["--version", m.deploy.version, "--previous-version", m.deploy.previous_version]
    at = str(incident.started_at + 30)
    result = CliRunner().invoke(
        app,
        [
            "triage",
            str(SUITE / NAME / "alert.json"),
            *live,
            "--at",
            at,
            "--json",
            "--db",
            str(tmp_path / "v.db"),
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    assert got["tier"] == 3 and got["mode"] == "offline"
    assert [(a["name"], a["status"]) for a in got["actions"]] == [("rollback", "proposed")]
    assert not deployer.received("POST", "/hooks/vigil")  # dry run: nothing sent

    out = tmp_path / "exported"
    until = str(m.watch_until.timestamp())
    alert = str(SUITE / NAME / "alert.json")
    export = ["bundle", "export", "reviews", "--out", str(out), *live, "--until", until]
    exported = CliRunner().invoke(app, [*export, "--alert", alert])
    assert exported.exit_code == 0, exported.output
    assert "a change" in exported.output
    back = read_bundle(out)
    original = read_bundle(SUITE / NAME)
    assert back.diff is not None and "src/reviews/serializers.py" in back.diff
    first = min(float(s.t[0]) for cs in original.signals.values() for s in cs.values())
    window = tuple(line for line in original.logs or () if line.ts.timestamp() >= first)
    assert back.logs == window and len(window) > 200
    assert back.alert == original.alert
    for minutes in (2, 4, 8, 16):
        t = m.deploy.started_at.timestamp() + 60 * minutes
        assert judge(back, t).tier == judge(original, t).tier
