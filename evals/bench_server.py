"""Server benchmark: webhook posts per second, acknowledgement latency and memory of a real
`vigil serve` process on this machine.

    python -m evals.bench_server                  # 20 s at 1000 posts/s offered (open loop)
    python -m evals.bench_server --rate 0         # closed loop: as fast as it answers
    python -m evals.bench_server --seconds 60 --connections 64 --json

The load generator is a small asyncio HTTP/1.1 client with keep-alive (one process, so it
competes with the server for the same two cores: the figures are a floor). Every request is a
distinct Alertmanager payload; each acknowledgement is timed from the first byte sent to the
last byte of the answer. Idle memory is measured before the load, load memory at its peak.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from evals.serveproc import ServeProcess, alert_payload, write_config

TARGETS = {
    "posts_per_s": (">=", 1000.0),
    "ack_p99_ms": ("<=", 20.0),
    "rss_load_mb": ("<=", 250.0),
    "rss_idle_mb": ("<=", 120.0),
    "lost": ("<=", 0),
}


async def _connection(
    port: int,
    bodies: list[bytes],
    deadline: float,
    latencies: list[float],
    errors: list[str],
    interval: float | None,
) -> None:
    """Closed loop (interval None: the next request when the answer came), or open loop (one
    request every `interval` s on a schedule; latency counts from the scheduled moment, so a
    slow server cannot hide its queue)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    next_at = time.perf_counter()
    try:
        while time.perf_counter() < deadline and i < len(bodies):
            body = bodies[i]
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
            writer.write(head + body)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            if b" 200 " not in status_line:
                errors.append(status_line.decode(errors="replace").strip())
    finally:
        writer.close()


async def _load(
    port: int, seconds: float, connections: int, start_index: int, rate: float | None
) -> dict[str, Any]:
    per = 200_000
    bodies = [
        [
            json.dumps(alert_payload(start_index + c * per + i)).encode()
            for i in range(int(seconds * 2500 / connections) + 10)
        ]
        for c in range(connections)
    ]
    latencies: list[float] = []
    errors: list[str] = []
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(
        *(
            _connection(
                port,
                bodies[c],
                deadline,
                latencies,
                errors,
                None if rate is None else connections / rate,
            )
            for c in range(connections)
        )
    )
    took = time.perf_counter() - began
    return {"requests": len(latencies), "seconds": took, "latencies": latencies, "errors": errors}


def run(seconds: float, connections: int, workers: int, rate: float | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "vigil.db"
        server = ServeProcess(db, write_config(folder), workers=workers).start()
        try:
            time.sleep(1.0)
            idle = server.rss_mb()
            peak = [idle]

            async def main() -> dict[str, Any]:
                async def sample() -> None:
                    while True:
                        peak[0] = max(peak[0], server.rss_mb())
                        await asyncio.sleep(0.25)

                sampler = asyncio.create_task(sample())
                try:
                    return await _load(server.port, seconds, connections, 0, rate)
                finally:
                    sampler.cancel()

            result = asyncio.run(main())
        finally:
            server.stop()
        import sqlite3

        conn = sqlite3.connect(db)
        stored = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
        conn.close()
    lat = sorted(result["latencies"])
    ok = result["requests"] - len(result["errors"])

    def pct(q: float) -> float:
        return round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else 0.0

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
        "errors": len(result["errors"]),
        "acknowledged": ok,
        "stored": stored,
        "lost": max(0, ok - stored),
        "rss_idle_mb": round(idle, 1),
        "rss_load_mb": round(peak[0], 1),
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
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    report = run(args.seconds, args.connections, args.workers, args.rate or None)
    report["targets"] = {
        k: {
            "target": f"{op} {bound}",
            "met": report[k] >= bound if op == ">=" else report[k] <= bound,
        }
        for k, (op, bound) in TARGETS.items()
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
