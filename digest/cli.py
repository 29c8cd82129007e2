"""The `digest` command: parse flags, call the front door (digest.app.Digest), print the lines
digest.printing makes, exit 0/1/2 (see the README)."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import sys
import webbrowser
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from . import printing, progress
from .app import Digest, RunReport
from .delivery.queue import require_postgres
from .errors import ConfigError, DigestError, NotFoundError
from .ingest.files import inbox_files
from .models import Roster, Subscriber
from .printing import Line
from .progress import Progress
from .roster import find, load_roster, load_sources
from .settings import Settings, check_address
from .store import open_store
from .store.copy import TABLES, copy_store, terminal_progress
from .text import one_line, printable, readable

F = TypeVar("F", bound=Callable[..., Any])


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date like 2026-03-12") from exc


NEWEST_DAY = "The digest day (default: the newest day with papers, or today when there are none)."


def _day_option(help: str = NEWEST_DAY) -> Callable[[F], F]:  # noqa: A002 - click's own word
    """--day YYYY-MM-DD, with what the command does without it (each says its own)."""
    return click.option("--day", "day", metavar="YYYY-MM-DD", callback=lambda c, p, v: _day(v), help=help)


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
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Show no progress on stderr: no stage lines, no bars (problems are still said). Without "
    "it, long work shows a line per stage and a bar on a terminal, and without a terminal "
    "(cron) one line for each stage that took 10 s or more.",
)
@click.version_option(package_name="digest")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, **flags: Any) -> None:
    """A personalized research-paper newsletter: ingest the day's papers, rank them for each
    subscriber, and mail each one a digest."""
    ctx.obj = flags
    ctx.meta["digest.quiet"] = quiet
    ctx.with_resource(progress.using(Progress.for_stderr(quiet=quiet)))


def _quiet() -> bool:
    return bool(click.get_current_context().meta.get("digest.quiet"))


def _configure_logging(settings: Settings) -> None:
    """One line per event on stderr; on a terminal everything (unless --quiet), under cron
    only problems."""
    level = settings.log_level or ("INFO" if sys.stderr.isatty() and not _quiet() else "WARNING")
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


def echo(lines: list[Line]) -> None:
    for line in lines:
        click.echo(line.text, err=line.err)


def _opened(settings: Settings) -> Any:
    """The front door, its store open for the length of the command."""
    return Digest.open(settings)


def _roster(settings: Settings) -> Roster:
    """subscribers.yaml, checked against these settings (an address at a host without a dot
    is good only when the SMTP host is this machine)."""
    return load_roster(settings.subscribers, smtp_host=settings.smtp.host)


def _subscribers(settings: Settings, user: str | None = None) -> list[Subscriber]:
    subs = list(_roster(settings).subscribers)
    return [find(subs, user)] if user else subs


@cli.command()
@click.argument("paths", nargs=-1)
@_day_option(
    "File every paper read under this day, even from a file named with another date (default: "
    "the date in the file's name, else today)."
)
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
            files.extend(inbox_files(Path(p)) if Path(p).is_dir() else [Path(p)])
    if not paths:
        files = list(inbox_files(settings.inbox))
        if not files:
            click.echo(f"no new files in {settings.inbox}")
            return
    with _opened(settings) as digest:
        lines = printing.ingested(digest.ingest(files, day=day, force=force))
    echo(lines)
    if any(line.err for line in lines):
        sys.exit(1)


@cli.command()
@_day_option("The day whose papers to list (default: the newest day with papers).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the papers as a JSON list, one object per paper (the README lists the fields).",
)
@handles_errors
def papers(day: date | None, as_json: bool) -> None:
    """List the stored papers of a day."""
    with _opened(_settings()) as digest:
        day = digest.day(day)
        found = digest.store.papers(day)
    if as_json:
        click.echo(json.dumps([printing.paper_json(p) for p in found], indent=2, ensure_ascii=False))
        return
    for p in found:
        extra = f"  ▲{p.upvotes}" if p.upvotes else ""
        click.echo(f"{one_line(p.id):<20} {one_line(readable(p.title))[:90]}{extra}")
    click.echo(f"{len(found)} papers on {day}")


@cli.command("rank")
@click.option("--user", help="Only this subscriber id.")
@_day_option()
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="Papers per subscriber (default: their max_papers; 0: every paper).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON: each subscriber id with its ranked papers, best first, each with its score "
    "and why it was picked (the README lists the fields).",
)
@handles_errors
def rank_cmd(user: str | None, day: date | None, limit: int | None, as_json: bool) -> None:
    """Rank the day's papers for each subscriber, with the keywords that matched."""
    settings = _settings()
    subs = _subscribers(settings, user)
    with _opened(settings) as digest:
        day = digest.day(day)
        ranked = digest.rank(subs, day, limit=limit)
    if as_json:
        click.echo(printing.ranked_json(ranked))
        return
    for sid, picks in ranked.items():
        click.echo(f"{sid}: {len(picks)} papers for {day}")
        echo(printing.ranked(picks))


