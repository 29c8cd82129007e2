"""The `digest` command: parse flags, call the library, print, exit 0/1/2 (see the README)."""

from __future__ import annotations

import functools
import gc
import json
import logging
import sys
import webbrowser
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date
from pathlib import Path
from typing import Any, TypeVar

import click

from . import pipeline
from .errors import ConfigError, DigestError, NotFoundError
from .learn import share
from .models import Status
from .roster import load_roster, load_subscribers
from .schedule import next_send
from .settings import Settings, check_address
from .store import Store, open_store
from .store.copy import TABLES, copy_store, terminal_progress
from .text import mask_query, one_line, printable, readable

F = TypeVar("F", bound=Callable[..., Any])


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date like 2026-03-12") from exc


def _day_option(f: F) -> F:
    return click.option(
        "--day",
        "day",
        metavar="YYYY-MM-DD",
        callback=lambda c, p, v: _day(v),
        help="The digest day (default: the newest day with papers).",
    )(f)


def handles_errors(f: F) -> F:
    """Our errors become one line on stderr and their exit code; never a traceback."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except DigestError as exc:
            for line in str(exc).splitlines():
                click.echo(f"digest: {printable(line)}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--subscribers", type=click.Path(path_type=Path), help="subscribers.yaml [DIGEST_SUBSCRIBERS]")
@click.option("--db", help="SQLite file or postgresql:// URL [DIGEST_DB, ./var/digest.db]")
@click.option("--inbox", type=click.Path(path_type=Path), help="Folder of new dumps [DIGEST_INBOX, ./inbox]")
@click.option(
    "--outbox", type=click.Path(path_type=Path), help="Where .eml files go without SMTP [DIGEST_OUTBOX]"
)
@click.version_option(package_name="digest")
@click.pass_context
def cli(ctx: click.Context, **flags: Any) -> None:
    """A personalized research-paper newsletter: ingest the day's papers, rank them for each
    subscriber, and mail each one a digest."""
    ctx.obj = flags


def _configure_logging(settings: Settings) -> None:
    """One line per event on stderr; on a terminal everything, under cron only problems."""
    level = settings.log_level or ("INFO" if sys.stderr.isatty() else "WARNING")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s digest: %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("digest")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _settings() -> Settings:
    """The settings of this command (flags, then DIGEST_*), checked; logging set up by them."""
    settings = Settings.load(**click.get_current_context().find_root().obj)
    _configure_logging(settings)
    return settings


def _store(settings: Settings) -> Store:
    return open_store(settings)


def _print_ingest(outcomes: list[pipeline.FileOutcome], *, show_skipped: bool = True) -> bool:
    """Print one line per file read (and per skipped one if asked); true if all went well."""
    ok = True
    for o in outcomes:
        path = one_line(o.path)
        if o.error:
            ok = False
            click.echo(f"digest: {one_line(o.error)}", err=True)
        elif o.skipped:
            if show_skipped:
                click.echo(f"{path}: already ingested, skipped")
        else:
            click.echo(f"{path}: {o.papers} papers ({o.new} new, {o.updated} updated)")
        for note in o.notes:
            ok = False
            click.echo(f"digest: {one_line(note)}", err=True)
    return ok


@cli.command()
@click.argument("paths", nargs=-1)
@_day_option
@click.option("--force", is_flag=True, help="Read files again even if ingested before.")
@handles_errors
def ingest(paths: tuple[str, ...], day: date | None, force: bool) -> None:
    """Read page dumps, feeds, HF JSON or JSON Lines (files, folders or URLs; default: the
    inbox's new files) into the store."""
    settings = _settings()
    files: list[Path | str] = []
    for p in paths:
        if "://" in p:
            files.append(p)
        else:
            files.extend(pipeline.inbox_files(Path(p)) if Path(p).is_dir() else [Path(p)])
    if not paths:
        files = list(pipeline.inbox_files(settings.inbox))
        if not files:
            click.echo(f"no new files in {settings.inbox}")
            return
    with _store(settings) as store:
        outcomes = pipeline.ingest(
            store,
            files,
            day=day,
            today=settings.clock().date(),
            force=force,
            allow_private=settings.fetch.allow_private,
        )
    if not _print_ingest(outcomes):
        sys.exit(1)


def _paper_json(p: Any) -> dict[str, Any]:
    """A paper as the contract shows it: text without control characters, no URL secrets."""
    d = asdict(p)
    d.pop("announce_type")
    d["day"] = p.day.isoformat() if p.day else None
    for name in ("title", "abstract", "organization"):
        d[name] = one_line(d[name]) if d[name] else d[name]
    d["authors"] = [one_line(a) for a in p.authors]
    d["categories"] = [one_line(c) for c in p.categories]
    d["source"] = _shown_source(p.source)
    return d


def _shown_source(source: str | None) -> str | None:
    """A file name, or a URL with its query values masked (an api_key never reaches a screen)."""
    if not source:
        return source
    return one_line(mask_query(source) if "://" in source else source)


@cli.command()
@_day_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (see the contract).")
@handles_errors
def papers(day: date | None, as_json: bool) -> None:
    """List the stored papers of a day."""
    settings = _settings()
    with _store(settings) as store:
        day = day or pipeline.default_day(store, settings.clock().date())
        found = store.papers(day)
    if as_json:
        click.echo(json.dumps([_paper_json(p) for p in found], indent=2, ensure_ascii=False))
        return
    for p in found:
        extra = f"  ▲{p.upvotes}" if p.upvotes else ""
        click.echo(f"{one_line(p.id):<20} {one_line(readable(p.title))[:90]}{extra}")
    click.echo(f"{len(found)} papers on {day}")


def _subscribers(settings: Settings, user: str | None) -> list:
    subs = load_subscribers(settings.subscribers)
    return [pipeline.find_subscriber(subs, user)] if user else subs


@cli.command("rank")
@click.option("--user", help="Only this subscriber id.")
@_day_option
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="Papers per subscriber (default: their max_papers; 0: every paper).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (see the contract).")
@handles_errors
def rank_cmd(user: str | None, day: date | None, limit: int | None, as_json: bool) -> None:
    """Rank the day's papers for each subscriber, with the keywords that matched."""
    settings = _settings()
    subs = _subscribers(settings, user)
    with _store(settings) as store:
        day = day or pipeline.default_day(store, settings.clock().date())
        ranked = pipeline.Ranker.for_settings(store, settings).rank_all(subs, day, limit=limit)
    if as_json:
        click.echo(
            json.dumps(
                {
                    sid: [
                        {
                            "paper_id": r.paper.id,
                            "title": one_line(r.paper.title),
                            "score": r.score,
                            "relevance": r.relevance,
                            "trending": r.trending,
                            "liked_like": r.liked_like,
                            "close_to": r.close_to,
                            "matched": list(r.matched),
                            "keyphrases": list(r.keyphrases),
                        }
                        for r in rs
                    ]
                    for sid, rs in ranked.items()
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for sid, rs in ranked.items():
        click.echo(f"{sid}: {len(rs)} papers for {day}")
        _print_ranked(rs)


def _print_ranked(rs: list) -> None:
    for i, r in enumerate(rs, start=1):
        matched = one_line(", ".join(r.matched)) or "-"
        click.echo(f"  {i:>2}. {r.score:.3f}  {one_line(readable(r.paper.title))[:70]:<70}  [{matched}]")


@cli.command()
@click.option("--user", required=True, help="Subscriber id.")
@_day_option
@click.option("--format", "fmt", type=click.Choice(["html", "text"]), default="html", show_default=True)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Write here (default: var/preview/DAY/USER.html)."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in a browser.")
@handles_errors
def preview(user: str, day: date | None, fmt: str, out: Path | None, open_browser: bool) -> None:
    """Show what a subscriber's next digest will hold, and write it to a file."""
    settings = _settings()
    sub = _subscribers(settings, user)[0]
    with _store(settings) as store:
        day = day or pipeline.default_day(store, settings.clock().date())
        ranked = pipeline.Ranker.for_settings(store, settings).rank_all([sub], day)[sub.id]
    digest = pipeline.render_digest(sub, day, ranked, settings)
    click.echo(f"{sub.id} <{sub.email}> — {day}: {digest.subject}")
    _print_ranked(ranked)
    ext = "html" if fmt == "html" else "txt"
    out = out or settings.store.state_dir / "preview" / day.isoformat() / f"{sub.id}.{ext}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(digest.html if fmt == "html" else digest.text, encoding="utf-8")
    click.echo(f"wrote {out}")
    if open_browser:
        webbrowser.open(out.resolve().as_uri())


# A ledger row left `sending` after its run means nobody knows whether the mail went out.
STATUS_LABELS = {Status.SENDING: "unknown"}


def _print_report(report: pipeline.DeliveryReport, settings: Settings) -> None:
    """One row per subscriber: what happened, how many papers, where the mail and its HTML are."""
    if not report.outcomes:
        click.echo(f"no active subscribers for {report.day}")
        return
    click.echo(f"digests for {report.day}:")
    click.echo(f"  {'subscriber':<14} {'status':<11} {'papers':>6}  {'email':<40} html")
    for o in report.outcomes:
        html = ""
        if o.location and o.location.endswith(".eml"):
            html = o.location[: -len(".eml")] + ".html"
        elif o.status in (Status.SENT, Status.ALREADY):
            html = str(pipeline.archive_path(settings, report.day, o.subscriber))
        label = STATUS_LABELS.get(o.status, o.status)
        line = f"  {o.subscriber:<14} {label:<11} {o.papers:>6}  {o.location or '-':<40} {html or '-'}"
        click.echo(line)
        if o.detail and (o.status not in (Status.SENT, Status.ALREADY) or "archive" in o.detail):
            click.echo(f"      {one_line(o.detail)}", err=o.status in pipeline.PROBLEMS)
    if report.stopped:
        click.echo(f"digest: {report.stopped}", err=True)
    if any(o.status == Status.SENDING for o in report.outcomes):
        click.echo(
            "digest: 'unknown' means a run stopped mid-send: check the mail server's log for the "
            "Message-ID, then `digest send --retry-unknown` to send those again",
            err=True,
        )


@cli.command()
@click.option("--user", help="Only this subscriber id.")
@_day_option
@click.option("--dry-run", is_flag=True, help="List who would get what; send nothing.")
@click.option(
    "--to",
    "to",
    metavar="ADDRESS",
    help="Send to this address as a test (needs --user); the ledger is untouched.",
)
@click.option("--retry-unknown", is_flag=True, help="Resend digests left 'sending' by a killed run.")
@handles_errors
def send(user: str | None, day: date | None, dry_run: bool, to: str | None, retry_unknown: bool) -> None:
    """Send the day's digests that have not been sent yet."""
    if to and not user:
        raise click.UsageError("--to needs --user")
    settings = _settings()
    to = check_address(to, "--to") if to is not None else None
    subs = _subscribers(settings, user)
    with _store(settings) as store:
        day = day or pipeline.default_day(store, settings.clock().date())
        ranker = pipeline.Ranker.for_settings(store, settings)
        report = pipeline.deliver(
            store, settings, subs, day, ranker, dry_run=dry_run, to=to, retry_unknown=retry_unknown
        )
    _print_report(report, settings)
    if report.failed:
        sys.exit(1)


@cli.command()
@_day_option
@click.option(
    "--enqueue", is_flag=True, help="Rank here, and leave the sending to `digest worker`s (PostgreSQL)."
)
@handles_errors
def run(day: date | None, enqueue: bool) -> None:
    """Ingest the inbox, then send each digest that is due by its subscriber's local time
    (what cron calls, hourly). With --day, send that day's digest to everyone not sent yet."""
    settings = _settings()
    if enqueue:
        from .queue import require_postgres

        require_postgres(settings)
    roster = load_roster(settings.subscribers)  # refuse a broken file before doing anything
    subs = list(roster.subscribers)
    with _store(settings) as store:
        fetched = pipeline.fetch_configured(store, settings, day=day, sources=roster.sources)
        ok = _print_fetch(fetched, quiet=not sys.stdout.isatty())
        outcomes = pipeline.ingest_inbox(store, settings, today=day)
        ok = _print_ingest(outcomes, show_skipped=sys.stdout.isatty()) and ok  # cron: only what changed
        ranker = pipeline.Ranker.for_settings(store, settings)
        no_empty = pipeline.all_sources_failed(fetched)
        reports = pipeline.send(store, settings, subs, ranker, day=day, no_empty=no_empty, enqueue=enqueue)
    if no_empty:
        click.echo("digest: every source failed: nobody was sent an empty digest", err=True)
    if not reports and sys.stdout.isatty():  # hourly under cron: say nothing when nothing happened
        click.echo(f"nothing due at {settings.clock():%Y-%m-%d %H:%M} UTC")
    for report in reports:
        _print_report(report, settings)
    if any(r.failed or r.stopped for r in reports) or not ok:
        sys.exit(1)


@cli.command()
@click.option("--until-done", is_flag=True, help="Stop when no job is left (default: run until stopped).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True, help="Jobs at once.")
@handles_errors
def worker(until_done: bool, concurrency: int) -> None:
    """Send the digests that `digest run --enqueue` queued, on as many machines as you like
    (PostgreSQL only). Each reader is claimed in the ledger first: never sent twice."""
    from .queue import run_worker

    run_worker(_settings(), until_done=until_done, concurrency=concurrency)


def _print_fetch(outcomes: list, *, quiet: bool = False) -> bool:
    """One line per source; failures on stderr (and always). True if none failed."""
    for o in outcomes:
        if not o.ok:
            click.echo(f"digest: source {o.source}: failed: {o.detail}", err=True)
        elif not quiet:
            said = {
                "new": f"{o.papers} papers ({o.new} new)",
                "unchanged": "unchanged since the last fetch",
                "not-modified": "not modified since the last fetch",
                "nothing-published": "nothing published (a weekend or holiday?)",
            }[o.status]
            click.echo(f"source {o.source}: {said}" + (f" — {o.detail}" if o.detail else ""))
    return all(o.ok for o in outcomes)


@cli.command("fetch")
@_day_option
@handles_errors
def fetch_cmd(day: date | None) -> None:
    """Fetch the sources listed under `sources:` in subscribers.yaml now (`run` and `schedule`
    do it before ranking). {date} in a URL becomes --day (default: today)."""
    settings = _settings()
    with _store(settings) as store:
        outcomes = pipeline.fetch_configured(store, settings, day=day)
    if not outcomes:
        click.echo(f"no sources in {settings.subscribers} (see README, 'Feeding it papers')")
        return
    if not _print_fetch(outcomes):
        sys.exit(1)


@cli.command()
@click.option("--list", "list_only", is_flag=True, help="Print each subscriber's next send and exit.")
@handles_errors
def schedule(list_only: bool) -> None:
    """Run the scheduler daemon (APScheduler): ingest new inbox files as they appear and send
    each digest at its subscriber's local send time; SIGTERM stops it cleanly."""
    settings = _settings()
    if list_only:
        subs = load_subscribers(settings.subscribers)
        now = settings.clock()
        click.echo(f"{'subscriber':<14} {'time zone':<22} {'next send (local)':<24} next send (UTC)")
        for s in subs:
            if not s.active:
                click.echo(f"{s.id:<14} {s.timezone:<22} {'inactive':<24} -")
                continue
            when = next_send(s, now)
            local = f"{when:%a %d %b %H:%M %Z}"
            click.echo(f"{s.id:<14} {s.timezone:<22} {local:<24} {when.astimezone(UTC):%a %d %b %H:%M}")
        return
    from .daemon import Daemon

    Daemon(settings).run()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port.")
@handles_errors
def serve(host: str, port: int) -> None:
    """Serve the links in the mail: one-click unsubscribe, the archive, "more / less like this".
    Put it behind a reverse proxy that terminates TLS; DIGEST_BASE_URL is the public origin."""
    settings = _settings()
    if not settings.web.base_url:
        click.echo("digest: DIGEST_BASE_URL is not set, so mails carry no links to this server", err=True)
    from .web import serve as run_server

    run_server(settings, host, port)


@cli.command()
@click.argument("subscriber_id")
@click.argument("paper_id")
@click.argument("vote", type=click.Choice(["up", "down", "clear"]))
@handles_errors
def feedback(subscriber_id: str, paper_id: str, vote: str) -> None:
    """Record a reader's "more like this" (up) or "less like this" (down) for a paper, or take
    it back (clear): the same as the links in the mail."""
    settings = _settings()
    sub = pipeline.find_subscriber(load_subscribers(settings.subscribers), subscriber_id)
    with _store(settings) as store:
        if vote != "clear" and not store.papers_by_id([paper_id]):
            raise NotFoundError(f"no stored paper {paper_id!r}; see `digest papers`")
        store.record_vote(sub.id, paper_id, {"up": 1, "down": -1, "clear": 0}[vote])
    click.echo(f"{sub.id}: {paper_id} {'vote cleared' if vote == 'clear' else vote}")


@cli.group()
def subscribers() -> None:
    """Inspect subscribers.yaml; lift an unsubscribe."""


@subscribers.command("resubscribe")
@click.argument("subscriber_id")
@handles_errors
def subscribers_resubscribe(subscriber_id: str) -> None:
    """Lift SUBSCRIBER_ID's unsubscribe (they asked to come back); editing subscribers.yaml never does."""
    settings = _settings()
    sub = pipeline.find_subscriber(load_subscribers(settings.subscribers), subscriber_id)
    with _store(settings) as store:
        lifted = store.resubscribe(sub.id)
    click.echo(f"{sub.id}: {'subscribed again' if lifted else 'was not unsubscribed'}")


@subscribers.command("check")
@handles_errors
def subscribers_check() -> None:
    """Validate subscribers.yaml and list the subscribers (exit 2 on any problem)."""
    settings = _settings()
    subs = load_subscribers(settings.subscribers)
    distilled: dict[str, tuple[str, ...]] = {}
    with _store(settings) as store:
        gone = store.unsubscribed()
        votes: dict[str, list] = {}
        for vote in store.votes():
            votes.setdefault(vote.subscriber_id, []).append(vote)
        if any(s.profile_papers for s in subs):
            ranker = pipeline.Ranker.for_settings(store, settings)
            distilled = {s.id: ranker.profile(s).phrases for s in subs if s.profile_papers}
    now = settings.clock()
    click.echo(f"{'subscriber':<14} {'email':<28} {'next send (local)':<36} keywords")
    for s in subs:
        when = f"{next_send(s, now):%a %d %b %H:%M} {s.timezone}" if s.active else "inactive"
        if s.id in gone:
            when = f"unsubscribed {gone[s.id].at[:10]} ({gone[s.id].how})"
        click.echo(f"{s.id:<14} {s.email:<28} {when:<36} {', '.join(s.keywords)}")
        if votes.get(s.id):
            up = sum(1 for v in votes[s.id] if v.vote > 0)
            click.echo(
                f"{'':<14} {len(votes[s.id])} votes shape their ranking ({up} more, {len(votes[s.id]) - up}"
                f" less like this; weight {share(len(votes[s.id])):.0%})"
            )
        if s.id in distilled:
            click.echo(
                f"{'':<14} from {len(s.profile_papers)} profile file(s)/paper(s): "
                f"{', '.join(distilled[s.id])}"
            )
    click.echo(f"{settings.subscribers}: {len(subs)} subscribers, no problems")


@cli.group()
def db() -> None:
    """The store itself: copy it to another database (SQLite to PostgreSQL, or back)."""


@db.command("copy")
@click.argument("target")
@click.option(
    "--no-cache", is_flag=True, help="Leave the embedding and keyphrase caches behind (rebuilt as needed)."
)
@handles_errors
def db_copy(target: str, no_cache: bool) -> None:
    """Copy the whole store (DIGEST_DB / --db) into TARGET, a new SQLite file or an empty
    postgresql:// database: papers, the delivery ledger, unsubscribes, votes, fetch state, plans
    and the caches. All or nothing; a target that holds data is refused."""
    settings = _settings()
    if not settings.store.url and not settings.store.db.exists():  # opening it would make an empty one
        raise ConfigError(f"{settings.store.db} does not exist; point DIGEST_DB or --db at the store to copy")
    into = Settings.load(env={}, db=target)  # the same reading of a file or URL as DIGEST_DB's
    with _store(settings) as source, _store(into) as destination, terminal_progress() as progress:
        copied = copy_store(source, destination, cache=not no_cache, progress=progress)
    for table in TABLES:
        rows = f"{copied[table.name]:>10}" if table.name in copied else f"{'-':>10}  (--no-cache)"
        click.echo(f"{table.name:<13} {rows}")
    click.echo(f"copied {settings.store.description} to {into.store.description}")


@cli.command()
@handles_errors
def status() -> None:
    """Show the last ingests and the deliveries that need attention."""
    settings = _settings()
    with _store(settings) as store:
        files = store.recent_files(5)
        counts = store.delivery_counts()
        unsettled = store.unsettled()
        last_sent = store.last_sent()
        gone = store.unsubscribed()
        fetched = store.source_states()
        cache = store.cache_size()
        days = store.days()
        jobs = None
        if settings.store.url:
            from .queue import queue_counts

            jobs = queue_counts(store)
    click.echo(f"database: {settings.store.description} ({len(days)} days of papers)")
    if jobs is not None:
        click.echo("send queue: " + (", ".join(f"{n} {s}" for s, n in sorted(jobs.items())) or "empty"))
    vectors, size = cache
    click.echo(
        f"embedding cache: {vectors:,} vectors, {size / 2**20:.1f} MB"
        f" (bound {settings.store.cache_mb:g} MB, DIGEST_CACHE_MB)"
    )
    for f in files:
        click.echo(f"  ingested {f.ingested_at}  {f.papers:>4} papers  {_shown_source(f.path)}")
    for state in fetched.values():
        last_good = state.last_ok or "never"
        why = f" — {state.detail}" if state.status == "failed" and state.detail else ""
        click.echo(
            f"  source {state.name}: {state.status} at {state.last_attempt}, last good {last_good}{why}"
        )
    click.echo("deliveries: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"))
    try:
        subs = load_subscribers(settings.subscribers)
    except DigestError as exc:
        click.echo(f"subscribers: cannot be read ({str(exc).splitlines()[0]})")
        subs = []
    now = settings.clock()
    if subs:
        click.echo(f"  {'subscriber':<14} {'last digest sent':<17} next due (local)")
    for sub in subs:
        nxt = f"{next_send(sub, now):%a %d %b %H:%M %Z}" if sub.active else "inactive"
        if sub.id in gone:
            nxt = f"unsubscribed {gone[sub.id].at[:10]} ({gone[sub.id].how})"
        click.echo(f"  {sub.id:<14} {str(last_sent.get(sub.id, 'never')):<17} {nxt}")
    labels = {
        Status.SENDING: "unknown (a run stopped mid-send or lost the reply)",
        Status.PENDING: "pending (retried by the next run)",
        Status.FAILED: "failed",
    }
    for d in unsettled:
        why = one_line(d.reply or (f"Message-ID {d.message_id}" if d.message_id else ""))
        click.echo(
            f"  {d.day} {d.subscriber_id}: {labels[d.status]}, {d.attempts} attempt(s)"
            f"{' — ' + why if why else ''}"
        )


def main() -> None:
    try:
        cli(prog_name="digest")
    finally:
        # The interpreter's last collection would walk every object torch and transformers
        # made (seconds, once the model is loaded); frozen objects are left to the OS.
        gc.freeze()


__all__ = ["cli", "main"]
