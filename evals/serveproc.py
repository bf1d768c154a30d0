"""A real `vigil serve` process on 127.0.0.1 for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

CONFIG = """\
version: 1
prometheus:
  url: http://127.0.0.1:{prom_port}
  retries: 0
  timeout_s: 2
services:
  checkout:
    signals:
      - name: error_ratio
        kind: errors
        unit: ratio
        bad_direction: up
        slo: 0.01
        critical: true
        query: sum(rate(http_requests_total{{service="checkout",code=~"5.."}}[1m]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, prom_port: int | None = None) -> Path:
    path = folder / "vigil.yaml"
    path.write_text(CONFIG.format(prom_port=prom_port or free_port()))
    return path


class ServeProcess:
    def __init__(
        self, db: Path, config: Path, *, port: int | None = None, workers: int = 1
    ) -> None:
        self.db, self.config = db, config
        self.port = port or free_port()
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> ServeProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("ANTHROPIC_API_KEY", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from agent.cli import main; main()",
                "serve",
                "--port",
                str(self.port),
                "--db",
                str(self.db),
                "--config",
                str(self.config),
                "--workers",
                str(self.workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"vigil serve exited: {err}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("vigil serve did not answer /healthz")

    def rss_mb(self) -> float:
        """Resident memory of the web process."""
        assert self.proc is not None
        return _rss_mb(self.proc.pid)

    def tree_pss_mb(self) -> float:
        """Proportional memory of the web process and its children together: what the server
        costs the machine (pages two processes share are counted once, not twice)."""
        assert self.proc is not None
        return sum(_pss_mb(pid) for pid in [self.proc.pid, *_children(self.proc.pid)])

    def worker_rss_mb(self) -> float:
        """Resident memory of the web process' children (the worker process)."""
        assert self.proc is not None
        return sum(_rss_mb(pid) for pid in _children(self.proc.pid))

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()


def alert_payload(i: int, service: str = "checkout") -> dict[str, object]:
    """A distinct Alertmanager payload (its own fingerprint) for load and crash tests."""
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="HighErrorRate",n="{i}"}}',
        "status": "firing",
        "receiver": "vigil",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "service": service},
        "commonAnnotations": {"summary": f"errors up ({i})"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "HighErrorRate", "service": service, "n": str(i)},
                "annotations": {"summary": f"errors up ({i})"},
                "startsAt": "2026-11-23T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"fp{i:08d}",
            }
        ],
    }


def _rss_mb(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone
        return 0.0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _pss_mb(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found
