"""The shipped monitoring assets, checked with the real tools: promtool (rule syntax and the
rules' unit tests), amtool (the Alertmanager configuration and its routing), a real Prometheus
loading the rules, and a real Alertmanager delivering to a local webhook with inhibitions."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import httpx
import pytest
import yaml

from agent.alerts import AlertmanagerPayload
from agent.runbooks import DEFAULT_DIR as RUNBOOKS_DIR
from agent.runbooks import RunbookLibrary
from tests.processes import ALERTMANAGER, alertmanager_args, free_port, running
from tests.promserver import prometheus
from tools.monitoring import AlertRule, RuleFile, load_rule_file, monitoring_assets

ASSETS = monitoring_assets()
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (CI installs the Debian prometheus package)"
)
needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus is not installed (CI installs the Debian prometheus package)",
)
needs_amtool = pytest.mark.skipif(
    AMTOOL is None,
    reason="amtool is not installed (CI installs the Debian prometheus-alertmanager package)",
)
needs_alertmanager = pytest.mark.skipif(
    ALERTMANAGER is None,
    reason="alertmanager is not installed (CI installs the Debian prometheus-alertmanager package)",
)

SEVERITY_PRIORITIES = {"critical": {"P1", "P2"}, "warning": {"P3"}, "info": {"P4"}}
VIGIL_WEBHOOK = "http://127.0.0.1:8080/webhooks/alertmanager"


@pytest.fixture(scope="module")
def rules() -> RuleFile:
    return load_rule_file(ASSETS.rules)


@pytest.fixture(scope="module")
def rule_tests() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ASSETS.rules_tests.read_text())
    return data


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=cwd)


def _duration_seconds(text: str) -> float:
    """A Prometheus duration such as "1h30m" or "15m" in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(int(n) * units[u] for n, u in parts)


# --- promtool --------------------------------------------------------------------------------


@needs_promtool
def test_promtool_accepts_the_rule_file(rules: RuleFile) -> None:
    assert PROMTOOL is not None
    out = _run(PROMTOOL, "check", "rules", str(ASSETS.rules))
    assert out.returncode == 0, out.stdout + out.stderr
    n = len(rules.alerts) + len(rules.records)
    assert f"SUCCESS: {n} rules found" in out.stdout


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    assert PROMTOOL is not None
    out = _run(PROMTOOL, "test", "rules", ASSETS.rules_tests.name, cwd=ASSETS.rules_tests.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@needs_promtool
def test_promtool_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    # The unit tests are not vacuous: halve HighErrorRate's threshold and they fail on it.
    text = ASSETS.rules.read_text()
    ratio = "service:http_request_error_ratio:rate5m"
    broken = text.replace(f"{ratio} > 0.05", f"{ratio} > 0.025")
    assert broken != text
    (tmp_path / ASSETS.rules.name).write_text(broken)
    shutil.copy(ASSETS.rules_tests, tmp_path / ASSETS.rules_tests.name)
    assert PROMTOOL is not None
    out = _run(PROMTOOL, "test", "rules", ASSETS.rules_tests.name, cwd=tmp_path)
    assert out.returncode != 0
    assert "alertname: HighErrorRate" in out.stdout + out.stderr


def _series_identities(group: dict[str, Any]) -> set[str]:
    """The services, deployments, containers and jobs a test group's input series are about."""
    found: set[str] = set()
    for s in group.get("input_series", []):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', s["series"]))
        found.update(v for k, v in labels.items() if k in {"service", "deployment", "container"})
        if "job_name" in labels:
            found.add(labels["job_name"])
    return found


def test_unit_tests_cover_every_alert(rules: RuleFile, rule_tests: dict[str, Any]) -> None:
    """Every alert: fires (with service/severity/priority), is still quiet one step earlier
    in the same scenario (its `for:`), and the scenario also holds series it must not fire on."""
    interval = _duration_seconds(rule_tests["evaluation_interval"])
    for rule in rules.alerts:
        firing_seen = False
        for group in rule_tests["tests"]:
            cases = [c for c in group.get("alert_rule_test", []) if c["alertname"] == rule.alert]
            firing = [c for c in cases if c["exp_alerts"]]
            if not firing:
                continue
            firing_seen = True
            first = min(_duration_seconds(c["eval_time"]) for c in firing)
            quiet = {_duration_seconds(c["eval_time"]) for c in cases if not c["exp_alerts"]}
            assert first - interval in quiet, f"{rule.alert}: no pending check before {first}s"
            fired: set[str] = set()
            for case in firing:
                for exp in case["exp_alerts"]:
                    labels = exp["exp_labels"]
                    assert {"service", "severity", "priority"} <= labels.keys(), rule.alert
                    assert labels["severity"] == rule.labels["severity"]
                    fired.update(labels[k] for k in ("service", "job_name") if k in labels)
            assert _series_identities(group) - fired, f"{rule.alert}: no healthy series in test"
        assert firing_seen, f"{rule.alert} has no unit test where it fires"


# --- rule conventions ------------------------------------------------------------------------


def test_every_alert_has_the_labels_and_annotations_vigil_reads(rules: RuleFile) -> None:
    names = [r.alert for r in rules.alerts]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert set(names) >= {
        "DeploymentFailed",
        "HealthChecksFailingAfterDeploy",
        "ErrorRateSpikeAfterDeploy",
        "LatencyDegradationAfterDeploy",
        "SlowMigration",
        "KubePodCrashLooping",
        "PodCrashLoopAfterDeploy",
        "HighErrorRate",
        "HighLatency",
        "MemoryGrowthAfterDeploy",
        "ContainerMemoryNearLimit",
    }
    for rule in rules.alerts:
        assert rule.for_ is not None and _duration_seconds(rule.for_) > 0, rule.alert
        severity = rule.labels.get("severity")
        assert severity in SEVERITY_PRIORITIES, rule.alert
        assert rule.labels.get("priority") in SEVERITY_PRIORITIES[severity], rule.alert
        # `service` (and `team`) come from the series; the summary names the service.
        assert "service" not in rule.labels, rule.alert
        assert {"summary", "description", "runbook_url"} <= rule.annotations.keys(), rule.alert
        assert "{{ $labels.service }}" in rule.annotations["summary"], rule.alert


def _runbook_name(rule: AlertRule) -> str:
    path = urlparse(rule.annotations["runbook_url"]).path
    return Path(path).name.removesuffix(".md")


def test_runbook_urls_name_the_runbook_for_the_alert(rules: RuleFile) -> None:
    library = RunbookLibrary.load(RUNBOOKS_DIR)
    for rule in rules.alerts:
        name = _runbook_name(rule)
        assert (RUNBOOKS_DIR / f"{name}.md").is_file(), f"{rule.alert}: no runbook {name}"
        # When a runbook lists this alert, the URL points at that runbook.
        listed_in = [r.name for r in library.runbooks.values() if rule.alert in r.alerts]
        if listed_in:
            assert name in listed_in, f"{rule.alert}: runbook_url {name}, listed in {listed_in}"


# --- Alertmanager configuration --------------------------------------------------------------


@pytest.fixture(scope="module")
def am_config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ASSETS.alertmanager.read_text())
    return data


