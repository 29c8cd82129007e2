"""Learning from the reader: "more / less like this" votes become a per-subscriber model.

For each subscriber with votes, a ridge-regression classifier over paper embeddings (the
least-squares cousin of the per-user logistic regression Scholar Inbox uses; closed form, so
thousands of readers are one batched solve): their up-votes are +UP_LABEL, their down-votes -1,
and a few of the day's papers drawn at random are weak negatives (BACKGROUND_LABEL), as in
Scholar Inbox's setup. Up-votes weigh more because they are rare: a reader who starts from a broad
keyword votes most of their first digests down, and the one paper they liked must not be drowned
by the "not this" of the rest (a class weight, as for any imbalanced classifier).

Solved in its dual form, (X Xᵀ + λI) a = y, w = Xᵀ a: the systems are as small as the number of
votes, whatever the embedding size, and their Gram matrices come from one product over the pool
of papers anyone voted on.

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


@dataclass(frozen=True)
class Votes:
    """One subscriber's votes, with the embeddings of the papers voted on."""

    paper_ids: tuple[str, ...]
    titles: tuple[str, ...]
    labels: np.ndarray  # (n,) +1 / -1
    vectors: np.ndarray  # (n, d), unit rows

    def __len__(self) -> int:
        return len(self.paper_ids)

    @property
    def down(self) -> frozenset[str]:
        return frozenset(p for p, y in zip(self.paper_ids, self.labels.tolist(), strict=True) if y < 0)

    @property
    def seen(self) -> frozenset[str]:
        """Papers voted on, either way: the reader has them already."""
        return frozenset(self.paper_ids)


@dataclass(frozen=True)
class Learned:
    """A subscriber's model applied to the day's papers."""

    share: float
    score: np.ndarray  # (P,) 0..1: how much the votes say they will like each paper
    votes: Votes
    paper_vectors: np.ndarray  # (P, d) the day's papers, for explanations on demand

    def like(self, index: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """For papers `index`: the cosine to the closest up-voted paper and its title (0 and
        "" without up-votes). Asked only of the few papers that need it."""
        liked = self.votes.labels > 0
        if not liked.any() or len(index) == 0:
            return np.zeros(len(index), dtype=np.float32), [""] * len(index)
        cos = self.votes.vectors[liked] @ self.paper_vectors[index].T  # (likes, k)
        titles = np.asarray(self.votes.titles, dtype=object)[liked]
        return cos.max(axis=0), titles[cos.argmax(axis=0)].tolist()


def share(n_votes: int) -> float:
    return MAX_SHARE * n_votes / (n_votes + HALF_AT)


def background(paper_vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """The day's weak negatives: the same few random papers for every reader."""
    if len(paper_vectors) == 0:
        return paper_vectors[:0]
    rng = np.random.default_rng(seed)
    take = rng.choice(len(paper_vectors), size=min(BACKGROUND, len(paper_vectors)), replace=False)
    return paper_vectors[np.sort(take)]


def fit(all_votes: Sequence[Votes], negatives: np.ndarray) -> np.ndarray:
    """(m, d) weights, one row per reader, from one batched dual ridge solve.

    Readers vote on papers from one shared pool, so the Gram matrices are gathered from the
    pool's own Gram (one matrix product), not built reader by reader."""
    if not all_votes:
        return np.zeros((0, negatives.shape[1] if negatives.ndim == 2 else 0), dtype=np.float32)
    rows: dict[str, int] = {}
    pool: list[np.ndarray] = []
    for votes in all_votes:
        for pid, vector in zip(votes.paper_ids, votes.vectors, strict=True):
            if pid not in rows:
                rows[pid] = len(pool)
                pool.append(vector)
    negative_rows = list(range(len(pool), len(pool) + len(negatives)))
    vectors = np.vstack([np.asarray(pool, dtype=np.float32).reshape(len(pool), -1), negatives]).astype(
        np.float32
    )
    n = max(len(v) for v in all_votes) + len(negatives)
    # padding points at an all-zero row, so it adds nothing but λ on its diagonal
    vectors = np.vstack([vectors, np.zeros((1, vectors.shape[1]), dtype=np.float32)])
    pad = len(vectors) - 1
    index = np.full((len(all_votes), n), pad, dtype=np.int64)
    y = np.zeros((len(all_votes), n), dtype=np.float32)
    for i, votes in enumerate(all_votes):
        k = len(votes)
        index[i, :k] = [rows[p] for p in votes.paper_ids]
        y[i, :k] = np.where(votes.labels > 0, UP_LABEL, votes.labels)
        index[i, k : k + len(negatives)] = negative_rows
        y[i, k : k + len(negatives)] = BACKGROUND_LABEL
    shared = vectors @ vectors.T  # the pool's Gram matrix, once
    gram = shared[index[:, :, None], index[:, None, :]] + RIDGE * np.eye(n, dtype=np.float32)
    alpha = np.linalg.solve(gram, y[..., None])[..., 0]
    return np.einsum("mn,mnd->md", alpha, vectors[index], optimize=True)


def apply(
    weights: np.ndarray, all_votes: Sequence[Votes], paper_vectors: np.ndarray, paper_ids: Sequence[str]
) -> list[Learned]:
    """Each reader's model on the day's papers: one matrix product for every reader."""
    raw = weights @ paper_vectors.T  # (m, P)
    position = {pid: i for i, pid in enumerate(paper_ids)}
    # stretched over the day's papers the reader has not voted on: their favourite of the day is
    # 1, the least liked 0, so the share is the most votes can move a paper on any day
    span = raw.copy()
    for row, votes in enumerate(all_votes):
        voted = [position[p] for p in votes.paper_ids if p in position]
        if len(voted) < raw.shape[1]:  # a reader who voted on every paper: stretched over all
            span[row, voted] = np.nan
    if raw.shape[1]:
        low, high = np.nanmin(span, axis=1, keepdims=True), np.nanmax(span, axis=1, keepdims=True)
        scores = np.clip((raw - low) / np.maximum(high - low, 1e-6), 0.0, 1.0).astype(np.float32)
    else:
        scores = raw.astype(np.float32)
    return [
        Learned(share(len(votes)), score, votes, paper_vectors)
        for votes, score in zip(all_votes, scores, strict=True)
    ]