@cli.command()
@click.option("--user", required=True, help="Subscriber id.")
@_day_option()
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
    with _opened(settings) as digest:
        day = digest.day(day)
        mail, ranked = digest.preview(sub, day)
    click.echo(f"{sub.id} <{sub.email}> — {day}: {mail.subject}")
    echo(printing.ranked(ranked))
    ext = "html" if fmt == "html" else "txt"
    out = out or settings.store.state_dir / "preview" / day.isoformat() / f"{sub.id}.{ext}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(mail.html if fmt == "html" else mail.text, encoding="utf-8")
    click.echo(f"wrote {out}")
    if open_browser and not _opened_in_browser(out):
        click.echo(
            f"digest: no browser could be opened here; open {out.resolve().as_uri()} in a browser "
            f"(copy {out.resolve()} to a machine with one if this is a server), or see the digest "
            f"as text: digest preview --user {sub.id} --format text",
            err=True,
        )


def _opened_in_browser(path: Path) -> bool:
    """webbrowser says False (or raises) on a machine with no browser: a server, a container."""
    try:
        return webbrowser.open(path.resolve().as_uri())
    except webbrowser.Error:
        return False


@cli.command()
@click.option("--user", help="Only this subscriber id.")
@_day_option()
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
    to = check_address(to, "--to", settings.smtp.host) if to is not None else None
    subs = _subscribers(settings, user)
    with _opened(settings) as digest:
        day = digest.day(day)
        report = digest.deliver(subs, day, dry_run=dry_run, to=to, retry_unknown=retry_unknown)
        echo(printing.delivered(report, settings))
    if report.failed:
        sys.exit(1)


@cli.command()
@_day_option(
    "Send this day's digest to everyone not sent it yet, whatever their local time; inbox files "
    "without a date in their name, and {date} in source URLs, take this day too (default: each "
    "subscriber's digest for their own local date, once their send time has come; files and "
    "URLs take today)."
)
@click.option(
    "--enqueue", is_flag=True, help="Rank here, and leave the sending to `digest worker`s (PostgreSQL)."
)
@handles_errors
def run(day: date | None, enqueue: bool) -> None:
    """Ingest the inbox, then send each digest that is due by its subscriber's local time
    (what cron calls, hourly). With --day, send that day's digest to everyone not sent yet."""
    settings = _settings()
    if enqueue:
        require_postgres(settings)
    roster = _roster(settings)  # refuse a broken file before doing anything
    terminal = sys.stdout.isatty()  # under cron, hourly: say only what changed

    def say(report: RunReport, stage: str) -> None:
        if stage == "fetched":
            echo(printing.fetched(report.fetched, quiet=not terminal))
        elif stage == "ingested":
            echo(printing.ingested(report.ingested, show_skipped=terminal))
        else:
            if report.every_source_failed:
                click.echo("digest: every source failed: nobody was sent an empty digest", err=True)
            if not report.deliveries and terminal:
                click.echo(f"nothing due at {settings.clock():%Y-%m-%d %H:%M} UTC")
            for delivered in report.deliveries:
                echo(printing.delivered(delivered, settings))

    with _opened(settings) as digest:
        report = digest.run(roster, day=day, enqueue=enqueue, stage=say)
    if report.failed:
        sys.exit(1)


