"""The front door: one object over the settings, built once per process, that owns the store, the
ranker, the mailroom and the links. `digest run` and every other command, the scheduler,
`digest serve` and the workers go through it; the three wings below never call one another.

    with Digest.open(settings) as digest:
        digest.run(roster)                       what cron and the scheduler call, hourly:
            fetched  = ingest.fetch.fetch_sources(store, roster.sources)    sources -> store
            ingested = ingest.files.ingest(store, inbox_files(inbox))       inbox -> store
            for each day with readers due now (schedule.due, the ledger):
                due    = delivery.send.still_due(store, readers, day)       not sent, subscribed
                ranked = ranking.ranker.Ranker.rank_all(due, day)           store -> picks
                delivery.send.send_ranked(store, mailroom, day, due, ranked)     -> mail, ledger
                    or delivery.queue.enqueue(...): the workers send them
            store.prune_cache(...)

    ingest   (digest.ingest)    sources -> store                     store.IngestStore
    ranking  (digest.ranking)   store -> ranked lists, votes learned    store.RankingStore
    delivery (digest.delivery)  ranked lists -> mail -> ledger        store.DeliveryStore
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path

import numpy as np

from . import progress, schedule
from .delivery import queue
from .delivery.bounces import BounceRun, read_mailbox, recent_soft
from .delivery.send import DeliveryReport, Mailroom, send_ranked, still_due, suppressed
from .errors import DigestError
from .ingest.fetch import FetchOutcome, all_sources_failed, fetch_sources
from .ingest.files import FileOutcome, inbox_files, ingest
from .models import Delivery, Ranked, Roster, Source, Status, Subscriber
from .models import Digest as Mail
from .ranking.embed import Embedder, SpanEmbedder, Spans, embedder_of
from .ranking.profile import Profile
from .ranking.ranker import Ranker
from .settings import Settings
from .store import IngestedFile, SourceState, Store, Unsubscribe, open_store
from .store.bounces import Bounce, Suppression

log = logging.getLogger("digest")


@dataclass
class RunReport:
    """What one run did: each source fetched, each inbox file read, each day's deliveries."""

    fetched: list[FetchOutcome] = field(default_factory=list)
    ingested: list[FileOutcome] = field(default_factory=list)
    deliveries: list[DeliveryReport] = field(default_factory=list)
    bounces: BounceRun | None = None  # the bounce mailbox, read before sending (when set)
    bounce_error: str | None = None  # why it could not be read: the mail still goes out

    @property
    def every_source_failed(self) -> bool:
        """Then nobody is sent an empty digest: "nothing new" would be a lie."""
        return all_sources_failed(self.fetched)

    @property
    def failed(self) -> bool:
        return (
            any(not o.ok for o in self.fetched)
            or any(o.error or o.notes for o in self.ingested)
            or any(r.failed or r.stopped for r in self.deliveries)
            or self.bounce_error is not None
        )


@dataclass(frozen=True)
class StatusView:
    """What `digest status` shows, read from the store at once."""

    database: str
    days: int
    jobs: dict[str, int] | None  # the send queue's jobs by state (PostgreSQL), None without one
    cache: tuple[int, int]  # vectors, bytes
    cache_mb: float
    files: list[IngestedFile]
    sources: dict[str, SourceState]
    counts: dict[str, int]
    gone: dict[str, Unsubscribe]
    suppressed: dict[str, Suppression]  # by reader, at the address they still have
    soft: dict[str, list[Bounce]]  # by reader: soft bounces within DIGEST_SOFT_BOUNCE_DAYS
    last_sent: dict[str, date]
    unsettled: list[Delivery]


