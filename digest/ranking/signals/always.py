"""Always-phrases (`always:`): a paper whose title or abstract says one of them (whole words, any
case, singular or plural: the phrase match of the keywords, digest.text.words) is always included,
right after followed authors, and says so (`always`)."""

from __future__ import annotations

from ...text import words
from .base import Pinning, Reader


class Always(Pinning):
    field = "always"

    def __init__(self, reader: Reader):
        joined = reader.features.lexicon.joined
        phrases = [(p, f" {' '.join(ws)} ") for p in reader.subscriber.always if (ws := words(p))]
        self.reasons = [next((p for p, needle in phrases if needle in text), None) for text in joined]

    @classmethod
    def of(cls, reader: Reader) -> Always | None:
        return cls(reader) if reader.subscriber.always else None
