"""What the commands print, as lines: each function turns a result into `Line`s (text, and
whether it goes to stderr), without a terminal, so `digest.cli` only echoes them.
Everything a stranger wrote (titles, file names, server replies) passes through one_line."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, NamedTuple

from .app import StatusView
from .delivery.bounces import BounceRun
from .delivery.send import PROBLEMS, DeliveryReport, archived
from .ingest.fetch import FetchOutcome
from .ingest.files import FileOutcome
from .models import Paper, Ranked, Status, Subscriber
from .names import ambiguous_name as ambiguous
from .schedule import next_send
from .settings import BounceSettings, Settings
from .store import Unsubscribe
from .store.bounces import Bounce, Suppression
from .text import mask_query, one_line, readable
from .tldr import tldr


class Line(NamedTuple):
    text: str
    err: bool = False


def ingested(outcomes: Iterable[FileOutcome], *, show_skipped: bool = True) -> list[Line]:
    """One line per file read (and per skipped one if asked); problems on stderr."""
    lines = []
    for o in outcomes:
        if o.error:
            lines.append(Line(f"digest: {one_line(o.error)}", err=True))
        elif not o.skipped:
            lines.append(Line(f"{one_line(o.path)}: {o.papers} papers ({o.new} new, {o.updated} updated)"))
        elif show_skipped:
            lines.append(Line(f"{one_line(o.path)}: already ingested, skipped"))
        lines += [Line(f"digest: {one_line(note)}", err=True) for note in o.notes]
    return lines


FETCHED = {
    "new": "{papers} papers ({new} new)",
    "unchanged": "unchanged since the last fetch",
    "not-modified": "not modified since the last fetch",
    "nothing-published": "nothing published (a weekend or holiday?)",
}


def fetched(outcomes: Iterable[FetchOutcome], *, quiet: bool = False) -> list[Line]:
    """One line per source; failures on stderr, and always."""
    lines = []
    for o in outcomes:
        if not o.ok:
            lines.append(Line(f"digest: source {o.source}: failed: {o.detail}", err=True))
        elif not quiet:
            said = FETCHED[o.status].format(papers=o.papers, new=o.new)
            lines.append(Line(f"source {o.source}: {said}" + (f" — {o.detail}" if o.detail else "")))
    return lines


def delivered(report: DeliveryReport, settings: Settings) -> list[Line]:
    """One row per subscriber: what happened, how many papers, where the mail and its HTML are."""
    if not report.outcomes:
        return [Line(f"no active subscribers for {report.day}")]
    lines = [
        Line(f"digests for {report.day}:"),
        Line(f"  {'subscriber':<14} {'status':<11} {'papers':>6}  {'email':<40} html"),
    ]
    for o in report.outcomes:
        html = ""
        if o.location and o.location.endswith(".eml"):
            html = o.location[: -len(".eml")] + ".html"
        elif o.status in (Status.SENT, Status.ALREADY):
            html = str(archived(settings, report.day, o.subscriber))
        label = o.status.label
        lines.append(
            Line(f"  {o.subscriber:<14} {label:<11} {o.papers:>6}  {o.location or '-':<40} {html or '-'}")
        )
        if o.detail and (o.status not in (Status.SENT, Status.ALREADY) or "archive" in o.detail):
            lines.append(Line(f"      {one_line(o.detail)}", err=o.status in PROBLEMS))
    if report.stopped:
        lines.append(Line(f"digest: {report.stopped}", err=True))
    if any(o.status == Status.SENDING for o in report.outcomes):
        lines.append(
            Line(
                "digest: 'unknown' means a run stopped mid-send: check the mail server's log for the "
                "Message-ID, then `digest send --retry-unknown` to send those again",
                err=True,
            )
        )
    return lines


def ranked(picks: Sequence[Ranked]) -> list[Line]:
    lines = []
    for i, r in enumerate(picks, start=1):
        why = [f"by {r.followed}"] if r.followed else []
        why += [f"always: {r.always}"] if r.always else []
        why += ["something different: does it fit?"] if r.explore else []
        matched = one_line(", ".join([*why, *r.matched])) or "-"
        lines.append(
            Line(f"  {i:>2}. {r.score:.3f}  {one_line(readable(r.paper.title))[:70]:<70}  [{matched}]")
        )
    return lines


def ranked_json(ranking: Mapping[str, Sequence[Ranked]]) -> str:
    """`digest rank --json`, as the contract shows it."""
    return json.dumps(
        {
            sid: [
                {
                    "paper_id": r.paper.id,
                    "title": one_line(r.paper.title),
                    "tldr": paper_tldr(r.paper),
                    "score": r.score,
                    "relevance": r.relevance,
                    "trending": r.trending,
                    "liked_like": r.liked_like,
                    "close_to": r.close_to,
                    "from_papers": list(r.from_papers),
                    "followed": r.followed,
                    "always": r.always,
                    "explore": r.explore,
                    "matched": list(r.matched),
                    "keyphrases": list(r.keyphrases),
                }
                for r in picks
            ]
            for sid, picks in ranking.items()
        },
        indent=2,
        ensure_ascii=False,
    )


def paper_json(p: Paper) -> dict[str, Any]:
    """A paper as the contract shows it: text without control characters, no URL secrets."""
    d = asdict(p)
    d.pop("announce_type")
    d["day"] = p.day.isoformat() if p.day else None
    for name in ("title", "abstract", "organization"):
        d[name] = one_line(d[name]) if d[name] else d[name]
    d["authors"] = [one_line(a) for a in p.authors]
    d["categories"] = [one_line(c) for c in p.categories]
    d["source"] = source_name(p.source)
    d["tldr"] = paper_tldr(p)
    return d


def paper_tldr(p: Paper) -> str | None:
    """One sentence saying what the paper does (digest.tldr), or None without an abstract."""
    return tldr(p.title, p.abstract) or None


def source_name(source: str | None) -> str | None:
    """A file name, or a URL with its query values masked (an api_key never reaches a screen)."""
    if not source:
        return source
    return one_line(mask_query(source) if "://" in source else source)


def next_send_text(
    sub: Subscriber,
    now: datetime,
    gone: Mapping[str, Unsubscribe],
    fmt: str,
    stopped: Mapping[str, Suppression] | None = None,
) -> str:
    """When the subscriber's next digest goes, in their zone (`fmt`), or why none will."""
    if sub.id in gone:
        return f"unsubscribed {gone[sub.id].at[:10]} ({gone[sub.id].how})"
    if stopped and sub.id in stopped:
        return f"suppressed {stopped[sub.id].at[:10]} ({stopped[sub.id].reason})"
    return format(next_send(sub, now), fmt) if sub.active else "inactive"