class Digest:
    """digest, over one Settings. `Digest.open(settings)` opens the store for the length of a
    block; a long-lived caller (the scheduler) keeps one Digest and opens it for each job, so
    the model is loaded once."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None):
        self.settings = settings
        self._embedder = embedder
        self._store: Store | None = None
        self._ranker: Ranker | None = None

    @contextmanager
    def opened(self) -> Iterator[Digest]:
        """This Digest with its store open (StoreError if it cannot be used)."""
        with open_store(self.settings) as store:
            self._store, self._ranker = store, None
            try:
                yield self
            finally:
                self._store, self._ranker = None, None

    @classmethod
    @contextmanager
    def open(cls, settings: Settings, *, embedder: Embedder | None = None) -> Iterator[Digest]:
        with cls(settings, embedder=embedder).opened() as digest:
            yield digest

    # --- what it owns ------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("open the Digest first (Digest.open(settings))")
        return self._store

    def request_store(self, wait: float) -> Store:
        """A store of its own for one web request, giving up after `wait` seconds of a lock or
        a slow database (digest serve answers 503 then)."""
        return open_store(self.settings, wait=wait)

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use and kept for the life of this Digest."""
        if self._embedder is None:
            self._embedder = embedder_of(self.settings.ranking)
        return self._embedder

    @property
    def ranker(self) -> Ranker:
        if self._ranker is None:
            self._ranker = Ranker.for_settings(self.store, self.settings, shown(self.embedder))
        return self._ranker

    @cached_property
    def mailroom(self) -> Mailroom:
        """How mail is made and leaves: templates, links (the secret read once), SMTP or the outbox."""
        return Mailroom.for_settings(self.settings)

    def day(self, given: date | None = None) -> date:
        """The digest day: `given`, else the newest day with papers, else today."""
        if given is not None:
            return given
        days = self.store.days()
        return days[-1] if days else self.settings.clock().date()

    # --- ingest ------------------------------------------------------------------------------

    def ingest(
        self,
        inputs: Iterable[Path | str],
        *,
        day: date | None = None,
        force: bool = False,
        today: date | None = None,
    ) -> list[FileOutcome]:
        """Files and URLs into the store; one whose name has no date arrives on `day`, else
        `today` (default: now)."""
        inputs = list(inputs)
        if not inputs:
            return []
        shown = progress.current()
        files = f"{len(inputs)} file{'s' if len(inputs) != 1 else ''}"
        with shown.stage(f"reading {files}") as stage:
            outcomes = ingest(
                self.store,
                shown.bar(inputs, "reading", "file"),
                day=day,
                today=today or self.settings.clock().date(),
                force=force,
                allow_private=self.settings.fetch.allow_private,
            )
            stage.done = f"read {files} ({sum(o.papers for o in outcomes):,} papers)"
        return outcomes

    def ingest_inbox(self, *, today: date | None = None) -> list[FileOutcome]:
        """The inbox's new files; one whose name has no date arrives on `today` (default: now)."""
        return self.ingest(inbox_files(self.settings.inbox), today=today)

    def fetch(self, sources: Sequence[Source], *, day: date | None = None) -> list[FetchOutcome]:
        """The configured sources, fetched now; `{date}` in a URL becomes `day` (default today)."""
        if not sources:
            return []
        what = f"{len(sources)} source{'s' if len(sources) != 1 else ''}"
        with progress.current().stage(f"fetching {what}", f"fetched {what}"):
            return fetch_sources(self.store, self.settings, sources, day=day or self.settings.clock().date())

    # --- ranking -----------------------------------------------------------------------------

    def rank(
        self, subscribers: Sequence[Subscriber], day: date, *, limit: int | None = None
    ) -> dict[str, list[Ranked]]:
        readers = f"{len(subscribers)} subscriber{'s' if len(subscribers) != 1 else ''}"
        with progress.current().stage(
            f"ranking {day}'s papers for {readers}", f"ranked {day}'s papers for {readers}"
        ):
            return self.ranker.rank_all(subscribers, day, limit=limit)

    def profile(self, subscriber: Subscriber) -> Profile | None:
        """The subscriber's own papers as ranking sees them (the phrases distilled from them)."""
        return self.ranker.profile(subscriber)

    def preview(self, subscriber: Subscriber, day: date) -> tuple[Mail, list[Ranked]]:
        """What the subscriber's digest for `day` holds, rendered as it would be sent."""
        ranked = self.rank([subscriber], day)[subscriber.id]
        return self.mailroom.render(subscriber, day, ranked), ranked

    # --- delivery ----------------------------------------------------------------------------

    def deliver(
        self,
        subscribers: Sequence[Subscriber],
        day: date,
        *,
        enqueue: bool = False,
        dry_run: bool = False,
        to: str | None = None,
        retry_unknown: bool = False,
        no_empty: bool = False,
    ) -> DeliveryReport:
        """`day`'s digest to each of `subscribers` not sent it yet: ranked here, then sent, or
        with `enqueue` saved for the workers. With `to`, a test copy (the ledger untouched)."""
        report, due = still_due(self.store, subscribers, day, to=to, retry_unknown=retry_unknown)
        ranked = self.rank(due, day) if due else {}
        if enqueue:  # also when nobody is due: the queue's old plans are pruned
            return queue.enqueue(
                queue.postgres(self.store), self.settings, day, due, ranked, report=report, no_empty=no_empty
            )
        if not due:
            return report
        digests = f"{len(due)} digest{'s' if len(due) != 1 else ''}"
        shown = progress.Progress(progress.QUIET) if dry_run else progress.current()  # a dry run is quick
        with progress.using(shown), shown.stage(f"sending {digests}") as said:  # its bar too
            report = send_ranked(
                self.store,
                self.mailroom,
                day,
                due,
                ranked,
                report=report,
                dry_run=dry_run,
                to=to,
                retry_unknown=retry_unknown,
                no_empty=no_empty,
            )
            sent = sum(o.status == Status.SENT for o in report.outcomes)
            said.done = f"sent {sent} of {digests}"
        return report

    def deliver_due(
        self, subscribers: Sequence[Subscriber], *, now: datetime | None = None, **kw: bool
    ) -> list[DeliveryReport]:
        """Every digest due at `now` by each subscriber's local clock (digest.schedule)."""
        now = now or self.settings.clock()
        # a local date is at most a day from the UTC one: only the last few days can be due
        taken = self.store.taken_days(since=now.date() - timedelta(days=2))
        gone = {*self.store.unsubscribed(), *suppressed(self.store, subscribers)}
        groups = schedule.due([s for s in subscribers if s.id not in gone], now, taken)
        return [self.deliver(group, day, **kw) for day, group in sorted(groups.items())]

    def run(
        self,
        roster: Roster,
        *,
        day: date | None = None,
        only: str | None = None,
        inbox: bool = True,
        enqueue: bool = False,
        stage: Callable[[RunReport, str], None] | None = None,
    ) -> RunReport:
        """The morning job: fetch the sources, read the inbox (`inbox`), then send what is due
        now by each subscriber's clock, or `day`'s digest to everyone not sent it (`only`: one
        subscriber, as a scheduler's trigger); with `enqueue` the workers send. `stage` is told
        as each stage ends ("fetched", "ingested", "delivered"), so what is done is said even
        when a later stage fails."""
        told = stage or (lambda report, name: None)
        report = RunReport(fetched=self.fetch(roster.sources, day=day))
        told(report, "fetched")
        if inbox:
            report.ingested = self.ingest_inbox(today=day)
            told(report, "ingested")
        if self.settings.bounces.mailbox:  # before sending: a dead address is not mailed again
            try:
                report.bounces = self.read_bounces(roster.subscribers)
            except DigestError as exc:
                report.bounce_error = str(exc)
            except Exception as exc:  # noqa: BLE001 - whatever breaks there, the morning's mail goes
                log.debug("reading the bounce mailbox failed", exc_info=True)
                report.bounce_error = f"{type(exc).__name__}: {exc}"
            told(report, "bounces")
        subscribers = [s for s in roster.subscribers if only is None or s.id == only]
        no_empty = report.every_source_failed
        if day is not None:
            report.deliveries = [self.deliver(subscribers, day, enqueue=enqueue, no_empty=no_empty)]
        else:
            report.deliveries = self.deliver_due(subscribers, enqueue=enqueue, no_empty=no_empty)
        self.store.prune_cache(int(self.settings.store.cache_mb * 2**20))  # its vectors are the newest
        told(report, "delivered")
        return report

    def read_bounces(self, subscribers: Sequence[Subscriber]) -> BounceRun:
        """Read DIGEST_BOUNCE_MAILBOX: reports tied to readers are recorded and acted on."""
        return read_mailbox(self.settings, self.store, subscribers)

    def status(self, subscribers: Sequence[Subscriber] = ()) -> StatusView:
        store = self.store
        return StatusView(
            database=self.settings.store.description,
            days=len(store.days()),
            jobs=queue.queue_counts(queue.postgres(store)) if self.settings.store.url else None,
            cache=store.cache_size(),
            cache_mb=self.settings.store.cache_mb,
            files=store.recent_files(5),
            sources=store.source_states(),
            counts=store.delivery_counts(),
            gone=store.unsubscribed(),
            suppressed=suppressed(store, subscribers),
            soft=recent_soft(store, self.settings.bounces, self.settings.clock()),
            last_sent=store.last_sent(),
            unsettled=store.unsettled(),
        )

    def work(self, *, until_done: bool = False, concurrency: int = 1) -> None:
        """Send what `run(enqueue=True)` queued, as one of any number of workers (PostgreSQL)."""
        queue.run_worker(self.settings, until_done=until_done, concurrency=concurrency)


