"""Past one machine, measured: many senders on one PostgreSQL ledger, and ranking at scale.

1. Sending. N synthetic subscribers (default 20,000) on PostgreSQL; `digest run --enqueue`
   ranks and queues them, then 1, 2 and 4 `digest worker --until-done` processes send to a
   local SMTP sink (aiosmtpd, in this process). Printed: the run's time, the workers' messages
   per second, and the copies each subscriber received (target: exactly one).
2. A worker killed mid-run. Two workers start; one is killed (SIGKILL) when a third of the mail
   is out; the other finishes; then the run is repeated (`run --enqueue` and one worker).
   Printed: subscribers with exactly one copy, with none, with two or more, and the ledger's
   "unknown" rows (the message in flight when the worker died: the sink may or may not hold it,
   and `digest send --retry-unknown` is the operator's call, as after a killed `digest run`).
3. Ranking at scale: 100,000 subscribers x 5,000 papers (../shared/data/arxiv_daily) ranked in
   one process, in blocks (rank.BLOCK_CELLS): seconds and peak memory (target: under 2 GB).
   Embeddings and keyphrases are cached in var/bench-cache.db (the first run computes them).

The server is Debian's PostgreSQL, started in a temporary folder as the tests do. The sending
sections use the small hashing model: they measure sending, not ranking.
Run: .venv/bin/python benchmarks/scale_bench.py [--subscribers N] [--workers 1 2 4]
     [--rank-subscribers N] [--rank-papers N] [--skip send kill rank]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' PostgreSQL server

from aiosmtpd.controller import Controller  # noqa: E402
from conftest import free_port  # noqa: E402
from pgserver import PostgresServer, fresh_schema  # noqa: E402

DAY = "2026-11-20"
TOPICS = [
    "diffusion models",
    "language models",
    "reinforcement learning",
    "graph neural networks",
    "robotics",
    "speech recognition",
    "image generation",
    "retrieval",
]
DATA = ROOT.parent / "shared" / "data" / "arxiv_daily" / "arxiv_cs_papers_with_categories.jsonl"
CACHE = ROOT / "var" / "bench-cache.db"


class Sink:
    """Counts the messages each recipient received; keeps nothing else."""

    def __init__(self) -> None:
        self.copies: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802 - aiosmtpd's hook
        with self.lock:
            self.copies.update(envelope.rcpt_tos)
        return "250 OK"

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.copies.values())


def write_subscribers(path: Path, n: int) -> list[str]:
    """n subscribers, two topics each, who want a digest even on a day without a match."""
    ids = [f"s{i:06d}" for i in range(n)]
    lines = ["subscribers:"] + [
        f"  - {{id: {sid}, email: {sid}@example.org, keywords: [{TOPICS[i % 8]}, {TOPICS[(i * 3 + 1) % 8]}],"
        " send_empty: true}"
        for i, sid in enumerate(ids)
    ]
    path.write_text("\n".join(lines) + "\n")
    return ids


def digest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args], env=env, capture_output=True, text=True, check=False
    )


def worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "worker", "--until-done"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def ledger(url: str) -> Counter[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        return Counter(
            dict(conn.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall())
        )


class Setup:
    """A fresh schema, a subscribers file and a state folder per measured run."""

    def __init__(self, server: PostgresServer, sink_port: int, n: int, work: Path):
        self.server, self.sink_port, self.n, self.work = server, sink_port, n, work
        self.subscribers = work / "subscribers.yaml"
        self.ids = write_subscribers(self.subscribers, n)

    def env(self) -> dict[str, str]:
        state = self.work / "state"
        shutil.rmtree(state, ignore_errors=True)
        url = fresh_schema(self.server.url)
        self.url = url
        return {
            **os.environ,
            "DIGEST_DB": url,
            "DIGEST_STATE": str(state),
            "DIGEST_SUBSCRIBERS": str(self.subscribers),
            "DIGEST_INBOX": str(ROOT / "samples"),
            "DIGEST_MODEL": "hashing",
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(self.sink_port),
            "DIGEST_SMTP_SECURITY": "none",
            "DIGEST_SECRET": "a-benchmark-secret-of-enough-length",
            "DIGEST_NOW": f"{DAY}T12:00:00Z",
            "DIGEST_LOG_LEVEL": "WARNING",
        }

    def enqueue(self, env: dict[str, str], *, unknowns: bool = False) -> float:
        """`digest run --enqueue`; with `unknowns`, its exit 1 for rows left unknown is expected."""
        started = time.perf_counter()
        done = digest(env, "run", "--enqueue", "--day", DAY)
        if done.returncode not in ((0, 1) if unknowns else (0,)):
            raise SystemExit(f"digest run --enqueue failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return time.perf_counter() - started


def sending(server: PostgresServer, n: int, worker_counts: list[int], work: Path) -> None:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        setup = Setup(server, controller.port, n, work)
        print(f"\n1. sending: {n:,} subscribers, PostgreSQL, a local SMTP sink")
        print(
            f"   {'workers':>7} {'run --enqueue':>14} {'sending':>9} {'messages/s':>11}"
            "   copies per subscriber"
        )
        for count in worker_counts:
            env = setup.env()
            sink.copies.clear()
            queued = setup.enqueue(env)
            started = time.perf_counter()
            procs = [worker(env) for _ in range(count)]
            errors = [p.communicate()[1] for p in procs]
            elapsed = time.perf_counter() - started
            if any(p.returncode for p in procs):
                raise SystemExit(f"a worker failed:\n{errors}")
            copies = Counter(sink.copies[f"{sid}@example.org"] for sid in setup.ids)
            shown = ", ".join(f"{k}: {v:,}" for k, v in sorted(copies.items()))
            print(f"   {count:>7} {queued:>12.1f} s {elapsed:>7.1f} s {n / elapsed:>11.0f}   {shown}")
    finally:
        controller.stop()


def killed(server: PostgresServer, n: int, work: Path) -> None:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        setup = Setup(server, controller.port, n, work)
        env = setup.env()
        setup.enqueue(env)
        victim, survivor = worker(env), worker(env)
        while sink.total < n // 3 and victim.poll() is None:
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        at_kill = sink.total
        survivor.communicate()
        after_first = ledger(setup.url)
        setup.enqueue(env, unknowns=True)  # the run repeated: what is still due is handed out again
        again = worker(env)
        again.communicate()
        states = ledger(setup.url)
        copies = Counter(sink.copies[f"{sid}@example.org"] for sid in setup.ids)
    finally:
        controller.stop()
    print(
        f"\n2. a worker killed mid-run: {n:,} subscribers, 2 workers, one killed (SIGKILL)"
        f" at {at_kill:,} sent"
    )
    print(f"   ledger after the survivor finished: {dict(after_first)}")
    print(f"   ledger after the repeated run: {dict(states)}")
    print(
        f"   copies: exactly one {copies[1]:,}; none {copies[0]:,}; two or more "
        f"{sum(v for k, v in copies.items() if k >= 2):,}; unknown (in flight at the kill) "
        f"{states.get('sending', 0):,}"
    )
    ok = sum(v for k, v in copies.items() if k >= 2) == 0 and copies[0] <= states.get("sending", 0)
    print(f"   {'never twice; every subscriber not left unknown got exactly one' if ok else 'CHECK FAILED'}")


def ranking(subscribers: int, papers: int) -> None:
    """Section 3 in a process of its own, so that its peak memory is its own."""
    if not DATA.exists():
        print(f"\n3. ranking at scale: skipped ({DATA} not present)")
        return
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, __file__, "--_rank", str(subscribers), str(papers)],
        capture_output=True,
        text=True,
        check=False,
    )
    whole = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"the ranking process failed:\n{child.stderr[-3000:]}")
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\n3. ranking at scale: {subscribers:,} subscribers x {figures['papers']:,} papers, one process")
    print(f"   featurize the papers (cached after the first run): {figures['featurize']:.1f} s")
    print(f"   embed {figures['keywords']:,} distinct keywords: {figures['embed']:.1f} s")
    print(
        f"   rank every subscriber ({figures['blocks']} blocks): {figures['rank']:.1f} s;"
        f" {figures['picks']:,} picks"
    )
    print(f"   whole process: {whole:.1f} s; peak memory {peak:,.0f} MB (target < 2,048 MB)")


def _rank_in_process(n_subscribers: int, n_papers: int) -> None:
    import numpy as np

    from digest.models import Paper, Subscriber
    from digest.ranking import rank
    from digest.ranking.embed import CachedEmbedder, embedder_for, text_hash
    from digest.ranking.features import featurize, keyphrase_cache_key
    from digest.store import SQLiteStore

    rows = [json.loads(line) for line in DATA.open(encoding="utf-8") if line.strip()][:n_papers]
    papers = [Paper(id=r["arxiv_id"], title=r["title"], abstract=r["abstract"]) for r in rows]
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with SQLiteStore.open(CACHE) as store:
        embedder = CachedEmbedder(embedder_for("minilm"), store)
        started = time.perf_counter()
        model = keyphrase_cache_key(embedder.model_id)
        cached = store.cached_keyphrases(model, [text_hash(p.text) for p in papers])
        features, fresh = featurize(papers, embedder, cached)
        if fresh:
            store.cache_keyphrases(model, fresh)
        featurize_s = time.perf_counter() - started
        # keywords people would write: the papers' own keyphrases, three per subscriber
        pool = sorted({k for ks in features.keyphrases for k in ks})
        rng = np.random.default_rng(0)
        picks = rng.integers(0, len(pool), size=(n_subscribers, 3))
        subs = [
            Subscriber(id=f"s{i}", email=f"s{i}@example.org", keywords=tuple(pool[j] for j in row))
            for i, row in enumerate(picks)
        ]
        used = sorted({k for s in subs for k in s.keywords})
        started = time.perf_counter()
        embedder.encode(used)  # into the cache: ranking then reads them block by block
        embed_s = time.perf_counter() - started
        started = time.perf_counter()
        ranked = rank.rank_subscribers(subs, features, embedder)
        rank_s = time.perf_counter() - started
        blocks = sum(1 for _ in rank._blocks(subs, {}, len(papers)))
    print(
        json.dumps(
            {
                "papers": len(papers),
                "featurize": featurize_s,
                "keywords": len(used),
                "embed": embed_s,
                "rank": rank_s,
                "blocks": blocks,
                "picks": sum(map(len, ranked.values())),
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rank-subscribers", type=int, default=100_000)
    parser.add_argument("--rank-papers", type=int, default=5_000)
    parser.add_argument("--skip", nargs="*", default=[], choices=["send", "kill", "rank"])
    parser.add_argument("--_rank", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._rank:
        _rank_in_process(*args._rank)
        return 0
    if not {"send", "kill"} <= set(args.skip):
        server = PostgresServer.start()
        if isinstance(server, str):
            print(f"sending skipped: {server}")
        else:
            work = Path(tempfile.mkdtemp(prefix="digest-scale-"))
            try:
                if "send" not in args.skip:
                    sending(server, args.subscribers, args.workers, work)
                if "kill" not in args.skip:
                    killed(server, args.subscribers, work)
            finally:
                server.stop()
                shutil.rmtree(work, ignore_errors=True)
    if "rank" not in args.skip:
        ranking(args.rank_subscribers, args.rank_papers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
