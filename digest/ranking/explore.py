"""The exploration slot: one paper a digest outside the reader's usual picks, asked about.

A reader's votes only teach their model about what it already shows them. A reader who starts
from a broad keyword and votes most of their first digests down has a model that knows only
"not this", and its digests narrow around what they did not want. Scholar Inbox answers this
cold start with active learning: ask about the paper whose vote would teach the model most.
We do the same, in one slot (uncertainty sampling, the simplest form of it):

    pool     the POOL best-scored papers outside the rest of the digest that the reader could
             be sent (no veto, in their categories), on topic or not
    pick     the one whose vote the model is least sure of: the learned score nearest the
             model's own boundary between their up- and down-votes (learn.judge); with
             down-votes only, the one it finds least like them (the highest learned score);
             with up-votes only, the one nearest the middle of the day's scores; without votes
             (explore: true), the one whose best keyword evidence is nearest the on-topic floor

It takes the digest's last place, labeled "Something different: does it fit?" with both vote
links, so the digest never grows. On by default once a reader has voted (the slot has a model
to teach); `explore: false` turns it off, `explore: true` turns it on before the first vote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..models import Subscriber
from .scores import MATCH_FLOOR
from .signals.base import Reader

# how far down the day's ranking the slot looks, past the rest of the digest: near enough to
# their interests that a vote on it says something about them. In benchmarks/feedback_bench.py's
# simulation 5 did best of 5, 10 and 20 on paper orders 7, 1, 2, 3, 4 (checked on all ten), after
# 30 and 100 had lost to 10 on orders 7, 1, 2: the deeper the pool, the lower the gain after 20
# votes and the worse the worst reader.
POOL = 5


def wanted(subscriber: Subscriber, has_votes: bool) -> bool:
    """Whether this reader's digest has the slot: as they say, else once they have voted."""
    return has_votes if subscriber.explore is None else subscriber.explore


def pick(reader: Reader, order: Sequence[int], taken: Sequence[int]) -> int | None:
    """The paper for the slot, from `order` (every paper the reader may be sent, best score
    first) leaving out `taken` (the rest of their digest); None when there is no candidate."""
    taken_set = set(taken)
    pool = np.array([i for i in order if i not in taken_set][:POOL], dtype=np.int64)
    if not len(pool):
        return None
    learned = reader.learned
    if learned is not None and len(learned.votes):
        score = learned.score[pool]
        liked = bool((learned.votes.labels > 0).any())
        if not math.isnan(learned.boundary):
            doubt = -np.abs(score - learned.boundary)
        elif liked:
            doubt = -np.abs(score - 0.5)
        else:
            doubt = score
    else:
        rows = reader.matrix.rows(reader.subscriber.keywords)
        if not len(rows):
            return int(pool[0])
        best = reader.matrix.evidence[rows][:, pool].max(axis=0)
        doubt = -np.abs(best - MATCH_FLOOR)
    return int(pool[int(np.argmax(doubt))])  # ties: the better-scored paper (pool order)
