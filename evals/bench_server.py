"""Server benchmark: webhook posts per second, acknowledgement latency and memory of a real
`vigil serve` process on this machine.

    python -m evals.bench_server                  # 20 s at 1000 posts/s offered (open loop)
    python -m evals.bench_server --rate 0         # closed loop: as fast as it answers
    python -m evals.bench_server --seconds 60 --connections 64 --json
    python -m evals.bench_server --kill9-after 10   # kill -9 under load: nothing acked lost

The load generator is a small asyncio HTTP/1.1 client with keep-alive (one process, so it
competes with the server for the same two cores: the figures are a floor). Every request is a
distinct Alertmanager payload. Open loop: the connections take turns so the requests arrive
evenly at the offered rate, and each acknowledgement is timed from its scheduled send (not the
actual one) to the last byte of the answer, so a server that falls behind cannot hide its
queue. Memory: resident (RSS) of the web process and of its worker process, and the two
together as proportional memory (PSS: pages they share, such as Python's and numpy's code,
counted once), idle before the load, at the load's peak, and 2 s after it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from evals.serveproc import ServeProcess, alert_payload, write_config

TARGETS = {
    "posts_per_s": (">=", 1000.0),
    "ack_p99_ms": ("<=", 20.0),
    # the whole server (web and worker processes), not only the process that answers
    "server_pss_load_mb": ("<=", 250.0),
    "server_pss_idle_mb": ("<=", 120.0),
    "lost": ("<=", 0),
    "stored_twice": ("<=", 0),
}
CRASH_TARGETS = ("lost", "stored_twice")  # with --kill9-after the server is gone mid-run


async def _connection(
    port: int,
    bodies: list[tuple[str, bytes]],
    deadline: float,
    latencies: list[tuple[float, float]],
    errors: list[str],
    acked: list[str],
    interval: float | None,
    first_at: float,
) -> None:
    """Closed loop (interval None: the next request when the answer came), or open loop (one
    request every `interval` s on a schedule from `first_at`; latency counts from the scheduled
    moment, so a slow server cannot hide its queue)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    next_at = first_at
    try:
        while time.perf_counter() < deadline and i < len(bodies):
            fingerprint, body = bodies[i]
            i += 1
            head = (
                "POST /webhooks/alertmanager HTTP/1.1\r\nHost: vigil\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            began = time.perf_counter()
            if interval is not None:
                if next_at > began:
                    await asyncio.sleep(next_at - began)
                began = next_at
                next_at += interval
            try:
                writer.write(head + body)
                await writer.drain()
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionResetError("closed")
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError):  # the server is gone (--kill9)
                errors.append("connection lost")
                return
            latencies.append((began, time.perf_counter() - began))
            if b" 200 " in status_line:
                acked.append(fingerprint)
            else:
                errors.append(status_line.decode(errors="replace").strip())
    finally:
        writer.close()


async def _load(
    port: int, seconds: float, connections: int, start_index: int, rate: float | None
) -> dict[str, Any]:
    per = 200_000
    bodies = [
        [
            (f"fp{n:08d}", json.dumps(alert_payload(n)).encode())
            for n in (
                start_index + c * per + i for i in range(int(seconds * 2500 / connections) + 10)
            )
        ]
        for c in range(connections)
    ]
    latencies: list[tuple[float, float]] = []  # (scheduled send, latency)
    errors: list[str] = []
    acked: list[str] = []
    began = time.perf_counter()
    deadline = began + seconds
    # Open loop: the connections take turns, one request every 1/rate s in all (connection c
    # first sends c/rate s after the start), not all of them at once every connections/rate s.
    await asyncio.gather(
        *(
            _connection(
                port,
                bodies[c],
                deadline,
                latencies,
                errors,
                acked,
                None if rate is None else connections / rate,
                began + (0.0 if rate is None else c / rate),
            )
            for c in range(connections)
        )
    )
    took = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "seconds": took,
        "latencies": [(sent - began, lat) for sent, lat in latencies],
        "errors": errors,
        "acked": acked,
    }


