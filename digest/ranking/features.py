"""What scoring needs about a day's papers, computed once per run for every subscriber: their
embeddings (title + abstract, and the title alone), their keyphrases (digest.ranking.keyphrases,
with their embeddings), their words (for the phrase match) and a TF-IDF fit.

    featurize(papers, embedder, keyphrase_cache) -> PaperFeatures   one pass of the model per
                        new paper gives its embedding and its candidates' contextual vectors
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..models import Paper
from ..names import author_index
from ..text import words
from . import keyphrases
from .embed import Embedder, text_hash

tokens = words  # the lexical evidence reads words as digest.text.words does


def lexical(keyword: str, paper_tokens: Sequence[str], paper_token_set: set[str]) -> float:
    """1.0 if the keyword occurs as a phrase; else half the share of its words present.
    The reference definition: `_lexical_matrix` computes it for every pair at once."""
    words = tokens(keyword)
    if not words:
        return 0.0
    present = sum(w in paper_token_set for w in words)
    if present == len(words):
        n = len(words)
        if n == 1 or any(list(paper_tokens[i : i + n]) == words for i in range(len(paper_tokens) - n + 1)):
            return 1.0
    return 0.5 * present / len(words)


@dataclass(frozen=True)
class PaperFeatures:
    """What scoring needs about a set of papers, computed once per run for all subscribers."""

    papers: tuple[Paper, ...]
    vectors: np.ndarray  # (P, d) paper embeddings
    keyphrases: tuple[tuple[str, ...], ...]
    phrase_vectors: np.ndarray  # (sum of keyphrase counts, d), paper by paper
    phrase_owner: np.ndarray  # (sum of keyphrase counts,) index of the paper each row belongs to
    token_lists: tuple[tuple[str, ...], ...]
    tfidf: object | None = None  # a TfidfVectorizer fitted on these papers
    tfidf_matrix: object | None = None  # its (P, V) sparse matrix
    title_vectors: np.ndarray | None = None  # (P, d) title embeddings; None: the paper's stand in

    @cached_property
    def position(self) -> dict[str, int]:
        """Paper id -> its column."""
        return {p.id: i for i, p in enumerate(self.papers)}

    @cached_property
    def authors(self) -> dict[str, list[int]]:
        """The papers' author names indexed once by their folded words (digest.names), for
        every follower of the day."""
        return author_index([p.authors for p in self.papers])

    @cached_property
    def acronyms(self) -> list[int]:
        """The keyphrase rows (of phrase_vectors) that are acronyms alone ("CODE-GEN"), found once
        for every block of keywords."""
        flat = (ph for group in self.keyphrases for ph in group)
        return [row for row, ph in enumerate(flat) if keyphrases.is_acronym(ph)]

    @cached_property
    def lexicon(self) -> Lexicon:
        """The papers' words indexed once for the phrase match of every block of keywords."""
        return Lexicon.of(self.token_lists)


@dataclass(frozen=True)
class Lexicon:
    """Postings (word -> the papers holding it, as an array of their indices) and each paper's
    words joined by spaces (a phrase is then a substring test)."""

    postings: dict[str, np.ndarray]
    joined: list[str]

    @classmethod
    def of(cls, token_lists: Sequence[Sequence[str]]) -> Lexicon:
        postings: dict[str, list[int]] = {}
        for i, toks in enumerate(token_lists):
            for t in set(toks):
                postings.setdefault(t, []).append(i)
        return cls(
            {t: np.array(ids, dtype=np.int64) for t, ids in postings.items()},
            [f" {' '.join(toks)} " for toks in token_lists],
        )


def featurize(
    papers: Sequence[Paper], embedder: Embedder, keyphrase_cache: dict[str, list[str]] | None = None
) -> tuple[PaperFeatures, dict[str, list[str]]]:
    """Embeddings and keyphrases for `papers`; `keyphrase_cache` maps text hash -> phrases and
    spares extracting them again for papers seen before. Returns the features and the new cache entries."""
    papers = tuple(papers)
    texts = [p.text for p in papers]
    cache = keyphrase_cache or {}
    hashes = [text_hash(t) for t in texts]
    todo = [i for i, h in enumerate(hashes) if h not in cache]
    fresh: dict[str, list[str]] = {}
    rows: dict[int, np.ndarray] = {}
    if todo:  # one pass gives these papers' embeddings and their candidates' contextual vectors
        extracted, todo_vectors = keyphrases.extract_with_vectors([texts[i] for i in todo], embedder)
        fresh = {hashes[i]: phrases for i, phrases in zip(todo, extracted, strict=True)}
        rows.update(zip(todo, todo_vectors, strict=True))
    rest = [i for i in range(len(texts)) if i not in rows]
    if rest:
        rows.update(zip(rest, embedder.encode([texts[i] for i in rest]), strict=True))
    vectors = np.array([rows[i] for i in range(len(texts))]) if texts else np.zeros((0, 1), dtype=np.float32)
    title_vectors = embedder.encode([p.title for p in papers]) if texts else vectors
    phrases = [tuple(cache.get(h) or fresh.get(h) or ()) for h in hashes]
    flat = [ph for group in phrases for ph in group]
    dim = vectors.shape[1]
    flat_vectors = embedder.encode(flat) if flat else np.zeros((0, dim), dtype=np.float32)
    owner = np.repeat(np.arange(len(papers)), [len(g) for g in phrases])
    tfidf, tfidf_matrix = _fit_tfidf(texts)
    return (
        PaperFeatures(
            papers=papers,
            vectors=vectors,
            keyphrases=tuple(phrases),
            phrase_vectors=flat_vectors,
            phrase_owner=owner,
            token_lists=tuple(tuple(tokens(t)) for t in texts),
            tfidf=tfidf,
            tfidf_matrix=tfidf_matrix,
            title_vectors=title_vectors,
        ),
        fresh,
    )


def keyphrase_cache_key(model_id: str) -> str:
    """What keyphrases are cached under: the embedding model and the extractor's version."""
    return f"{model_id}/{keyphrases.VERSION}"


def _fit_tfidf(texts: Sequence[str]):  # noqa: ANN202 - (vectorizer, sparse matrix) or (None, None)
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english")
        return vectorizer, vectorizer.fit_transform(texts)
    except ValueError:  # no papers, or nothing but stop words
        return None, None


def tfidf_similarity(features: PaperFeatures, texts: Sequence[str]) -> np.ndarray:
    """(len(texts), P) cosines of the texts and the papers in the papers' TF-IDF space (zeros
    when no TF-IDF was fitted)."""
    if features.tfidf is None:
        return np.zeros((len(texts), len(features.papers)))
    return (features.tfidf.transform(texts) @ features.tfidf_matrix.T).toarray()
