"""A subscriber's own papers (`profile_papers`): one more interest, r(own, p) on the keywords'
scale (digest.ranking.profile); a paper near enough to them (PROFILE_FLOOR) is on topic and names
the closest one ("close to your paper ...", `close_to`), and the phrases distilled from their
papers that it clearly matches (`from_papers`: "like your papers on ...", never presented as
something the reader wrote)."""

from __future__ import annotations

import numpy as np

from ..profile import PROFILE_FLOOR
from .base import Reader, Signal
from .keywords import matched


class OwnPapers(Signal):
    def __init__(self, reader: Reader):
        assert reader.own is not None and reader.profile is not None
        self.reader, self.own, self.profile = reader, reader.own, reader.profile

    @classmethod
    def of(cls, reader: Reader) -> OwnPapers | None:
        return cls(reader) if reader.own is not None and reader.profile is not None else None

    def interests(self) -> np.ndarray:
        return self.own.relevance[None, :]

    def on_topic(self) -> np.ndarray:
        return self.own.nearness >= PROFILE_FLOOR

    def explain(self, chosen: list[int]) -> dict[str, list]:
        keywords = set(self.reader.subscriber.keywords)
        phrases = [p for p in self.profile.phrases if p not in keywords]
        return {
            "close_to": [self._close_to(i) for i in chosen],
            "from_papers": matched(self.reader, phrases, chosen),
        }

    def _close_to(self, i: int) -> str | None:
        """The title of the subscriber's own paper this one is nearest, when it is near enough."""
        if self.own.nearness[i] < PROFILE_FLOOR:
            return None
        return self.profile.titles[int(self.own.closest[i])] or None
