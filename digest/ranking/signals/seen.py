"""Papers the reader has already: every paper an earlier digest mailed them, and every paper they
voted on, up or down (one voted down never comes back; one voted up has been read)."""

from __future__ import annotations

import numpy as np

from .base import Reader, Signal


class Seen(Signal):
    def __init__(self, reader: Reader):
        self.reader = reader

    @classmethod
    def of(cls, reader: Reader) -> Seen:
        return cls(reader)

    def veto(self) -> np.ndarray:
        history = self.reader.history
        seen = self.reader.positions(history.sent_ids)
        if history.votes is not None:
            seen |= self.reader.positions(history.votes.seen)
        return seen