def bounces_read(run: BounceRun | None, error: str | None) -> list[Line]:
    """What reading the bounce mailbox did: reports acted on, readers suppressed, what was left."""
    if error is not None:
        return [Line(f"digest: bounce mailbox not read ({one_line(error)}); sending goes on", err=True)]
    if run is None:
        return []
    left = [f"{n} {reason}" for reason, n in sorted(run.skipped.items())]
    left += [f"{run.untied} about nobody on the list"] if run.untied else []
    lines = [
        Line(
            f"bounce mailbox: {run.read} messages, {len(run.acted)} reports acted on"
            + (f"; left in place: {', '.join(left)}" if left else "")
        )
    ]
    for s in run.suppressed:
        why = f" — {one_line(s.diagnostic)[:120]}" if s.diagnostic else ""
        lines.append(Line(f"  {s.subscriber_id} suppressed: {s.reason} ({s.source}){why}"))
    return lines


def schedule_list(
    subscribers: Iterable[Subscriber],
    now: datetime,
    gone: Mapping[str, Unsubscribe],
    stopped: Mapping[str, Suppression] | None = None,
) -> list[Line]:
    """`digest schedule --list`: each subscriber's next send in their zone and in UTC; one who
    unsubscribed (`gone`), is suppressed (`stopped`) or is not `active` is shown so, with no
    next send."""
    stopped = stopped or {}
    lines = [Line(f"{'subscriber':<14} {'time zone':<22} {'next send (local)':<24} next send (UTC)")]
    for s in subscribers:
        local = next_send_text(s, now, gone, "%a %d %b %H:%M %Z", stopped)
        due = s.active and s.id not in gone and s.id not in stopped
        utc = f"{next_send(s, now).astimezone(UTC):%a %d %b %H:%M}" if due else "-"
        lines.append(Line(f"{s.id:<14} {s.timezone:<22} {local:<24} {utc}"))
    return lines


def subscribers_checked(
    subscribers: Sequence[Subscriber],
    now: datetime,
    gone: Mapping[str, Unsubscribe],
    votes: Mapping[str, Sequence[int]],
    distilled: Mapping[str, Sequence[str]],
    stopped: Mapping[str, Suppression] | None = None,
    soft: tuple[Mapping[str, Sequence[Bounce]], BounceSettings] | None = None,
) -> list[Line]:
    """`digest subscribers check`: each subscriber's next send, keywords, votes and profile, and
    for a suppressed one the report that stopped them."""
    from .ranking.learn import share

    stopped = stopped or {}
    lines = [Line(f"{'subscriber':<14} {'email':<28} {'next send (local)':<36} keywords")]
    for s in subscribers:
        when = next_send_text(s, now, gone, f"%a %d %b %H:%M {s.timezone}", stopped)
        lines.append(Line(f"{s.id:<14} {s.email:<28} {when:<36} {', '.join(s.keywords)}"))
        if s.id in stopped:
            held = stopped[s.id]
            lines.append(
                Line(
                    f"{'':<14} {held.reason} on {held.at[:10]} ({held.source}):"
                    f" {one_line(held.diagnostic) or 'no diagnostic'}; lift it with `digest subscribers"
                    f" resubscribe {s.id}` or a new address"
                )
            )
        elif soft and (recent := soft[0].get(s.id)):
            limit, days = soft[1].soft_limit, soft[1].soft_days
            last = recent[-1]
            lines.append(
                Line(
                    f"{'':<14} {len(recent)} soft bounce(s) in {days} days ({limit} stop the mail); last"
                    f" {last.at[:10]} {last.status or ''} ({last.source}): {one_line(last.diagnostic)[:160]}"
                )
            )
        if cast := votes.get(s.id):
            up = sum(1 for v in cast if v > 0)
            lines.append(
                Line(
                    f"{'':<14} {len(cast)} votes shape their ranking ({up} more, {len(cast) - up}"
                    f" less like this; weight {share(len(cast)):.0%}, more the clearer they are)"
                )
            )
        if s.id in distilled:
            lines.append(
                Line(
                    f"{'':<14} from {len(s.profile_papers)} profile file(s)/paper(s): "
                    f"{', '.join(distilled[s.id])}"
                )
            )
        lines += _steering(s)
    return lines


