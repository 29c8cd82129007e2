"""Ranking: which papers each subscriber gets, in what order, and why.

For every paper we have its embedding (title + abstract), its title's embedding, its keyphrases
(digest.keyphrases, with their embeddings) and a TF-IDF vector fitted on the run's papers. For a
keyword k and a paper p, two numbers in 0..1::

    s(k, p) = W_DOC * cos(k, p) + W_PHRASE * max cos(k, keyphrase) + W_LEX * lexical(k, p)
    r(k, p) = sigmoid(W_WORDS * t + W_SQRT_WORDS * sqrt(t) + W_PAPER_COS * cos(k, p)
                      + W_TITLE_COS * cos(k, title) - KEYWORD_MIDPOINT),   t = tfidf(k, p)

s is evidence: it decides eligibility and which keywords are shown as "matched". r is relevance,
a logistic model fitted on author keywords: what the order and min_score use. A subscriber's own
papers (`Profile`, the newest PROFILE_MAX) are one more interest, with

    r(own, p) = sigmoid((nearness(p) - PROFILE_MIDPOINT) / PROFILE_SCALE
                        + W_PROFILE_WORDS * (W_WORDS * t + W_SQRT_WORDS * sqrt(t))),
                t = tfidf(their papers' text, p)

where nearness is the mean cosine of the PROFILE_TOP_K own papers closest to p; a paper is on
topic for them at nearness PROFILE_FLOOR and names the closest one (`close_to`). Then::

    relevance(p) = max over interests of r          one square hit beats brushing every interest
    score(p)     = (1 - w) * relevance(p) + w * trending(upvotes of p)          in 0..1

with w the subscriber's trending_weight (votes, when there are some, are blended into relevance:
digest.learn). A paper is eligible when it is on topic for some interest and about no `exclude`
phrase (`excluded`); papers already sent never come back (`Signals`). Selection keeps a fair share
per interest.

Speed: s and r are matrices for the union of a block of subscribers' keywords (`score_matrix`;
blocks of bounded size, so memory stays bounded however many subscribers there are); a
subscriber is then the max over a few of its rows and a sort (`select`). Keyphrases cost one
pass of the model per new paper plus a short list of its phrases (digest.keyphrases).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..models import Paper, Ranked, Subscriber
from ..text import words
from . import keyphrases
from .embed import Embedder, normalize, text_hash
from .learn import LIKE_FLOOR, Learned, Votes, apply, background, fit

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
# Own papers: the mean cosine of the 4 closest of the newest 50, plus a tenth of their words'
# TF-IDF logit: the setting 5-fold cross-validation over researchers chose most often on
# reviewer_gold_standard (benchmarks/rank_quality.py). Relevance 0.5 at the top 1 % of arXiv cs
# papers against a researcher's papers, on the keywords' slope.
PROFILE_MAX, PROFILE_TOP_K, W_PROFILE_WORDS = 50, 4, 0.1
PROFILE_MIDPOINT, PROFILE_SCALE = 0.59, 0.055
PROFILE_FLOOR = 0.45  # nearness at which a paper is on topic for its author (~ top 5 % of cs)
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
VOTED_FLOOR = 0.7  # the reader's model is fairly sure: enough to bring in a paper no keyword hit

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


# --- scoring (pure) -----------------------------------------------------------------------


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
    if len(features.phrase_vectors):
        # phrase rows are grouped paper by paper: one reduceat takes each paper's best phrase
        owners, starts = np.unique(features.phrase_owner, return_index=True)
        best = np.maximum.reduceat(features.phrase_vectors @ keyword_vectors.T, starts, axis=0)
        phrase[:, owners] = best.T
    lex = _lexical_matrix(features.token_lists, keywords, features.lexicon).T
    # cosines below 0 mean "unrelated", not "less than unrelated": clipped, so s stays in 0..1
    evidence = W_DOC * np.clip(doc, 0, 1) + W_PHRASE * np.clip(phrase, 0, 1) + W_LEX * lex
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


def tfidf_similarity(features: PaperFeatures, texts: Sequence[str]) -> np.ndarray:
    """(len(texts), P) cosines of the texts and the papers in the papers' TF-IDF space (zeros
    when no TF-IDF was fitted)."""
    if features.tfidf is None:
        return np.zeros((len(texts), len(features.papers)))
    return (features.tfidf.transform(texts) @ features.tfidf_matrix.T).toarray()


def words_logit(tfidf: np.ndarray) -> np.ndarray:
    """The TF-IDF part of the relevance logit."""
    tfidf = np.clip(tfidf, 0, None)
    return W_WORDS * tfidf + W_SQRT_WORDS * np.sqrt(tfidf)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


# --- a researcher's own papers ------------------------------------------------------------------


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


# --- one subscriber: blend, eligibility, picks ------------------------------------------------


@dataclass(frozen=True)
class Signals:
    """What we know of one subscriber beyond subscribers.yaml: the one place such evidence
    enters the ranking: papers already mailed to them, and their votes (digest.learn)."""

    sent_ids: frozenset[str] | set[str] = frozenset()
    votes: Votes | None = None


@dataclass(frozen=True)
class Blend:
    """A subscriber's view of the day: per paper, its best interest and the score parts. The
    interests are their keywords, then their own papers (one interest) when they gave some."""

    relevance_rows: np.ndarray  # (interests, P) r per interest: the best one is a paper's interest
    on_topic: np.ndarray  # (P,) some keyword's evidence or the nearness to own papers is clear
    relevance: np.ndarray  # (P,) max over interests of r
    trending: np.ndarray  # (P,) 0..1
    score: np.ndarray  # (P,) (1 - w) * relevance + w * trending, in 0..1


def blend(
    subscriber: Subscriber,
    matrix: ScoreMatrix,
    upvote_scale: np.ndarray,
    learned: Learned | None = None,
    own: ProfileMatch | None = None,
) -> Blend:
    """The score: the subscriber's best interest (and, with votes, what they taught us, by the
    share digest.learn allows), plus `trending_weight` as a true share."""
    index = matrix.rows(subscriber.keywords)
    relevance_rows = matrix.relevance[index]
    on_topic = (matrix.evidence[index] >= MATCH_FLOOR).any(axis=0)
    if own is not None:
        relevance_rows = np.vstack([relevance_rows, own.relevance[None, :]])
        on_topic |= own.nearness >= PROFILE_FLOOR
    relevance = relevance_rows.max(axis=0)
    if learned is not None and learned.share:
        relevance = (1 - learned.share) * relevance + learned.share * learned.score
    w = subscriber.trending_weight
    score = (1 - w) * relevance + w * upvote_scale if w else relevance
    return Blend(
        relevance_rows=relevance_rows,
        on_topic=on_topic,
        relevance=relevance,
        trending=upvote_scale,
        score=score,
    )


def eligible(
    subscriber: Subscriber,
    features: PaperFeatures,
    matrix: ScoreMatrix,
    view: Blend,
    signals: Signals,
    *,
    every: bool = False,
    learned: Learned | None = None,
) -> np.ndarray:
    """Which papers may be picked: on topic (some keyword's evidence reaches MATCH_FLOOR, the
    paper is near the subscriber's own papers, or their votes say so: close to a paper they
    liked and liked by their model; and the score reaches min_score; `every` waives both), not
    about an `exclude`, never sent, never voted on (a paper voted down never comes back; one
    voted up has been read)."""
    n = len(features.papers)
    on_topic = view.on_topic.copy()
    if learned is not None and learned.share:
        sure = np.flatnonzero((learned.score >= VOTED_FLOOR) & ~on_topic)
        on_topic[sure[learned.like(sure)[0] >= LIKE_FLOOR]] = True
    mask = np.ones(n, dtype=bool) if every else on_topic & (view.score >= subscriber.min_score)
    for seen in (signals.sent_ids, signals.votes.seen if signals.votes is not None else ()):
        _drop(mask, features, seen)  # sent, or voted on up or down: the reader has seen it
    if subscriber.exclude:
        mask &= ~excluded(matrix, subscriber.exclude)
    return mask


def _drop(mask: np.ndarray, features: PaperFeatures, ids: Collection[str]) -> None:
    """Unmark the papers among `ids`, walking whichever is shorter: the ids or the day's papers."""
    if len(ids) < len(features.papers):
        mask[[i for pid in ids if (i := features.position.get(pid)) is not None]] = False
    elif ids:
        mask &= np.array([p.id not in ids for p in features.papers])


