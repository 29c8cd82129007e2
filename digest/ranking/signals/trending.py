"""Community upvotes (the Daily Papers' count) as a true share of the score, for a subscriber who
asks for it (`trending_weight` w): score = (1 - w) * relevance + w * trending."""

from __future__ import annotations

import numpy as np

from .base import Reader, Signal


class Trending(Signal):
    def __init__(self, weight: float, upvote_scale: np.ndarray):
        self.weight, self.upvote_scale = weight, upvote_scale

    @classmethod
    def of(cls, reader: Reader) -> Trending | None:
        weight = reader.subscriber.trending_weight
        return cls(weight, reader.upvote_scale) if weight else None

    def score(self, score: np.ndarray) -> np.ndarray:
        return (1 - self.weight) * score + self.weight * self.upvote_scale