@cli.command()
@click.option("--until-done", is_flag=True, help="Stop when no job is left (default: run until stopped).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True, help="Jobs at once.")
@handles_errors
def worker(until_done: bool, concurrency: int) -> None:
    """Send the digests that `digest run --enqueue` queued, on as many machines as you like
    (PostgreSQL only). Each reader is claimed in the ledger first: never sent twice."""
    Digest(_settings()).work(until_done=until_done, concurrency=concurrency)


@cli.command("fetch")
@_day_option("The day that {date} in a source's URL stands for (default: today).")
@handles_errors
def fetch_cmd(day: date | None) -> None:
    """Fetch the sources listed under `sources:` in subscribers.yaml now (`run` and `schedule`
    do it before ranking). {date} in a URL becomes --day (default: today)."""
    settings = _settings()
    configured = load_sources(settings.subscribers)
    if not configured:
        click.echo(f"no sources in {settings.subscribers} (see README, 'Feeding it papers')")
        return
    with _opened(settings) as digest:
        lines = printing.fetched(digest.fetch(configured, day=day))
    echo(lines)
    if any(line.err for line in lines):
        sys.exit(1)


@cli.command()
@click.option("--list", "list_only", is_flag=True, help="Print each subscriber's next send and exit.")
@handles_errors
def schedule(list_only: bool) -> None:
    """Run the scheduler daemon (APScheduler): ingest new inbox files as they appear and send
    each digest at its subscriber's local send time; SIGTERM stops it cleanly."""
    settings = _settings()
    if list_only:
        subs = _subscribers(settings)
        with _opened(settings) as digest:
            gone = digest.store.unsubscribed()
        echo(printing.schedule_list(subs, settings.clock(), gone))
        return
    _roster(settings)  # its addresses checked against the SMTP host before the daemon starts
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
    sub = find(_subscribers(settings), subscriber_id)
    with _opened(settings) as digest:
        if vote != "clear" and not digest.store.papers_by_id([paper_id]):
            raise NotFoundError(f"no stored paper {paper_id!r}; see `digest papers`")
        digest.store.record_vote(sub.id, paper_id, {"up": 1, "down": -1, "clear": 0}[vote])
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
    sub = find(_subscribers(settings), subscriber_id)
    with _opened(settings) as digest:
        lifted = digest.store.resubscribe(sub.id)
    click.echo(f"{sub.id}: {'subscribed again' if lifted else 'was not unsubscribed'}")


@subscribers.command("check")
@handles_errors
def subscribers_check() -> None:
    """Validate subscribers.yaml and list the subscribers (exit 2 on any problem)."""
    settings = _settings()
    subs = _subscribers(settings)
    with _opened(settings) as digest:
        gone = digest.store.unsubscribed()
        votes: dict[str, list[int]] = {}
        for vote in digest.store.votes():
            votes.setdefault(vote.subscriber_id, []).append(vote.vote)
        distilled = {s.id: digest.profile(s).phrases for s in subs if s.profile_papers}  # type: ignore[union-attr]
    echo(printing.subscribers_checked(subs, settings.clock(), gone, votes, distilled))
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
    bars = contextlib.nullcontext(None) if _quiet() else terminal_progress()
    with open_store(settings) as source, open_store(into) as destination, bars as shown:
        copied = copy_store(source, destination, cache=not no_cache, progress=shown)
    for table in TABLES:
        rows = f"{copied[table.name]:>10}" if table.name in copied else f"{'-':>10}  (--no-cache)"
        click.echo(f"{table.name:<13} {rows}")
    click.echo(f"copied {settings.store.description} to {into.store.description}")


@cli.command()
@handles_errors
def status() -> None:
    """Show the last ingests and the deliveries that need attention."""
    settings = _settings()
    with _opened(settings) as digest:
        view = digest.status()
    try:
        subs: list | str = _subscribers(settings)
    except DigestError as exc:
        subs = str(exc).splitlines()[0]
    echo(printing.status(view, subs, settings.clock()))


def main() -> None:
    try:
        cli(prog_name="digest")
    finally:
        # The interpreter's last collection would walk every object torch and transformers
        # made (seconds, once the model is loaded); frozen objects are left to the OS.
        gc.freeze()


__all__ = ["cli", "main"]