def excluded(matrix: ScoreMatrix, phrases: Sequence[str]) -> np.ndarray:
    """(P,) papers about one of the `exclude` phrases, not merely mentioning it."""
    ex = matrix.rows(phrases)
    relevance = matrix.relevance[ex]
    about = (relevance >= EXCLUDE_RELEVANCE) | (
        (relevance >= EXCLUDE_NEAR) & (matrix.keyphrase[ex] >= EXCLUDE_KEYPHRASE)
    )
    return about.any(axis=0)


def select(
    subscriber: Subscriber,
    features: PaperFeatures,
    matrix: ScoreMatrix,
    *,
    limit: int | None = None,
    signals: Signals = Signals(),  # noqa: B008 - frozen, shared safely
    upvote_scale: np.ndarray | None = None,
    learned: Learned | None = None,
    profile: Profile | None = None,
    own: ProfileMatch | None = None,
) -> list[Ranked]:
    """The subscriber's papers, best first. `limit=None` applies their max_papers and min_score
    and the per-interest quota; `limit=0` returns every eligible paper, scored. `own` is how the
    day stands against their `profile` (computed here when not given)."""
    keywords = list(subscriber.keywords)
    if profile is not None and own is None:
        own = match_profile(features, profile)
    if not (keywords or own is not None) or not features.papers:
        return []
    if upvote_scale is None:
        upvote_scale = trending(np.array([p.upvotes or 0 for p in features.papers], dtype=np.float32))
    view = blend(subscriber, matrix, upvote_scale, learned, own)
    mask = eligible(subscriber, features, matrix, view, signals, every=limit == 0, learned=learned)
    candidates = np.flatnonzero(mask)
    order = candidates[np.argsort(-view.score[candidates], kind="stable")]  # ties: arrival order
    if limit == 0:
        chosen = order.tolist()
    else:
        cap = subscriber.max_papers if limit is None else limit
        interests = view.relevance_rows[:, order].argmax(axis=0)  # only for the few eligible
        pairs = list(zip(order.tolist(), interests.tolist(), strict=True))
        chosen = select_diverse(pairs, cap, n_interests=len(view.relevance_rows))
    # plain Python numbers from here: a few picks, and numpy scalars are slow one by one
    labels = keywords + [
        p for p in (profile.phrases if profile else ()) if p not in keywords and p in matrix.index
    ]
    per_label = matrix.evidence[matrix.rows(labels)][:, chosen].T.tolist()
    liked_like = _liked_like(learned, chosen)
    return [
        Ranked(
            features.papers[i],
            round(score, 4),
            tuple(
                k for s_k, k in sorted(zip(column, labels, strict=True), reverse=True) if s_k >= MATCH_FLOOR
            ),
            features.keyphrases[i],
            relevance=round(relevance, 4),
            trending=round(trend, 4),
            liked_like=like,
            close_to=_close_to(profile, own, i),
        )
        for i, score, relevance, trend, column, like in zip(
            chosen,
            view.score[chosen].tolist(),
            view.relevance[chosen].tolist(),
            view.trending[chosen].tolist(),
            per_label,
            liked_like,
            strict=True,
        )
    ]


