"""A real `vigil serve` process: acknowledged means stored, even across `kill -9`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx

from evals.serveproc import ServeProcess, alert_payload, write_config


def _post_all(
    url: str, payloads: list[dict[str, object]], acked: list[str], stop: threading.Event
) -> None:
    with httpx.Client(timeout=5) as client:
        for p in payloads:
            if stop.is_set():
                return
            try:
                r = client.post(f"{url}/webhooks/alertmanager", json=p)
            except httpx.HTTPError:
                return  # the server died under us: this one was never acknowledged
            if r.status_code == 200:
                alerts = p["alerts"]
                assert isinstance(alerts, list)
                acked.append(str(alerts[0]["fingerprint"]))


def test_kill_9_loses_no_acknowledged_alert_and_a_restart_resumes_the_jobs(
    tmp_path: Path,
) -> None:
    db, config = tmp_path / "vigil.db", write_config(tmp_path)
    server = ServeProcess(db, config).start()
    payloads = [alert_payload(i) for i in range(600)]
    acked: list[str] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=_post_all, args=(server.url, payloads[i::6], acked, stop))
        for i in range(6)
    ]
    try:
        for t in threads:
            t.start()
        while len(acked) < 200:
            time.sleep(0.005)
        server.kill9()  # mid-way: requests in flight are cut off
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        server.stop()
    assert 200 <= len(acked) < 600
    conn = sqlite3.connect(db)
    stored = [r[0] for r in conn.execute("SELECT fingerprint FROM alerts")]
    assert len(stored) == len(set(stored)), "an alert stored twice"
    assert set(acked) <= set(stored), "an acknowledged alert was lost"
    # Every stored alert belongs to a queued job (a storm for one service shares one triage).
    orphans = conn.execute(
        "SELECT count(*) FROM alerts WHERE job_id IS NULL OR job_id NOT IN (SELECT id FROM jobs)"
    ).fetchone()[0]
    assert orphans == 0
    conn.close()

    # Restart: the re-sent alerts change nothing, and the queue drains.
    again = ServeProcess(db, config).start()
    try:
        with httpx.Client(timeout=5) as client:
            for p in payloads[:50]:
                ack = client.post(f"{again.url}/webhooks/alertmanager", json=p).json()
                fp = p["alerts"][0]["fingerprint"]  # type: ignore[index]
                assert (ack["job_id"] is None) == (fp in stored)
            deadline = time.monotonic() + 120
            while client.get(f"{again.url}/readyz").json()["queue_depth"] > 0:
                assert time.monotonic() < deadline, "the queue did not drain after a restart"
                time.sleep(0.2)
            listed = json.loads(
                subprocess.run(
                    ["vigil", "alerts", "list", "--db", str(db), "--json"],
                    capture_output=True,
                    check=True,
                ).stdout
            )
    finally:
        again.stop()
    fingerprints = [a["fingerprint"] for a in listed]
    assert len(fingerprints) == len(set(fingerprints)) >= len(set(acked))
    failed = (
        sqlite3.connect(db)
        .execute("SELECT id, status, error FROM jobs WHERE status != 'done'")
        .fetchall()
    )
    assert all(a["incident_id"] for a in listed), f"every alert ends in an incident: {failed[:3]}"
