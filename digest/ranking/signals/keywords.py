"""The keywords a subscriber wrote: one interest each (relevance r(k, p), digest.ranking.scores);
a clear hit (evidence s(k, p) >= MATCH_FLOOR) puts a paper on topic; `exclude` vetoes the papers
about its phrases; the keywords a pick matched, and the phrases distilled from their own papers,
are shown as "matched" chips."""

from __future__ import annotations

import numpy as np

from ..scores import MATCH_FLOOR, excluded
from .base import Reader, Signal


class Keywords(Signal):
    def __init__(self, reader: Reader):
        self.reader = reader
        self.rows = reader.matrix.rows(reader.subscriber.keywords)

    @classmethod
    def of(cls, reader: Reader) -> Keywords:
        return cls(reader)

    def interests(self) -> np.ndarray:
        return self.reader.matrix.relevance[self.rows]

    def on_topic(self) -> np.ndarray:
        return (self.reader.matrix.evidence[self.rows] >= MATCH_FLOOR).any(axis=0)

    def veto(self) -> np.ndarray | None:
        phrases = self.reader.subscriber.exclude
        return excluded(self.reader.matrix, phrases) if phrases else None

    def explain(self, chosen: list[int]) -> dict[str, list]:
        matrix, profile = self.reader.matrix, self.reader.profile
        keywords = list(self.reader.subscriber.keywords)
        labels = keywords + [
            p for p in (profile.phrases if profile else ()) if p not in keywords and p in matrix.index
        ]
        # plain Python numbers from here: a few picks, and numpy scalars are slow one by one
        per_label = matrix.evidence[matrix.rows(labels)][:, chosen].T.tolist()
        return {"matched": [_matched(column, labels) for column in per_label]}


def _matched(evidence: list[float], labels: list[str]) -> tuple[str, ...]:
    """The labels whose evidence is a clear hit, strongest first."""
    ranked = sorted(zip(evidence, labels, strict=True), reverse=True)
    return tuple(label for s_k, label in ranked if s_k >= MATCH_FLOOR)