def _close_to(profile: Profile | None, own: ProfileMatch | None, i: int) -> str | None:
    """The title of the subscriber's own paper this one is nearest, when it is near enough."""
    if profile is None or own is None or own.nearness[i] < PROFILE_FLOOR:
        return None
    return profile.titles[int(own.closest[i])] or None


def _liked_like(learned: Learned | None, chosen: list[int]) -> list[str | None]:
    """For each chosen paper, the up-voted paper it resembles, when the votes are what lifted it
    (one product for the few picks the model is sure of)."""
    out: list[str | None] = [None] * len(chosen)
    if learned is None or not learned.share:
        return out
    sure = [n for n, i in enumerate(chosen) if learned.score[i] >= VOTED_FLOOR]
    if sure:
        cosines, titles = learned.like(np.array([chosen[n] for n in sure]))
        for n, cos, title in zip(sure, cosines.tolist(), titles, strict=True):
            out[n] = title if cos >= LIKE_FLOOR and title else None
    return out


def select_diverse(ranked: Sequence[tuple[int, int]], cap: int, n_interests: int) -> list[int]:
    """From (item, interest) pairs, best first: at most a fair share per interest while other
    interests still have items to give; leftover slots go to the next best. `ranked` holds
    every eligible item, so an interest that ranks below a crowd still gets its share."""
    quota = max(2, math.ceil(cap * 0.6)) if n_interests > 1 else cap
    head = [interest for _, interest in ranked[:cap]]
    if not head or max(head.count(i) for i in set(head)) <= quota:  # nobody crowded out: the best cap
        return [item for item, _ in ranked[:cap]]
    taken: list[int] = []
    per_interest: dict[int, int] = {}
    overflow: list[int] = []
    for item, interest in ranked:
        if len(taken) >= cap:
            break
        if per_interest.get(interest, 0) >= quota:
            if len(overflow) < cap:
                overflow.append(item)
            continue
        per_interest[interest] = per_interest.get(interest, 0) + 1
        taken.append(item)
    taken += overflow[: cap - len(taken)]
    position = {item: rank for rank, (item, _) in enumerate(ranked)}
    return sorted(taken, key=position.__getitem__)