def test_alertmanager_sends_to_vigils_webhook(am_config: dict[str, Any]) -> None:
    assert am_config["route"]["group_by"] == ["alertname", "service"]
    (vigil,) = [r for r in am_config["receivers"] if r["name"] == "vigil"]
    (hook,) = vigil["webhook_configs"]
    assert hook["url"] == VIGIL_WEBHOOK
    assert hook["send_resolved"] is True
    assert hook["max_alerts"] > 0
    (route,) = [r for r in am_config["route"]["routes"] if r["receiver"] == "vigil"]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        assert _duration_seconds(route[key]) > 0
    assert _duration_seconds(route["group_wait"]) < _duration_seconds(route["group_interval"])
    assert _duration_seconds(route["group_interval"]) < _duration_seconds(route["repeat_interval"])
    sources = {tuple(r["source_matchers"]) for r in am_config["inhibit_rules"]}
    assert ('alertname="DeploymentFailed"',) in sources


@needs_amtool
def test_amtool_accepts_the_configuration() -> None:
    assert AMTOOL is not None
    out = _run(AMTOOL, "check-config", str(ASSETS.alertmanager))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout
    assert "2 receivers" in out.stdout and "3 inhibit rules" in out.stdout


@needs_amtool
def test_the_commented_bearer_token_block_is_valid_once_enabled(tmp_path: Path) -> None:
    text = ASSETS.alertmanager.read_text()
    keys = "http_config|  authorization|    type|    credentials_file"
    enabled = re.sub(rf"(?m)^(\s+)# ((?:{keys}):)", r"\1\2", text)
    assert "\n        http_config:\n" in enabled and "credentials_file:" in enabled
    cfg = yaml.safe_load(enabled)
    (vigil,) = [r for r in cfg["receivers"] if r["name"] == "vigil"]
    auth = vigil["webhook_configs"][0]["http_config"]["authorization"]
    assert auth["type"] == "Bearer" and auth["credentials_file"].startswith("/")
    (tmp_path / "alertmanager.yml").write_text(enabled)
    assert AMTOOL is not None
    out = _run(AMTOOL, "check-config", str(tmp_path / "alertmanager.yml"))
    assert out.returncode == 0, out.stdout + out.stderr


@needs_amtool
def test_every_alert_routes_to_vigil_and_nothing_else_does(rules: RuleFile) -> None:
    assert AMTOOL is not None
    cfg = f"--config.file={ASSETS.alertmanager}"
    for rule in rules.alerts:
        labels = [f"alertname={rule.alert}", "service=checkout", *_static_labels(rule)]
        out = _run(AMTOOL, "config", "routes", "test", cfg, *labels)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["vigil"], f"{rule.alert}: {out.stdout!r}"
    out = _run(AMTOOL, "config", "routes", "test", cfg, "alertname=Watchdog", "service=checkout")
    assert out.stdout.split() == ["default"]