def run(
    seconds: float,
    connections: int,
    workers: int,
    rate: float | None,
    kill9_after: float | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "vigil.db"
        server = ServeProcess(db, write_config(folder), workers=workers).start()
        try:
            time.sleep(2.0)
            idle, worker_idle = server.rss_mb(), server.worker_rss_mb()
            pss_idle = server.tree_pss_mb()
            peak, worker_peak, pss_peak = [idle], [worker_idle], [pss_idle]
            stop = threading.Event()

            def sample() -> None:  # in a thread: /proc reads never delay a send
                while not stop.wait(0.25):
                    peak[0] = max(peak[0], server.rss_mb())
                    worker_peak[0] = max(worker_peak[0], server.worker_rss_mb())
                    pss_peak[0] = max(pss_peak[0], server.tree_pss_mb())

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            killer = None
            if kill9_after is not None:  # the crash test, under the full load
                killer = threading.Timer(kill9_after, server.kill9)
                killer.start()
            try:
                result = asyncio.run(_load(server.port, seconds, connections, 0, rate))
            finally:
                stop.set()
                sampler.join()
                if killer is not None:
                    killer.join()
            time.sleep(2.0)  # the queue drains; memory once the load has passed
            after = 0.0 if killer else server.tree_pss_mb()
        finally:
            server.stop()
        import sqlite3

        conn = sqlite3.connect(db)
        fingerprints = [r[0] for r in conn.execute("SELECT fingerprint FROM alerts")]
        conn.close()
    stored = set(fingerprints)
    lat = sorted(latency for _, latency in result["latencies"])
    acked = set(result["acked"])

    def pct(q: float, values: list[float] = lat) -> float:
        if not values:
            return 0.0
        return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 2)

    windows: dict[int, list[float]] = {}
    for sent, latency in result["latencies"]:
        windows.setdefault(int(sent // 10), []).append(latency)

    return {
        "requests": result["requests"],
        "seconds": round(result["seconds"], 2),
        "connections": connections,
        "offered_per_s": rate,
        "posts_per_s": round(result["requests"] / result["seconds"], 1),
        "ack_p50_ms": pct(0.50),
        "ack_p99_ms": pct(0.99),
        "ack_max_ms": round(1000 * lat[-1], 2) if lat else 0.0,
        "ack_mean_ms": round(1000 * statistics.mean(lat), 2) if lat else 0.0,
        # p99 of each 10 s of the run: a store that slows down as it fills shows here
        "ack_p99_per_10s_ms": [pct(0.99, sorted(v)) for _, v in sorted(windows.items())],
        "errors": len(result["errors"]),
        "acknowledged": len(acked),
        "stored": len(fingerprints),
        "lost": len(acked - stored),  # acknowledged, yet not in the store
        "stored_twice": len(fingerprints) - len(stored),
        # committed, but the answer never reached the sender (killed in between): the sender
        # sends it again, and the re-send changes nothing
        "stored_unacknowledged": len(stored - acked),
        "killed_after_s": kill9_after,
        "rss_idle_mb": round(idle, 1),
        "rss_load_mb": round(peak[0], 1),
        "worker_rss_idle_mb": round(worker_idle, 1),
        "worker_rss_load_mb": round(worker_peak[0], 1),
        # both processes together, shared pages counted once (PSS): what the server costs
        "server_pss_idle_mb": round(pss_idle, 1),
        "server_pss_load_mb": round(pss_peak[0], 1),
        "server_pss_after_mb": round(after, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--workers", type=int, default=1, help="server worker threads")
    p.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="offered posts/s, open loop (0: closed loop, as fast as the server answers)",
    )
    p.add_argument(
        "--kill9-after",
        type=float,
        default=None,
        metavar="S",
        help="kill -9 the server S seconds into the load, then count what was acknowledged "
        "but not stored",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    report = run(args.seconds, args.connections, args.workers, args.rate or None, args.kill9_after)
    report["targets"] = {
        k: {
            "target": f"{op} {bound}",
            "met": report[k] >= bound if op == ">=" else report[k] <= bound,
        }
        for k, (op, bound) in TARGETS.items()
        if args.kill9_after is None or k in CRASH_TARGETS
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        for k, v in report.items():
            if k != "targets":
                mark = ""
                if k in report["targets"]:
                    t = report["targets"][k]
                    mark = f"   target {t['target']}: {'met' if t['met'] else 'NOT met'}"
                print(f"{k:>14}: {v}{mark}")
    return 0 if all(t["met"] for t in report["targets"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