def rank_subscribers(
    subscribers: Sequence[Subscriber],
    features: PaperFeatures,
    embed_keywords: Embedder,
    *,
    limit: int | None = None,
    signals: dict[str, Signals] | None = None,
    profiles: dict[str, Profile] | None = None,
) -> dict[str, list[Ranked]]:
    """Every subscriber's ranking, a block of subscribers at a time: one score matrix over all
    the block's keywords (and the phrases distilled from their own papers, for chips), and their
    `profiles` if any. Blocks keep memory bounded whatever the number of subscribers."""
    profiles = profiles or {}
    signals = signals or {}
    upvotes = trending(np.array([p.upvotes or 0 for p in features.papers], dtype=np.float32))
    ranked: dict[str, list[Ranked]] = {}
    voting = {sid for sid, v in signals.items() if v.votes}
    if voting and len(features.papers):  # the same for every block: worked out once
        negatives, ids = background(features.vectors), [p.id for p in features.papers]
    for block, block_keywords in _blocks(subscribers, profiles, len(features.papers), voting):
        keywords = sorted(block_keywords)
        vectors = embed_keywords.encode(keywords) if keywords else np.zeros((0, features.vectors.shape[1]))
        matrix = score_matrix(features, keywords, vectors)
        voters = [s.id for s in block if s.id in voting]
        learned: dict[str, Learned] = {}
        if voters and len(features.papers):
            votes = [signals[sid].votes for sid in voters]
            weights = fit(votes, negatives)  # one batched solve for the block
            learned = dict(zip(voters, apply(weights, votes, features.vectors, ids), strict=True))
        for s in block:
            ranked[s.id] = select(
                s,
                features,
                matrix,
                limit=limit,
                signals=signals.get(s.id, Signals()),
                upvote_scale=upvotes,
                learned=learned.get(s.id),
                profile=profiles.get(s.id),
            )
    return {s.id: ranked[s.id] for s in subscribers}


# (keyword, paper) cells scored at once: a block of subscribers holds at most this many in each
# of its matrices (~16 MB in float32 at 4M), and at most as many (voter, paper) cells of learned
# scores, so memory stays bounded whatever the number of subscribers.
BLOCK_CELLS = 4_000_000


def _keywords_of(subscriber: Subscriber, profile: Profile | None) -> set[str]:
    return {*subscriber.keywords, *subscriber.exclude, *(profile.phrases if profile else ())}


def _blocks(
    subscribers: Sequence[Subscriber],
    profiles: dict[str, Profile],
    n_papers: int,
    voting: Collection[str] = frozenset(),
) -> Iterator[tuple[list[Subscriber], set[str]]]:
    """Blocks of subscribers, each with its distinct keywords: those keywords, and the block's
    readers with votes, each stay within BLOCK_CELLS // n_papers (a subscriber with more keywords
    than that is a block alone). Subscribers with the same keywords go side by side, so that
    blocks share keywords' rows."""
    budget = max(1, BLOCK_CELLS // max(n_papers, 1))
    keyed = sorted(
        ((sorted(_keywords_of(s, profiles.get(s.id))), s) for s in subscribers), key=lambda p: p[0]
    )
    block: list[Subscriber] = []
    seen: set[str] = set()
    voters = 0
    for own, s in keyed:
        votes = s.id in voting
        if block and (len(seen.union(own)) > budget or voters + votes > budget):
            yield block, seen
            block, seen, voters = [], set(), 0
        block.append(s)
        seen.update(own)
        voters += votes
    if block:
        yield block, seen


# --- profiles from a researcher's own papers ------------------------------------------------

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
