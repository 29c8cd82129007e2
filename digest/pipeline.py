"""The morning job, stage by stage. Each function takes plain data and a Store.

    ingest(store, inputs)        files or URLs -> papers in the store (a bad one is reported,
                                 the rest go on); ingest_inbox does it for the inbox
    Ranker.rank_all(subs, day)   every subscriber's candidates -> Ranked lists (one featurization)
    deliver(..., day)            for each subscriber not yet in the ledger for `day`:
                                     claim -> render -> send -> mark sent (or failed)
    run_due(...)                 deliver whatever is due now by each subscriber's local clock
    send(..., day=None)          what `digest run` and the daemon call after ingesting

Batch stages return per-item outcomes instead of stopping at the first failure.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from . import learn, links, rank, render, schedule, sources
from .dispatch import Policy, Stopped, dispatch
from .embed import CachedEmbedder, Embedder, embedder_for, text_hash
from .errors import ConfigError, DigestError, InputError, NotFoundError, StoreError
from .fetch import FetchOutcome, fetch_sources
from .learn import Votes
from .mail import Mailer, Outgoing, atomic_write, build_message, mailer_factory, serialize
from .models import Digest, Links, Ranked, Source, Status, Subscriber
from .roster import load_sources
from .settings import Settings
from .store import Store
from .text import mask_query, one_line

log = logging.getLogger("digest")

# --- ingest -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileOutcome:
    path: str
    papers: int = 0
    new: int = 0
    updated: int = 0
    skipped: bool = False  # already ingested (same content)
    error: str | None = None
    notes: tuple[str, ...] = ()  # what was left out of an otherwise good file


def ingest(
    store: Store,
    inputs: Iterable[Path | str],
    *,
    day: date | None = None,
    today: date,
    force: bool = False,
    allow_private: bool = False,
) -> list[FileOutcome]:
    """Read each file or http(s) URL and store its papers; one input's failure never stops the
    others, and a failed input stores nothing. Inputs seen before (same bytes) are skipped.
    `allow_private` lets URLs reach loopback and private addresses (DIGEST_INGEST_ALLOW_PRIVATE)."""
    outcomes = []
    for item in inputs:
        name = str(item)
        try:
            if isinstance(item, str) and "://" in item:
                name = mask_query(item)
                data, name_day = sources.fetch(item, allow_private=allow_private), None
            else:
                data, name_day = sources.read_limited(Path(item)), sources.day_from_name(Path(item))
            sha = hashlib.sha256(data).hexdigest()
            if store.file_seen(sha) and not force:
                outcomes.append(FileOutcome(name, skipped=True))
                continue
            file_day = day or name_day or today
            parsed = sources.parse_bytes(data, day=file_day, source=name)
            result = store.ingest_file(sha, name, file_day, parsed.papers)
            notes = tuple(parsed.notes)  # each already a whole line that names the input
            outcomes.append(FileOutcome(name, len(parsed.papers), result.new, result.updated, notes=notes))
        except InputError as exc:
            outcomes.append(FileOutcome(name, error=str(exc)))
        except OSError as exc:
            outcomes.append(FileOutcome(name, error=f"{name}: cannot read ({exc.strerror or exc})"))
        except StoreError:
            raise  # the database, not this file: nothing else can be stored either
        except Exception as exc:  # noqa: BLE001 - a parser bug on one file must not stop the batch
            log.error("ingesting %s failed", name, exc_info=True)
            outcomes.append(
                FileOutcome(
                    name,
                    error=f"{name}: could not be read ({type(exc).__name__}: {exc}); "
                    "nothing from it was stored; please report this with the file",
                )
            )
    return outcomes


def inbox_files(inbox: Path) -> list[Path]:
    """Regular files in the inbox, oldest name first; hidden and partial files are ignored."""
    if not inbox.is_dir():
        return []
    return sorted(
        p
        for p in inbox.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith((".part", ".tmp", "~"))
    )


# --- rank ---------------------------------------------------------------------------------


def default_day(store: Store, today: date) -> date:
    """The digest day when none is given: the newest day with papers, else `today`."""
    days = store.days()
    return days[-1] if days else today


class Ranker:
    """Ranks a day's candidates for many subscribers with one featurization of the papers."""

    def __init__(
        self, store: Store, embedder: Embedder, catchup_days: int = 3, profiles_from: Path | None = None
    ):
        self.store = store
        self.embedder = CachedEmbedder(embedder, store)
        self.catchup_days = catchup_days
        self.profiles_from = profiles_from  # folder that profile_papers paths are relative to

    @classmethod
    def for_settings(cls, store: Store, settings: Settings, embedder: Embedder | None = None) -> Ranker:
        """The ranker the settings describe; a long-lived caller passes the embedder it keeps
        loaded (the daemon), others get a fresh one that loads the model on first use."""
        return cls(
            store,
            embedder or embedder_for(settings.ranking.model),
            settings.ranking.catchup_days,
            profiles_from=settings.subscribers.resolve().parent,
        )

    def candidates(self, day: date) -> list:
        since = day - timedelta(days=max(self.catchup_days, 1) - 1)
        return self.store.papers(day, since=since)

    def features(self, papers: Sequence) -> rank.PaperFeatures:
        model = rank.keyphrase_cache_key(self.embedder.model_id)
        cached = self.store.cached_keyphrases(model, [text_hash(p.text) for p in papers])
        features, fresh = rank.featurize(papers, self.embedder, cached)
        if fresh:
            self.store.cache_keyphrases(model, fresh)
        return features

    def profile(self, subscriber: Subscriber) -> rank.Profile | None:
        """The subscriber's `profile_papers` (JSONL or other input files, relative to
        `profiles_from`, or ids of stored papers), the newest rank.PROFILE_MAX of them, embedded,
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
        own = unique[: rank.PROFILE_MAX]
        texts = [p.text for p in own]
        key = text_hash("profile\n" + "\n".join(sorted(texts)))
        model = rank.keyphrase_cache_key(self.embedder.model_id)
        cached = self.store.cached_keyphrases(model, [key])
        if key not in cached:
            cached[key] = rank.distill_profile(texts, self.embedder)
            self.store.cache_keyphrases(model, {key: cached[key]})
        return rank.Profile(
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
        signals = {s.id: self.signals(s, day) for s in subscribers}
        return rank.rank_subscribers(
            subscribers, features, self.embedder, limit=limit, signals=signals, profiles=profiles
        )

    def signals(self, subscriber: Subscriber, day: date) -> rank.Signals:
        """What the store knows of `subscriber` that shapes their ranking for `day`."""
        sent = self.store.sent_paper_ids(subscriber.id, before=day)
        return rank.Signals(sent_ids=sent, votes=self.votes(subscriber))

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


# --- render and deliver ------------------------------------------------------------------


def render_digest(sub: Subscriber, day: date, papers: Sequence[Ranked], settings: Settings) -> Digest:
    """The digest with its links, made once for the HTML, the text and the headers."""
    sender = settings.smtp.from_address.addr_spec
    made = links.for_digest(sub, day, settings, sender, [r.paper.id for r in papers])
    return render.render(sub, day, papers, made, templates=settings.templates)


def archive_copy(digest: Digest, settings: Settings) -> str:
    """The digest's page as the archive keeps it: no live unsubscribe or vote links in it, so
    a forwarded archive link cannot unsubscribe or vote for its reader."""
    quiet = Links(unsubscribe_mailto=digest.links.unsubscribe_mailto)
    return render.render(
        digest.subscriber, digest.day, digest.papers, quiet, templates=settings.templates
    ).html


def archive_path(settings: Settings, day: date, subscriber_id: str) -> Path:
    return settings.store.state_dir / "archive" / day.isoformat() / f"{subscriber_id}.html"


@dataclass
class Outcome:
    subscriber: str
    status: Status
    papers: int = 0
    location: str | None = None
    detail: str | None = None


PROBLEMS = (Status.FAILED, Status.PENDING, Status.SENDING, Status.NOT_TRIED)


@dataclass
class DeliveryReport:
    day: date
    outcomes: list[Outcome] = field(default_factory=list)
    stopped: str | None = None  # why the run stopped early, if it did

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in PROBLEMS]


def _describe(exc: BaseException) -> str:
    """Our errors say what to do; anything else is named by its type."""
    return str(exc) if isinstance(exc, DigestError) else f"{type(exc).__name__}: {exc}"


def _archive(settings: Settings, day: date, subscriber_id: str, digest: Digest) -> str | None:
    """Keep the sent digest as a page; a failure here is a note, the mail has gone out."""
    page = archive_path(settings, day, subscriber_id)
    try:
        page.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(page, archive_copy(digest, settings).encode("utf-8"))
    except OSError as exc:
        return f"sent, but the archive page {page} could not be written ({exc.strerror or exc})"
    return None


def policy_for(settings: Settings) -> Policy:
    return Policy(
        concurrency=settings.smtp.concurrency if settings.smtp.host else 1,
        rate=settings.smtp.rate,
        retries=settings.smtp.retries,
        backoff=settings.smtp.backoff,
        max_failures=settings.smtp.max_failures,
    )


def deliver(
    store: Store,
    settings: Settings,
    subscribers: Sequence[Subscriber],
    day: date,
    ranker: Ranker,
    *,
    dry_run: bool = False,
    to: str | None = None,
    retry_unknown: bool = False,
    new_mailer: Callable[[], Mailer] | None = None,
    no_empty: bool = False,
) -> DeliveryReport:
    """Send each active subscriber's digest for `day` at most once, as the ledger records.

    A (subscriber, day) row is claimed before its message is handed to SMTP and finished
    after; a run killed in between leaves it `sending` ("unknown"), which later runs report
    and resend only with `retry_unknown`. With `to`, the digest goes to that address as a
    test and the ledger is not touched."""
    report, due = still_due(store, subscribers, day, to=to, retry_unknown=retry_unknown)
    if not due:
        return report
    return send_ranked(
        store,
        settings,
        day,
        due,
        ranker.rank_all(due, day),
        report=report,
        dry_run=dry_run,
        to=to,
        retry_unknown=retry_unknown,
        new_mailer=new_mailer,
        no_empty=no_empty,
    )


def still_due(
    store: Store,
    subscribers: Sequence[Subscriber],
    day: date,
    *,
    to: str | None = None,
    retry_unknown: bool = False,
) -> tuple[DeliveryReport, list[Subscriber]]:
    """Who of `subscribers` still needs `day`'s digest, as the ledger and the unsubscribes say;
    and a report that already names the others (sent before, unsubscribed, unknown...)."""
    report = DeliveryReport(day)
    few = [s.id for s in subscribers] if len(subscribers) <= 500 else None  # a batch: its own rows
    rows = {d.subscriber_id: d for d in store.deliveries(day=day, subscribers=few)}
    gone = set() if to else set(store.unsubscribed())  # a test mail (--to) still goes
    due: list[Subscriber] = []
    for s in subscribers:
        row = None if to else rows.get(s.id)
        if not s.active:
            continue
        if s.id in gone:
            report.outcomes.append(Outcome(s.id, Status.UNSUBSCRIBED))
            continue
        if row is None or row.status == Status.PENDING or (retry_unknown and row.status == Status.SENDING):
            due.append(s)
        else:
            detail = row.reply or (f"Message-ID {row.message_id}" if row.status == Status.SENDING else None)
            status = Status.ALREADY if row.status == Status.SENT else row.status
            report.outcomes.append(Outcome(s.id, status, len(row.paper_ids), row.location, detail))
    return report, due


def skipped(sub: Subscriber, papers: Sequence[Ranked], *, no_empty: bool = False) -> Outcome | None:
    """The outcome of a digest not worth sending: nothing matched and the reader did not ask for
    empty digests, or `no_empty` (every source failed: "nothing new" would be a lie)."""
    if not papers and (no_empty or not sub.send_empty):
        return Outcome(sub.id, Status.SKIPPED, 0, detail="nothing new matched")
    return None


def send_ranked(
    store: Store,
    settings: Settings,
    day: date,
    due: Sequence[Subscriber],
    ranked: Mapping[str, Sequence[Ranked]],
    *,
    report: DeliveryReport | None = None,
    dry_run: bool = False,
    to: str | None = None,
    retry_unknown: bool = False,
    new_mailer: Callable[[], Mailer] | None = None,
    no_empty: bool = False,
    pace: Callable[[], None] | None = None,
) -> DeliveryReport:
    """Claim, render and send each of `due` their `ranked` papers, recording every result in
    the ledger (see `deliver`). `pace`, if given, is waited on before each message: a rate
    limit shared with other senders (digest.queue); else the settings' own, in this process."""
    report = report or DeliveryReport(day)
    key = day.isoformat()
    in_flight: dict[str, tuple[Subscriber, Digest, list[str]]] = {}

    def jobs() -> Iterator[Outgoing]:
        for sub in _progress(due, "sending"):
            papers = ranked[sub.id]
            if (skip := skipped(sub, papers, no_empty=no_empty)) is not None:
                report.outcomes.append(skip)
                continue
            if dry_run:
                titles = "; ".join(r.paper.title for r in papers[:3])
                report.outcomes.append(Outcome(sub.id, Status.DRY_RUN, len(papers), detail=titles))
                continue
            if to is None and not store.claim_delivery(sub.id, day, retry_unknown=retry_unknown):
                report.outcomes.append(Outcome(sub.id, Status.ALREADY, len(papers)))  # another run won it
                continue
            ids = [r.paper.id for r in papers]
            try:
                digest = render_digest(sub, day, papers, settings)
                message = build_message(digest, settings.smtp, to=to)
                outgoing = serialize(
                    message, settings.smtp, key=f"{key}/{sub.id}" if to is None else f"{key}/test-{sub.id}"
                )
            except Exception as exc:  # noqa: BLE001 - one digest's failure is its own, whatever it is
                reason = one_line(f"cannot build the digest: {_describe(exc)}")
                log.debug("building %s's digest failed", sub.id, exc_info=True)
                if to is None:  # nothing went out: the next run tries again, the reason is kept
                    store.finish_delivery(sub.id, day, status=Status.PENDING, paper_ids=ids, reply=reason)
                report.outcomes.append(Outcome(sub.id, Status.FAILED, len(ids), detail=reason))
                continue
            if to is None:
                store.note_message_id(sub.id, day, outgoing.message_id)
            in_flight[outgoing.key] = (sub, digest, ids)
            yield outgoing

    try:
        policy = policy_for(settings)
        if pace is not None:
            policy = replace(policy, rate=None)
        mailers = new_mailer or mailer_factory(settings.smtp, settings.outbox)
        for result in dispatch(jobs(), mailers, policy, pace=pace):
            sub, digest, ids = in_flight.pop(result.outgoing.key)
            detail = one_line(result.reply) if result.reply else None
            if to is None:
                store.finish_delivery(
                    sub.id,
                    day,
                    status=result.status,  # SENDING (unknown) stays so: only --retry-unknown resends
                    message_id=result.outgoing.message_id,
                    paper_ids=ids,
                    location=result.location,
                    reply=detail,
                    attempts=result.attempts,
                )
                if result.status == Status.SENT:
                    detail = _archive(settings, day, sub.id, digest)
            report.outcomes.append(Outcome(sub.id, result.status, len(ids), result.location, detail))
    except Stopped as exc:
        report.stopped = str(exc)
        seen = {o.subscriber for o in report.outcomes}
        report.outcomes += [
            Outcome(s.id, Status.NOT_TRIED, detail="the run stopped first") for s in due if s.id not in seen
        ]
    return report


