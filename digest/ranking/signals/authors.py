"""Followed authors (`authors:`): a paper by one of them comes first in the digest, whatever the
keywords say, and says so ("by NAME, whom you follow", `followed`). Names match however they are
written (digest.names: case, accents, initials, "Last, First", middle names)."""

from __future__ import annotations

from ...names import Followed
from .base import Pinning, Reader


class FollowedAuthors(Pinning):
    field = "followed"

    def __init__(self, reader: Reader):
        followed = Followed(reader.subscriber.authors)
        papers, index = reader.features.papers, reader.features.authors
        self.reasons = [None] * len(papers)
        for i in sorted({i for word in followed.words for i in index.get(word, ())}):  # a few papers
            self.reasons[i] = followed.match(papers[i].authors)

    @classmethod
    def of(cls, reader: Reader) -> FollowedAuthors | None:
        return cls(reader) if reader.subscriber.authors else None
