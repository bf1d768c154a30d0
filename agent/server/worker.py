"""The worker process `vigil serve` runs beside the web process: it triages queued alerts and
watches deploys. A separate process, so a webhook storm and a long triage never share a GIL;
the queue in sqlite is what connects them (and what survives either of them crashing)."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import threading
from multiprocessing.process import BaseProcess
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
        self.args = (db, config, threads)
        self.proc: BaseProcess | None = None
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="vigil-supervisor", daemon=True)

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.proc = ctx.Process(target=run_workers, args=self.args, name="vigil-workers")
        self.proc.start()

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            if self.proc is not None and not self.proc.is_alive():
                log.warning("worker process exited (%s); starting it again", self.proc.exitcode)
                self.restarts += 1
                self._spawn()

    def problem(self) -> str | None:
        if self.proc is None or not self.proc.is_alive():
            return "the worker process is not running"
        return None

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=15)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()