def run_due(
    store: Store,
    settings: Settings,
    subscribers: Sequence[Subscriber],
    ranker: Ranker,
    *,
    now: datetime | None = None,
    no_empty: bool = False,
    enqueue: bool = False,
) -> list[DeliveryReport]:
    """Send every digest that is due at `now` by each subscriber's local clock (see schedule);
    with `enqueue`, hand them to the workers instead (digest.queue)."""
    now = now or settings.clock()
    # a local date is at most a day from the UTC one: only the last few days can be due
    taken = store.taken_days(since=now.date() - timedelta(days=2))
    gone = store.unsubscribed()
    groups = schedule.due([s for s in subscribers if s.id not in gone], now, taken)
    hand = _handing(enqueue)
    return [
        hand(store, settings, group, day, ranker, no_empty=no_empty) for day, group in sorted(groups.items())
    ]


def _handing(enqueue: bool) -> Callable[..., DeliveryReport]:
    """What a run does with a day's due digests: send them, or queue them for the workers."""
    if not enqueue:
        return deliver
    from .queue import enqueue as to_workers  # procrastinate is imported only by those who use it

    return to_workers


def ingest_inbox(store: Store, settings: Settings, *, today: date | None = None) -> list[FileOutcome]:
    """The inbox's files into the store (what every run and every daemon poll starts with);
    a file whose name has no date arrives on `today` (default: the settings' clock)."""
    return ingest(
        store,
        inbox_files(settings.inbox),
        today=today or settings.clock().date(),
        allow_private=settings.fetch.allow_private,
    )


