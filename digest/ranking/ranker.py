"""The ranking wing's door: store -> each subscriber's ranked papers for a day.

    Ranker.rank_all(subscribers, day)
        candidates   the day's papers and the catch-up window's (digest.settings.RankingSettings)
        features     one pass of the model over the papers (keyphrases cached by text)
        profiles     each subscriber's own papers, embedded, with the phrases distilled from them
        signals      what the store knows of each reader: papers sent, votes (the newest learned)
        rank.rank_subscribers(...)   every subscriber's picks, in blocks of bounded memory
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from .. import sources
from ..errors import ConfigError
from ..models import Ranked, Subscriber
from ..settings import Settings
from ..store import RankingStore
from . import learn, rank
from .embed import CachedEmbedder, Embedder, embedder_of, text_hash
from .features import PaperFeatures, featurize, keyphrase_cache_key
from .learn import Votes
from .profile import PROFILE_MAX, Profile, distill_profile
from .signals import History


class Ranker:
    """Ranks a day's candidates for many subscribers with one featurization of the papers."""

    def __init__(
        self,
        store: RankingStore,
        embedder: Embedder,
        catchup_days: int = 3,
        profiles_from: Path | None = None,
    ):
        self.store = store
        self.embedder = CachedEmbedder(embedder, store)
        self.catchup_days = catchup_days
        self.profiles_from = profiles_from  # folder that profile_papers paths are relative to

    @classmethod
    def for_settings(
        cls, store: RankingStore, settings: Settings, embedder: Embedder | None = None
    ) -> Ranker:
        """The ranker the settings describe; a long-lived caller passes the embedder it keeps
        loaded (the daemon), others get a fresh one that loads the model on first use."""
        return cls(
            store,
            embedder or embedder_of(settings.ranking),
            settings.ranking.catchup_days,
            profiles_from=settings.subscribers.resolve().parent,
        )

    def candidates(self, day: date) -> list:
        since = day - timedelta(days=max(self.catchup_days, 1) - 1)
        return self.store.papers(day, since=since)

    def features(self, papers: Sequence) -> PaperFeatures:
        model = keyphrase_cache_key(self.embedder.model_id)
        cached = self.store.cached_keyphrases(model, [text_hash(p.text) for p in papers])
        features, fresh = featurize(papers, self.embedder, cached)
        if fresh:
            self.store.cache_keyphrases(model, fresh)
        return features

    def profile(self, subscriber: Subscriber) -> Profile | None:
        """The subscriber's `profile_papers` (JSONL or other input files, relative to
        `profiles_from`, or ids of stored papers), the newest PROFILE_MAX of them, embedded,
        with the keyphrases distilled from them (cached by the papers' text)."""
        if not subscriber.profile_papers:
            return None
        base = self.profiles_from or Path.cwd()
        papers: list = []
        stored = self.store.papers_by_id(e for e in subscriber.profile_papers if not (base / e).exists())
        for entry in subscriber.profile_papers:
            path = base / entry
            if path.exists():
                papers += sources.read_file(path).papers
            elif entry in stored:
                papers.append(stored[entry])
            else:
                raise ConfigError(
                    f"subscriber {subscriber.id!r}, field 'profile_papers': {entry!r} is neither a file "
                    f"(relative to {base}) nor the id of a stored paper"
                )
        # newest first (undated ones after, in the order given); a paper listed twice counts once
        unique = list({p.id: p for p in papers}.values())
        unique.sort(key=lambda p: p.published or "", reverse=True)
        own = unique[: PROFILE_MAX]
        texts = [p.text for p in own]
        key = text_hash("profile\n" + "\n".join(sorted(texts)))
        model = keyphrase_cache_key(self.embedder.model_id)
        cached = self.store.cached_keyphrases(model, [key])
        if key not in cached:
            cached[key] = distill_profile(texts, self.embedder)
            self.store.cache_keyphrases(model, {key: cached[key]})
        return Profile(
            titles=tuple(p.title for p in own),
            vectors=self.embedder.encode(texts),
            text="\n".join(texts),
            phrases=tuple(cached[key]),
        )

    def rank_all(
        self, subscribers: Sequence[Subscriber], day: date, *, limit: int | None = None
    ) -> dict[str, list[Ranked]]:
        """Each subscriber's ranked papers for `day`, leaving out every paper an earlier day's
        digest already gave them: the same day ranks the same before and after it is sent."""
        profiles = {s.id: p for s in subscribers if (p := self.profile(s)) is not None}
        features = self.features(self.candidates(day))
        history = {s.id: self.history(s, day) for s in subscribers}
        return rank.rank_subscribers(
            subscribers, features, self.embedder, limit=limit, history=history, profiles=profiles
        )

    def history(self, subscriber: Subscriber, day: date) -> History:
        """What the store knows of `subscriber` that shapes their ranking for `day`."""
        sent = self.store.sent_paper_ids(subscriber.id, before=day)
        return History(sent_ids=sent, votes=self.votes(subscriber))

    def votes(self, subscriber: Subscriber) -> Votes | None:
        """The subscriber's votes with the embeddings of the papers voted on (cached): only the
        newest learn.MAX_VOTES are read and embedded, the older ones kept as ids (never sent)."""
        cast = {v.paper_id: v.vote for v in self.store.votes(subscriber.id)}  # oldest first
        newest = list(cast)[-learn.MAX_VOTES :]
        papers = self.store.papers_by_id(newest)
        ids = [pid for pid in newest if pid in papers]
        if not ids:
            return None
        return Votes(
            paper_ids=tuple(ids),
            titles=tuple(papers[pid].title for pid in ids),
            labels=np.array([cast[pid] for pid in ids], dtype=np.float32),
            vectors=self.embedder.encode([papers[pid].text for pid in ids]),
            earlier=frozenset(cast).difference(newest),
        )
