"""Followed authors (`authors:`): a paper by one of them comes first in the digest, whatever the
keywords say, and says so ("by NAME, whom you follow", `followed`). Names match however they are
written (digest.names: case, accents, initials, "Last, First", middle names)."""

from __future__ import annotations

import numpy as np

from ...names import Followed
from .base import Reader, Signal


class FollowedAuthors(Signal):
    def __init__(self, reader: Reader):
        followed = Followed(reader.subscriber.authors)
        papers, index = reader.features.papers, reader.features.authors
        self.by: list[str | None] = [None] * len(papers)
        for i in sorted({i for word in followed.words for i in index.get(word, ())}):  # a few papers
            self.by[i] = followed.match(papers[i].authors)

    @classmethod
    def of(cls, reader: Reader) -> FollowedAuthors | None:
        return cls(reader) if reader.subscriber.authors else None

    def pin(self) -> np.ndarray:
        return np.array([name is not None for name in self.by], dtype=bool)

    def explain(self, chosen: list[int]) -> dict[str, list]:
        return {"followed": [self.by[i] for i in chosen]}