def _steering(s: Subscriber) -> list[Line]:
    """The fields a reader steers with: followed authors (an initial that may be several people
    is said), always-phrases, categories."""
    lines = []
    if s.authors:
        shown = [f"{a} (an initial: may match several people)" if ambiguous(a) else a for a in s.authors]
        lines.append(Line(f"{'':<14} follows {'; '.join(shown)}: their papers come first"))
    if s.always:
        lines.append(Line(f"{'':<14} always: {', '.join(s.always)}"))
    if s.categories:
        lines.append(Line(f"{'':<14} categories: {', '.join(s.categories)} (papers without any: by content)"))
    if s.explore is not None:
        said = "on: one paper outside their usual picks, to vote on" if s.explore else "off"
        lines.append(Line(f"{'':<14} exploration slot: {said}"))
    return lines


UNSETTLED = {
    Status.SENDING: "unknown (a run stopped mid-send or lost the reply)",
    Status.PENDING: "pending (retried by the next run)",
    Status.FAILED: "failed",
}


def status(view: StatusView, subscribers: Sequence[Subscriber] | str, now: datetime) -> list[Line]:
    """`digest status`: the database, the queue, the cache, the last ingests and fetches, the
    ledger's counts, each subscriber's last and next digest, what needs a look. `subscribers`:
    the list, or why it cannot be read."""
    lines = [Line(f"database: {view.database} ({view.days} days of papers)")]
    if view.jobs is not None:
        lines.append(
            Line("send queue: " + (", ".join(f"{n} {s}" for s, n in sorted(view.jobs.items())) or "empty"))
        )
    vectors, size = view.cache
    lines.append(
        Line(
            f"embedding cache: {vectors:,} vectors, {size / 2**20:.1f} MB"
            f" (bound {view.cache_mb:g} MB, DIGEST_CACHE_MB)"
        )
    )
    lines += [
        Line(f"  ingested {f.ingested_at}  {f.papers:>4} papers  {source_name(f.path)}") for f in view.files
    ]
    for state in view.sources.values():
        why = f" — {state.detail}" if state.status == "failed" and state.detail else ""
        last_good = state.last_ok or "never"
        lines.append(
            Line(f"  source {state.name}: {state.status} at {state.last_attempt}, last good {last_good}{why}")
        )
    lines.append(
        Line("deliveries: " + (", ".join(f"{n} {s}" for s, n in sorted(view.counts.items())) or "none"))
    )
    kinds = Counter(s.what for s in view.suppressed.values())
    if kinds:
        shown = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        said = f"suppressed: {len(view.suppressed)} ({shown}); `digest subscribers check` says why"
        lines.append(Line(said))
    counting = {sid: b for sid, b in view.soft.items() if sid not in view.suppressed}
    if counting:
        shown = ", ".join(f"{sid} {len(b)}" for sid, b in sorted(counting.items()))
        lines.append(Line(f"soft bounces counting toward suppression: {shown}"))
    if isinstance(subscribers, str):
        lines.append(Line(f"subscribers: cannot be read ({subscribers})"))
        subscribers = []
    if subscribers:
        lines.append(Line(f"  {'subscriber':<14} {'last digest sent':<17} next due (local)"))
    for sub in subscribers:
        nxt = next_send_text(sub, now, view.gone, "%a %d %b %H:%M %Z", view.suppressed)
        lines.append(Line(f"  {sub.id:<14} {str(view.last_sent.get(sub.id, 'never')):<17} {nxt}"))
    for d in view.unsettled:
        why = one_line(d.reply or (f"Message-ID {d.message_id}" if d.message_id else ""))
        lines.append(
            Line(
                f"  {d.day} {d.subscriber_id}: {UNSETTLED[d.status]}, {d.attempts} attempt(s)"
                f"{' — ' + why if why else ''}"
            )
        )
    return lines
