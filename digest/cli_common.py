"""What every `digest` command shares: the group `cli` with its global flags (--subscribers,
--db, --inbox, --outbox, --quiet), --day, the settings and logging they set up, the front door
opened for one command, subscribers.yaml read once, and errors turned into one line on stderr
and an exit code. The commands are in digest.cli (the daily ones) and digest.cli_admin (the
operator's)."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from . import progress
from .app import Digest
from .errors import DigestError
from .models import Roster, Subscriber
from .printing import Line
from .progress import Progress
from .roster import find, load_roster
from .settings import Settings
from .text import printable

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