def _static_labels(rule: AlertRule) -> list[str]:
    return [f"{k}={v}" for k, v in sorted(rule.labels.items())]


# --- a real Prometheus -----------------------------------------------------------------------


@needs_prometheus
def test_prometheus_loads_every_rule_and_evaluates_it_cleanly(
    tmp_path: Path, rules: RuleFile
) -> None:
    config = f"global:\n  evaluation_interval: 1s\nrule_files:\n  - {ASSETS.rules}\n"
    with prometheus(tmp_path, config=config) as url:
        deadline = time.monotonic() + 8
        while True:
            body = httpx.get(f"{url}/api/v1/rules", timeout=2).json()
            loaded = [r for g in body["data"]["groups"] for r in g["rules"]]
            if loaded and all(r["health"] == "ok" for r in loaded):
                break
            bad = [(r["name"], r["health"], r.get("lastError")) for r in loaded]
            assert time.monotonic() < deadline, f"rules not healthy: {bad}"
            time.sleep(0.2)
    assert body["status"] == "success"
    alerting = {r["name"]: r for r in loaded if r["type"] == "alerting"}
    assert set(alerting) == {r.alert for r in rules.alerts}
    for rule in rules.alerts:
        got = alerting[rule.alert]
        assert not got.get("lastError"), rule.alert
        assert got["duration"] == _duration_seconds(rule.for_ or "0s")
        assert got["labels"] == rule.labels
        assert got["state"] == "inactive"  # no data: nothing fires
    recorded = {r["name"] for r in loaded if r["type"] == "recording"}
    assert recorded == {r.record for r in rules.records}


# --- a real Alertmanager delivering to a local webhook ---------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": json.loads(self.rfile.read(length)),
            }
        )
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    class Handler(_Recorder):
        requests: ClassVar[list[dict[str, Any]]] = []  # this test's own list

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", Handler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _alert(name: str, service: str, severity: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "service": service, "severity": severity},
        "annotations": {"summary": f"{name} on {service}"},
    }


@needs_alertmanager
def test_alertmanager_delivers_to_vigil_and_inhibits_after_a_failed_deploy(
    tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    hook_url, received = webhook
    cfg = yaml.safe_load(ASSETS.alertmanager.read_text())
    # The shipped file, pointed at the local webhook, with waits short enough for a test.
    (vigil,) = [r for r in cfg["receivers"] if r["name"] == "vigil"]
    vigil["webhook_configs"][0]["url"] = f"{hook_url}{urlparse(VIGIL_WEBHOOK).path}"
    for route in [cfg["route"], *cfg["route"]["routes"]]:
        route["group_wait"] = "200ms"
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(cfg))
    port = free_port()
    am = f"http://127.0.0.1:{port}"
    config, log = tmp_path / "alertmanager.yml", tmp_path / "alertmanager.log"
    with running(alertmanager_args(config, tmp_path / "data", port), log, f"{am}/-/ready"):
        posted = [
            _alert("DeploymentFailed", "checkout", "critical"),
            _alert("LatencyDegradationAfterDeploy", "checkout", "warning"),  # inhibited
            _alert("LatencyDegradationAfterDeploy", "search", "warning"),
            _alert("Watchdog", "checkout", "none"),  # not a deploy-health alert
        ]
        httpx.post(f"{am}/api/v2/alerts", json=posted, timeout=2).raise_for_status()
        deadline = time.monotonic() + 6
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # anything else flushed with these would have arrived by now
        states = {
            (a["labels"]["alertname"], a["labels"]["service"]): a["status"]
            for a in httpx.get(f"{am}/api/v2/alerts", timeout=2).json()
        }
    assert states[("LatencyDegradationAfterDeploy", "checkout")]["state"] == "suppressed"
    assert states[("LatencyDegradationAfterDeploy", "checkout")]["inhibitedBy"]
    assert states[("LatencyDegradationAfterDeploy", "search")]["state"] == "active"
    assert len(received) == 2, [r["body"]["groupLabels"] for r in received]
    groups = set()
    for req in received:
        assert req["method"] == "POST" and req["path"] == "/webhooks/alertmanager"
        assert req["headers"]["Content-Type"] == "application/json"
        payload = AlertmanagerPayload.model_validate(req["body"])
        assert payload.receiver == "vigil" and payload.status == "firing"
        assert set(payload.groupLabels) == {"alertname", "service"}
        (alert,) = payload.alerts
        assert alert.labels == {**payload.groupLabels, "severity": alert.labels["severity"]}
        groups.add((payload.groupLabels["alertname"], payload.groupLabels["service"]))
    assert groups == {("DeploymentFailed", "checkout"), ("LatencyDegradationAfterDeploy", "search")}
