"""Ranking: which of the day's papers each subscriber gets, in what order, and why.

For every paper we have its embedding (title + abstract) and its KeyBERT keyphrases
(MMR-diversified, with their embeddings). For every profile keyword k and paper p::

    s(k, p) = W_DOC * cos(k, paper) + W_PHRASE * max cos(k, keyphrase) + W_LEX * lexical(k, p)

A paper's score is its best interest, max_k s(k, p), so one square hit beats a
brush with every interest. Papers that hit an `exclude` keyword are dropped.
Selection takes the best papers with at most a fair share per interest, so one
interest cannot crowd out the others.

Everything below `keyphrases_for` is pure: arrays in, `Ranked` out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .embed import Embedder, text_hash
from .models import Paper, Ranked, Subscriber

W_DOC, W_PHRASE, W_LEX = 0.5, 0.3, 0.2
MATCH_FLOOR = 0.42  # s(k, p) at which keyword k is shown as "matched"
EXCLUDE_FLOOR = 0.45
UPVOTE_CAP = 100
TOP_KEYPHRASES = 5
KEYBERT_BATCH = 64

_WORD = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower())]


def lexical(keyword: str, paper_tokens: Sequence[str], paper_token_set: set[str]) -> float:
    """1.0 if the keyword occurs as a phrase; else half the share of its words present."""
    words = tokens(keyword)
    if not words:
        return 0.0
    present = sum(w in paper_token_set for w in words)
    if present == len(words):
        n = len(words)
        if n == 1 or any(list(paper_tokens[i : i + n]) == words for i in range(len(paper_tokens) - n + 1)):
            return 1.0
    return 0.5 * present / len(words)


# --- keyphrases ---------------------------------------------------------------------------


class _KeyBERTBackend:
    """Lets KeyBERT embed through our (cached) embedder instead of loading its own model."""

    def __init__(self, embedder: Embedder):
        from keybert.backend import BaseEmbedder

        class Backend(BaseEmbedder):
            def embed(self, documents: list[str], verbose: bool = False) -> np.ndarray:
                return embedder.encode(list(documents))

        self.backend = Backend()


def extract_keyphrases(
    texts: list[str], doc_vectors: np.ndarray, embedder: Embedder, *, top_n: int = TOP_KEYPHRASES
) -> list[list[str]]:
    """KeyBERT (1-2-grams, English stop words, MMR) for each text, one batch at a time:
    each batch's candidate vocabulary is embedded once for all its documents."""
    from keybert import KeyBERT

    model = KeyBERT(model=_KeyBERTBackend(embedder).backend)
    out: list[list[str]] = []
    for start in range(0, len(texts), KEYBERT_BATCH):
        batch = texts[start : start + KEYBERT_BATCH]
        result = model.extract_keywords(
            batch,
            keyphrase_ngram_range=(1, 2),
            stop_words="english",
            top_n=top_n,
            use_mmr=True,
            diversity=0.5,
            doc_embeddings=doc_vectors[start : start + len(batch)],
        )
        if len(batch) == 1 and result and isinstance(result[0], tuple):
            result = [result]  # KeyBERT unwraps a single document's list
        out.extend([phrase for phrase, _ in keywords] for keywords in result)
    return out


@dataclass(frozen=True)
class PaperFeatures:
    """What scoring needs about a set of papers, computed once per run for all subscribers."""

    papers: tuple[Paper, ...]
    vectors: np.ndarray  # (P, d) paper embeddings
    keyphrases: tuple[tuple[str, ...], ...]
    phrase_vectors: tuple[np.ndarray, ...]  # per paper (k, d)
    token_lists: tuple[tuple[str, ...], ...]


def featurize(
    papers: Sequence[Paper],
    embedder: Embedder,
    keyphrase_cache: dict[str, list[str]] | None = None,
) -> tuple[PaperFeatures, dict[str, list[str]]]:
    """Embeddings and keyphrases for `papers`; `keyphrase_cache` maps text hash -> phrases and
    spares KeyBERT for papers seen before. Returns the features and the new cache entries."""
    papers = tuple(papers)
    texts = [p.text for p in papers]
    vectors = embedder.encode(texts) if texts else np.zeros((0, 1), dtype=np.float32)
    cache = keyphrase_cache or {}
    hashes = [text_hash(t) for t in texts]
    todo = [i for i, h in enumerate(hashes) if h not in cache]
    fresh: dict[str, list[str]] = {}
    if todo:
        extracted = extract_keyphrases([texts[i] for i in todo], vectors[todo], embedder)
        fresh = {hashes[i]: phrases for i, phrases in zip(todo, extracted, strict=True)}
    phrases = [tuple(cache.get(h) or fresh.get(h) or ()) for h in hashes]
    flat = [ph for group in phrases for ph in group]
    flat_vectors = embedder.encode(flat) if flat else np.zeros((0, vectors.shape[1]), dtype=np.float32)
    per_paper, offset = [], 0
    for group in phrases:
        per_paper.append(flat_vectors[offset : offset + len(group)])
        offset += len(group)
    return (
        PaperFeatures(
            papers=papers,
            vectors=vectors,
            keyphrases=tuple(phrases),
            phrase_vectors=tuple(per_paper),
            token_lists=tuple(tuple(tokens(t)) for t in texts),
        ),
        fresh,
    )


