"""A researcher's own papers (`profile_papers`) as one more interest: a paper's nearness to them
is the mean cosine of the PROFILE_TOP_K own papers closest to it, with the words of the same
papers (TF-IDF) adding a little::

    r(own, p) = sigmoid((nearness(p) - PROFILE_MIDPOINT) / PROFILE_SCALE
                        + W_PROFILE_WORDS * (W_WORDS * t + W_SQRT_WORDS * sqrt(t))),
                t = tfidf(their papers' text, p)

A paper is on topic for them at nearness PROFILE_FLOOR and names the closest one (`close_to`);
`distill_profile` sums their papers up in keyphrases, shown as chips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import keyphrases
from .embed import Embedder, normalize
from .features import PaperFeatures, tfidf_similarity
from .scores import sigmoid, words_logit

# Own papers: the mean cosine of the 4 closest of the newest 50, plus a tenth of their words'
# TF-IDF logit: the setting 5-fold cross-validation over researchers chose most often on
# reviewer_gold_standard (benchmarks/rank_quality.py). Relevance 0.5 at the top 1 % of arXiv cs
# papers against a researcher's papers, on the keywords' slope.
PROFILE_MAX, PROFILE_TOP_K, W_PROFILE_WORDS = 50, 4, 0.1
PROFILE_MIDPOINT, PROFILE_SCALE = 0.59, 0.055
PROFILE_FLOOR = 0.45  # nearness at which a paper is on topic for its author (~ top 5 % of cs)


@dataclass(frozen=True)
class Profile:
    """A subscriber's own papers (the newest PROFILE_MAX): evidence in their own right, ranked
    by nearness to each of them, and the phrases distilled from them for chips."""

    titles: tuple[str, ...]
    vectors: np.ndarray  # (n, d), one row per own paper, newest first
    text: str = ""  # their texts joined: the lexical side
    phrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProfileMatch:
    """How the day's papers stand against one profile."""

    relevance: np.ndarray  # (P,) 0..1, on the keywords' scale
    nearness: np.ndarray  # (P,) mean cosine of the PROFILE_TOP_K closest own papers
    closest: np.ndarray  # (P,) index of the closest own paper


def match_profile(
    features: PaperFeatures, profile: Profile, *, top_k: int | None = None, lexical: float | None = None
) -> ProfileMatch:
    """Nearness to the researcher's own papers (the mean of the top-k cosines: one close paper
    may be chance, a centroid blurs several interests), with the words of the same papers."""
    top_k = PROFILE_TOP_K if top_k is None else top_k
    w_lex = W_PROFILE_WORDS if lexical is None else lexical
    n_papers, n_own = len(features.papers), len(profile.titles)
    if n_papers == 0 or n_own == 0:
        zero = np.zeros(n_papers, dtype=np.float32)
        return ProfileMatch(zero, zero, np.zeros(n_papers, dtype=int))
    sims = features.vectors @ profile.vectors.T  # (P, n)
    k = min(top_k, n_own)
    nearness = np.partition(sims, n_own - k, axis=1)[:, n_own - k :].mean(axis=1)
    logit = (nearness - PROFILE_MIDPOINT) / PROFILE_SCALE
    if w_lex and profile.text:
        logit = logit + w_lex * words_logit(tfidf_similarity(features, [profile.text])[0])
    return ProfileMatch(
        relevance=sigmoid(logit).astype(np.float32),
        nearness=nearness.astype(np.float32),
        closest=sims.argmax(axis=1),
    )


PROFILE_KEYPHRASES = 8


def distill_profile(
    texts: Sequence[str], embedder: Embedder, *, top_n: int = PROFILE_KEYPHRASES
) -> list[str]:
    """Keyphrases that sum up a researcher's own papers: all their noun phrases against the
    centroid of their papers' embeddings (no bonus for position: the first paper is not the
    main one), diversified with MMR so the profile covers their several interests rather than
    repeating the main one."""
    texts = [t for t in texts if t.strip()]
    if not texts:
        return []
    centroid = normalize(embedder.encode(texts).mean(axis=0, keepdims=True))
    merged = "\n".join(texts)
    (phrases,) = keyphrases.extract(
        [merged], embedder, centroid, top_n=top_n, diversity=0.5, position_weight=0.0
    )
    return phrases
