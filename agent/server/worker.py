"""The worker process `vigil serve` runs beside the web process: it triages queued alerts and
watches deploys. A separate process, so a webhook storm and a long triage never share a GIL;
the queue in sqlite is what connects them (and what survives either of them crashing).

It is a plain child process (`python -m agent.server.worker`), not a multiprocessing one: no
resource-tracker process beside it, nothing pickled, and it stops by itself when the web
process is gone (even after a `kill -9`).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("vigil.worker")


def _model_loop() -> tuple[Any, str]:
    from agent.triage import settings_and_loop  # the SDK loads on the first triage

    return settings_and_loop(offline=False)


def run_workers(db: str, config: str, threads: int) -> None:
    """The child process' main: run the workers until SIGTERM."""
    from agent.config import load_config
    from agent.server.backends import ConfigBackends
    from agent.server.intake import Intake
    from agent.server.runtime import Runtime
    from agent.triage import triage  # noqa: F401  (loaded before the freeze below)

    logging.basicConfig(level=logging.WARNING)
    runtime = Runtime(
        Intake(db), ConfigBackends(load_config(Path(config))), loop_factory=_model_loop
    )
    freeze_startup_objects()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())  # Ctrl-C reaches the whole group
    parent = os.getppid()
    runtime.start(workers=threads)
    # Stop on SIGTERM, and when the web process is gone (even after its `kill -9`).
    while not done.wait(1.0):
        if os.getppid() != parent:
            log.warning("the web process is gone; stopping the workers")
            break
    runtime.stop()


def freeze_startup_objects() -> None:
    """Move what start-up created (modules, classes, the app) out of the collector's sight:
    full collections then scan only what the service made since, milliseconds instead of
    tens of them."""
    gc.collect()
    gc.freeze()


class WorkerSupervisor:
    """Starts the worker process and starts it again if it dies (pending jobs wait in sqlite)."""

    def __init__(self, db: str, config: str, threads: int) -> None:
        self.args = ["--db", db, "--config", config, "--threads", str(threads)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="vigil-supervisor", daemon=True)

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.server.worker", *self.args], stdin=subprocess.DEVNULL
        )

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            if self.proc is not None and self.proc.poll() is not None:
                log.warning("worker process exited (%s); starting it again", self.proc.returncode)
                self.restarts += 1
                self._spawn()

    def problem(self) -> str | None:
        if self.proc is None or self.proc.poll() is not None:
            return "the worker process is not running"
        return None

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m agent.server.worker", description=__doc__)
    p.add_argument("--db", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    run_workers(args.db, args.config, args.threads)


if __name__ == "__main__":
    main()