# --- scoring (pure) -----------------------------------------------------------------------


def keyword_scores(
    features: PaperFeatures, keywords: Sequence[str], keyword_vectors: np.ndarray
) -> np.ndarray:
    """s(k, p) for every paper (rows) and keyword (columns)."""
    n_papers, n_kw = len(features.papers), len(keywords)
    if n_papers == 0 or n_kw == 0:
        return np.zeros((n_papers, n_kw), dtype=np.float32)
    doc = features.vectors @ keyword_vectors.T
    phrase = np.zeros_like(doc)
    for i, pv in enumerate(features.phrase_vectors):
        if len(pv):
            phrase[i] = (pv @ keyword_vectors.T).max(axis=0)
    lex = np.array(
        [[lexical(k, toks, set(toks)) for k in keywords] for toks in features.token_lists],
        dtype=np.float32,
    )
    return W_DOC * doc + W_PHRASE * phrase + W_LEX * lex


def trending(upvotes: int | None) -> float:
    """Upvotes on a 0..1 scale, log-compressed and capped so one viral paper cannot dominate."""
    if not upvotes or upvotes <= 0:
        return 0.0
    return math.log1p(min(upvotes, UPVOTE_CAP)) / math.log1p(UPVOTE_CAP)


def rank_subscriber(
    subscriber: Subscriber,
    features: PaperFeatures,
    keyword_vectors: np.ndarray,
    exclude_vectors: np.ndarray,
    *,
    limit: int | None = None,
    exclude_ids: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[Ranked]:
    """The subscriber's papers, best first. `limit=None` applies their max_papers and min_score
    and the per-interest quota; `limit=0` returns every eligible paper, scored."""
    keywords = list(subscriber.keywords)
    scores = keyword_scores(features, keywords, keyword_vectors)
    if subscriber.exclude:
        blocked = keyword_scores(features, list(subscriber.exclude), exclude_vectors)
        excluded = (blocked >= EXCLUDE_FLOOR).any(axis=1) | (
            np.array(
                [[lexical(k, t, set(t)) >= 1.0 for k in subscriber.exclude] for t in features.token_lists]
            )
            .reshape(len(features.papers), -1)
            .any(axis=1)
        )
    else:
        excluded = np.zeros(len(features.papers), dtype=bool)
    ranked: list[tuple[Ranked, int]] = []
    for i, paper in enumerate(features.papers):
        if excluded[i] or paper.id in exclude_ids or not keywords:
            continue
        row = scores[i]
        best = int(row.argmax())
        score = float(row[best])
        w = subscriber.trending_weight
        if w:
            score = (1 - w) * score + w * trending(paper.upvotes)
        order = np.argsort(-row)
        matched = tuple(keywords[j] for j in order if row[j] >= MATCH_FLOOR)
        ranked.append((Ranked(paper, round(score, 4), matched, features.keyphrases[i]), best))
    ranked.sort(key=lambda pair: (-pair[0].score, pair[0].paper.id))
    if limit == 0:
        return [r for r, _ in ranked]
    cap = subscriber.max_papers if limit is None else limit
    eligible = [(r, b) for r, b in ranked if r.score >= subscriber.min_score and r.matched]
    return select_diverse(eligible, cap, n_interests=len(keywords))


def select_diverse(ranked: Sequence[tuple[Ranked, int]], cap: int, n_interests: int) -> list[Ranked]:
    """Best first, at most a fair share per interest while others still have papers to give."""
    quota = max(2, math.ceil(cap * 0.6)) if n_interests > 1 else cap
    taken: list[Ranked] = []
    per_interest: dict[int, int] = {}
    overflow: list[Ranked] = []
    for item, interest in ranked:
        if len(taken) >= cap:
            break
        if per_interest.get(interest, 0) >= quota:
            overflow.append(item)
            continue
        per_interest[interest] = per_interest.get(interest, 0) + 1
        taken.append(item)
    taken += overflow[: cap - len(taken)]
    return sorted(taken, key=lambda r: (-r.score, r.paper.id))
