"""Delivery: ranked lists -> mail -> ledger. Never ranks: it is handed each reader's picks.

    still_due(store, subscribers, day)     who still needs `day`'s digest, as the ledger and the
                                           unsubscribes say; a report naming the others
    send_ranked(store, mailroom, day, due, ranked)
        for each reader:  claim (one atomic upsert: never twice) -> render -> serialize
                          -> dispatch (retries, pace, parallel connections) -> finish the row
                          -> archive the page
    A digest that cannot be built is that reader's failure alone; a run that must stop (a
    refused login, an untrusted certificate) leaves the rest not tried.

The workers (digest.delivery.queue) are a second way of sending: they run send_ranked over the
picks the front door saved for them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from .. import progress
from ..errors import DigestError
from ..models import Digest, Links, Ranked, Status, Subscriber
from ..settings import BounceSettings, Settings, SMTPSettings
from ..store import DeliveryStore
from ..store.bounces import Suppression
from ..text import one_line
from . import render
from .bounces import absorb, smtp_report
from .dispatch import Policy, Stopped, dispatch
from .links import LinkMaker, return_path
from .mail import Mailer, Outgoing, atomic_write, build_message, mailer_factory, serialize

log = logging.getLogger("digest")


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


@dataclass(frozen=True)
class Mailroom:
    """What sending needs, made once per process from the settings: how mail leaves (SMTP or
    the outbox), the templates, the links (the secret read once) and where sent digests are
    archived."""

    smtp: SMTPSettings
    outbox: Path
    archive: Path  # <state>/archive: <day>/<subscriber>.html
    links: LinkMaker
    templates: Path | None = None
    bounces: BounceSettings = field(default_factory=BounceSettings)

    @classmethod
    def for_settings(cls, settings: Settings) -> Mailroom:
        return cls(
            smtp=settings.smtp,
            outbox=settings.outbox,
            archive=cls.archive_of(settings),
            links=LinkMaker.for_settings(settings),
            templates=settings.templates,
            bounces=settings.bounces,
        )

    def return_path(self, sub: Subscriber) -> str | None:
        """The envelope sender of `sub`'s digest: their VERP address when DIGEST_BOUNCE_ADDRESS
        is set (digest.delivery.bounces), else None (the From address)."""
        address = self.bounces.address
        return return_path(address, self.links.key, sub) if address else None

    @staticmethod
    def archive_of(settings: Settings) -> Path:
        return settings.store.state_dir / "archive"

    def render(self, sub: Subscriber, day: date, papers: Sequence[Ranked]) -> Digest:
        """The digest with its links, made once for the HTML, the text and the headers."""
        made = self.links.for_digest(sub, day, [r.paper.id for r in papers])
        return render.render(sub, day, papers, made, templates=self.templates)

    def archived(self, day: date, subscriber_id: str) -> Path:
        return self.archive / day.isoformat() / f"{subscriber_id}.html"

    def archive_copy(self, digest: Digest) -> str:
        """The digest's page as the archive keeps it: no live unsubscribe or vote links in it,
        so a forwarded archive link cannot unsubscribe or vote for its reader."""
        quiet = Links(unsubscribe_mailto=digest.links.unsubscribe_mailto)
        page = render.render(digest.subscriber, digest.day, digest.papers, quiet, templates=self.templates)
        return page.html

    def keep(self, digest: Digest) -> str | None:
        """Keep the sent digest as a page; a failure here is a note, the mail has gone out."""
        page = self.archived(digest.day, digest.subscriber.id)
        try:
            page.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(page, self.archive_copy(digest).encode("utf-8"))
        except OSError as exc:
            return f"sent, but the archive page {page} could not be written ({exc.strerror or exc})"
        return None

    def mailers(self) -> Callable[[], Mailer]:
        return mailer_factory(self.smtp, self.outbox)

    def policy(self) -> Policy:
        return Policy(
            concurrency=self.smtp.concurrency if self.smtp.host else 1,
            rate=self.smtp.rate,
            retries=self.smtp.retries,
            backoff=self.smtp.backoff,
            max_failures=self.smtp.max_failures,
        )


def archived(settings: Settings, day: date, subscriber_id: str) -> Path:
    """Where the digest sent to `subscriber_id` for `day` is kept as a page."""
    return Mailroom.archive_of(settings) / day.isoformat() / f"{subscriber_id}.html"


def still_due(
    store: DeliveryStore,
    subscribers: Sequence[Subscriber],
    day: date,
    *,
    to: str | None = None,
    retry_unknown: bool = False,
) -> tuple[DeliveryReport, list[Subscriber]]:
    """Who of `subscribers` still needs `day`'s digest, as the ledger, the unsubscribes and the
    suppressions say; and a report that already names the others (sent before, unsubscribed,
    suppressed, unknown...)."""
    report = DeliveryReport(day)
    few = [s.id for s in subscribers] if len(subscribers) <= 500 else None  # a batch: its own rows
    rows = {d.subscriber_id: d for d in store.deliveries(day=day, subscribers=few)}
    gone = set() if to else set(store.unsubscribed())  # a test mail (--to) still goes
    stopped = {} if to else suppressed(store, subscribers)
    due: list[Subscriber] = []
    for s in subscribers:
        row = None if to else rows.get(s.id)
        if not s.active:
            continue
        if s.id in gone:
            report.outcomes.append(Outcome(s.id, Status.UNSUBSCRIBED))
            continue
        if s.id in stopped:
            why = f"{stopped[s.id].reason} on {stopped[s.id].at[:10]}"
            report.outcomes.append(Outcome(s.id, Status.SUPPRESSED, detail=why))
            continue
        if row is None or row.status == Status.PENDING or (retry_unknown and row.status == Status.SENDING):
            due.append(s)
        else:
            detail = row.reply or (f"Message-ID {row.message_id}" if row.status == Status.SENDING else None)
            status = Status.ALREADY if row.status == Status.SENT else row.status
            report.outcomes.append(Outcome(s.id, status, len(row.paper_ids), row.location, detail))
    return report, due


def suppressed(store: DeliveryStore, subscribers: Iterable[Subscriber]) -> dict[str, Suppression]:
    """The suppressions that stop mail to `subscribers` now: at the address they still have."""
    held = store.suppressed()
    return {s.id: held[s.id] for s in subscribers if s.id in held and held[s.id].holds_for(s.email)}


def skipped(sub: Subscriber, papers: Sequence[Ranked], *, no_empty: bool = False) -> Outcome | None:
    """The outcome of a digest not worth sending: nothing matched and the reader did not ask for
    empty digests, or `no_empty` (every source failed: "nothing new" would be a lie)."""
    if not papers and (no_empty or not sub.send_empty):
        return Outcome(sub.id, Status.SKIPPED, 0, detail="nothing new matched")
    return None


def send_ranked(
    store: DeliveryStore,
    mailroom: Mailroom,
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
    """Send each of `due` their `ranked` papers at most once, recording every result in the
    ledger. A (subscriber, day) row is claimed before its message is handed to SMTP and
    finished after; a run killed in between leaves it `sending` ("unknown"), which later runs
    report and resend only with `retry_unknown`. With `to`, the digest goes to that address as
    a test and the ledger is not touched. `pace`, if given, is waited on before each message: a
    rate limit shared with other senders (the workers); else the settings' own, in this process."""
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
                digest = mailroom.render(sub, day, papers)
                message = build_message(digest, mailroom.smtp, to=to)
                name = f"{key}/{sub.id}" if to is None else f"{key}/test-{sub.id}"
                sender = mailroom.return_path(sub) if to is None else None
                outgoing = serialize(message, mailroom.smtp, key=name, sender=sender)
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
        policy = mailroom.policy()
        if pace is not None:
            policy = replace(policy, rate=None)
        for result in dispatch(jobs(), new_mailer or mailroom.mailers(), policy, pace=pace):
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
                    detail = mailroom.keep(digest)
                elif result.status == Status.FAILED:
                    _refused(store, mailroom, sub, result.reply or "", result.outgoing.message_id)
            report.outcomes.append(Outcome(sub.id, result.status, len(ids), result.location, detail))
    except Stopped as exc:
        report.stopped = str(exc)
        seen = {o.subscriber for o in report.outcomes}
        report.outcomes += [
            Outcome(s.id, Status.NOT_TRIED, detail="the run stopped first") for s in due if s.id not in seen
        ]
    return report


def _refused(store: DeliveryStore, mailroom: Mailroom, sub: Subscriber, reply: str, message_id: str) -> None:
    """A 5xx at RCPT or after DATA is a bounce like any other (digest.delivery.bounces): a hard
    one stops the next morning's mail at once. Recording it never fails the send loop."""
    report = smtp_report(reply, sub.email, message_id)
    if report is None:
        return
    try:
        absorb(store, sub, report, f"smtp:{message_id}", mailroom.bounces)
    except DigestError as exc:
        log.warning("could not record %s's refusal as a bounce: %s", sub.id, exc)


def _describe(exc: BaseException) -> str:
    """Our errors say what to do; anything else is named by its type."""
    return str(exc) if isinstance(exc, DigestError) else f"{type(exc).__name__}: {exc}"


def _progress(items: Sequence, what: str) -> Iterable:
    """A progress bar on a terminal for long batches; silent under cron and with --quiet."""
    if len(items) < 20:
        return items
    return progress.current().bar(items, what, "mail")