class _Shown:
    """The model, saying its long stages (digest.progress): loading it, and each pass over many
    texts. It sits under the embedding cache, so it only sees the texts the model must embed."""

    MANY = 64  # texts: fewer take a moment and are not a stage of their own

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.model_id = inner.model_id

    def _ready(self, many: bool) -> progress.Progress:
        """The command's progress, the model loaded (a stage of its own), and the model's own
        bars (MiniLM's `progress`) on only for a pass that is a stage: no bar without its line."""
        shown = progress.current()
        if hasattr(self.inner, "progress"):
            self.inner.progress = shown.bars  # type: ignore[attr-defined]
        if getattr(self.inner, "loaded", True) is False:  # a model not loaded yet
            with shown.stage(f"loading the model ({self.model_id})", "loaded the model"):
                self.inner.model  # type: ignore[attr-defined]  # noqa: B018 - loads it
        if hasattr(self.inner, "progress"):
            self.inner.progress = shown.bars and many  # type: ignore[attr-defined]
        return shown

    def encode(self, texts: list[str]) -> np.ndarray:
        shown = self._ready(len(texts) >= self.MANY)
        if len(texts) < self.MANY:
            return self.inner.encode(texts)
        kind = "phrases" if sum(map(len, texts)) / len(texts) < 64 else "texts"
        with shown.stage(f"embedding {len(texts):,} {kind}", f"embedded {len(texts):,} {kind}"):
            return self.inner.encode(texts)


class _ShownSpans(_Shown):
    inner: SpanEmbedder

    def encode_spans(self, texts: list[str], spans: list[Spans]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The model's pass over the papers (and their keyphrase candidates): the long one."""
        shown = self._ready(True)
        papers = f"{len(texts):,} paper{'s' if len(texts) != 1 else ''}"
        with shown.stage(f"embedding {papers}", f"embedded {papers}"):
            return self.inner.encode_spans(texts, spans)


def shown(embedder: Embedder) -> Embedder:
    """`embedder`, saying its long stages; a SpanEmbedder stays one."""
    return _ShownSpans(embedder) if isinstance(embedder, SpanEmbedder) else _Shown(embedder)


__all__ = ["Digest", "RunReport"]
