"""The signals that shape a subscriber's ranking, in the order `rank.blend`, `rank.eligible` and
`rank.select` ask them (the protocol: digest.ranking.signals.base). A new kind of evidence, such
as followed authors (authors.py), is one new module here and one line in REGISTRY."""

from __future__ import annotations

from collections.abc import Callable

from .always import Always
from .authors import FollowedAuthors
from .base import History, Reader, Signal
from .categories import Categories
from .keywords import Keywords
from .own_papers import OwnPapers
from .seen import Seen
from .trending import Trending
from .votes import VOTED_FLOOR, LearnedVotes

REGISTRY: tuple[Callable[[Reader], Signal | None], ...] = (
    Keywords.of,  # interests first: a paper's interest is the first of its best rows
    OwnPapers.of,
    LearnedVotes.of,
    Seen.of,
    Trending.of,
    FollowedAuthors.of,  # pinned first: their papers, then the always-phrases'
    Always.of,
    Categories.of,
)


def signals_for(reader: Reader) -> list[Signal]:
    """Each registered signal that has something to say for this reader."""
    return [signal for make in REGISTRY if (signal := make(reader)) is not None]


__all__ = ["REGISTRY", "VOTED_FLOOR", "History", "Reader", "Signal", "signals_for"]
