"""Learning from votes, by simulation and by the clock; every figure beside its baseline, same run.

1. Simulated readers (../shared/data/arxiv_daily, papers with arXiv categories): each has a
   hidden interest (a category) and starts from a vague keyword profile. For 10 days they get
   a fresh batch of papers, receive the day's 10 best-scored papers and vote on each by the
   hidden interest (+1 in it, -1 not). Printed per day: nDCG@10 of the whole day's ranking against the
   hidden interest, with learning and for the same reader without it, and the votes cast so
   far; then the number of votes after which the gain first reaches +0.10.
   Keyphrases are left out of the paper features here (both arms alike): only embeddings,
   TF-IDF and the phrase match, which keeps the run to the embedding of the papers.
2. Speed: fitting 10,000 readers with 50 votes each (one batched solve) and applying their
   models to 2,000 papers; and ranking 100 subscribers on one day with and without votes, as
   digests (votes let more papers in, so there is more to build) and with every paper scored
   (the same papers either way: the cost of learning alone).

Embeddings are cached in var/bench-cache.db (the first run embeds the papers once).
Run: .venv/bin/python benchmarks/feedback_bench.py [--model minilm|hashing] [--papers N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from digest import learn, rank  # noqa: E402
from digest.embed import CachedEmbedder, embedder_for, normalize  # noqa: E402
from digest.models import Paper, Subscriber  # noqa: E402
from digest.store import SQLiteStore  # noqa: E402

DATA = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "arxiv_daily"
    / "arxiv_cs_papers_with_categories.jsonl"
)
CACHE = Path(__file__).resolve().parents[1] / "var" / "bench-cache.db"
DAYS, PER_DAY, DIGEST = 10, 200, 10
# hidden interest (an arXiv category) and the broad profile the reader starts from: the name of
# a wider field, which also brings in much they do not want
READERS = [
    ("cs.RO", "machine learning"),
    ("cs.CL", "neural networks"),
    ("cs.LG", "artificial intelligence"),
    ("cs.GR", "computer vision"),
    ("cs.IR", "language models"),
    ("eess.IV", "image processing"),
]


def features_of(papers: list[Paper], vectors: np.ndarray) -> rank.PaperFeatures:
    texts = [p.text for p in papers]
    tfidf, matrix = rank._fit_tfidf(texts)  # noqa: SLF001 - the product's own TF-IDF fit
    return rank.PaperFeatures(
        papers=tuple(papers),
        vectors=vectors,
        keyphrases=((),) * len(papers),
        phrase_vectors=np.zeros((0, vectors.shape[1]), dtype=np.float32),
        phrase_owner=np.zeros(0, dtype=int),
        token_lists=tuple(tuple(rank.tokens(t)) for t in texts),
        tfidf=tfidf,
        tfidf_matrix=matrix,
    )


def ndcg_at_10(order: list[int], relevant: set[int]) -> float:
    gains = [1.0 if i in relevant else 0.0 for i in order[:10]]
    dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
    ideal = sum(1 / math.log2(r + 2) for r in range(min(10, len(relevant))))
    return dcg / ideal if ideal else 0.0


def simulate(papers: list[Paper], vectors: np.ndarray, categories: list[set[str]], embedder) -> None:  # noqa: ANN001
    days = [range(d * PER_DAY, (d + 1) * PER_DAY) for d in range(DAYS)]
    learned_ndcg = np.zeros((len(READERS), DAYS))
    plain_ndcg = np.zeros((len(READERS), DAYS))
    votes_by_day = np.zeros((len(READERS), DAYS), dtype=int)
    for r, (hidden, keyword) in enumerate(READERS):
        sub = Subscriber(id=f"r{r}", email="r@example.org", keywords=(keyword,), max_papers=DIGEST)
        ids, labels = [], []
        for d, day in enumerate(days):
            batch = list(day)
            feats = features_of([papers[i] for i in batch], vectors[batch])
            relevant = {j for j, i in enumerate(batch) if hidden in categories[i]}
            votes = None
            if ids:
                votes = learn.Votes(
                    tuple(papers[i].id for i in ids),
                    tuple(papers[i].title for i in ids),
                    np.array(labels, dtype=np.float32),
                    vectors[ids],
                )
            for arm, signals in (("plain", rank.Signals()), ("learned", rank.Signals(votes=votes))):
                every = rank.rank_subscribers([sub], feats, embedder, limit=0, signals={sub.id: signals})[
                    sub.id
                ]
                position = {p.id: j for j, p in enumerate(feats.papers)}
                order = [position[x.paper.id] for x in every]
                order += [j for j in range(len(batch)) if j not in set(order)]  # ineligible: last
                (plain_ndcg if arm == "plain" else learned_ndcg)[r, d] = ndcg_at_10(order, relevant)
            votes_by_day[r, d] = len(ids)
            # the reader gets the day's 10 best-scored papers (a broad profile's digest would
            # often hold fewer: the eligibility floor) and votes on each
            digest = rank.rank_subscribers(
                [sub], feats, embedder, limit=0, signals={sub.id: rank.Signals(votes=votes)}
            )
            for x in digest[sub.id][:DIGEST]:
                i = batch[position[x.paper.id]]
                ids.append(i)
                labels.append(1.0 if hidden in categories[i] else -1.0)
    print(
        f"\n1. simulated readers: {len(READERS)} hidden interests, {DAYS} days of {PER_DAY} papers, "
        f"{DIGEST} papers a day voted on"
    )
    print(f"   {'day':>3} {'votes so far':>12} {'nDCG@10 learning':>17} {'without':>8} {'gain':>7}")
    first_gain = None
    for d in range(DAYS):
        gain = learned_ndcg[:, d].mean() - plain_ndcg[:, d].mean()
        if first_gain is None and gain >= 0.10:
            first_gain = int(votes_by_day[:, d].mean())
        print(
            f"   {d + 1:>3} {votes_by_day[:, d].mean():>12.0f} {learned_ndcg[:, d].mean():>17.3f}"
            f" {plain_ndcg[:, d].mean():>8.3f} {gain:>+7.3f}"
        )
    said = f"after {first_gain} votes" if first_gain is not None else "not within the simulation"
    print(f"   gain of +0.10 nDCG@10 reached {said}; a reader who never votes ranks as 'without'")
    per_reader = ", ".join(
        f"{h} {learned_ndcg[r, 2:].mean() - plain_ndcg[r, 2:].mean():+.3f}"
        for r, (h, _) in enumerate(READERS)
    )
    print(f"   mean gain from day 3 on, per hidden interest: {per_reader}")


def speed(vectors: np.ndarray, papers: list[Paper], embedder) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    d = vectors.shape[1]
    pool = normalize(rng.normal(size=(2000, d)))
    many = [
        learn.Votes(
            tuple(f"p{j}" for j in range(50)),
            ("t",) * 50,
            np.where(rng.random(50) > 0.5, 1.0, -1.0).astype(np.float32),
            pool[rng.choice(2000, 50, replace=False)],
        )
        for _ in range(10_000)
    ]
    started = time.perf_counter()
    weights = learn.fit(many, learn.background(pool))
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    learn.apply(weights[:1000], many[:1000], pool, [f"q{j}" for j in range(2000)])
    apply_s = (time.perf_counter() - started) * 10
    print("\n2. speed")
    print(f"   fit 10,000 readers x 50 votes (one batched solve): {fit_s:.2f} s")
    print(f"   apply to 2,000 papers (timed on 1,000 readers, x10): {apply_s:.2f} s")
    day = papers[: PER_DAY * 2]
    feats = features_of(day, vectors[: len(day)])
    subs = [
        Subscriber(id=f"s{i}", email="s@example.org", keywords=(READERS[i % len(READERS)][1],))
        for i in range(100)
    ]
    voted = {
        s.id: rank.Signals(
            votes=learn.Votes(
                tuple(p.id for p in day[i : i + 20]),
                tuple(p.title for p in day[i : i + 20]),
                np.where(np.arange(20) % 2 == 0, 1.0, -1.0).astype(np.float32),
                vectors[i : i + 20],
            )
        )
        for i, s in enumerate(subs)
    }
    for limit, what in ((None, "their digests"), (0, "every paper scored (limit 0)")):
        timings, picks = {}, {}
        for name, signals in (("without", None), ("with", voted)):
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                ranked = rank.rank_subscribers(subs, feats, embedder, signals=signals, limit=limit)
                best = min(best, time.perf_counter() - started)
            timings[name], picks[name] = best, sum(map(len, ranked.values()))
        ratio = timings["with"] / timings["without"]
        print(
            f"   rank 100 subscribers on {len(day)} papers, {what}: without votes"
            f" {timings['without'] * 1000:.0f} ms ({picks['without']} papers), with 20 votes each"
            f" {timings['with'] * 1000:.0f} ms ({picks['with']} papers; {ratio:.2f}x)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", choices=["minilm", "hashing"])
    parser.add_argument("--papers", type=int, default=DAYS * PER_DAY)
    args = parser.parse_args()
    if not DATA.is_dir() and not DATA.exists():
        print(f"skipped: {DATA} not present")
        return 0
    rows = [json.loads(line) for line in DATA.open(encoding="utf-8") if line.strip()]
    rng = np.random.default_rng(7)
    rows = [rows[i] for i in rng.permutation(len(rows))[: args.papers]]
    papers = [Paper(id=r["arxiv_id"], title=r["title"], abstract=r["abstract"]) for r in rows]
    categories = [set(r.get("categories") or ()) for r in rows]
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with SQLiteStore.open(CACHE) as store:
        embedder = CachedEmbedder(embedder_for(args.model), store)
        print(
            f"feedback ({embedder.model_id}; learn: MAX_SHARE={learn.MAX_SHARE}, HALF_AT={learn.HALF_AT},"
            f" RIDGE={learn.RIDGE}, BACKGROUND={learn.BACKGROUND})"
        )
        started = time.perf_counter()
        vectors = embedder.encode([p.text for p in papers])
        print(
            f"embedded {len(papers)} papers in {time.perf_counter() - started:.1f} s"
            f" ({embedder.computed} computed)"
        )
        simulate(papers, vectors, categories, embedder)
        speed(vectors, papers, embedder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
