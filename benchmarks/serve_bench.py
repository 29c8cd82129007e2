"""`digest serve` under the clicks a morning brings, measured against a real server process.

`digest serve` runs as its own process (uvicorn, as in production) on 127.0.0.1, on SQLite and,
when Debian's PostgreSQL is installed, on a PostgreSQL server started in a temporary folder as
the tests do. For each:

1. Baseline: one one-click unsubscribe POST at a time, nothing else happening (median of 10),
   and `/healthz` alone (median of 10).
2. A burst: 2,000 subscribers; 40 one-click POSTs at once (40 readers), while `/healthz` is asked
   every 50 ms. Printed: the clicks' p50, p95 and slowest, every answer's status, and the slowest
   `/healthz` during the burst; each beside the baseline. Targets: p95 under 2 s, `/healthz`
   under 1 s.
3. A big list: 20,000 subscribers (about 3 MB of subscribers.yaml); the server's start, then one
   click at a time for 10 readers (median and slowest). Target: under 1 s.

Run: .venv/bin/python benchmarks/serve_bench.py [--burst 40] [--skip postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' PostgreSQL server

import httpx  # noqa: E402
from conftest import free_port  # noqa: E402
from pgserver import PostgresServer, fresh_schema  # noqa: E402

from digest.delivery import links  # noqa: E402
from digest.models import Subscriber  # noqa: E402

SECRET = "a-serve-benchmark-secret-of-enough-length"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def subscribers_yaml(path: Path, n: int) -> list[Subscriber]:
    zones = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"]
    readers = [Subscriber(id=f"reader{i}", email=f"reader{i}@example.org") for i in range(n)]
    lines = ["subscribers:\n"]
    for i, r in enumerate(readers):
        lines.append(
            f"  - id: {r.id}\n    email: {r.email}\n    name: Reader {i}\n"
            f"    keywords: [diffusion models, topic {i % 300}]\n    timezone: {zones[i % 4]}\n"
            f'    send_time: "07:{i % 60:02d}"\n'
        )
    path.write_text("".join(lines))
    return readers


class Server:
    """`python -m digest serve` on a free port, until closed."""

    def __init__(self, work: Path, database: str, subscribers: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DIGEST_SUBSCRIBERS": str(subscribers),
            "DIGEST_DB": database,
            "DIGEST_STATE": str(work / "state"),
            "DIGEST_SECRET": SECRET,
            "DIGEST_BASE_URL": self.base,
            "DIGEST_LOG_LEVEL": "WARNING",
        }
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            self.close()
            raise SystemExit(f"digest serve did not start: {self.proc.stderr.read()[-2000:]}")
        self.start_seconds = time.perf_counter() - started

    def url(self, reader: Subscriber) -> str:
        return f"{self.base}/unsubscribe?t={links.make_token(SECRET, 'unsubscribe', reader)}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def timed(call) -> tuple[float, int]:  # noqa: ANN001 - a request to make
    started = time.perf_counter()
    status = call().status_code
    return time.perf_counter() - started, status


def click(server: Server, reader: Subscriber) -> tuple[float, int]:
    """One reader's one-click POST, alone: seconds and status."""
    return timed(lambda: httpx.post(server.url(reader), content=ONE_CLICK, headers=FORM, timeout=120))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def burst(server: Server, readers: list[Subscriber]) -> tuple[list[float], list[int], list[float]]:
    """Every reader's one-click POST at once, /healthz every 50 ms meanwhile."""
    done = asyncio.Event()
    health: list[float] = []
    limits = httpx.Limits(max_connections=len(readers) + 5)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def click(reader: Subscriber) -> tuple[float, int]:
            started = time.perf_counter()
            response = await client.post(server.url(reader), content=ONE_CLICK, headers=FORM)
            return time.perf_counter() - started, response.status_code

        async def watch() -> None:
            async with httpx.AsyncClient(timeout=120) as own:  # its own connection, as a monitor's
                while not done.is_set():
                    started = time.perf_counter()
                    await own.get(f"{server.base}/healthz")
                    health.append(time.perf_counter() - started)
                    await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.2)
        results = await asyncio.gather(*(click(r) for r in readers))
        done.set()
        await watcher
    return [t for t, _ in results], [s for _, s in results], health


def backend(name: str, database: str, work: Path, n_burst: int) -> None:
    print(f"\n{name}")
    small = work / f"{name}-2000.yaml"
    readers = subscribers_yaml(small, 2_000)
    server = Server(work, database, small)
    try:
        one = statistics.median(click(server, r)[0] for r in readers[:10])
        health = f"{server.base}/healthz"
        health_alone = statistics.median(timed(lambda: httpx.get(health))[0] for _ in range(10))
        print(
            f"  baseline, alone: one click {one * 1000:.0f} ms, /healthz {health_alone * 1000:.0f} ms"
            " (medians of 10)"
        )
        times, statuses, health = asyncio.run(burst(server, readers[100 : 100 + n_burst]))
    finally:
        server.close()
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(
        f"  2,000 subscribers, {n_burst} clicks at once: p50 {statistics.median(times) * 1000:.0f} ms,"
        f" p95 {p95(times) * 1000:.0f} ms ({p95(times) / one:.1f}x one alone; target under 2 s),"
        f" slowest {max(times) * 1000:.0f} ms; answers {counts}"
    )
    print(
        f"  /healthz meanwhile: {len(health)} asked, slowest {max(health) * 1000:.0f} ms"
        f" ({max(health) / health_alone:.1f}x alone; target under 1 s)"
    )
    big = work / f"{name}-20000.yaml"
    readers = subscribers_yaml(big, 20_000)
    size = big.stat().st_size / 2**20
    print(f"  20,000 subscribers ({size:.1f} MB of subscribers.yaml):", end=" ", flush=True)
    server = Server(work, database, big)
    try:
        clicks = [click(server, r) for r in readers[-10:]]
    finally:
        server.close()
    assert all(s == 200 for _, s in clicks), clicks
    median = statistics.median(t for t, _ in clicks)
    print(
        f"server up in {server.start_seconds:.1f} s; one click: median {median * 1000:.0f} ms,"
        f" slowest {max(t for t, _ in clicks) * 1000:.0f} ms (target under 1 s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--skip", nargs="*", default=[], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="digest-serve-bench-"))
    try:
        if "sqlite" not in args.skip:
            backend("SQLite", str(work / "digest.db"), work, args.burst)
        if "postgresql" not in args.skip:
            server = PostgresServer.start()
            if isinstance(server, str):
                print(f"\nPostgreSQL skipped: {server}")
            else:
                try:
                    backend("PostgreSQL", fresh_schema(server.url), work, args.burst)
                finally:
                    server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
