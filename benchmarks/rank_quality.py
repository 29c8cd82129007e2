"""Ranking and keyphrase quality, every figure computed in the same run as its baselines.

1. keyword_labeled_papers (tuning allowed): a query is an author keyword used by 15-150
   papers; a paper is relevant when one of its author keywords equals the query. nDCG@10 and
   P@10 for TF-IDF (1-2-grams, sublinear tf), plain cosine of query and paper embeddings, and
   ours (digest.rank.score_matrix: embeddings + KeyBERT keyphrases + lexical match).
2. keyphrase_benchmarks/inspec.jsonl (tuning allowed): F1@5 and F1@10 of extracted
   keyphrases against the gold keys (lower-cased, plural-stripped exact match), for our
   setting (MMR diversity 0.3) and KeyBERT's MMR 0.5 and plain cosine.
3. reviewer_gold_standard (HELD OUT: report only, never tune on it): each researcher's profile
   is distilled from their own papers; pairwise ordering accuracy of their 1-5 expertise
   ratings of other papers, for ours, TF-IDF and plain cosine to the centroid of their papers.

Embeddings and keyphrases are cached in var/bench-cache.db (delete it for a cold run).
Run: .venv/bin/python benchmarks/rank_quality.py [--model minilm|hashing] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402

from digest import rank  # noqa: E402
from digest.embed import CachedEmbedder, embedder_for, normalize, text_hash  # noqa: E402
from digest.models import Paper  # noqa: E402
from digest.store import SQLiteStore  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CACHE = Path(__file__).resolve().parents[1] / "var" / "bench-cache.db"


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def features_for(
    texts: list[str], embedder: CachedEmbedder, store: SQLiteStore, top_n: int = 5
) -> rank.PaperFeatures:
    papers = [
        Paper(id=str(i), title=t.split(". ", 1)[0], abstract=t.split(". ", 1)[-1])
        for i, t in enumerate(texts)
    ]
    cached = store.cached_keyphrases(embedder.model_id, [text_hash(p.text) for p in papers])
    features, fresh = rank.featurize(papers, embedder, cached)
    if fresh:
        store.cache_keyphrases(embedder.model_id, fresh)
    return features


def tfidf_scores(queries: list[str], texts: list[str]) -> np.ndarray:
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english").fit(texts)
    return (vectorizer.transform(queries) @ vectorizer.transform(texts).T).toarray()


def ndcg_p_at_10(scores: np.ndarray, relevant: list[set[int]]) -> tuple[float, float]:
    ndcgs, precisions = [], []
    for row, rel in zip(scores, relevant, strict=True):
        top = np.argsort(-row, kind="stable")[:10]
        gains = [1.0 if i in rel else 0.0 for i in top]
        dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
        ideal = sum(1 / math.log2(r + 2) for r in range(min(10, len(rel))))
        ndcgs.append(dcg / ideal)
        precisions.append(sum(gains) / 10)
    return float(np.mean(ndcgs)), float(np.mean(precisions))


def keyword_labeled(embedder: CachedEmbedder, store: SQLiteStore, limit: int) -> None:
    path = DATA / "keyword_labeled_papers" / "openreview_papers_with_author_keywords.jsonl"
    rows = [r for r in read_jsonl(path) if r.get("keywords")][: limit or None]
    keys = [{k.strip().lower() for k in r["keywords"] if k.strip()} for r in rows]
    counts = Counter(k for ks in keys for k in ks)
    queries = sorted(q for q, n in counts.items() if 15 <= n <= 150)
    if not queries:
        print("\n1. keyword_labeled_papers: no author keyword is used by 15-150 of these papers; use more")
        return
    relevant = [{i for i, ks in enumerate(keys) if q in ks} for q in queries]
    texts = [f"{r['title']}. {r['abstract']}" for r in rows]
    features = features_for(texts, embedder, store)
    query_vectors = embedder.encode(queries)
    results = {
        "TF-IDF (1-2-grams, sublinear)": tfidf_scores(queries, texts),
        "cosine(query, paper)": query_vectors @ features.vectors.T,
        "ours (digest.rank)": rank.score_matrix(features, queries, query_vectors).relevance,
    }
    print(
        f"\n1. keyword_labeled_papers: {len(rows)} papers, {len(queries)} queries"
        " (author keywords used by 15-150 papers)"
    )
    print(f"   {'method':<32} {'nDCG@10':>8} {'P@10':>7}")
    for name, scores in results.items():
        ndcg, p10 = ndcg_p_at_10(scores, relevant)
        print(f"   {name:<32} {ndcg:>8.3f} {p10:>7.3f}")


def _norm_phrase(phrase: str) -> str:
    return " ".join(rank.tokens(phrase))


def inspec(embedder: CachedEmbedder, limit: int) -> None:
    rows = read_jsonl(DATA / "keyphrase_benchmarks" / "inspec.jsonl")[: limit or None]
    texts = [r["text"] for r in rows]
    gold = [{_norm_phrase(k) for k in r["keyphrases"]} for r in rows]
    vectors = embedder.encode(texts)
    print(
        f"\n2. Inspec: {len(rows)} abstracts, F1 of extracted keyphrases"
        " (exact match after lower-casing and plural stripping)"
    )
    print(f"   {'setting':<34} {'F1@5':>6} {'F1@10':>6}")
    for name, diversity in [
        ("ours: MMR diversity 0.3", rank.MMR_DIVERSITY),
        ("KeyBERT MMR diversity 0.5", 0.5),
        ("plain cosine (diversity 0)", 0.0),
    ]:
        found = rank.extract_keyphrases(texts, vectors, embedder, top_n=10, diversity=diversity)
        f1 = {}
        for k in (5, 10):
            scores = []
            for phrases, keys in zip(found, gold, strict=True):
                predicted = {_norm_phrase(p) for p in phrases[:k]}
                hits = len(predicted & keys)
                precision = hits / len(predicted) if predicted else 0.0
                recall = hits / len(keys) if keys else 0.0
                scores.append(2 * precision * recall / (precision + recall) if hits else 0.0)
            f1[k] = float(np.mean(scores))
        print(f"   {name:<34} {f1[5]:>6.3f} {f1[10]:>6.3f}")


def reviewers(embedder: CachedEmbedder) -> None:
    base = DATA / "reviewer_gold_standard"
    papers = {
        p["ssId"]: f"{p['title']}. {p.get('abstract') or ''}".strip()
        for p in read_jsonl(base / "papers.jsonl")
    }
    participants = {str(p["authorId"]): p for p in read_jsonl(base / "participants.jsonl")}
    lines = (base / "evaluations.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    totals = Counter()
    pairs = 0
    for line in lines[1:]:
        cells = dict(zip(header, line.split("\t"), strict=False))
        who = participants.get(cells["ParticipantID"])
        if who is None:
            continue
        own = [papers[p["paperId"]] for p in who["papers"] if p["paperId"] in papers]
        rated = [(cells.get(f"Paper{i}"), cells.get(f"Expertise{i}")) for i in range(1, 11)]
        rated = [(papers[pid], float(score)) for pid, score in rated if pid in papers and score]
        if not own or len(rated) < 2:
            continue
        cand_texts = [t for t, _ in rated]
        ratings = np.array([s for _, s in rated])
        profile = rank.distill_profile(own, embedder)
        cand_features = rank.featurize(
            [Paper(id=str(i), title=t, abstract="") for i, t in enumerate(cand_texts)], embedder
        )[0]
        ours = rank.score_matrix(cand_features, profile, embedder.encode(profile)).relevance.max(axis=0)
        centroid = normalize(embedder.encode(own).mean(axis=0, keepdims=True))[0]
        cosine = cand_features.vectors @ centroid
        tfidf = tfidf_scores([" ".join(own)], own + cand_texts)[0][len(own) :]
        for name, scores in (
            ("ours (distilled profile)", ours),
            ("cosine to own-paper centroid", cosine),
            ("TF-IDF of own papers", tfidf),
        ):
            for i in range(len(ratings)):
                for j in range(i + 1, len(ratings)):
                    if ratings[i] == ratings[j]:
                        continue
                    agree = np.sign(scores[i] - scores[j]) == np.sign(ratings[i] - ratings[j])
                    totals[name] += 1.0 if agree else (0.5 if scores[i] == scores[j] else 0.0)
        pairs += sum(
            1 for i in range(len(ratings)) for j in range(i + 1, len(ratings)) if ratings[i] != ratings[j]
        )
    print(f"\n3. reviewer_gold_standard (held out, report only): {pairs} rated pairs")
    print(f"   {'method':<32} {'pairwise accuracy':>18}")
    for name in ("TF-IDF of own papers", "cosine to own-paper centroid", "ours (distilled profile)"):
        print(f"   {name:<32} {totals[name] / max(pairs, 1):>18.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", choices=["minilm", "hashing"])
    parser.add_argument("--limit", type=int, default=0, help="use only the first N items of each set")
    parser.add_argument("--skip", nargs="*", default=[], choices=["keywords", "inspec", "reviewers"])
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} not present")
        return 0
    with SQLiteStore.open(CACHE) as store:
        embedder = CachedEmbedder(embedder_for(args.model), store)
        print(
            f"rank quality ({embedder.model_id}; "
            f"W_DOC={rank.W_DOC}, W_PHRASE={rank.W_PHRASE}, W_LEX={rank.W_LEX}, W_TFIDF={rank.W_TFIDF})"
        )
        if "keywords" not in args.skip:
            keyword_labeled(embedder, store, args.limit)
        if "inspec" not in args.skip:
            inspec(embedder, args.limit)
        if "reviewers" not in args.skip:
            reviewers(embedder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
