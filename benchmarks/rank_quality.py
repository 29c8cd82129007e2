"""Ranking and keyphrase quality, every figure beside its baselines computed in the same run.

The header names the embedding model and the ranking constants in force (digest.ranking.scores, .profile).

1. keyword_labeled_papers (tuning allowed): a query is an author keyword used by 15-150 papers;
   a paper is relevant when one of its author keywords equals the query. nDCG@10, P@10 and the
   nDCG@10 difference to TF-IDF (mean over queries, with its standard error) for TF-IDF
   (1-2-grams, sublinear tf), BM25 (k1 1.2, b 0.75), the cosine of the query to the paper's and
   to the title's embedding, reciprocal-rank fusion of TF-IDF and paper cosine, ours
   (digest.ranking.scores.score_matrix relevance), ours with pseudo-relevance feedback (a measured
   variant: the product does not use it) and the logistic fit rank's weights come from, scored
   on held-out queries (5-fold), with the weights it finds on all queries.
2. keyphrase_benchmarks inspec.jsonl and semeval2017.jsonl (tuning allowed): F1@5 and F1@10
   of the extracted keyphrases against the gold keys (Porter-stemmed exact match) and the
   share of the top 5 that occur word for word in the text, for plain KeyBERT (1-2-grams,
   English stop words; cosine, and MMR 0.5) run in the same process, ours (digest.ranking.keyphrases)
   and ours without its position bonus or without MMR; and the two ways of embedding the
   candidates weighed: each embedded on its own, the contextual vectors of the paper's own pass
   alone, and the shipped mix (a shortlist by the latter embedded on its own). "embedded/text"
   is what each costs beside the one pass over the text: phrases embedded on their own.
3. reviewer_gold_standard (TUNED, with 5-fold cross-validation over researchers): a profile is
   a researcher's own papers; the pair loss of their 1-5 expertise ratings of other papers
   (over pairs rated differently, weight |difference|; a wrong order costs the weight, a tie
   half; pooled over researchers; lower is better) for TF-IDF, centroid cosine, top-3 cosine,
   the old distilled keyphrases and ours (digest.ranking.profile.match_profile), then ours with top_k and
   lexical chosen on four folds and scored on the fifth (10 shuffles of the researchers).
4. csfcube, facet "background" (HELD OUT: report only, never tune on it): the query paper is
   a subscriber's one profile paper; graded nDCG@20 (gain 2^rel - 1) of its judged pool for
   cosine, TF-IDF, ours (match_profile) and a variant: the max of ours and the relevance of
   the keyphrases distilled from the query paper (the keyword signal shows those phrases as labels only).
5. exclude (on keyword_labeled_papers, where its thresholds were chosen): each query used as an
   exclude phrase; the share of the papers labeled with it that are dropped, of those that only
   mention it (the phrase occurs, not labeled) and of the rest that are kept, and the share of
   dropped papers that are labeled, for the old rule (the phrase occurs anywhere, or evidence
   0.45), relevance thresholds alone, and ours (excluded).

Embeddings and keyphrases are cached in var/bench-cache.db (delete it for a cold run).
Run: .venv/bin/python benchmarks/rank_quality.py [--model minilm|hashing] [--limit N] [--skip ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from scipy import sparse  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.preprocessing import normalize as normalize_rows  # noqa: E402

from digest.models import Paper  # noqa: E402
from digest.ranking import keyphrases  # noqa: E402
from digest.ranking import profile as ranking_profile  # noqa: E402
from digest.ranking import scores as ranking_scores  # noqa: E402
from digest.ranking.embed import CachedEmbedder, embedder_for, normalize, text_hash  # noqa: E402
from digest.ranking.features import PaperFeatures, keyphrase_cache_key, tfidf_similarity  # noqa: E402
from digest.ranking.features import featurize as featurize_papers  # noqa: E402
from digest.ranking.profile import PROFILE_MAX, Profile, distill_profile, match_profile  # noqa: E402
from digest.ranking.scores import (  # noqa: E402
    KEYWORD_MIDPOINT,
    W_PAPER_COS,
    W_SQRT_WORDS,
    W_TITLE_COS,
    W_WORDS,
    _lexical_matrix,
    excluded,
    score_matrix,
    sigmoid,
    words_logit,
)
from digest.store import SQLiteStore  # noqa: E402
from digest.text import words  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CACHE = Path(__file__).resolve().parents[1] / "var" / "bench-cache.db"

# the ranking's constants the header reports
CONSTANTS = (
    "W_WORDS",
    "W_SQRT_WORDS",
    "W_PAPER_COS",
    "W_TITLE_COS",
    "KEYWORD_MIDPOINT",
    "PROFILE_MAX",
    "PROFILE_TOP_K",
    "W_PROFILE_WORDS",
    "PROFILE_MIDPOINT",
    "PROFILE_SCALE",
)

Section = Callable[[CachedEmbedder, SQLiteStore, int], None]


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def featurize(papers: Sequence[Paper], embedder: CachedEmbedder, store: SQLiteStore) -> PaperFeatures:
    """featurize with the keyphrases cached in `store`."""
    key = keyphrase_cache_key(embedder.model_id)
    cached = store.cached_keyphrases(key, [text_hash(p.text) for p in papers])
    made, fresh = featurize_papers(papers, embedder, cached)
    if fresh:
        store.cache_keyphrases(key, fresh)
    return made


def tfidf_scores(queries: list[str], texts: list[str]) -> np.ndarray:
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english").fit(texts)
    return (vectorizer.transform(queries) @ vectorizer.transform(texts).T).toarray()


def top_k_mean(similarity: np.ndarray, k: int) -> np.ndarray:
    """(P, n) -> (P,): the mean of each row's k largest values."""
    k = min(k, similarity.shape[1])
    return np.sort(similarity, axis=1)[:, -k:].mean(axis=1)


