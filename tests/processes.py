"""Real server processes for the tests: started on 127.0.0.1, up once their readiness URL
answers 200, stopped (terminate, then kill) and waited for at the end, and any process they
left behind found and reaped. Prometheus, Alertmanager and `vigil serve` all start this way."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

from evals.serveproc import free_port

__all__ = [
    "ALERTMANAGER",
    "alertmanager_args",
    "descendants",
    "free_port",
    "running",
    "stop",
]

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


Proc = tuple[int, str]  # a pid and its start time (so a reused pid is never mistaken for it)


def _stat(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat from the state field on, or None when it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields


def descendants(pid: int) -> set[Proc]:
    """Every live descendant of `pid` (from /proc)."""
    procs: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) is not None:
            procs[int(entry.name)] = fields
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, f in procs.items() if int(f[1]) in frontier} - found
        found |= frontier
    return {(p, procs[p][19]) for p in found}  # field 22 of stat: the start time


def alive(proc: Proc) -> bool:
    fields = _stat(proc[0])
    return fields is not None and fields[19] == proc[1]


@contextmanager
def running(
    args: list[str],
    log: Path,
    ready: str,
    *,
    env: dict[str, str] | None = None,
    left_behind: list[int] | None = None,
    grace_s: float = 10.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """A process that is up once `ready` answers 200, terminated at the end. Any process it
    started and left running (by pid, seen while it ran) is killed and added to
    `left_behind`; without that list, leaving one is an error."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    spawned: set[Proc] = set()
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited: {log.read_text()}")
            try:
                if httpx.get(ready, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ready} not ready in 30 s: {log.read_text()}")
            time.sleep(0.05)
        spawned = descendants(proc.pid)
        yield proc
    finally:
        spawned |= descendants(proc.pid)
        stop(proc)
        left = reap(spawned, grace_s)
        if left_behind is None:
            assert not left, f"{args[0]} left processes running: {left}"
        else:
            left_behind.extend(left)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def reap(procs: set[Proc], grace_s: float = 10.0) -> list[int]:
    """Wait up to `grace_s` for `procs` to exit; kill the rest (by pid) and return their pids."""
    deadline = time.monotonic() + grace_s
    while any(alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = sorted(p for p in procs if alive(p))
    for pid, _ in left:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return [pid for pid, _ in left]


def alertmanager_args(config: Path, data: Path, port: int) -> list[str]:
    """A single local Alertmanager (no gossip) on `port`."""
    assert ALERTMANAGER is not None
    return [
        ALERTMANAGER,
        f"--config.file={config}",
        f"--storage.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
