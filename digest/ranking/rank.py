"""Ranking: which papers each subscriber gets, in what order, and why.

For every paper of the day we have its features (digest.ranking.features) and, for every keyword
of a block of subscribers, its evidence s and relevance r (digest.ranking.scores). A subscriber's
view of the day is then what their signals (digest.ranking.signals) say, asked in turn::

    relevance(p) = max over interests of r      one square hit beats brushing every interest
                   (their keywords; their own papers), then moved by their votes' share
    score(p)     = (1 - w) * relevance(p) + w * trending(upvotes of p)          in 0..1
    allowed(p)   = vetoed by none (sent before, voted on, about an `exclude` phrase), in their
                   categories if they name some (a paper without categories is in)
    eligible(p)  = allowed, on topic for some signal (or admitted by their votes), score >= min_score
    pinned(p)    = by a followed author, or saying an `always` phrase: first, whatever the rest
                   says (vetoes aside), followed authors' papers before always-phrases'

with w the subscriber's trending_weight. The pinned papers come first; selection fills the rest of
max_papers keeping a fair share per interest, and each pick says why (the followed author, the
always-phrase, the keywords it matched, the own paper it is close to, the liked paper it is like).

Speed: the score matrices cover the union of a block of subscribers' keywords (blocks of bounded
size, so memory stays bounded however many subscribers there are); a subscriber is then the max
over a few of its rows and a sort (`select`), and the votes of a block are one batched fit.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..models import Ranked, Subscriber
from . import explore
from .embed import Embedder
from .features import PaperFeatures
from .learn import Learned, apply, background, fit
from .profile import Profile, match_profile
from .scores import score_matrix, trending
from .signals import History, Reader, Signal, signals_for


@dataclass(frozen=True)
class Blend:
    """A subscriber's view of the day: per paper, its best interest and the score parts. The
    interests are the signals' rows, in the order they were asked (their keywords, then their
    own papers as one interest when they gave some)."""

    relevance_rows: np.ndarray  # (interests, P) r per interest: the best one is a paper's interest
    on_topic: np.ndarray  # (P,) some signal puts the paper on topic
    relevance: np.ndarray  # (P,) max over interests of r, moved by the signals that share in it
    trending: np.ndarray  # (P,) 0..1
    score: np.ndarray  # (P,) (1 - w) * relevance + w * trending, in 0..1


def blend(reader: Reader, signals: Sequence[Signal]) -> Blend:
    """The score: the subscriber's best interest (and, with votes, what they taught us, by the
    share digest.ranking.learn allows), plus `trending_weight` as a true share."""
    n = len(reader.features.papers)
    rows = [r for s in signals if (r := s.interests()) is not None]
    relevance_rows = rows[0] if len(rows) == 1 else np.vstack(rows) if rows else np.zeros((0, n))
    on_topic = np.zeros(n, dtype=bool)
    for s in signals:
        if (hits := s.on_topic()) is not None:
            on_topic |= hits
    relevance = relevance_rows.max(axis=0) if len(relevance_rows) else np.zeros(n)
    for s in signals:
        relevance = s.relevance(relevance)
    score = relevance
    for s in signals:
        score = s.score(score)
    return Blend(relevance_rows, on_topic, relevance, reader.upvote_scale, score)


def eligible(reader: Reader, signals: Sequence[Signal], view: Blend, allowed: np.ndarray) -> np.ndarray:
    """Which of the `allowed` papers may be picked: on topic (some signal says so, or admits it
    once the others have spoken) and the score reaches min_score."""
    on_topic = view.on_topic.copy()
    for s in signals:
        if (admitted := s.admit(on_topic)) is not None:
            on_topic |= admitted
    return allowed & on_topic & (view.score >= reader.subscriber.min_score)


def allowed_by(signals: Sequence[Signal], never: np.ndarray) -> np.ndarray:
    """(P,) papers any pick may come from: vetoed by none (`never`) and in every signal's
    restriction (the reader's categories)."""
    mask = ~never
    for s in signals:
        if (allowed := s.restrict()) is not None:
            mask &= allowed
    return mask


def vetoed(signals: Sequence[Signal], n: int) -> np.ndarray:
    """(P,) papers some signal says never to pick."""
    out = np.zeros(n, dtype=bool)
    for s in signals:
        if (veto := s.veto()) is not None:
            out |= veto
    return out


def pinned(signals: Sequence[Signal], view: Blend, never: np.ndarray) -> list[int]:
    """The papers pinned first, each signal's in REGISTRY order, best score first within one."""
    out: list[int] = []
    taken: set[int] = set()
    for s in signals:
        if (pins := s.pin()) is not None:
            ids = np.flatnonzero(pins & ~never)
            for i in ids[np.argsort(-view.score[ids], kind="stable")].tolist():
                if i not in taken:
                    taken.add(i)
                    out.append(i)
    return out


def select(reader: Reader, *, limit: int | None = None) -> list[Ranked]:
    """The subscriber's papers: the pinned ones (followed authors, then always-phrases), then the
    rest best first. `limit=None` applies their max_papers (pins included), min_score and the
    per-interest quota to the rest; `limit=0` returns the pins and every other paper (in their
    categories, vetoes aside), scored."""
    signals = signals_for(reader)
    view = blend(reader, signals)
    if not reader.features.papers:
        return []
    n = len(reader.features.papers)
    never = vetoed(signals, n)
    first = pinned(signals, view, never)
    allowed = allowed_by(signals, never)
    mask = allowed.copy() if limit == 0 else eligible(reader, signals, view, allowed)
    mask[first] = False
    order = _best_first(view, mask)
    cap = reader.subscriber.max_papers if limit in (None, 0) else limit
    if limit == 0:
        chosen = first + order.tolist()
    else:
        first = first[:cap]
        if len(view.relevance_rows):
            interests = view.relevance_rows[:, order].argmax(axis=0)  # only for the few eligible
        else:
            interests = np.zeros(len(order), dtype=np.int64)
        pairs = list(zip(order.tolist(), interests.tolist(), strict=True))
        chosen = first + select_diverse(pairs, cap - len(first), n_interests=len(view.relevance_rows))
    slot = None
    if explore.wanted(reader.subscriber, reader.learned is not None) and cap > 1 and len(first) < cap:
        every = order if limit == 0 else _best_first(view, allowed)
        slot = explore.pick(reader, [i for i in every.tolist() if i not in first], chosen[: cap - 1])
    if slot is not None:  # the digest's last place, whatever it held; its length is kept
        rest = [i for i in chosen if i != slot]
        chosen = rest[: cap - 1] + [slot] + (rest[cap - 1 :] if limit == 0 else [])
    why: dict[str, list] = {}
    for s in signals:
        why.update(s.explain(chosen))
    features = reader.features
    # plain Python numbers from here: a few picks, and numpy scalars are slow one by one
    return [
        Ranked(
            features.papers[i],
            round(score, 4),
            keyphrases=features.keyphrases[i],
            relevance=round(relevance, 4),
            trending=round(trend, 4),
            explore=i == slot,
            **{name: values[n] for name, values in why.items()},
        )
        for n, (i, score, relevance, trend) in enumerate(
            zip(
                chosen,
                view.score[chosen].tolist(),
                view.relevance[chosen].tolist(),
                view.trending[chosen].tolist(),
                strict=True,
            )
        )
    ]


def _best_first(view: Blend, mask: np.ndarray) -> np.ndarray:
    """The papers of `mask`, best score first (ties: arrival order)."""
    ids = np.flatnonzero(mask)
    return ids[np.argsort(-view.score[ids], kind="stable")]


def select_diverse(ranked: Sequence[tuple[int, int]], cap: int, n_interests: int) -> list[int]:
    """From (item, interest) pairs, best first: at most a fair share per interest while other
    interests still have items to give; leftover slots go to the next best. `ranked` holds
    every eligible item, so an interest that ranks below a crowd still gets its share."""
    quota = max(2, math.ceil(cap * 0.6)) if n_interests > 1 else cap
    head = [interest for _, interest in ranked[:cap]]
    if not head or max(head.count(i) for i in set(head)) <= quota:  # nobody crowded out: the best cap
        return [item for item, _ in ranked[:cap]]
    taken: list[int] = []
    per_interest: dict[int, int] = {}
    overflow: list[int] = []
    for item, interest in ranked:
        if len(taken) >= cap:
            break
        if per_interest.get(interest, 0) >= quota:
            if len(overflow) < cap:
                overflow.append(item)
            continue
        per_interest[interest] = per_interest.get(interest, 0) + 1
        taken.append(item)
    taken += overflow[: cap - len(taken)]
    position = {item: rank for rank, (item, _) in enumerate(ranked)}
    return sorted(taken, key=position.__getitem__)


def rank_subscribers(
    subscribers: Sequence[Subscriber],
    features: PaperFeatures,
    embed_keywords: Embedder,
    *,
    limit: int | None = None,
    history: Mapping[str, History] | None = None,
    profiles: Mapping[str, Profile] | None = None,
) -> dict[str, list[Ranked]]:
    """Every subscriber's ranking, a block of subscribers at a time: one score matrix over all
    the block's keywords (and the phrases distilled from their own papers, for chips), their
    `profiles` if any, and one fit of the block's readers' votes. Blocks keep memory bounded
    whatever the number of subscribers."""
    profiles = profiles or {}
    history = history or {}
    upvotes = trending(np.array([p.upvotes or 0 for p in features.papers], dtype=np.float32))
    ranked: dict[str, list[Ranked]] = {}
    voting = {sid for sid, h in history.items() if h.votes}
    if voting and len(features.papers):  # the same for every block: worked out once
        negatives, ids = background(features.vectors), [p.id for p in features.papers]
    for block, block_keywords in _blocks(subscribers, profiles, len(features.papers), voting):
        keywords = sorted(block_keywords)
        vectors = embed_keywords.encode(keywords) if keywords else np.zeros((0, features.vectors.shape[1]))
        matrix = score_matrix(features, keywords, vectors)
        voters = [s.id for s in block if s.id in voting]
        learned: dict[str, Learned] = {}
        if voters and len(features.papers):
            votes = [history[sid].votes for sid in voters]
            fitted = fit(votes, negatives)  # one batched solve for the block
            learned = dict(zip(voters, apply(fitted, votes, features.vectors, ids), strict=True))
        for s in block:
            profile = profiles.get(s.id)
            reader = Reader(
                s,
                features,
                matrix,
                upvotes,
                history.get(s.id, History()),
                learned=learned.get(s.id),
                profile=profile,
                own=match_profile(features, profile) if profile is not None else None,
            )
            ranked[s.id] = select(reader, limit=limit)
    return {s.id: ranked[s.id] for s in subscribers}


# (keyword, paper) cells scored at once: a block of subscribers holds at most this many in each
# of its matrices (~16 MB in float32 at 4M), and at most as many (voter, paper) cells of learned
# scores, so memory stays bounded whatever the number of subscribers.
BLOCK_CELLS = 4_000_000


def _keywords_of(subscriber: Subscriber, profile: Profile | None) -> set[str]:
    return {*subscriber.keywords, *subscriber.exclude, *(profile.phrases if profile else ())}


def _blocks(
    subscribers: Sequence[Subscriber],
    profiles: dict[str, Profile],
    n_papers: int,
    voting: Collection[str] = frozenset(),
) -> Iterator[tuple[list[Subscriber], set[str]]]:
    """Blocks of subscribers, each with its distinct keywords: those keywords, and the block's
    readers with votes, each stay within BLOCK_CELLS // n_papers (a subscriber with more keywords
    than that is a block alone). Subscribers with the same keywords go side by side, so that
    blocks share keywords' rows."""
    budget = max(1, BLOCK_CELLS // max(n_papers, 1))
    keyed = sorted(
        ((sorted(_keywords_of(s, profiles.get(s.id))), s) for s in subscribers), key=lambda p: p[0]
    )
    block: list[Subscriber] = []
    seen: set[str] = set()
    voters = 0
    for own, s in keyed:
        votes = s.id in voting
        if block and (len(seen.union(own)) > budget or voters + votes > budget):
            yield block, seen
            block, seen, voters = [], set(), 0
        block.append(s)
        seen.update(own)
        voters += votes
    if block:
        yield block, seen