def send(
    store: Store,
    settings: Settings,
    subscribers: Sequence[Subscriber],
    ranker: Ranker,
    *,
    day: date | None = None,
    no_empty: bool = False,
    enqueue: bool = False,
) -> list[DeliveryReport]:
    """What `run` sends after ingesting: `day`'s digest to everyone not sent yet, or without a
    day whatever is due now by each subscriber's local clock. `no_empty`: nobody gets an empty
    digest (every source failed: "nothing new" would be a lie). `enqueue`: the workers send."""
    if day is not None:
        reports = [_handing(enqueue)(store, settings, subscribers, day, ranker, no_empty=no_empty)]
    else:
        reports = run_due(store, settings, subscribers, ranker, no_empty=no_empty, enqueue=enqueue)
    store.prune_cache(int(settings.store.cache_mb * 2**20))  # after the run: its vectors are the newest
    return reports


def fetch_configured(
    store: Store, settings: Settings, *, day: date | None = None, sources: Sequence[Source] | None = None
) -> list[FetchOutcome]:
    """Fetch `sources`, by default those listed in subscribers.yaml (none: nothing to do)."""
    configured = load_sources(settings.subscribers) if sources is None else sources
    if not configured:
        return []
    return fetch_sources(store, settings, configured, day=day or settings.clock().date())


def all_sources_failed(outcomes: Sequence[FetchOutcome]) -> bool:
    return bool(outcomes) and not any(o.ok for o in outcomes)


def _progress(items: Sequence, what: str) -> Iterable:
    """A progress bar on a terminal for long batches; silent under cron."""
    if len(items) < 20 or not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=what, unit="mail", file=sys.stderr)


def find_subscriber(subscribers: Sequence[Subscriber], sid: str) -> Subscriber:
    for s in subscribers:
        if s.id == sid:
            return s
    known = ", ".join(s.id for s in subscribers) or "none"
    raise NotFoundError(f"no subscriber {sid!r} in the subscribers file (known: {known})")
