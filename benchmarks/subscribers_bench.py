"""Reading a big subscribers.yaml: the whole check (`roster.load_roster`), as `digest run`, the
scheduler and `digest serve` do it, on a file of N synthetic subscribers (default 20,000).

Printed, each beside the baseline run in this process: seconds (median of 3; the baseline's, one
run) and the peak of memory allocated during one load (tracemalloc): as shipped (libyaml's parser,
the cycle collector paused for the read), and as before (PyYAML's pure-Python parser, which still
words a refusal, with the collector running), and libyaml alone with the collector running.
The file is written like a real one: every subscriber with an address, a name, two to four
keywords, a zone and a send time; one in four with exclusions, one in five with max_papers.
Target: under 5 s for 20,000 subscribers.
Run: .venv/bin/python benchmarks/subscribers_bench.py [--subscribers N]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from digest import roster, yamlfile

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC", "America/Los_Angeles", "Asia/Tokyo"]
TOPICS = [
    "diffusion models",
    "language models",
    "reinforcement learning",
    "graph neural networks",
    "robot manipulation",
    "speech recognition",
    "image generation",
    "information retrieval",
]


def write(path: Path, n: int) -> None:
    lines = ["defaults:\n  timezone: UTC\n  send_time: \"07:00\"\nsubscribers:\n"]
    for i in range(n):
        keywords = ", ".join(TOPICS[(i + k) % len(TOPICS)] for k in range(2 + i % 3))
        lines.append(
            f"  - id: reader{i}\n    email: reader{i}@lab{i % 500}.example.org\n    name: Reader Number {i}\n"
            f"    keywords: [{keywords}]\n    timezone: {ZONES[i % len(ZONES)]}\n"
            f'    send_time: "{6 + i % 3:02d}:{i % 60:02d}"\n'
        )
        if i % 4 == 0:
            lines.append("    exclude: [medical imaging]\n")
        if i % 5 == 0:
            lines.append(f"    max_papers: {5 + i % 10}\n")
    path.write_text("".join(lines))


def measure(load: Callable[[], object], rounds: int = 3) -> tuple[float, float]:
    """(median seconds, peak MB allocated during one more load)."""
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        load()
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    load()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return statistics.median(seconds), peak


def as_before(path: Path, *, parser: bool) -> Callable[[], object]:
    """The same load with the collector running, and with `parser` PyYAML's pure-Python parser in
    place of libyaml's: what digest did before."""

    def load() -> object:
        kept = yamlfile._FastLoader, yamlfile.collector_paused, roster.yamlfile  # noqa: SLF001
        yamlfile.collector_paused = contextlib.nullcontext  # the baseline's swaps
        if parser:
            yamlfile._FastLoader = yamlfile._Loader  # noqa: SLF001
        try:
            return roster.load_roster(path)
        finally:
            yamlfile._FastLoader, yamlfile.collector_paused, _ = kept  # noqa: SLF001

    return load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "subscribers.yaml"
        write(path, args.subscribers)
        assert len(roster.load_roster(path).subscribers) == args.subscribers
        size = path.stat().st_size / 2**20
        print(f"subscribers.yaml: {args.subscribers:,} subscribers, {size:.1f} MB")
        fast, fast_peak = measure(lambda: roster.load_roster(path))
        middle, middle_peak = measure(as_before(path, parser=False), rounds=1)
        slow, slow_peak = measure(as_before(path, parser=True), rounds=1)
    rows = [
        ("before: pure-Python parser, collector running", slow, slow_peak, ""),
        ("libyaml's parser, collector running", middle, middle_peak, ""),
        ("shipped: libyaml's parser, collector paused", fast, fast_peak, f"{slow / fast:.1f}x faster"),
    ]
    for what, took, peak, note in rows:
        told = f"  ({note}; target under 5 s)" if note else ""
        print(f"  {what:<46} {took:6.2f} s, peak {peak:4.0f} MB allocated{told}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
