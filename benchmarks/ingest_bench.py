"""Ingest throughput on the five real arXiv daily listings (../shared/data/arxiv_daily).

Prints papers per second for parsing alone and for parse + store into a fresh SQLite file,
best of three runs each. Run: .venv/bin/python benchmarks/ingest_bench.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from digest import sources
from digest.ingest.files import ingest
from digest.store import SQLiteStore

LISTINGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv_daily" / "raw_daily_listings"


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    files = sorted(LISTINGS.glob("*.jsonl"))
    if not files:
        print(f"skipped: no listings under {LISTINGS}")
        return 0
    total = sum(len(sources.read_file(f).papers) for f in files)

    def parse_only() -> None:
        for f in files:
            sources.read_file(f)

    def parse_and_store() -> None:
        with tempfile.TemporaryDirectory() as tmp, SQLiteStore.open(Path(tmp) / "bench.db") as store:
            outcomes = ingest(store, files, today=date.today())
            assert not any(o.error for o in outcomes)

    parse_s = best_of(3, parse_only)
    store_s = best_of(3, parse_and_store)
    print(f"ingest benchmark: {len(files)} arXiv daily listings, {total} papers (best of 3)")
    print(f"{'stage':<20} {'seconds':>8} {'papers/s':>10}")
    print(f"{'parse':<20} {parse_s:>8.3f} {total / parse_s:>10.0f}")
    print(f"{'parse + store':<20} {store_s:>8.3f} {total / store_s:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
