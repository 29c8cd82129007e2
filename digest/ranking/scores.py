"""The score matrices: for every keyword of a block of subscribers (rows) and every paper of the
day (columns), at once. For a keyword k and a paper p, two numbers in 0..1::

    s(k, p) = W_DOC * cos(k, p) + W_PHRASE * max cos(k, keyphrase) + W_LEX * lexical(k, p)
              (the max over keyphrases that are not acronyms alone: "CODE-GEN" is no evidence
              of "code generation"; the words of the paper are)
    r(k, p) = sigmoid(W_WORDS * t + W_SQRT_WORDS * sqrt(t) + W_PAPER_COS * cos(k, p)
                      + W_TITLE_COS * cos(k, title) - KEYWORD_MIDPOINT),   t = tfidf(k, p)

s is evidence: it decides eligibility and which keywords are shown as "matched". r is relevance,
a logistic model fitted on author keywords: what the order and min_score use. A few matrix
products and an inverted-index phrase match per block (digest.ranking.rank bounds the blocks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .features import Lexicon, PaperFeatures, tfidf_similarity, tokens

# Evidence s(k, p), absolute: the paper as a whole says most; its best keyphrase catches a
# focused sub-topic; the exact phrase is a tie-breaker that embeddings blur ("graph neural
# networks" vs "neural graphs"). It decides eligibility and "matched", never the order.
W_DOC, W_PHRASE, W_LEX = 0.5, 0.3, 0.2
MATCH_FLOOR = 0.42  # s(k, p) at which a keyword is shown as "matched": a clear on-topic hit
# Relevance r(k, p), absolute: a logistic model of "the authors would give their paper this
# keyword", over TF-IDF (and its square root: the first matching word says most) and the cosine
# of the keyword with the paper and with its title (titles state the topic abstracts dilute).
# Fitted on keyword_labeled_papers (benchmarks/rank_quality.py prints the fit and its held-out
# nDCG@10). Absolute on purpose: a per-keyword z-score over the day ranked as well there, but
# made a paper less relevant on a day crowded with its topic. BM25, reciprocal-rank fusion and
# pseudo-relevance feedback measured no better.
W_WORDS, W_SQRT_WORDS, W_PAPER_COS, W_TITLE_COS = 3.1, 9.1, 3.8, 2.0
KEYWORD_MIDPOINT = 5.0  # logit at relevance 0.5: about the top 1 % of ordinary (keyword, paper) pairs

# An `exclude` phrase drops the papers about it: those it would be a relevant keyword for
# (r >= 0.5), or fairly relevant (0.35) with one of their own keyphrases close to it (cosine 0.39).
# A passing mention ("... with uses in medical imaging") is not enough. Measured on
# keyword_labeled_papers (benchmarks/rank_quality.py): the papers labeled with the phrase that are
# dropped, and the papers that only mention it or are about something else that are kept.
# The keyphrase cosine is 0.39 since keyphrases became whole noun phrases ("unified medical
# multimodal generation" is further from "medical imaging" than the word "medical" was): on
# keyword_labeled_papers 0.35-0.45 measure alike; 0.39 is the middle of the range that tells the
# two 2025-10-08 papers of the exclude integration test apart.
EXCLUDE_RELEVANCE, EXCLUDE_NEAR, EXCLUDE_KEYPHRASE = 0.5, 0.35, 0.39
UPVOTE_CAP = 100  # upvotes beyond this say "popular", not "more relevant"


@dataclass(frozen=True)
class ScoreMatrix:
    """Per keyword of a run (rows) and paper (columns), keyword-major so that one subscriber's
    few keywords are a few contiguous rows:

    evidence  s(k, p) in 0..1: embeddings and the phrase match; decides eligibility and "matched"
    relevance r(k, p) in 0..1: TF-IDF and embeddings, calibrated; what the order and min_score use
    keyphrase the cosine of k and the paper's closest keyphrase (for `exclude`)
    """

    keywords: tuple[str, ...]
    evidence: np.ndarray  # (K, P)
    keyphrase: np.ndarray  # (K, P)
    relevance: np.ndarray | None = None  # (K, P); None: the evidence alone (no TF-IDF fitted)
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index.update((k, i) for i, k in enumerate(self.keywords))
        if self.relevance is None:
            object.__setattr__(self, "relevance", self.evidence)

    def rows(self, keywords: Sequence[str]) -> list[int]:
        return [self.index[k] for k in keywords]


def score_matrix(
    features: PaperFeatures, keywords: Sequence[str], keyword_vectors: np.ndarray
) -> ScoreMatrix:
    """One pass for all keywords: a few matrix products and an inverted-index phrase match."""
    keywords = tuple(keywords)
    n_papers, n_kw = len(features.papers), len(keywords)
    if n_papers == 0 or n_kw == 0:
        empty = np.zeros((n_kw, n_papers), dtype=np.float32)
        return ScoreMatrix(keywords, empty, empty)
    doc = keyword_vectors @ features.vectors.T
    phrase = np.zeros((n_kw, n_papers), dtype=np.float32)  # papers without keyphrases score 0 here
    worded = np.zeros((n_kw, n_papers), dtype=np.float32)  # the same, acronyms left out
    if len(features.phrase_vectors):
        # phrase rows are grouped paper by paper: one reduceat takes each paper's best phrase
        owners, starts = np.unique(features.phrase_owner, return_index=True)
        cosines = features.phrase_vectors @ keyword_vectors.T
        phrase[:, owners] = np.maximum.reduceat(cosines, starts, axis=0).T
        if acronyms := features.acronyms:
            flat = [ph for group in features.keyphrases for ph in group]
            _drop_acronyms(cosines, [flat[row] for row in acronyms], acronyms, keywords)
            worded[:, owners] = np.maximum.reduceat(cosines, starts, axis=0).T
        else:
            worded = phrase
    lex = _lexical_matrix(features.token_lists, keywords, features.lexicon).T
    # cosines below 0 mean "unrelated", not "less than unrelated": clipped, so s stays in 0..1
    evidence = W_DOC * np.clip(doc, 0, 1) + W_PHRASE * np.clip(worded, 0, 1) + W_LEX * lex
    evidence = np.ascontiguousarray(evidence, dtype=np.float32)
    titles = doc if features.title_vectors is None else keyword_vectors @ features.title_vectors.T
    logit = (
        words_logit(tfidf_similarity(features, keywords))
        + W_PAPER_COS * doc
        + W_TITLE_COS * titles
        - KEYWORD_MIDPOINT
    )
    relevance = np.ascontiguousarray(sigmoid(logit), dtype=np.float32)
    return ScoreMatrix(keywords, evidence, np.ascontiguousarray(phrase, dtype=np.float32), relevance)


def _drop_acronyms(cosines: np.ndarray, phrases: list[str], rows: list[int], keywords: Sequence[str]) -> None:
    """Zero the (phrase, keyword) cosines of acronym keyphrases, except where the keyword itself
    holds the acronym ("RAG" for "RAG", "GNN" for "GNN explainability")."""
    holding: dict[str, list[int]] = {}
    for j, keyword in enumerate(keywords):
        for word in set(keyword.lower().split()):
            holding.setdefault(word, []).append(j)
    kept = {
        (i, j): cosines[row, j] for i, row in enumerate(rows) for j in holding.get(phrases[i].lower(), ())
    }
    cosines[rows] = 0.0
    for (i, j), value in kept.items():
        cosines[rows[i], j] = value


def words_logit(tfidf: np.ndarray) -> np.ndarray:
    """The TF-IDF part of the relevance logit."""
    tfidf = np.clip(tfidf, 0, None)
    return W_WORDS * tfidf + W_SQRT_WORDS * np.sqrt(tfidf)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _lexical_matrix(
    token_lists: Sequence[Sequence[str]], keywords: Sequence[str], lexicon: Lexicon | None = None
) -> np.ndarray:
    """lexical(k, p) for all pairs, visiting only papers that contain some word of k: the
    postings count each paper's words of k, and for the papers holding every word a substring
    test on the space-joined tokens says whether they stand together as the phrase.
    `lexicon`: the papers' index, if already built."""
    lexicon = lexicon or Lexicon.of(token_lists)
    out = np.zeros((len(token_lists), len(keywords)), dtype=np.float32)
    present = np.zeros(len(token_lists), dtype=np.int32)  # per paper: words of k it holds
    for j, keyword in enumerate(keywords):
        words = tokens(keyword)
        unique = [lexicon.postings.get(w) for w in dict.fromkeys(words)]
        if not words or all(hits is None for hits in unique):
            continue
        for w in words:  # a repeated word counts each time, as lexical() does
            if (hits := lexicon.postings.get(w)) is not None:
                present[hits] += 1
        touched = np.unique(np.concatenate([h for h in unique if h is not None]))
        out[touched, j] = 0.5 * present[touched] / len(words)
        if all(hits is not None for hits in unique):
            holding_all = touched
            for hits in unique:
                holding_all = np.intersect1d(holding_all, hits, assume_unique=True)
            phrase = f" {' '.join(words)} "
            whole = [i for i in holding_all if len(words) == 1 or phrase in lexicon.joined[i]]
            out[whole, j] = 1.0
        present[touched] = 0
    return out


def trending(upvotes: np.ndarray) -> np.ndarray:
    """Upvotes on a 0..1 scale, log-compressed and capped so one viral paper cannot dominate."""
    return np.log1p(np.clip(upvotes, 0, UPVOTE_CAP)) / math.log1p(UPVOTE_CAP)


def excluded(matrix: ScoreMatrix, phrases: Sequence[str]) -> np.ndarray:
    """(P,) papers about one of the `exclude` phrases, not merely mentioning it."""
    ex = matrix.rows(phrases)
    relevance = matrix.relevance[ex]
    about = (relevance >= EXCLUDE_RELEVANCE) | (
        (relevance >= EXCLUDE_NEAR) & (matrix.keyphrase[ex] >= EXCLUDE_KEYPHRASE)
    )
    return about.any(axis=0)
