"""What a reader's "more / less like this" votes taught their model (digest.ranking.learn): the
relevance moves toward the model's output by the share their votes have earned; a paper the model
is fairly sure of (VOTED_FLOOR) and that resembles one they liked is on topic even when no keyword
matched, and says so ("It is like 'Title', which you marked", `liked_like`)."""

from __future__ import annotations

import numpy as np

from ..learn import LIKE_FLOOR, Learned
from .base import Reader, Signal

VOTED_FLOOR = 0.7  # the reader's model is fairly sure: enough to bring in a paper no keyword hit


class LearnedVotes(Signal):
    def __init__(self, learned: Learned):
        self.learned = learned

    @classmethod
    def of(cls, reader: Reader) -> LearnedVotes | None:
        learned = reader.learned
        return cls(learned) if learned is not None and learned.share else None

    def relevance(self, relevance: np.ndarray) -> np.ndarray:
        share = self.learned.share
        return (1 - share) * relevance + share * self.learned.score

    def admit(self, on_topic: np.ndarray) -> np.ndarray:
        admitted = np.zeros_like(on_topic)
        sure = np.flatnonzero((self.learned.score >= VOTED_FLOOR) & ~on_topic)
        admitted[sure[self.learned.like(sure)[0] >= LIKE_FLOOR]] = True
        return admitted

    def explain(self, chosen: list[int]) -> dict[str, list]:
        """For each pick, the up-voted paper it resembles, when the votes are what lifted it (one
        product for the few picks the model is sure of)."""
        out: list[str | None] = [None] * len(chosen)
        sure = [n for n, i in enumerate(chosen) if self.learned.score[i] >= VOTED_FLOOR]
        if sure:
            cosines, titles = self.learned.like(np.array([chosen[n] for n in sure]))
            for n, cos, title in zip(sure, cosines.tolist(), titles, strict=True):
                out[n] = title if cos >= LIKE_FLOOR and title else None
        return {"liked_like": out}
