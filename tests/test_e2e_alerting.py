"""End to end with real servers: a deploy's metrics in a real Prometheus, the shipped
HighErrorRate rule evaluated there, a real Alertmanager routing the alert (with the shipped
configuration) to a real `vigil serve`, and Vigil storing the alert and triaging an incident
offline against that same Prometheus.

The bundle's metrics are moved in time so that its deploy happened ten minutes ago and its
error step is under way *now* (samples stop a moment before the test starts): Prometheus' rule
evaluation sees a live error ratio, and the judge sees the same series the bundle holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from agent.bundle.model import Bundle
from agent.bundle.reader import read_bundle
from tests.processes import ALERTMANAGER, alertmanager_args, descendants, free_port, running
from tests.promserver import PROMETHEUS, PROMTOOL, backfill, bundle_openmetrics, bundle_queries
from tools.monitoring import monitoring_assets

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"
VIGIL = [sys.executable, "-c", "from agent.cli import main; main()"]  # the `vigil` script
ALERT = "HighErrorRate"
DEPLOY_AGO_S = 600  # the error step starts 175 s after the deploy: the whole 5m window is bad

_missing = [
    name
    for name, found in (
        ("prometheus", PROMETHEUS),
        ("promtool", PROMTOOL),
        ("prometheus-alertmanager", ALERTMANAGER),
    )
    if found is None
]
pytestmark = pytest.mark.skipif(
    bool(_missing),
    reason=f"{', '.join(_missing)} not installed (CI installs the Debian prometheus and "
    "prometheus-alertmanager packages)",
)

T = TypeVar("T")


# --- the data ---------------------------------------------------------------------------------


def shifted_openmetrics(text: str, shift_s: int, until: float) -> str:
    """OpenMetrics sample lines moved by `shift_s` seconds; samples after `until` dropped."""
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            out.append(line)
            continue
        series, value, stamp = line.rsplit(" ", 2)
        moved = int(stamp) + shift_s
        if moved <= until:
            out.append(f"{series} {value} {moved}")
    return "\n".join(out) + "\n"


def serve_args(port: int, db: Path, config: Path) -> list[str]:
    return [
        *VIGIL,
        "serve",
        "--port",
        str(port),
        "--db",
        str(db),
        "--config",
        str(config),
        "--workers",
        "1",
    ]


def vigil_config(bundle: Bundle, prom_url: str) -> str:
    """vigil.yaml: the bundle's service reading its signals back from Prometheus. The watch
    window is one minute: the watch judges the deploy before its error step (and so opens no
    incident of its own), the alert's triage is what finds the regression."""
    m = bundle.manifest
    queries = bundle_queries(bundle)
    first = min(float(s.t[0]) for cs in bundle.signals.values() for s in cs.values())
    service: dict[str, Any] = {
        "environment": m.environment,
        "step": m.step,
        "baseline": f"{int(m.deploy.started_at.timestamp() - first)}s",
        "watch": "1m",
        "signals": [
            {
                "name": s.name,
                "query": queries[s.name],
                "kind": s.kind.value,
                "unit": s.unit.value,
                "bad_direction": s.bad_direction,
                **({"slo": s.slo} if s.slo is not None else {}),
                **({"critical": True} if s.critical else {}),
                **({"events": s.events} if s.events else {}),
            }
            for s in m.signals
        ],
    }
    doc = {
        "version": 1,
        "prometheus": {"url": prom_url, "retries": 0, "timeout_s": 5},
        "services": {m.service: service},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def alerting_rules() -> str:
    """The shipped rule file's recording rules and its HighErrorRate alert, `for: 2s`."""
    shipped = yaml.safe_load(monitoring_assets().rules.read_text())
    (group,) = shipped["groups"]
    rules = [r for r in group["rules"] if "record" in r]
    (alert,) = [r for r in group["rules"] if r.get("alert") == ALERT]
    rules.append({**alert, "for": "2s"})
    return yaml.safe_dump({"groups": [{**group, "rules": rules}]}, sort_keys=False)


def alertmanager_config(vigil_url: str) -> str:
    """The shipped Alertmanager configuration, sending to `vigil_url`, with short waits."""
    cfg = yaml.safe_load(monitoring_assets().alertmanager.read_text())
    (vigil,) = [r for r in cfg["receivers"] if r["name"] == "vigil"]
    vigil["webhook_configs"][0]["url"] = f"{vigil_url}/webhooks/alertmanager"
    for route in [cfg["route"], *cfg["route"]["routes"]]:
        route["group_wait"] = "200ms"
        route["group_interval"] = "1s"
    return yaml.safe_dump(cfg, sort_keys=False)


# --- the processes ----------------------------------------------------------------------------


def wait_for(what: str, probe: Callable[[], T | None], deadline: float, logs: list[Path]) -> T:
    """Poll `probe` until it returns something; on time out, fail with the servers' logs."""
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
            pytest.fail(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.2)


# --- the test ---------------------------------------------------------------------------------


def test_prometheus_alertmanager_and_vigil_turn_a_deploys_errors_into_an_incident(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    bundle = read_bundle(SUITE / "error_step-0001")
    m = bundle.manifest
    now = time.time()
    step = int(m.step_seconds)
    deploy_at = (int(now) - DEPLOY_AGO_S) // step * step  # keep the bundle's grid
    shift = deploy_at - int(m.deploy.started_at.timestamp())
    prom_dir = tmp_path / "prometheus"
    backfill(shifted_openmetrics(bundle_openmetrics(bundle), shift, now - 1), prom_dir / "blocks")
    (prom_dir / "data").mkdir()
    for block in (prom_dir / "blocks").iterdir():
        if block.is_dir():
            block.rename(prom_dir / "data" / block.name)

    vigil_port, am_port, prom_port = free_port(), free_port(), free_port()
    vigil_url, am_url = f"http://127.0.0.1:{vigil_port}", f"http://127.0.0.1:{am_port}"
    prom_url = f"http://127.0.0.1:{prom_port}"
    db = tmp_path / "vigil.db"
    logs = [tmp_path / "vigil.log", tmp_path / "alertmanager.log", prom_dir / "prometheus.log"]
    base = (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "alerting:\n  alertmanagers:\n    - static_configs:\n"
        f"        - targets: ['127.0.0.1:{am_port}']\n"
    )
    (prom_dir / "prometheus.yml").write_text(base)
    (tmp_path / "vigil.yaml").write_text(vigil_config(bundle, prom_url))
    (tmp_path / "alertmanager.yml").write_text(alertmanager_config(vigil_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}  # offline

    with ExitStack() as stack:
        # Not tests.promserver.prometheus: this one needs a port known in advance and a short
        # resend delay (Prometheus finds Alertmanager a few seconds after a start or a reload;
        # an alert that fires before then is otherwise dropped until a minute later).
        stack.enter_context(
            running(
                [
                    str(PROMETHEUS),
                    f"--config.file={prom_dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={prom_dir / 'data'}",
                    "--storage.tsdb.retention.time=100y",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--query.lookback-delta=10s",
                    "--rules.alert.resend-delay=1s",
                    "--web.enable-lifecycle",
                ],
                logs[2],
                f"{prom_url}/-/ready",
            )
        )
        stack.enter_context(
            running(
                serve_args(vigil_port, db, tmp_path / "vigil.yaml"),
                logs[0],
                f"{vigil_url}/readyz",  # the worker process runs, too
                env=env,
                left_behind=[],  # see test_vigil_serve_stops_its_worker_process_on_sigterm
            )
        )
        stack.enter_context(
            running(
                alertmanager_args(tmp_path / "alertmanager.yml", tmp_path / "am-data", am_port),
                logs[1],
                f"{am_url}/-/ready",
            )
        )
        client = stack.enter_context(httpx.Client(base_url=vigil_url, timeout=10))

        # 1. The deploy, as a CI pipeline would announce it.
        started = datetime.fromtimestamp(deploy_at, tz=UTC).isoformat().replace("+00:00", "Z")
        deploy = {
            "service": m.service,
            "deploy_id": m.deploy.id,
            "version": m.deploy.version,
            "previous_version": m.deploy.previous_version,
            "kind": "started",
            "started_at": started,
            "environment": m.environment,
            "strategy": m.deploy.strategy.value,
            "commit": m.deploy.commit,
        }
        ack = client.post("/webhooks/deploy", json=deploy)
        assert ack.status_code == 200, ack.text
        assert ack.json()["status"] == "accepted"
        deadline = time.monotonic() + 60

        def watched() -> dict[str, Any] | None:
            r = client.get(f"/api/watch/{m.deploy.id}")
            done = r.status_code == 200 and r.json()["state"] != "watching"
            return r.json() if done else None

        # The worker opened a watch session and judged the deploy's first minute, read live
        # from Prometheus: healthy (the error step comes later), so no incident yet.
        session = wait_for("the deploy watch", watched, deadline, logs)
        assert (session["state"], session["max_tier"]) == ("completed", 0), session
        assert session["health_checks"][-1]["at"] == deploy_at + 60
        assert session["health_checks"][-1]["status"] == "judged", session["health_checks"]
        assert client.get("/api/incidents").json() == []

        # 2. Prometheus starts evaluating the rule, and sends to Alertmanager.
        rules = prom_dir / "rules.yml"
        rules.write_text(alerting_rules())
        (prom_dir / "prometheus.yml").write_text(base + f"rule_files:\n  - {rules}\n")
        httpx.post(f"{prom_url}/-/reload", timeout=5).raise_for_status()

        def triaged() -> list[dict[str, Any]] | None:
            incidents: list[dict[str, Any]] = client.get("/api/incidents").json()
            alerts = client.get("/api/alerts").json()
            linked = alerts and all(a["incident_id"] for a in alerts)
            return incidents if incidents and linked else None

        incidents = wait_for("an incident from the alert", triaged, deadline, logs)
        time.sleep(1.5)  # a re-sent or a second notification would have arrived by now
        alerts = client.get("/api/alerts").json()
        incidents = client.get("/api/incidents").json()
        listed = json.loads(
            subprocess.run(
                [*VIGIL, "alerts", "list", "--db", str(db), "--json"],
                capture_output=True,
                check=True,
                timeout=30,
                env=env,
            ).stdout
        )
        am_alerts = httpx.get(f"{am_url}/api/v2/alerts", timeout=5).json()
        (incident,) = incidents
        detail = client.get(f"/api/incidents/{incident['id']}").json()
        deploys = client.get("/api/deploys").json()

    # Alertmanager holds the alert Prometheus fired, with the labels the rule gives it.
    (am_alert,) = am_alerts
    labels = {"alertname": ALERT, "service": m.service, "severity": "critical", "priority": "P2"}
    assert am_alert["labels"] == labels and am_alert["status"]["state"] == "active"
    # Vigil stored it once, with those labels, and linked it to the incident.
    (alert,) = alerts
    assert alert["labels"] == labels
    assert (alert["alertname"], alert["service"], alert["severity"]) == (
        ALERT,
        m.service,
        "critical",
    )
    assert alert["status"] == "firing" and alert["fingerprint"] == am_alert["fingerprint"]
    assert alert["annotations"]["summary"] == f"{m.service} error rate is above 5%"
    assert alert["incident_id"] == incident["id"]
    # The incident: triaged offline (no model key), about this deploy, which it blames.
    assert incident["service"] == m.service and incident["alertname"] == ALERT
    assert (incident["mode"], incident["deploy_id"]) == ("offline", m.deploy.id)
    assert incident["tier"] == 3 and incident["deploy_caused"] == 1, incident
    assert detail["result"]["version"] == m.deploy.version
    tool_calls = [e for e in detail["audit"] if e["kind"] == "tool_call"]
    assert tool_calls, detail["audit"]
    assert [e["seq"] for e in detail["audit"]] == list(range(1, len(detail["audit"]) + 1))
    # The deploy as announced.
    (stored,) = deploys
    assert (stored["id"], stored["version"], stored["started_at"]) == (
        m.deploy.id,
        m.deploy.version,
        deploy_at,
    )
    # The CLI reads the same store.
    assert [(a["fingerprint"], a["incident_id"]) for a in listed] == [
        (alert["fingerprint"], incident["id"])
    ]
    assert listed[0]["labels"] == labels
    assert time.monotonic() - began < 60


def test_vigil_serve_stops_its_worker_process_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "vigil.yaml"
    config.write_text(vigil_config(read_bundle(SUITE / "error_step-0001"), "http://127.0.0.1:9"))
    port = free_port()
    left: list[int] = []
    with running(
        serve_args(port, tmp_path / "vigil.db", config),
        tmp_path / "vigil.log",
        f"http://127.0.0.1:{port}/readyz",  # ready: the worker process runs
        left_behind=left,
        grace_s=3.0,
    ) as proc:
        workers = descendants(proc.pid)
    assert workers, "the worker process ran beside the web process"
    assert proc.returncode is not None
    assert left == [], f"still running after `vigil serve` exited on SIGTERM: {left}"
