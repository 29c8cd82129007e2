"""What digest needs from a store, as Protocols: each wing is typed against its own narrow
interface (IngestStore, RankingStore, DeliveryStore), the front door and the commands against
`Store`, the whole; none against a backend. A second backend is a new module beside sqlite.py
that satisfies `Store`, and a line in `open_store`.

The ledger guarantee every backend keeps: `claim_delivery` lets exactly one caller win a
(subscriber, day), even across processes and machines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import numpy as np

from ..models import Delivery, Paper
from .bounces import Bounce, Suppression


@dataclass(frozen=True)
class AddResult:
    new: int
    updated: int


@dataclass(frozen=True)
class IngestedFile:
    path: str
    day: date | None
    papers: int
    ingested_at: str


@dataclass(frozen=True)
class Unsubscribe:
    subscriber_id: str
    at: str  # ISO time, UTC
    how: str  # one-click (RFC 8058 POST), page (the button), cli


@dataclass(frozen=True)
class Vote:
    subscriber_id: str
    paper_id: str
    vote: int  # +1 more like this, -1 less like this
    at: str


@dataclass(frozen=True)
class SourceState:
    """What the last fetch of a configured source said, for conditional requests and `status`."""

    name: str
    url: str  # as last fetched ({date} filled in): validators only apply to the same URL
    etag: str | None = None
    last_modified: str | None = None
    last_attempt: str | None = None  # ISO time, UTC
    last_ok: str | None = None  # the last fetch that worked (new papers, not modified, or none)
    status: str | None = None  # new | unchanged | not-modified | nothing-published | failed
    detail: str | None = None  # the error of a failed fetch


class PaperStore(Protocol):
    """Reading the stored papers: what every wing may ask."""

    def papers(self, day: date | None = None, *, since: date | None = None) -> list[Paper]: ...
    def papers_by_id(self, ids: Iterable[str]) -> dict[str, Paper]: ...
    def days(self) -> list[date]: ...


class IngestStore(PaperStore, Protocol):
    """What the ingest wing needs: papers in, files remembered, the sources' last fetch."""

    def add_papers(self, papers: Iterable[Paper]) -> AddResult: ...
    def file_seen(self, sha256: str) -> bool: ...
    def ingest_file(self, sha256: str, path: str, day: date | None, papers: list[Paper]) -> AddResult: ...
    def source_states(self) -> dict[str, SourceState]: ...
    def save_source_state(self, state: SourceState) -> None: ...


class RankingStore(PaperStore, Protocol):
    """What the ranking wing needs: the model's cached outputs, and what each reader has had
    (papers sent) and said (votes)."""

    def cached_vectors(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]: ...
    def cache_vectors(self, model: str, vectors: dict[str, np.ndarray]) -> None: ...
    def cached_keyphrases(self, model: str, hashes: list[str]) -> dict[str, list[str]]: ...
    def cache_keyphrases(self, model: str, phrases: dict[str, list[str]]) -> None: ...
    def sent_paper_ids(self, subscriber: str, before: date | None = None) -> set[str]: ...
    def votes(self, subscriber: str | None = None) -> list[Vote]: ...


class DeliveryStore(PaperStore, Protocol):
    """What the delivery wing needs: the ledger (claimed before a message goes out, finished
    after), who unsubscribed, and the plans the workers send from."""

    def claim_delivery(self, subscriber: str, day: date, *, retry_unknown: bool = False) -> bool: ...
    def note_message_id(self, subscriber: str, day: date, message_id: str) -> None: ...
    def finish_delivery(
        self,
        subscriber: str,
        day: date,
        *,
        status: str,
        message_id: str | None = None,
        paper_ids: Iterable[str] = (),
        location: str | None = None,
        reply: str | None = None,
        attempts: int = 1,
    ) -> None: ...
    def deliveries(
        self, day: date | None = None, subscribers: Sequence[str] | None = None
    ) -> list[Delivery]: ...
    def taken_days(self, since: date) -> dict[str, set[date]]: ...
    def unsubscribed(self) -> dict[str, Unsubscribe]: ...
    def suppressed(self) -> dict[str, Suppression]: ...
    def subscriber_of_message(self, message_id: str) -> str | None: ...
    def record_bounce(self, bounce: Bounce) -> bool: ...
    def soft_bounces(self, subscriber: str, email: str, since: str) -> int: ...
    def suppress(self, s: Suppression, current: str | None = None) -> bool: ...
    def bounces(
        self, subscriber: str | None = None, *, kind: str | None = None, since: str | None = None
    ) -> list[Bounce]: ...
    def save_plans(self, day: date, plans: Mapping[str, Mapping[str, Any]]) -> None: ...
    def plans(self, day: date, subscribers: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def forget_plans(self, day: date, subscribers: Sequence[str]) -> int: ...
    def prune_plans(self, before: date) -> int: ...


class Store(IngestStore, RankingStore, DeliveryStore, Protocol):
    """The whole store: the three wings' interfaces, and what the front door and the commands
    ask besides (status, the readers' own say, the cache's bound)."""

    def recent_files(self, limit: int = 10) -> list[IngestedFile]: ...
    def cache_size(self) -> tuple[int, int]: ...
    def prune_cache(self, max_bytes: int) -> int: ...
    def unsettled(self) -> list[Delivery]: ...
    def delivery_counts(self) -> dict[str, int]: ...
    def last_sent(self) -> dict[str, date]: ...
    def unsubscribe(self, subscriber: str, how: str) -> bool: ...
    def resubscribe(self, subscriber: str) -> bool: ...
    def lift_suppression(self, subscriber: str) -> bool: ...
    def record_vote(self, subscriber: str, paper_id: str, vote: int) -> None: ...

    def close(self) -> None: ...
    def __enter__(self) -> Store: ...
    def __exit__(self, *exc: object) -> None: ...