def mean_and_error(values: np.ndarray) -> tuple[float, float]:
    """The mean and its standard error."""
    spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), spread / math.sqrt(max(len(values), 1))


# --- 1. keyword_labeled_papers ----------------------------------------------------------------


def bm25_scores(queries: Sequence[str], texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """Okapi BM25 over digest.text.words tokens (unigrams), with the non-negative idf
    log(1 + (N - df + 0.5) / (df + 0.5)); a query's repeated words count repeatedly."""
    vocab: dict[str, int] = {}
    docs = [[vocab.setdefault(w, len(vocab)) for w in words(t)] for t in texts]
    tf = _counts(docs, len(vocab))
    length = np.asarray(tf.sum(axis=1)).ravel()
    df = np.bincount(tf.indices, minlength=len(vocab))
    idf = np.log1p((len(docs) - df + 0.5) / (df + 0.5))
    norm = np.repeat(k1 * (1 - b + b * length / max(length.mean(), 1e-9)), np.diff(tf.indptr))
    tf.data = tf.data * (k1 + 1) / (tf.data + norm) * idf[tf.indices]
    query_terms = [[vocab[w] for w in words(q) if w in vocab] for q in queries]
    return (_counts(query_terms, len(vocab)) @ tf.T).toarray()


def _counts(rows: Sequence[Sequence[int]], width: int) -> sparse.csr_matrix:
    """Term counts: one row per list of term ids."""
    owner = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    columns = np.fromiter((c for r in rows for c in r), dtype=np.int64, count=len(owner))
    matrix = sparse.csr_matrix((np.ones(len(owner)), (owner, columns)), shape=(len(rows), width))
    matrix.sum_duplicates()
    return matrix


def reciprocal_rank_fusion(*scores: np.ndarray, k: int = 60) -> np.ndarray:
    """sum over rankings of 1 / (k + rank), ranks from 1 per row (ties in stable order)."""
    fused = np.zeros_like(scores[0], dtype=np.float64)
    for s in scores:
        order = np.argsort(-s, axis=1, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(1, s.shape[1] + 1)[None, :], axis=1)
        fused += 1.0 / (k + ranks)
    return fused


def fused_relevance(lexical: np.ndarray, doc: np.ndarray, titles: np.ndarray) -> np.ndarray:
    """score_matrix's relevance (its logistic model), from TF-IDF and the two cosines."""
    logit = words_logit(lexical) + W_PAPER_COS * doc + W_TITLE_COS * titles
    return sigmoid(logit - KEYWORD_MIDPOINT)


def fitted_weights(
    features: PaperFeatures, queries: Sequence[str], query_vectors: np.ndarray, relevant: list[set[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """How rank's keyword weights were chosen: a logistic regression (C 0.1) of "labeled with the
    query" on (t, sqrt t, cos paper, cos title), all labeled pairs and 40 unlabeled ones per
    labeled one. Returns the 5-fold cross-validated (over queries) logits and the weights fitted
    on all queries."""
    from sklearn.linear_model import LogisticRegression

    t = np.clip(tfidf_similarity(features, queries), 0, None)
    x = np.stack(
        [t, np.sqrt(t), query_vectors @ features.vectors.T, query_vectors @ features.title_vectors.T], axis=-1
    )
    labeled = np.zeros(t.shape, dtype=bool)
    for row, rel in enumerate(relevant):
        labeled[row, sorted(rel)] = True
    rng = np.random.default_rng(0)

    def fit(rows: np.ndarray) -> np.ndarray:
        xs, ys = x[rows].reshape(-1, x.shape[-1]), labeled[rows].ravel()
        negatives = np.flatnonzero(~ys)
        keep = np.concatenate(
            [np.flatnonzero(ys), rng.choice(negatives, min(len(negatives), 40 * ys.sum()), replace=False)]
        )
        return LogisticRegression(C=0.1, max_iter=2000).fit(xs[keep], ys[keep]).coef_[0]

    held = np.zeros(t.shape)
    everyone = np.arange(len(queries))
    for fold in np.array_split(rng.permutation(len(queries)), FOLDS):
        held[fold] = x[fold] @ fit(np.setdiff1d(everyone, fold))
    return held, fit(everyone)


def with_feedback(
    features: PaperFeatures,
    queries: Sequence[str],
    query_vectors: np.ndarray,
    first: np.ndarray,
    depth: int = 10,
    lexical_weight: float = 0.5,
) -> np.ndarray:
    """Pseudo-relevance feedback (Rocchio, beta 1) on `first`'s top `depth` papers per query,
    then the same relevance model. Embeddings: normalize(query + mean of their vectors). Lexical side,
    in TF-IDF space rather than by concatenating text: normalize(tfidf(query) + 0.5 * mean of
    their TF-IDF rows)."""
    top = np.argsort(-first, axis=1, kind="stable")[:, :depth]
    vectors = normalize(query_vectors + features.vectors[top].mean(axis=1))
    n_queries, n_papers = first.shape
    mean_of_top = sparse.csr_matrix(
        (np.full(top.size, 1.0 / depth), (np.repeat(np.arange(n_queries), depth), top.ravel())),
        shape=(n_queries, n_papers),
    )
    matrix = features.tfidf_matrix
    query_words = normalize_rows(features.tfidf.transform(queries) + lexical_weight * (mean_of_top @ matrix))
    lexical = (query_words @ matrix.T).toarray()
    return fused_relevance(lexical, vectors @ features.vectors.T, vectors @ features.title_vectors.T)


def ndcg_p_at_10(scores: np.ndarray, relevant: list[set[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per query: binary nDCG@10 and P@10."""
    ndcgs, precisions = [], []
    for row, rel in zip(scores, relevant, strict=True):
        top = np.argsort(-row, kind="stable")[:10]
        gains = [1.0 if i in rel else 0.0 for i in top]
        dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
        ideal = sum(1 / math.log2(r + 2) for r in range(min(10, len(rel))))
        ndcgs.append(dcg / ideal)
        precisions.append(sum(gains) / 10)
    return np.array(ndcgs), np.array(precisions)


def load_keyword_labeled(limit: int) -> tuple[list[Paper], list[str], list[set[int]]]:
    """Papers, queries (author keywords used by 15-150 of them) and each query's labeled papers."""
    path = DATA / "keyword_labeled_papers" / "openreview_papers_with_author_keywords.jsonl"
    rows = [r for r in read_jsonl(path) if r.get("keywords")][: limit or None]
    keys = [{k.strip().lower() for k in r["keywords"] if k.strip()} for r in rows]
    counts = Counter(k for ks in keys for k in ks)
    queries = sorted(q for q, n in counts.items() if 15 <= n <= 150)
    relevant = [{i for i, ks in enumerate(keys) if q in ks} for q in queries]
    papers = [Paper(str(i), r["title"], r.get("abstract") or "") for i, r in enumerate(rows)]
    return papers, queries, relevant


def keyword_labeled(embedder: CachedEmbedder, store: SQLiteStore, limit: int) -> None:
    papers, queries, relevant = load_keyword_labeled(limit)
    if not queries:
        print("\n1. keyword_labeled_papers: no author keyword is used by 15-150 of these papers; use more")
        return
    texts = [p.text for p in papers]
    features = featurize(papers, embedder, store)
    query_vectors = embedder.encode(queries)
    tfidf = tfidf_scores(queries, texts)
    cosine = query_vectors @ features.vectors.T
    ours = score_matrix(features, queries, query_vectors).relevance
    results = {
        "TF-IDF (1-2-grams, sublinear)": tfidf,
        "BM25 (k1 1.2, b 0.75)": bm25_scores(queries, texts),
        "cosine(query, paper)": cosine,
        "cosine(query, title)": query_vectors @ features.title_vectors.T,
        "RRF(TF-IDF, paper cosine; k 60)": reciprocal_rank_fusion(tfidf, cosine),
        "ours (score_matrix)": ours,
        "ours + PRF (top 10, Rocchio)": with_feedback(features, queries, query_vectors, ours),
    }
    print(
        f"\n1. keyword_labeled_papers: {len(papers)} papers, {len(queries)} queries"
        " (author keywords used by 15-150 papers)"
    )
    _check_fusion(features, queries, query_vectors, ours)
    held, weights = fitted_weights(features, queries, query_vectors, relevant)
    results["logistic fit, held-out queries"] = held
    print(f"   {'method':<34} {'nDCG@10':>8} {'P@10':>7}   {'nDCG@10 - TF-IDF':>17}")
    baseline, _ = ndcg_p_at_10(tfidf, relevant)
    for name, scores in results.items():
        ndcg, p10 = ndcg_p_at_10(scores, relevant)
        diff, error = mean_and_error(ndcg - baseline)
        delta = f"{diff:+.3f} ± {error:.3f}" if scores is not tfidf else ""
        print(f"   {name:<34} {ndcg.mean():>8.3f} {p10.mean():>7.3f}   {delta:>17}")
    print(
        "   the fit on all queries, weights of (t, sqrt t, cos paper, cos title): "
        + ", ".join(f"{w:.1f}" for w in weights)
        + f" (rank uses {W_WORDS}, {W_SQRT_WORDS}, {W_PAPER_COS}, {W_TITLE_COS})"
    )


def _check_fusion(
    features: PaperFeatures, queries: Sequence[str], query_vectors: np.ndarray, ours: np.ndarray
) -> None:
    """The PRF variant re-implements score_matrix's fusion: say so if the two have drifted apart."""
    lexical = tfidf_similarity(features, queries)
    doc, titles = query_vectors @ features.vectors.T, query_vectors @ features.title_vectors.T
    again = fused_relevance(lexical, doc, titles)
    if not np.allclose(again, ours, atol=1e-4):
        print("   note: fused_relevance no longer matches score_matrix; the PRF row is not comparable")


# --- 2. keyphrases: Inspec and SemEval-2017 ----------------------------------------------------

KEYPHRASE_SETS = ("inspec", "semeval2017")


@cache
def _stem(word: str) -> str:
    from nltk.stem import PorterStemmer

    return PorterStemmer().stem(word)


def _stemmed(phrase: str) -> str:
    return " ".join(_stem(w) for w in re.findall(r"[^\W_]+(?:-[^\W_]+)*", phrase.lower()))


def _keybert(embedder: CachedEmbedder):  # noqa: ANN202 - KeyBERT over the cached embedder
    from keybert import KeyBERT
    from keybert.backend import BaseEmbedder

    class Backend(BaseEmbedder):
        def embed(self, documents: list[str], verbose: bool = False) -> np.ndarray:
            return embedder.encode(list(documents))

    return KeyBERT(model=Backend())


def plain_keybert(
    texts: list[str], vectors: np.ndarray, embedder: CachedEmbedder, mmr: float | None
) -> list[list[str]]:
    """KeyBERT as its README uses it: 1-2-grams, English stop words; MMR when `mmr` is given."""
    found = _keybert(embedder).extract_keywords(
        texts,
        keyphrase_ngram_range=(1, 2),
        stop_words="english",
        top_n=10,
        use_mmr=mmr is not None,
        diversity=mmr or 0.0,
        doc_embeddings=vectors,
    )
    return [[w for w, _ in group] for group in found]


def keyphrase_scores(found: list[list[str]], gold: list[set[str]], texts: list[str]) -> tuple[float, ...]:
    """F1@5, F1@10 (Porter-stemmed exact match) and the share of top-5 phrases found verbatim."""
    f1 = []
    for k in (5, 10):
        scores = []
        for phrases, keys in zip(found, gold, strict=True):
            predicted = {_stemmed(p) for p in phrases[:k]}
            hits = len(predicted & keys)
            scores.append(2 * hits / (len(predicted) + len(keys)) if hits else 0.0)
        f1.append(float(np.mean(scores)))
    shown = [(p, t) for phrases, t in zip(found, texts, strict=True) for p in phrases[:5]]
    contiguous = sum(keyphrases.occurs_verbatim(p, t) for p, t in shown) / max(len(shown), 1)
    return f1[0], f1[1], contiguous


class Counting:
    """An embedder that counts the texts it is asked to embed on their own (cached or not):
    what a cold run would pay for, beside the one pass over the texts themselves."""

    def __init__(self, inner: CachedEmbedder):
        self.inner, self.model_id, self.texts = inner, inner.model_id, 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.encode(texts)

    def encode_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]):  # noqa: ANN201
        return self.inner.encode_spans(texts, spans)


Extractor = Callable[[list[str], np.ndarray, Counting], list[list[str]]]
EXTRACTORS: dict[str, Extractor] = {
    "KeyBERT, plain cosine": lambda t, v, e: plain_keybert(t, v, e, None),
    "KeyBERT, MMR 0.5": lambda t, v, e: plain_keybert(t, v, e, 0.5),
    "ours without position bonus": lambda t, v, e: keyphrases.extract(t, e, top_n=10, position_weight=0.0),
    "ours without MMR": lambda t, v, e: keyphrases.extract(t, e, top_n=10, diversity=0.0),
    "ours, every candidate embedded": lambda t, v, e: keyphrases.extract(t, e, v, top_n=10, shortlist=None),
    "ours, contextual vectors only": lambda t, v, e: keyphrases.extract(t, e, top_n=10, shortlist=0),
    "ours (digest.ranking.keyphrases)": lambda t, v, e: keyphrases.extract(t, e, top_n=10),
}


def keyphrase_sets(embedder: CachedEmbedder, store: SQLiteStore, limit: int) -> None:
    print(
        "\n2. keyphrases: F1 against the gold keys (Porter-stemmed exact match) and the share of the"
        " top 5 that occur word for word in the text"
    )
    for name in KEYPHRASE_SETS:
        rows = read_jsonl(DATA / "keyphrase_benchmarks" / f"{name}.jsonl")[: limit or None]
        texts = [" ".join(row["text"].split()) for row in rows]  # one space: "Language \tof Thought"
        gold = [{_stemmed(k) for k in r["keyphrases"]} for r in rows]
        vectors = embedder.encode(texts)
        print(f"   {name}: {len(rows)} texts")
        print(f"   {'setting':<34} {'F1@5':>6} {'F1@10':>6} {'verbatim':>9} {'embedded/text':>14}")
        for setting, run in EXTRACTORS.items():
            counting = Counting(embedder)
            f1_5, f1_10, contiguous = keyphrase_scores(run(texts, vectors, counting), gold, texts)
            cost = counting.texts / max(len(texts), 1)
            print(f"   {setting:<34} {f1_5:>6.3f} {f1_10:>6.3f} {contiguous:>9.1%} {cost:>14.1f}")


# --- 3. reviewer_gold_standard ----------------------------------------------------------------

GRID = tuple((top_k, lexical) for top_k in (3, 4) for lexical in (0.0, 0.1))
FOLDS, SHUFFLES = 5, 10


@dataclass(frozen=True)
class Researcher:
    own: tuple[Paper, ...]  # their papers, newest first
    candidates: tuple[Paper, ...]  # the papers they rated
    ratings: np.ndarray  # their 1-5 expertise for each candidate


def load_researchers(limit: int) -> list[Researcher]:
    base = DATA / "reviewer_gold_standard"
    papers = {
        p["ssId"]: (p.get("year") or 0, Paper(p["ssId"], p["title"], p.get("abstract") or ""))
        for p in read_jsonl(base / "papers.jsonl")
    }
    participants = {str(p["authorId"]): p for p in read_jsonl(base / "participants.jsonl")}
    lines = (base / "evaluations.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    out = []
    for line in lines[1:]:
        cells = dict(zip(header, line.split("\t"), strict=False))
        who = participants.get(cells["ParticipantID"])
        if who is None:
            continue
        own = [papers[p["paperId"]] for p in who["papers"] if p["paperId"] in papers]
        own.sort(key=lambda year_paper: -year_paper[0])  # newest first; no year: oldest
        rated = [(cells.get(f"Paper{i}"), cells.get(f"Expertise{i}")) for i in range(1, 11)]
        rated = [(papers[pid][1], float(score)) for pid, score in rated if pid in papers and score]
        if own and len({s for _, s in rated}) >= 2:
            ratings = np.array([s for _, s in rated])
            out.append(Researcher(tuple(p for _, p in own), tuple(p for p, _ in rated), ratings))
    return out[: limit or None]


def own_text(paper: Paper) -> str:
    return paper.text.strip()


def pair_loss(scores: np.ndarray, ratings: np.ndarray) -> tuple[float, float]:
    """(loss, weight) over the pairs rated differently: weight |rating difference|; a pair in
    the wrong order costs its weight, a tie half of it."""
    i, j = np.triu_indices(len(ratings), k=1)
    by_rating, by_score = ratings[i] - ratings[j], np.asarray(scores, dtype=np.float64)
    by_score = by_score[i] - by_score[j]
    rated = by_rating != 0
    weight = np.abs(by_rating[rated])
    wrong = np.sign(by_score[rated]) == -np.sign(by_rating[rated])
    tied = by_score[rated] == 0
    return float((weight * wrong).sum() + 0.5 * (weight * tied).sum()), float(weight.sum())


def pooled(losses: np.ndarray) -> float:
    """(R, 2) rows of (loss, weight) -> the pooled loss."""
    return float(losses[:, 0].sum() / losses[:, 1].sum())


def researcher_scores(
    who: Researcher, embedder: CachedEmbedder, store: SQLiteStore
) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Each method's scores of the researcher's candidates, and ours at each GRID point."""
    features = featurize(who.candidates, embedder, store)
    own = [own_text(p) for p in who.own]
    own_vectors = embedder.encode(own)
    newest = slice(0, PROFILE_MAX)
    profile = Profile(
        titles=tuple(p.title for p in who.own[newest]),
        vectors=own_vectors[newest],
        text=" ".join(own[newest]),
    )
    phrases = distill_profile(own, embedder)
    distilled = score_matrix(features, phrases, embedder.encode(phrases)).relevance
    centroid = normalize(own_vectors.mean(axis=0, keepdims=True))[0]
    lexical = tfidf_scores([" ".join(own)], own + [p.text for p in who.candidates])[0][len(own) :]
    methods = {
        "TF-IDF of own papers": lexical,
        "cosine to own-paper centroid": features.vectors @ centroid,
        "top-3 mean cosine, newest 20 own": top_k_mean(features.vectors @ own_vectors[:20].T, 3),
        "distilled keyphrases (old)": distilled.max(axis=0) if phrases else np.zeros(len(who.candidates)),
        "ours as shipped (match_profile)": match_profile(features, profile).relevance,
    }
    grid = [match_profile(features, profile, top_k=k, lexical=lex).relevance for k, lex in GRID]
    return methods, grid


def cross_validate(grid_losses: np.ndarray, seed: int) -> tuple[float, list[int]]:
    """(G, R, 2) losses of each grid point for each researcher -> the pooled held-out loss of
    FOLDS-fold cross-validation on one shuffle, and the grid point chosen for each fold."""
    n = grid_losses.shape[1]
    held, chosen = np.zeros(2), []
    for fold in np.array_split(np.random.default_rng(seed).permutation(n), FOLDS):
        train = np.setdiff1d(np.arange(n), fold)
        best = int(np.argmin([pooled(g[train]) for g in grid_losses]))
        chosen.append(best)
        held += grid_losses[best, fold].sum(axis=0)
    return float(held[0] / held[1]), chosen


def reviewers(embedder: CachedEmbedder, store: SQLiteStore, limit: int) -> None:
    researchers = load_researchers(limit)
    losses: dict[str, list[tuple[float, float]]] = {}
    grid_losses: list[list[tuple[float, float]]] = [[] for _ in GRID]
    for who in researchers:
        methods, grid = researcher_scores(who, embedder, store)
        for name, scores in methods.items():
            losses.setdefault(name, []).append(pair_loss(scores, who.ratings))
        for row, scores in zip(grid_losses, grid, strict=True):
            row.append(pair_loss(scores, who.ratings))
    n_pairs = sum(int(np.count_nonzero(np.subtract.outer(w.ratings, w.ratings))) // 2 for w in researchers)
    print(
        f"\n3. reviewer_gold_standard (tuned by {FOLDS}-fold cross-validation over researchers):"
        f" {len(researchers)} researchers, {n_pairs} pairs rated differently"
    )
    print(f"   {'method (all researchers)':<40} {'pair loss':>9}")
    for name, rows in losses.items():
        print(f"   {name:<40} {pooled(np.array(rows)):>9.3f}")
    _report_cross_validation(np.array(grid_losses))


def _report_cross_validation(grid_losses: np.ndarray) -> None:
    names = [f"top_k {k}, lexical {lex:.1f}" for k, lex in GRID]
    print(f"   grid, newest {PROFILE_MAX} own papers (in-sample, all researchers):")
    for name, rows in zip(names, grid_losses, strict=True):
        print(f"     {name:<38} {pooled(rows):>9.3f}")
    if grid_losses.shape[1] < FOLDS:
        print(f"   cross-validation: fewer than {FOLDS} researchers")
        return
    runs = [cross_validate(grid_losses, seed) for seed in range(SHUFFLES)]
    held = np.array([loss for loss, _ in runs])
    print(
        f"   held-out pair loss, {FOLDS}-fold CV x {SHUFFLES} shuffles (seeds 0-{SHUFFLES - 1}):"
        f" mean {held.mean():.3f}, min {held.min():.3f}, max {held.max():.3f} (target <= 0.21)"
    )
    chosen = Counter(i for _, picks in runs for i in picks)
    picks = ", ".join(f"{names[i]}: {chosen[i]}" for i in range(len(GRID)) if chosen[i])
    print(f"   chosen in {FOLDS * SHUFFLES} folds: {picks}")


# --- 4. csfcube -------------------------------------------------------------------------------


def load_csfcube(limit: int) -> list[tuple[Paper, list[Paper], np.ndarray]]:
    """(query paper, its judged background pool, graded relevance 0-3) per query."""
    base = DATA / "csfcube"
    papers = {
        r["paper_id"]: Paper(id=r["paper_id"], title=r["title"], abstract=r["abstract"])
        for r in read_jsonl(base / "csfcube_papers.jsonl")
    }
    pools: dict[str, list[tuple[str, int]]] = {}
    for line in (base / "csfcube_qrels.tsv").read_text().splitlines()[1:]:
        query, facet, candidate, relevance = line.split("\t")
        if facet == "background":
            pools.setdefault(query, []).append((candidate, int(relevance)))
    return [
        (papers[q], [papers[c] for c, _ in pool], np.array([r for _, r in pool], dtype=np.float64))
        for q, pool in sorted(pools.items())
    ][: limit or None]


def ndcg_at(scores: np.ndarray, relevance: np.ndarray, k: int = 20) -> float:
    """Graded nDCG@k with gain 2^rel - 1 and discount log2(rank + 1)."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    top = np.argsort(-np.asarray(scores), kind="stable")[:k]
    ideal = np.sort(relevance)[::-1][:k]
    best = float(((2**ideal - 1) * discount[: len(ideal)]).sum())
    return float(((2 ** relevance[top] - 1) * discount[: len(top)]).sum()) / best if best else 0.0


def query_scores(
    query: Paper, pool: list[Paper], embedder: CachedEmbedder, store: SQLiteStore
) -> dict[str, np.ndarray]:
    features = featurize(pool, embedder, store)
    text = query.text
    vector = embedder.encode([text])
    profile = Profile(titles=(query.title,), vectors=vector, text=text)
    ours = match_profile(features, profile).relevance
    phrases = distill_profile([text], embedder)
    distilled = score_matrix(features, phrases, embedder.encode(phrases)).relevance
    # the variant: distilled phrases as extra interests (the keyword signal uses them as labels only)
    return {
        "cosine(query paper, candidate)": features.vectors @ vector[0],
        # fitted on the pool and the query paper, as for the reviewers' own papers
        "TF-IDF of the query paper": tfidf_scores([text], [text] + [p.text for p in pool])[0][1:],
        "ours (match_profile, one paper)": ours,
        "max(ours, distilled keyphrases)": np.maximum(ours, distilled.max(axis=0)) if phrases else ours,
    }


def csfcube(embedder: CachedEmbedder, store: SQLiteStore, limit: int) -> None:
    queries = load_csfcube(limit)
    ndcgs: dict[str, list[float]] = {}
    for query, pool, relevance in queries:
        for name, scores in query_scores(query, pool, embedder, store).items():
            ndcgs.setdefault(name, []).append(ndcg_at(scores, relevance))
    print(
        f"\n4. csfcube, facet background (held out, report only): {len(queries)} queries,"
        f" {sum(len(p) for _, p, _ in queries)} judged candidates;"
        " nDCG@20, gain 2^rel - 1, rel 0-3"
    )
    print(f"   {'method':<34} {'nDCG@20':>8}   {'nDCG@20 - cosine':>17}")
    baseline = np.array(next(iter(ndcgs.values())))
    for name, values in ndcgs.items():
        diff, error = mean_and_error(np.array(values) - baseline)
        delta = f"{diff:+.3f} ± {error:.3f}" if name != next(iter(ndcgs)) else ""
        print(f"   {name:<34} {np.mean(values):>8.3f}   {delta:>17}")


# --- 5. exclude -------------------------------------------------------------------------------


def exclusion(embedder: CachedEmbedder, store: SQLiteStore, limit: int) -> None:
    papers, queries, relevant = load_keyword_labeled(limit)
    if not queries:
        print("\n5. exclude: no author keyword is used by 15-150 of these papers; use more")
        return
    features = featurize(papers, embedder, store)
    matrix = score_matrix(features, queries, embedder.encode(queries))
    labeled = np.zeros((len(queries), len(papers)), dtype=bool)
    for row, rel in enumerate(relevant):
        labeled[row, sorted(rel)] = True
    in_text = _lexical_matrix(features.token_lists, queries).T >= 1.0  # the phrase occurs
    mentions, others = in_text & ~labeled, ~in_text & ~labeled
    rules = {
        "the phrase occurs, or s >= 0.45 (before)": in_text | (matrix.evidence >= 0.45),
        "relevance >= 0.5": matrix.relevance >= 0.5,
        "relevance >= 0.38": matrix.relevance >= 0.38,
        "ours (excluded)": np.array([excluded(matrix, [q]) for q in queries]),
    }
    print(
        f"\n5. exclude: each of {len(queries)} author keywords as an exclude phrase, {len(papers)} papers;"
        " the papers labeled with it should go; those that only mention it, or neither, should stay"
    )
    print(
        f"   {'rule':<42} {'labeled dropped':>15} {'mentions kept':>14} {'others kept':>12} {'precision':>10}"
    )
    for name, dropped in rules.items():
        recall = (dropped & labeled).sum() / labeled.sum()
        kept_mentions = 1 - (dropped & mentions).sum() / max(mentions.sum(), 1)
        kept_others = 1 - (dropped & others).sum() / max(others.sum(), 1)
        precision = (dropped & labeled).sum() / max(dropped.sum(), 1)
        print(f"   {name:<42} {recall:>15.3f} {kept_mentions:>14.3f} {kept_others:>12.2%} {precision:>10.3f}")


SECTIONS: dict[str, Section] = {
    "keywords": keyword_labeled,
    "keyphrases": keyphrase_sets,
    "reviewers": reviewers,
    "csfcube": csfcube,
    "exclude": exclusion,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", choices=["minilm", "hashing"])
    parser.add_argument("--limit", type=int, default=0, help="use only the first N items of each set")
    parser.add_argument("--skip", nargs="*", default=[], choices=list(SECTIONS))
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} not present")
        return 0
    with SQLiteStore.open(CACHE) as store:
        embedder = CachedEmbedder(embedder_for(args.model), store)
        modules = (ranking_scores, ranking_profile)
        used = ", ".join(
            f"{name}={getattr(next(m for m in modules if hasattr(m, name)), name)}" for name in CONSTANTS
        )
        print(f"rank quality ({embedder.model_id}; {used})")
        for name, section in SECTIONS.items():
            if name not in args.skip:
                section(embedder, store, args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
