"""The `digest` command: parse flags, call the front door (digest.app.Digest), print the lines
digest.printing makes, exit 0/1/2 (see the README). The daily commands are here (ingest, papers,
rank, preview, send, run, fetch); the operator's are in digest.cli_admin, and what they all share
(the group and its flags, --day, settings, errors) in digest.cli_common."""

from __future__ import annotations

import gc
import json
import sys
import webbrowser
from datetime import date
from pathlib import Path

import click

from . import (
    cli_admin,  # noqa: F401 - registers the operator's commands
    printing,
)
from .addresses import check_address
from .app import RunReport
from .cli_common import _day_option, _opened, _roster, _settings, _subscribers, cli, echo, handles_errors
from .delivery.queue import require_postgres
from .ingest.files import inbox_files
from .roster import load_sources
from .text import one_line, readable


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
        elif stage == "bounces":
            echo(printing.bounces_read(report.bounces, report.bounce_error))
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


def main() -> None:
    try:
        cli(prog_name="digest")
    finally:
        # The interpreter's last collection would walk every object torch and transformers
        # made (seconds, once the model is loaded); frozen objects are left to the OS.
        gc.freeze()


__all__ = ["cli", "main"]
