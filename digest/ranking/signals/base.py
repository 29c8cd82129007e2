"""The protocol every signal keeps, and what a signal sees of one subscriber on one day.

A signal is one kind of evidence of what a reader wants, over the day's P papers. `rank.blend`,
`rank.eligible` and `rank.select` ask every signal in turn (digest.ranking.signals.REGISTRY);
a signal overrides only the hooks it has something to say for (the others say nothing):

    interests()       (k, P) relevance rows of interests of its own; a paper's relevance is its
                      best interest (keywords: one row each; own papers: one row)
    on_topic()        (P,) papers it alone puts on topic (a keyword's clear evidence)
    relevance(r)      the relevance after its share (votes: blended by learn.share)
    score(s)          the score after its share (trending: the trending_weight)
    admit(on_topic)   (P,) papers it puts on topic once the others have spoken (votes: papers
                      like one the reader liked)
    veto()            (P,) papers never to pick (sent before, voted on, about an `exclude`)
    pin()             (P,) papers that come first whatever the rest says (followed authors, then
                      `always` phrases, in REGISTRY order); a veto still holds
    restrict()        (P,) the only papers the other picks may come from (categories)
    explain(chosen)   the Ranked fields it fills for the picks (matched, from_papers, close_to,
                      liked_like, followed, always)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from ...models import Subscriber
from ..features import PaperFeatures
from ..learn import Learned, Votes
from ..profile import Profile, ProfileMatch
from ..scores import ScoreMatrix


@dataclass(frozen=True)
class History:
    """What we know of one subscriber beyond subscribers.yaml, read from the store: papers
    already mailed to them, and their votes (digest.ranking.learn)."""

    sent_ids: frozenset[str] | set[str] = frozenset()
    votes: Votes | None = None


@dataclass(frozen=True)
class Reader:
    """One subscriber on one day, as the signals see them."""

    subscriber: Subscriber
    features: PaperFeatures
    matrix: ScoreMatrix  # the rows of their block's keywords
    upvote_scale: np.ndarray  # (P,) scores.trending of the papers' upvotes
    history: History
    learned: Learned | None = None  # their votes' model on the day's papers
    profile: Profile | None = None  # their own papers
    own: ProfileMatch | None = None  # how the day stands against them

    def positions(self, ids: Collection[str]) -> np.ndarray:
        """(P,) the day's papers among `ids`, walking whichever is shorter."""
        papers = self.features.papers
        marked = np.zeros(len(papers), dtype=bool)
        if len(ids) < len(papers):
            marked[[i for pid in ids if (i := self.features.position.get(pid)) is not None]] = True
        elif ids:
            marked[:] = [p.id in ids for p in papers]
        return marked


class Signal:
    """The protocol, with every hook saying nothing: a signal overrides what it brings."""

    def interests(self) -> np.ndarray | None:
        return None

    def on_topic(self) -> np.ndarray | None:
        return None

    def relevance(self, relevance: np.ndarray) -> np.ndarray:
        return relevance

    def score(self, score: np.ndarray) -> np.ndarray:
        return score

    def admit(self, on_topic: np.ndarray) -> np.ndarray | None:
        return None

    def veto(self) -> np.ndarray | None:
        return None

    def pin(self) -> np.ndarray | None:
        return None

    def restrict(self) -> np.ndarray | None:
        return None

    def explain(self, chosen: list[int]) -> dict[str, list]:
        return {}


class Pinning(Signal):
    """A signal that pins the papers it can name a reason for (`reasons[i]`, None for the rest)
    and shows that reason in the Ranked field `field` (followed authors, always-phrases)."""

    field: str
    reasons: list[str | None]

    def pin(self) -> np.ndarray:
        return np.array([reason is not None for reason in self.reasons], dtype=bool)

    def explain(self, chosen: list[int]) -> dict[str, list]:
        return {self.field: [self.reasons[i] for i in chosen]}
