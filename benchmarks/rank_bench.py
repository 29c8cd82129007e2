"""Ranking speed: ours against KeyBERT used the straightforward way, in one process.

Data: the five real arXiv daily listings (../shared/data/arxiv_daily/raw_daily_listings,
2,215 papers) and synthetic subscribers (2-4 keywords from a pool of research topics).

    baseline   per paper: KeyBERT extract_embeddings + extract_keywords (1-2-grams, English
               stop words, MMR); then for each subscriber a loop over papers computing the
               same score as ours.
    ours cold  digest.ranking on an empty SQLite cache: noun-phrase candidates (ranking.keyphrases)
               from one model pass per paper, each paper's shortlist embedded on its own, one
               score matrix for all subscribers.
    ours warm  the same papers again (as when dumps overlap): everything from the cache.
    real day   the 296 papers of 2025-10-08 and 100 subscribers from nothing, as whole
               processes: `digest ingest` + `digest rank` on a new database against one process
               that reads the listing, loads the model and runs the baseline.

Prints times, the ratios, what pooling the candidates' vectors adds to the model's pass, scoring
time for 10,000 subscribers, peak memory and the whole-process time of `digest rank` on a day
already ranked (with --compare REV, against the code of an earlier git revision on the same
database).
Run: .venv/bin/python benchmarks/rank_bench.py [--papers N] [--compare REV] [--no-baseline]
[--rounds N] [--only-real-day]
(about 30 minutes for all papers on a 2-core machine; the baselines are most of it).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from digest import sources  # noqa: E402
from digest.models import Subscriber  # noqa: E402
from digest.ranking import keyphrases, rank  # noqa: E402
from digest.ranking.embed import CachedEmbedder, MiniLM, text_hash  # noqa: E402
from digest.ranking.features import PaperFeatures, featurize, keyphrase_cache_key, lexical, tokens  # noqa: E402
from digest.ranking.scores import W_DOC, W_LEX, W_PHRASE  # noqa: E402
from digest.store import SQLiteStore  # noqa: E402

LISTINGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv_daily" / "raw_daily_listings"
REAL_DAY = "2025-10-08"  # 296 papers

TOPICS = """diffusion models; image generation; video generation; text-to-image; large language models;
instruction tuning; preference optimization; reinforcement learning from human feedback; reward models;
chain-of-thought reasoning; mathematical reasoning; code generation; program synthesis; retrieval augmented
generation; dense retrieval; information retrieval; recommender systems; graph neural networks;
knowledge graphs; question answering; machine translation; speech recognition; text-to-speech;
multimodal large language models; vision-language models; visual question answering; image captioning;
object detection; semantic segmentation; instance segmentation; 3d reconstruction; neural radiance fields;
gaussian splatting; depth estimation; pose estimation; autonomous driving; motion planning; robot
manipulation; reinforcement learning; offline reinforcement learning; multi-agent systems; federated
learning; differential privacy; adversarial robustness; jailbreak attacks; ai safety; interpretability;
mechanistic interpretability; model editing; continual learning; domain adaptation; few-shot learning;
self-supervised learning; contrastive learning; representation learning; knowledge distillation;
model compression; quantization; pruning; efficient inference; mixture of experts; state space models;
long context; tokenization; data augmentation; synthetic data; benchmark datasets; evaluation metrics;
hallucination; fact checking; medical imaging; clinical nlp; drug discovery; protein structure;
time series forecasting; anomaly detection; causal inference; bayesian optimization; uncertainty
quantification; optimization theory; generalization bounds; scaling laws; agents; tool use; web agents;
embodied ai; world models; video understanding; audio generation; music generation; point clouds;
remote sensing; document understanding; optical character recognition; sentiment analysis;
named entity recognition; summarization; dialogue systems; multilingual models; low-resource languages;
fairness; bias mitigation; watermarking; membership inference; image editing; super-resolution;
image restoration; face recognition; person re-identification; tracking; 3d generation""".replace("\n", " ")
POOL = [t.strip() for t in TOPICS.split(";") if t.strip()]


def synthetic_subscribers(n: int, seed: int = 7) -> list[Subscriber]:
    rnd = random.Random(seed)
    subs = []
    for i in range(n):
        keywords = tuple(rnd.sample(POOL, rnd.randint(2, 4)))
        exclude = tuple(rnd.sample(POOL, 1)) if rnd.random() < 0.2 else ()
        exclude = tuple(e for e in exclude if e not in keywords)
        subs.append(
            Subscriber(
                id=f"s{i:05d}",
                email=f"s{i:05d}@example.org",
                keywords=keywords,
                exclude=exclude,
                max_papers=10,
                trending_weight=0.0,
            )
        )
    return subs


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(papers, subscribers, model) -> float:
    """KeyBERT per paper, then a scoring loop per subscriber (same score as ours)."""
    from keybert import KeyBERT

    kb = KeyBERT(model=model.model)
    start = time.perf_counter()
    doc_vectors, phrases = [], []
    for p in papers:
        doc_emb, word_emb = kb.extract_embeddings(p.text, keyphrase_ngram_range=(1, 2), stop_words="english")
        found = kb.extract_keywords(
            p.text,
            keyphrase_ngram_range=(1, 2),
            stop_words="english",
            top_n=keyphrases.TOP_N,
            use_mmr=True,
            diversity=keyphrases.MMR_DIVERSITY,
            doc_embeddings=doc_emb,
            word_embeddings=word_emb,
        )
        doc_vectors.append(doc_emb[0] / np.linalg.norm(doc_emb[0]))
        phrases.append([w for w, _ in found])
    phrase_vectors = [model.encode(ph) if ph else np.zeros((0, 384), np.float32) for ph in phrases]
    token_lists = [tokens(p.text) for p in papers]
    for sub in subscribers:
        kv = model.encode(list(sub.keywords))
        scores = []
        for i in range(len(papers)):
            doc = doc_vectors[i] @ kv.T
            phr = (phrase_vectors[i] @ kv.T).max(axis=0) if len(phrase_vectors[i]) else np.zeros(len(kv))
            toks = token_lists[i]
            lex = np.array([lexical(k, toks, set(toks)) for k in sub.keywords])
            scores.append(float((W_DOC * doc + W_PHRASE * phr + W_LEX * lex).max()))
        np.argsort(scores)[::-1][: sub.max_papers]
    return time.perf_counter() - start


def _subscribers_file(folder: Path, n: int) -> Path:
    path = folder / "subscribers.yaml"
    with path.open("w") as f:
        f.write("subscribers:\n")
        for s in synthetic_subscribers(n, seed=11):
            f.write(f"  - id: {s.id}\n    email: {s.email}\n    keywords: {list(s.keywords)}\n")
    return path


def _digest_env(db: Path, subscribers: Path, pythonpath: Path | None = None) -> dict[str, str]:
    """The environment of a `digest` process on `db` for the subscribers file, one catch-up day."""
    env = {
        **os.environ,
        "DIGEST_DB": str(db),
        "DIGEST_SUBSCRIBERS": str(subscribers),
        "DIGEST_CATCHUP_DAYS": "1",
    }
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def naive_day(listing: Path, subscribers: int) -> None:
    """What the naive process does for one day: read the listing, load the model, KeyBERT per
    paper, score every subscriber (the `baseline` function)."""
    papers = sources.read_file(listing).papers
    model = MiniLM(progress=False)
    baseline(papers, synthetic_subscribers(subscribers, seed=11), model)


def real_day(listing: Path, subscribers: int = 100, rounds: int = 2) -> tuple[float, float]:
    """Median whole-process seconds for one real day from nothing: ours is `digest ingest` then
    `digest rank` on a new database (cold caches); the naive one is one process running
    `naive_day`. Alternated, `rounds` times each, so drift hits both."""
    ours_s, naive_s = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            env = _digest_env(folder / "day.db", _subscribers_file(folder, subscribers))
            digest = [sys.executable, "-m", "digest"]
            start = time.perf_counter()
            subprocess.run([*digest, "ingest", str(listing)], env=env, check=True, stdout=subprocess.DEVNULL)
            rank_day = [*digest, "rank", "--day", listing.stem, "--json", "--limit", "0"]
            subprocess.run(rank_day, env=env, check=True, stdout=subprocess.DEVNULL)
            ours_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--naive-day", str(listing), "--subscribers", str(subscribers)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        naive_s.append(time.perf_counter() - start)
    return statistics.median(ours_s), statistics.median(naive_s)


def print_real_day(times: tuple[float, float], rounds: int) -> None:
    ours_day, naive_day_s = times
    print(
        f"one real day ({REAL_DAY}, 100 subscribers), whole processes from nothing, median of {rounds} "
        f"alternated runs: ours (digest ingest + digest rank) {ours_day:.1f} s, naive KeyBERT "
        f"{naive_day_s:.1f} s ({naive_day_s / ours_day:.1f}x)"
    )


def ours(papers, subscribers, store: SQLiteStore, model) -> tuple[float, PaperFeatures, int]:
    start = time.perf_counter()
    embedder = CachedEmbedder(model, store)
    key = keyphrase_cache_key(embedder.model_id)
    cached = store.cached_keyphrases(key, [text_hash(p.text) for p in papers])
    features, fresh = featurize(papers, embedder, cached)
    if fresh:
        store.cache_keyphrases(key, fresh)
    rank.rank_subscribers(subscribers, features, embedder)
    return time.perf_counter() - start, features, embedder.computed


def one_pass(papers, model, n: int = 300) -> tuple[float, float]:
    """Seconds for the model's pass over `n` abstracts: plain `encode` against `encode_spans`
    (the same pass also pooling every candidate's contextual vector), median of 3 alternated."""
    texts = [p.text for p in papers[:n]]
    spans = [[(c.first, c.end) for c in keyphrases.candidates(t)] for t in texts]
    plain_s, spans_s = [], []
    for _ in range(3):
        start = time.perf_counter()
        model.encode(texts)
        plain_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.encode_spans(texts, spans)
        spans_s.append(time.perf_counter() - start)
    return statistics.median(plain_s), statistics.median(spans_s)


def whole_process_rank(db: Path, day: str, pythonpath: Path | None = None) -> tuple[float, float]:
    """Seconds for `digest rank --json --limit 0` on a cached day, and for importing the CLI
    (with `pythonpath`: the digest package found there instead of this checkout's)."""
    env = _digest_env(db, _subscribers_file(db.parent, 100), pythonpath)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "digest", "rank", "--day", str(day), "--json", "--limit", "0"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    rank_s = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import digest.cli, digest.app"], check=True)
    return rank_s, time.perf_counter() - start


def compare_rank(db: Path, day: str, rev: str, runs: int = 5) -> tuple[float, float]:
    """Median seconds of `digest rank` on the cached day, this checkout against the code of git
    revision `rev` (same database, same subscribers, runs alternated so drift hits both)."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(
            ["git", "-C", str(root), "worktree", "add", "-q", "--detach", str(old), rev], check=True
        )
        try:
            ours_s, theirs_s = [], []
            for _ in range(runs + 1):  # the first pair warms the page cache, not counted
                ours_s.append(whole_process_rank(db, day)[0])
                theirs_s.append(whole_process_rank(db, day, pythonpath=old)[0])
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(old)], check=True)
    return statistics.median(ours_s[1:]), statistics.median(theirs_s[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=0, help="use only the first N papers (0: all)")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the KeyBERT baseline (most of the run's time)"
    )
    parser.add_argument(
        "--compare",
        metavar="REV",
        help="also time `digest rank` on the cached day with the code of git revision REV",
    )
    parser.add_argument(
        "--only-real-day", action="store_true", help="only the real day, whole processes (a few minutes)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternated runs of the real day (median)")
    parser.add_argument("--naive-day", type=Path, help=argparse.SUPPRESS)  # the naive process of `real_day`
    args = parser.parse_args()
    if args.naive_day:
        naive_day(args.naive_day, args.subscribers)
        return 0
    day = LISTINGS / f"{REAL_DAY}.jsonl"
    if args.only_real_day:
        if not day.exists():
            print(f"skipped: no listing {day}")
            return 0
        print_real_day(real_day(day, rounds=args.rounds), args.rounds)
        return 0
    files = sorted(LISTINGS.glob("*.jsonl"))
    if not files:
        print(f"skipped: no listings under {LISTINGS}")
        return 0
    papers = [p for f in files for p in sources.read_file(f).papers]
    papers = papers[: args.papers] if args.papers else papers
    subscribers = synthetic_subscribers(args.subscribers)

    start = time.perf_counter()
    model = MiniLM(progress=False)
    model.encode(["load the model"])
    load_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        with SQLiteStore.open(db) as store:
            cold_s, features, _ = ours(papers, subscribers, store, model)
            peak_ours = peak_mb()
            warm_s, _, warm_computed = ours(papers, subscribers, store, model)
            many = synthetic_subscribers(10_000, seed=3)
            embedder = CachedEmbedder(model, store)
            embedder.encode(
                sorted({k for s in many for k in (*s.keywords, *s.exclude)})
            )  # as stored profiles
            runs = []
            for _ in range(3):
                start = time.perf_counter()
                rank.rank_subscribers(many, features, embedder)
                runs.append(time.perf_counter() - start)
            score10k_s = statistics.median(runs)
            store.add_papers(papers)
        pass_s = one_pass(papers, model)
        last_day = max(p.day for p in papers)
        process_s, import_s = whole_process_rank(db, last_day)
        compared = compare_rank(db, last_day, args.compare) if args.compare else None
        base_s = baseline(papers, subscribers, model) if not args.no_baseline else 0.0
    day_times = real_day(day, rounds=args.rounds) if day.exists() and not args.no_baseline else None

    print(f"rank benchmark: {len(papers)} papers, {len(subscribers)} subscribers; model load {load_s:.1f} s")
    print(f"{'run':<34} {'seconds':>9} {'vs baseline':>12}")
    if args.no_baseline:
        print(f"{'ours, cold (empty caches)':<34} {cold_s:>9.1f}")
        print(f"{'ours, warm (same papers again)':<34} {warm_s:>9.2f}")
    else:
        print(f"{'baseline (KeyBERT per paper)':<34} {base_s:>9.1f} {'1.0x':>12}")
        print(f"{'ours, cold (empty caches)':<34} {cold_s:>9.1f} {base_s / cold_s:>11.1f}x")
        print(f"{'ours, warm (same papers again)':<34} {warm_s:>9.2f} {base_s / warm_s:>11.0f}x")
    if day_times:
        print_real_day(day_times, args.rounds)
    print(f"texts embedded on the warm run: {warm_computed}")
    plain_s, spans_s = pass_s
    print(
        f"one model pass over {min(300, len(papers))} abstracts, median of 3: encode {plain_s:.1f} s, "
        f"encode_spans (+ candidates' vectors) {spans_s:.1f} s ({spans_s / plain_s:.2f}x)"
    )
    print(f"scoring 10,000 subscribers x {len(papers)} papers: {score10k_s:.2f} s (median of 3 runs)")
    print(f"peak memory (ours, cold): {peak_ours:.0f} MB")
    print(
        f"`digest rank --json --limit 0` on a cached day, whole process: {process_s:.1f} s "
        f"(importing the CLI alone: {import_s:.1f} s)"
    )
    if compared:
        now_s, then_s = compared
        print(
            f"the same, median of 5 alternated runs: this checkout {now_s:.2f} s, "
            f"{args.compare} {then_s:.2f} s (ratio {now_s / then_s:.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
