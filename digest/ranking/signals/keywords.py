"""The keywords a subscriber wrote: one interest each (relevance r(k, p), digest.ranking.scores);
a clear hit (evidence s(k, p) >= MATCH_FLOOR) puts a paper on topic; `exclude` vetoes the papers
about its phrases; the keywords a pick matched, the reader's own words, are shown as "matched"
(the phrases distilled from their papers are the own-papers signal's: `from_papers`)."""

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
        return {"matched": matched(self.reader, list(self.reader.subscriber.keywords), chosen)}


def matched(reader: Reader, labels: list[str], chosen: list[int]) -> list[tuple[str, ...]]:
    """For each pick, the `labels` (rows of the reader's matrix) it is a clear hit for."""
    labels = [label for label in labels if label in reader.matrix.index]
    if not labels:
        return [() for _ in chosen]
    # plain Python numbers from here: a few picks, and numpy scalars are slow one by one
    per_label = reader.matrix.evidence[reader.matrix.rows(labels)][:, chosen].T.tolist()
    return [_matched(column, labels) for column in per_label]


def _matched(evidence: list[float], labels: list[str]) -> tuple[str, ...]:
    """The labels whose evidence is a clear hit, strongest first."""
    ranked = sorted(zip(evidence, labels, strict=True), reverse=True)
    return tuple(label for s_k, label in ranked if s_k >= MATCH_FLOOR)
