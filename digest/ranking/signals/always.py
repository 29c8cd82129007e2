"""Always-phrases (`always:`): a paper whose title or abstract says one of them (whole words, any
case, singular or plural: the phrase match of the keywords, digest.text.words) is always included,
right after followed authors, and says so (`always`)."""

from __future__ import annotations

import numpy as np

from ...text import words
from .base import Reader, Signal


class Always(Signal):
    def __init__(self, reader: Reader):
        joined = reader.features.lexicon.joined
        phrases = [(p, f" {' '.join(ws)} ") for p in reader.subscriber.always if (ws := words(p))]
        self.said = [next((p for p, needle in phrases if needle in text), None) for text in joined]

    @classmethod
    def of(cls, reader: Reader) -> Always | None:
        return cls(reader) if reader.subscriber.always else None

    def pin(self) -> np.ndarray:
        return np.array([phrase is not None for phrase in self.said], dtype=bool)

    def explain(self, chosen: list[int]) -> dict[str, list]:
        return {"always": [self.said[i] for i in chosen]}
