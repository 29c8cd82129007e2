"""The operator's commands: the scheduler daemon (`schedule`), the web server (`serve`), the
queue's `worker`s, `feedback` by hand, `subscribers check` / `resubscribe`, `db copy` and
`status`. Registered on the `digest` group (digest.cli_common.cli) when digest.cli imports this."""

from __future__ import annotations

import contextlib

import click

from . import printing
from .app import Digest
from .cli_common import _opened, _quiet, _roster, _settings, _subscribers, cli, echo, handles_errors
from .delivery.bounces import recent_soft
from .delivery.send import suppressed
from .errors import ConfigError, DigestError, NotFoundError
from .roster import find
from .settings import Settings
from .store import open_store
from .store.copy import TABLES, copy_store, terminal_progress


@cli.command()
@click.option("--until-done", is_flag=True, help="Stop when no job is left (default: run until stopped).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True, help="Jobs at once.")
@handles_errors
def worker(until_done: bool, concurrency: int) -> None:
    """Send the digests that `digest run --enqueue` queued, on as many machines as you like
    (PostgreSQL only). Each reader is claimed in the ledger first: never sent twice."""
    Digest(_settings()).work(until_done=until_done, concurrency=concurrency)


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
            stopped = suppressed(digest.store, subs)
        echo(printing.schedule_list(subs, settings.clock(), gone, stopped))
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


@cli.command("bounces")
@handles_errors
def bounces_cmd() -> None:
    """Read the bounce mailbox (DIGEST_BOUNCE_MAILBOX) now, as `digest run` does before sending:
    hard bounces and complaints stop a reader's mail, soft ones count; each report acted on is
    moved to the "processed" folder, every other message left where it is."""
    settings = _settings()
    if not settings.bounces.mailbox:
        raise ConfigError(
            "DIGEST_BOUNCE_MAILBOX is not set: give a Maildir folder or an imap(s)://user@host/folder"
            " URL (password in DIGEST_BOUNCE_PASSWORD); see the README's 'Bounces and complaints'"
        )
    subs = _subscribers(settings)
    with _opened(settings) as digest:
        run = digest.read_bounces(subs)
    echo(printing.bounces_read(run, None))


@cli.group()
def subscribers() -> None:
    """Inspect subscribers.yaml; lift an unsubscribe or a suppression."""


@subscribers.command("resubscribe")
@click.argument("subscriber_id")
@handles_errors
def subscribers_resubscribe(subscriber_id: str) -> None:
    """Lift SUBSCRIBER_ID's unsubscribe (they asked to come back) and any suppression (a bounce
    or complaint stopped their mail); editing subscribers.yaml never lifts an unsubscribe."""
    settings = _settings()
    sub = find(_subscribers(settings), subscriber_id)
    with _opened(settings) as digest:
        lifted = digest.store.resubscribe(sub.id)
        unsuppressed = digest.store.lift_suppression(sub.id)
    said = [w for w, done in (("subscribed again", lifted), ("suppression lifted", unsuppressed)) if done]
    click.echo(f"{sub.id}: {'; '.join(said) if said else 'was neither unsubscribed nor suppressed'}")


@subscribers.command("check")
@handles_errors
def subscribers_check() -> None:
    """Validate subscribers.yaml and list the subscribers (exit 2 on any problem)."""
    settings = _settings()
    subs = _subscribers(settings)
    with _opened(settings) as digest:
        gone = digest.store.unsubscribed()
        stopped = suppressed(digest.store, subs)
        soft = recent_soft(digest.store, settings.bounces, settings.clock())
        votes: dict[str, list[int]] = {}
        for vote in digest.store.votes():
            votes.setdefault(vote.subscriber_id, []).append(vote.vote)
        distilled = {s.id: digest.profile(s).phrases for s in subs if s.profile_papers}  # type: ignore[union-attr]
    echo(
        printing.subscribers_checked(
            subs, settings.clock(), gone, votes, distilled, stopped, (soft, settings.bounces)
        )
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
    try:
        subs: list | str = _subscribers(settings)
    except DigestError as exc:
        subs = str(exc).splitlines()[0]
    with _opened(settings) as digest:
        view = digest.status(subs if isinstance(subs, list) else ())
    echo(printing.status(view, subs, settings.clock()))
