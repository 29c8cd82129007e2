"""Learning from the reader: "more / less like this" votes become a per-subscriber model.

For each subscriber with votes, a ridge-regression classifier over paper embeddings (the
least-squares cousin of the per-user logistic regression Scholar Inbox uses; closed form, so
thousands of readers are one batched solve): their up-votes are +UP_LABEL, their down-votes -1,
and a few of the day's papers drawn at random are weak negatives (BACKGROUND_LABEL), as in
Scholar Inbox's setup. Up-votes weigh more because they are rare: a reader who starts from a broad
keyword votes most of their first digests down, and the one paper they liked must not be drowned
by the "not this" of the rest (a class weight, as for any imbalanced classifier).

Solved in its dual form, (X Xᵀ + λI) a = y, w = Xᵀ a: the systems are as small as the number of
votes, whatever the embedding size. Memory stays bounded whatever the readers do: the model
learns from each reader's newest MAX_VOTES votes only (every vote still keeps its paper out of
their digests), and readers are solved in groups of similar history length whose systems hold at
most FIT_CELLS numbers, so one keen voter neither pads everyone else's systems nor grows a group
past the budget.

How much it counts grows with the votes and never takes over (the rule the README states)::

    share(n) = MAX_SHARE * n / (n + HALF_AT)        0 without votes; 0.08 at 1; 0.25 at 5; 0.4 at 20
    relevance' = (1 - share) * relevance + share * learned
    learned    = the model's output over the day's papers, stretched to 0..1 (best paper 1)

so a reader who never votes ranks exactly as before, and a handful of votes cannot bury the
interests they wrote down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_SHARE = 0.5  # votes may at most weigh as much as the stated interests
HALF_AT = 5  # votes at which they reach half of that: a few votes already count
RIDGE = 1.0  # λ: with few votes, stay close to "no opinion"
BACKGROUND = 20  # random papers of the day as weak negatives
BACKGROUND_LABEL = -0.3  # unlabelled, most likely uninteresting, but not a "no"
# An up-vote's label: 4 was the best of 1, 2, 3, 4, 6 and 8 on five paper orders of
# benchmarks/feedback_bench.py's simulated readers (6 and 8 did no better), and held on five
# others; over all ten, the gain after 20 votes is +0.114 against +0.090 with +1.
UP_LABEL = 4.0
LIKE_FLOOR = 0.5  # cosine to a liked paper from which "like 'Title' you marked" is said
# The model learns from a reader's newest MAX_VOTES votes; older ones still keep their papers out
# of the digest and still count in share(). A keen reader's years of clicks must not blow up the
# morning run, nor the embeddings read for them (Ranker.votes reads the newest only). 400 is the
# smallest of 50, 100, 200, 300 and 400 that loses nothing measurable in section 3 of
# benchmarks/feedback_bench.py (readers voting on 20 papers a day for 27 days, up to 520 votes):
# nDCG@10 -0.0006 ± 0.0014 against learning from every vote on the days it binds, where 300 lost
# -0.0071 ± 0.0013 and 200 -0.0154 ± 0.0024. Those readers never change their mind; real ones
# drift, which the simulation cannot show and which would favour the newest votes.
MAX_VOTES = 400
# Numbers a group of readers solved together may hold: readers x n x (n + d), their padded systems
# (n x n) and their gathered paper vectors (n x d), n the group's longest history plus the weak
# negatives; 4 MB in float32. In benchmarks/feedback_bench.py, 10,000 readers with 50 votes and 10
# with 5,000 fit in 2.57 s and 31 MB more at this budget (since each fit also inverts its systems
# for the votes' clarity): about as fast as from 250,000 to 64,000,000 (2.34 to 3.32 s), with less
# memory than from 4,000,000 up (62 MB; 413 MB at 64,000,000).
FIT_CELLS = 1_000_000
CLEAR_SHARE = 1.0  # votes that speak clearly may weigh up to this (`share`)
CLEAR_HALF_AT = 2  # votes of the rarer kind at which clarity is half believed (`judge`)
# clarity grows as (2 AUC - 1) ** CLARITY_POWER: the first sign that the votes can be told apart
# counts most. 0.25 was the best of 1, 0.5 and 0.25 both in benchmarks/feedback_bench.py's
# simulated readers (gain after 20 votes +0.130, +0.140, +0.144; the worst reader's gain from day 3
# on -0.009, -0.006, -0.006) and in its two-reader case (the voter's day-2 top 10: 8.5, 9.4, 9.5
# papers they like, held-out orders; logistic regression 9.5)
CLARITY_POWER = 0.25
UNCLEAR = 0.7  # what is left of the count's share for votes their model cannot tell apart


@dataclass(frozen=True)
class Votes:
    """One subscriber's votes, oldest first, with the embeddings of the papers voted on: those
    the model learns from, and the ids of any older ones left out of it (`earlier`)."""

    paper_ids: tuple[str, ...]
    titles: tuple[str, ...]
    labels: np.ndarray  # (n,) +1 / -1
    vectors: np.ndarray  # (n, d), unit rows
    earlier: frozenset[str] = frozenset()  # voted on before these: not learned from, still seen

    def __len__(self) -> int:
        return len(self.paper_ids)

    @property
    def cast(self) -> int:
        """Every vote the reader cast, learned from or not."""
        return len(self.seen)

    def newest(self, n: int) -> Votes:
        """The newest `n` votes to learn from; the older ones' papers stay seen."""
        if len(self) <= n:
            return self
        old = len(self) - n
        return Votes(
            self.paper_ids[old:],
            self.titles[old:],
            self.labels[old:],
            self.vectors[old:],
            self.earlier.union(self.paper_ids[:old]),
        )

    @property
    def seen(self) -> frozenset[str]:
        """Papers voted on, either way and however long ago: the reader has them already."""
        return self.earlier.union(self.paper_ids)


