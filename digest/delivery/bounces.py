"""Bounces and complaints keep the list clean: each report is tied to its reader, recorded once,
and stops the mail to that address when it says the address is gone or the reader complained.

    read_mailbox(settings, store, subscribers)   the bounce mailbox (Maildir or IMAP), read
        for each message:  reports.parse -> tie to a reader -> absorb -> moved to "processed"
        an auto-reply, any other mail, a report about nobody we mail: left exactly where it was
    absorb(store, reader, report, key, settings)  the rule, for every source (the mailbox, a
        5xx during our own send, the SES webhook)

The rule:
    complaint (an ARF abuse or fraud report, an SES complaint)            suppressed at once
    hard: a 5.x.x that says the address cannot take mail (5.0 other,
          5.1 address, 5.2 mailbox, 5.4 routing), or a bounce without a code   suppressed at once
    soft: 4.x.x, Action: delayed; and a 5.x.x that says nothing about the
          address (5.3 their system, 5.5 protocol, 5.6 content, 5.7 policy:
          a spam filter, our own DKIM): a fault of ours must never drop the list   the
          `soft_limit`-th within `soft_days` days suppresses

A report is tied to its reader by, in turn: the VERP return path (bounces+ID=MAC@domain, the
MAC made with the links' secret: nobody can aim a bounce at another reader); the Message-ID of
our digest it quotes, looked up in the ledger; the address it names, among the readers'.
A suppression names the address it stopped: a reader whose address in subscribers.yaml changes
is mailed again, and `digest subscribers resubscribe ID` lifts it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..models import Subscriber
from ..settings import BounceSettings, Settings
from ..store import DeliveryStore
from ..store.bounces import Bounce, Suppression
from ..text import one_line
from . import reports
from .links import secret, verp_subscriber
from .mailbox import open_mailbox
from .reports import Report, Skip

log = logging.getLogger("digest")

ADDRESS_FAILURES = ("5.0.", "5.1.", "5.2.", "5.4.")  # 5.x.x classes about the address itself
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_CODE = re.compile(r"^\s*([45])\d\d\b")


def effective_kind(report: Report) -> str:
    """What the report does to the reader: hard and complaint stop the mail at once, soft counts."""
    if report.kind == "hard" and report.status and not report.status.startswith(ADDRESS_FAILURES):
        return "soft"  # their system, the protocol, the content or a policy: not the address
    return report.kind


def smtp_report(reply: str, recipient: str, message_id: str | None) -> Report | None:
    """A refusal during our own send (a 5xx at RCPT or after DATA; 4xx are retried, never here)
    as a report: the enhanced status when the server gives one."""
    code = _CODE.match(reply or "")
    if code is None or code.group(1) != "5":
        return None
    status = _STATUS.search(reply)
    return Report(
        kind="hard",
        recipient=recipient,
        status=".".join(status.groups()) if status else None,
        diagnostic=one_line(reply)[:300],
        message_id=message_id,
        original_to=recipient,
        verp_token=None,
        source="smtp",
    )


@dataclass(frozen=True)
class Absorbed:
    """One report as recorded: the bounce, the suppression it made (if any), and whether it was
    new (a report read twice, or posted twice, counts once)."""

    bounce: Bounce
    suppression: Suppression | None
    new: bool


def absorb(
    store: DeliveryStore,
    reader: Subscriber,
    report: Report,
    key: str,
    settings: BounceSettings,
    now: datetime | None = None,
) -> Absorbed:
    """Record `report` about `reader` (once, by `key`) and apply the rule."""
    now = now or datetime.now(UTC)
    at = (report.arrived or now).astimezone(UTC).isoformat(timespec="seconds")
    ours = report.message_id is not None and store.subscriber_of_message(report.message_id) == reader.id
    email = address_of(reader, report, ours)
    kind = effective_kind(report)
    bounce = Bounce(key, reader.id, email, kind, report.status, report.diagnostic, report.source, at)
    if not store.record_bounce(bounce):
        return Absorbed(bounce, None, new=False)
    window = _window_start(now, settings)
    if kind == "soft" and store.soft_bounces(reader.id, email, window) < settings.soft_limit:
        return Absorbed(bounce, None, new=True)
    suppression = Suppression(reader.id, email, kind, at, report.status, report.diagnostic, report.source)
    return Absorbed(bounce, suppression if store.suppress(suppression, reader.email) else None, new=True)


def address_of(reader: Subscriber, report: Report, ours: bool = False) -> str:
    """The address a report stops, lower case. A bounce through a forward names the forward, but
    it is the mail to the reader's own address that feeds it, so that address is stopped when
    the report shows our digest went there: it names that address (as the failed recipient or
    our digest's To), or came back to their VERP return path (which binds their address of now);
    else our digest's To as the report quotes it (an address they have since left stops
    nothing); else, `ours`, the quoted Message-ID is one the ledger gave them; else the failed
    recipient."""
    current = reader.email.strip().lower()
    named = {a.strip().lower() for a in (report.recipient, report.original_to) if a}
    if current in named or (report.verp_token or "").rpartition("=")[0] == reader.id:
        return current
    if report.original_to:
        return report.original_to.strip().lower()
    if ours or not report.recipient:
        return current
    return report.recipient.strip().lower()


def tie(
    report: Report, subscribers: Sequence[Subscriber], store: DeliveryStore, key: str | None
) -> Subscriber | None:
    """The reader `report` is about, or None (a report about nobody we mail)."""
    if report.verp_token and key is not None:
        reader = verp_subscriber(key, report.verp_token, subscribers)
        if reader is not None:
            return reader
    by_id = {s.id: s for s in subscribers}
    if report.message_id:
        sid = store.subscriber_of_message(report.message_id)
        if sid in by_id:
            return by_id[sid]
    by_email = {s.email.lower(): s for s in subscribers}
    for address in (report.recipient, report.original_to):
        if address and address.strip().lower() in by_email:
            return by_email[address.strip().lower()]
    return None


def recent_soft(store: DeliveryStore, settings: BounceSettings, now: datetime) -> dict[str, list[Bounce]]:
    """Each reader's soft bounces within the window (`soft_days`), oldest first: the count that
    stops their mail at `soft_limit`, for `status` and `subscribers check` to show before it does."""
    out: dict[str, list[Bounce]] = {}
    for b in store.bounces(kind="soft", since=_window_start(now, settings)):
        out.setdefault(b.subscriber_id, []).append(b)
    return out


def _window_start(now: datetime, settings: BounceSettings) -> str:
    """The oldest time, ISO in UTC, whose soft bounces still count (`soft_days` back from `now`)."""
    return (now - timedelta(days=settings.soft_days)).astimezone(UTC).isoformat(timespec="seconds")


@dataclass
class BounceRun:
    """What one reading of the bounce mailbox did."""

    read: int = 0
    acted: list[Absorbed] = field(default_factory=list)  # tied to a reader, recorded, moved
    skipped: Counter[str] = field(default_factory=Counter)  # not reports, by reason: left in place
    untied: int = 0  # reports about nobody we mail: left in place

    @property
    def suppressed(self) -> list[Suppression]:
        return [a.suppression for a in self.acted if a.suppression is not None]


def read_mailbox(settings: Settings, store: DeliveryStore, subscribers: Sequence[Subscriber]) -> BounceRun:
    """Read DIGEST_BOUNCE_MAILBOX once: every report tied to a reader is recorded, acted on and
    moved to "processed"; every other message stays where it was. ConfigError when the mailbox
    cannot be opened (named, with what to do); a message that cannot be read is skipped."""
    bounces = settings.bounces
    run = BounceRun()
    if not bounces.mailbox:
        return run
    local, _, domain = (bounces.address or "bounces@").rpartition("@")
    key = secret(settings) if bounces.address else None
    with open_mailbox(bounces.mailbox, password=bounces.password) as box:
        for msg_key, raw in box.messages():
            run.read += 1
            verdict = reports.parse(raw, bounce_domain=domain or None, bounce_local=local or "bounces")
            if isinstance(verdict, Skip):
                run.skipped[verdict.reason] += 1
                continue
            reader = tie(verdict, subscribers, store, key)
            if reader is None:
                run.untied += 1
                log.info(
                    "a %s report about %s ties to no reader: left in the mailbox",
                    verdict.kind,
                    verdict.recipient,
                )
                continue
            report_key = "mail:" + hashlib.sha256(raw).hexdigest()[:32]
            run.acted.append(absorb(store, reader, verdict, report_key, bounces))
            box.processed(msg_key)
    return run