@dataclass(frozen=True)
class Learned:
    """A subscriber's model applied to the day's papers."""

    share: float
    score: np.ndarray  # (P,) 0..1: how much the votes say they will like each paper
    votes: Votes
    paper_vectors: np.ndarray  # (P, d) the day's papers, for explanations on demand
    clarity: float = 0.0  # 0..1: how clearly the votes speak (`judge`)
    boundary: float = float("nan")  # the score halfway between their ups and downs (NaN: one kind)

    def like(self, index: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """For papers `index`: the cosine to the closest up-voted paper and its title (0 and
        "" without up-votes). Asked only of the few papers that need it."""
        liked = self.votes.labels > 0
        if not liked.any() or len(index) == 0:
            return np.zeros(len(index), dtype=np.float32), [""] * len(index)
        cos = self.votes.vectors[liked] @ self.paper_vectors[index].T  # (likes, k)
        titles = np.asarray(self.votes.titles, dtype=object)[liked]
        return cos.max(axis=0), titles[cos.argmax(axis=0)].tolist()


def share(n_votes: int, clarity: float = 0.0) -> float:
    """The weight of the votes: n_votes counts every vote cast (Votes.cast), not only the newest
    MAX_VOTES the model learns from, so the cap bounds memory without changing the weight (which
    is within 0.03 of MAX_SHARE from a hundred votes on anyway). Votes that speak clearly
    (`judge`) take it further, toward CLEAR_SHARE."""
    by_count = MAX_SHARE * n_votes / (n_votes + HALF_AT)
    return by_count * (UNCLEAR + (1 - UNCLEAR) * clarity) + clarity * (CLEAR_SHARE - by_count)


def background(paper_vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """The day's weak negatives: the same few random papers for every reader."""
    if len(paper_vectors) == 0:
        return paper_vectors[:0]
    rng = np.random.default_rng(seed)
    take = rng.choice(len(paper_vectors), size=min(BACKGROUND, len(paper_vectors)), replace=False)
    return paper_vectors[np.sort(take)]


@dataclass(frozen=True)
class Fitted:
    """Readers' models, one row each: the weights, how clearly their votes speak (0..1) and the
    model's raw output halfway between their up- and down-votes (NaN with one kind only)."""

    weights: np.ndarray  # (m, d)
    clarity: np.ndarray  # (m,)
    boundary: np.ndarray  # (m,)


def fit(all_votes: Sequence[Votes], negatives: np.ndarray, budget: int = FIT_CELLS) -> Fitted:
    """Each reader's model from their newest MAX_VOTES votes and the day's weak negatives, solved
    a group of readers at a time (`groups`)."""
    d = negatives.shape[1] if negatives.ndim == 2 else 0
    weights = np.zeros((len(all_votes), d), dtype=np.float32)
    clarity = np.zeros(len(all_votes), dtype=np.float32)
    boundary = np.full(len(all_votes), np.nan, dtype=np.float32)
    kept = [votes.newest(MAX_VOTES) for votes in all_votes]
    for group in groups([len(votes) for votes in kept], len(negatives), d, budget):
        weights[group], clarity[group], boundary[group] = _solve([kept[i] for i in group], negatives)
    return Fitted(weights, clarity, boundary)


def groups(lengths: Sequence[int], extra: int, d: int, budget: int = FIT_CELLS) -> list[np.ndarray]:
    """Readers (their indices) to solve together: sorted by history length, so that few are
    padded much, and cut so that each group's readers x n x (n + d) stays within `budget`, n its
    longest history plus `extra` weak negatives (a reader over the budget alone is a group alone,
    and MAX_VOTES bounds that)."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    cut: list[np.ndarray] = []
    start = 0
    for end in range(1, len(order)):
        n = lengths[order[end]] + extra  # the longest so far: sorted
        if (end - start + 1) * n * (n + d) > budget:
            cut.append(order[start:end])
            start = end
    if len(order):
        cut.append(order[start:])
    return cut


def _solve(group: Sequence[Votes], negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(m, d) weights of one group from one batched dual ridge solve: each reader's votes, then
    the weak negatives, padded with zero rows to the group's longest history (a zero row adds
    nothing but λ on its diagonal, so padding leaves each reader's solution as it was); and each
    reader's clarity and boundary (`judge`), read off the same inverse."""
    n = max(len(votes) for votes in group) + len(negatives)
    x = np.zeros((len(group), n, negatives.shape[1]), dtype=np.float32)
    y = np.zeros((len(group), n), dtype=np.float32)
    for i, votes in enumerate(group):
        k = len(votes)
        x[i, :k] = votes.vectors
        x[i, k : k + len(negatives)] = negatives
        y[i, :k] = np.where(votes.labels > 0, UP_LABEL, votes.labels)
        y[i, k : k + len(negatives)] = BACKGROUND_LABEL
    gram = x @ x.transpose(0, 2, 1)  # each reader's X Xᵀ
    gram[:, np.arange(n), np.arange(n)] += RIDGE
    inverse = np.linalg.inv(gram)
    alpha = np.einsum("mij,mj->mi", inverse, y)
    # leave-one-out outputs in closed form: y_i - a_i / [(K + λI)⁻¹]_ii, no refit per vote
    held_out = y - alpha / np.diagonal(inverse, axis1=1, axis2=2)
    longest = max(len(votes) for votes in group)
    labels = np.zeros((len(group), longest), dtype=np.float32)  # 0: padding, neither up nor down
    for i, votes in enumerate(group):
        labels[i, : len(votes)] = votes.labels
    clarity, boundary = judge(labels, held_out[:, :longest])
    return np.einsum("mn,mnd->md", alpha, x), clarity, boundary


def judge(labels: np.ndarray, held_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How clearly a reader's votes speak, and where their model divides "yes" from "no".

    clarity: how well the model, fitted without a vote, tells that vote's sign (the area under
    the ROC curve of the leave-one-out outputs, up-votes against down-votes, rescaled so that
    chance is 0 and perfect order 1), times how many votes of the rarer kind back it
    (m / (m + CLEAR_HALF_AT)): ten consistent up-votes against thirty downs speak clearly;
    two, or votes the model cannot tell apart (a reader of mixed tastes), do not.
    boundary: halfway between the mean held-out output of the up-votes and of the down-votes
    (NaN with one kind only): the exploration slot looks for papers near it.

    Rows are readers (labels +1 / -1, 0 for padding), judged at once: (m,) clarity, (m,) boundary."""
    labels, held_out = np.atleast_2d(labels), np.atleast_2d(held_out).astype(np.float64)
    up, down = labels > 0, labels < 0
    n_up, n_down = up.sum(axis=1), down.sum(axis=1)
    pairs = up[:, :, None] & down[:, None, :]  # (m, k, k): each up-vote against each down-vote
    above = held_out[:, :, None] - held_out[:, None, :]
    wins = (((above > 0) + 0.5 * (above == 0)) * pairs).sum(axis=(1, 2))
    both = (n_up > 0) & (n_down > 0)
    auc = np.where(both, wins / np.maximum(n_up * n_down, 1), 0.5)
    rarer = np.minimum(n_up, n_down)
    clarity = np.maximum(0.0, 2 * auc - 1) ** CLARITY_POWER * rarer / (rarer + CLEAR_HALF_AT)
    mean_up = (held_out * up).sum(axis=1) / np.maximum(n_up, 1)
    mean_down = (held_out * down).sum(axis=1) / np.maximum(n_down, 1)
    boundary = np.where(both, (mean_up + mean_down) / 2, np.nan)
    return clarity.astype(np.float32), boundary.astype(np.float32)


def apply(
    fitted: Fitted, all_votes: Sequence[Votes], paper_vectors: np.ndarray, paper_ids: Sequence[str]
) -> list[Learned]:
    """Each reader's model on the day's papers: one matrix product for every reader. Their
    Learned keeps the newest MAX_VOTES votes (the ones `like` looks through); the share counts
    them all, and grows with their clarity."""
    all_votes = [votes.newest(MAX_VOTES) for votes in all_votes]
    raw = fitted.weights @ paper_vectors.T  # (m, P)
    position = {pid: i for i, pid in enumerate(paper_ids)}
    # stretched over the day's papers the reader has not voted on: their favourite of the day is
    # 1, the least liked 0, so the share is the most votes can move a paper on any day
    span = raw.copy()
    for row, votes in enumerate(all_votes):
        voted = [position[p] for p in votes.seen if p in position]
        if len(voted) < raw.shape[1]:  # a reader who voted on every paper: stretched over all
            span[row, voted] = np.nan
    if raw.shape[1]:
        low, high = np.nanmin(span, axis=1, keepdims=True), np.nanmax(span, axis=1, keepdims=True)
        width = np.maximum(high - low, 1e-6)
        scores = np.clip((raw - low) / width, 0.0, 1.0).astype(np.float32)
        boundary = ((fitted.boundary[:, None] - low) / width)[:, 0]
    else:
        scores, boundary = raw.astype(np.float32), fitted.boundary
    return [
        Learned(share(votes.cast, float(clear)), score, votes, paper_vectors, float(clear), float(edge))
        for votes, score, clear, edge in zip(all_votes, scores, fitted.clarity, boundary, strict=True)
    ]
