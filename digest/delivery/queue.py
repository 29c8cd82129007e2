"""Sending past one machine: jobs on procrastinate, in the PostgreSQL store itself.

    digest run --enqueue    the front door ranks the due digests once, in that process, and
                            hands their picks to `enqueue`: each reader's plan is saved (their
                            settings and picks: a worker needs no subscribers.yaml) and one job
                            deferred per BATCH readers
    digest worker           on any number of machines: each job claims, renders and sends its
                            readers' digests over the same SMTP connection(s), recording every
                            result in the ledger as `digest run` does

Procrastinate keeps its jobs in the same PostgreSQL database (no broker to run), and its
workers lock jobs with SELECT ... FOR UPDATE SKIP LOCKED. The guarantee of "once" stays the
ledger's: each reader is claimed (`Store.claim_delivery`, one atomic upsert) before their mail
is handed to SMTP, so a job the engine runs twice, or a batch deferred by two runs, finds its
readers claimed and sends nothing again. A worker killed mid-send leaves the reader it was
sending to `sending` (unknown), as a killed `digest run` does; its batch's other readers are
still due, and the next `digest run --enqueue` hands them out again.

DIGEST_SMTP_RATE is one limit for all workers together: before each message a worker takes the
next slot from a row of the database (`PostgresStore.take_send_slot`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, fields
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigError, StoreError
from ..models import Ranked, Status, Subscriber
from ..settings import Settings
from ..store import DeliveryStore, Store, open_store
from .send import DeliveryReport, Mailroom, Outcome, send_ranked, skipped, still_due

if TYPE_CHECKING:
    from ..store.postgres import PostgresStore

log = logging.getLogger(__name__)
T = TypeVar("T")

TASK = "digest.send_batch"
QUEUE = "digest-send"
BATCH = 50  # readers per job: enough to reuse a connection, few enough to spread over workers
PLANS_KEPT = 7  # days a plan not yet settled is kept (an unknown send, a queue that stood still)


def postgres(store: Store) -> PostgresStore:
    """The store as the PostgreSQL store the queue lives in (a worker's is always one)."""
    from ..store.postgres import PostgresStore

    if not isinstance(store, PostgresStore):
        raise ConfigError("the send queue lives in PostgreSQL: set DIGEST_DB=postgresql://...")
    return store


def require_postgres(settings: Settings) -> None:
    """Workers need the PostgreSQL store: say so before anything else is done."""
    if not settings.store.url:
        raise ConfigError(
            "sending through workers needs DIGEST_DB=postgresql://...: the jobs live in PostgreSQL "
            "(SQLite is one machine: `digest run` sends by itself)"
        )


def _app(settings: Settings):  # noqa: ANN202 - procrastinate.App, imported only here
    """Procrastinate over the store's PostgreSQL database."""
    require_postgres(settings)
    import procrastinate

    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=settings.store.url))


def _ensure_schema(app: Any, store: PostgresStore) -> None:
    """Procrastinate's tables, created once: under the store's write lock, so two first runs at
    once do not both create them."""
    with store.transaction(immediate=True) as conn:
        if conn.rows("SELECT to_regclass('procrastinate_jobs')")[0][0] is None:
            app.schema_manager.apply_schema()


def queue_counts(store: PostgresStore) -> dict[str, int] | None:
    """The send jobs by procrastinate's status (todo, doing, failed...), for `digest status`;
    None when the queue was never used."""
    return store.job_counts(QUEUE, TASK)


def plan_of(sub: Subscriber, ranked: Sequence[Ranked]) -> dict[str, Any]:
    """What a worker needs to send one digest: the subscriber as ranked, and their picks (each
    paper by id)."""
    return {"subscriber": asdict(sub), "picks": [{**asdict(r), "paper": r.paper.id} for r in ranked]}


def _revived(cls: type[T], saved: dict[str, Any]) -> T:
    """A dataclass from its saved JSON: lists back to tuples, whatever fields it has now; a
    field a plan lacks (saved by an older version) takes its default, one it no longer knows is
    dropped."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in known})


def from_plan(plan: dict[str, Any], store: DeliveryStore) -> tuple[Subscriber, list[Ranked]]:
    """A saved plan back as the subscriber and their Ranked papers (a paper no longer stored
    is left out)."""
    sub = _revived(Subscriber, plan["subscriber"])
    picks = plan["picks"]
    papers = store.papers_by_id(p["paper"] for p in picks)
    ranked = [
        _revived(Ranked, {**p, "paper": papers[p["paper"]]})
        for p in picks
        if p["paper"] in papers
    ]
    return sub, ranked


def enqueue(
    store: PostgresStore,
    settings: Settings,
    day: date,
    due: Sequence[Subscriber],
    ranked: Mapping[str, Sequence[Ranked]],
    *,
    report: DeliveryReport | None = None,
    no_empty: bool = False,
    batch: int = BATCH,
) -> DeliveryReport:
    """Save `day`'s picks of the `due` readers and defer them to the workers in batches (a
    digest not worth sending is reported `skipped` here, as a direct send would)."""
    report = report or DeliveryReport(day)
    store.prune_plans(before=day - timedelta(days=PLANS_KEPT))
    handed: list[Subscriber] = []
    for sub in due:
        if (skip := skipped(sub, ranked[sub.id], no_empty=no_empty)) is not None:
            report.outcomes.append(skip)
        else:
            handed.append(sub)
    if not handed:
        return report
    store.save_plans(day, {s.id: plan_of(s, ranked[s.id]) for s in handed})
    app = _app(settings)
    with app.open():
        _ensure_schema(app, store)
        task = app.configure_task(TASK, queue=QUEUE)
        for start in range(0, len(handed), batch):
            task.defer(day=day.isoformat(), subscribers=[s.id for s in handed[start : start + batch]])
    report.outcomes += [Outcome(s.id, Status.QUEUED, len(ranked[s.id])) for s in handed]
    return report


def send_batch(settings: Settings, day: date, subscriber_ids: Sequence[str], **kw: Any) -> DeliveryReport:
    """One job: send `day`'s saved plans to those of `subscriber_ids` still due (the ledger and
    the unsubscribes are read again here: they may have changed since the run)."""
    with open_store(settings) as opened:
        store = postgres(opened)
        plans = store.plans(day, subscriber_ids)
        made = {sid: from_plan(plan, store) for sid, plan in plans.items()}
        report, due = still_due(store, [sub for sub, _ in made.values()], day)
        report.outcomes += _without_plan(store, day, [sid for sid in subscriber_ids if sid not in plans])
        ranked = {sub.id: made[sub.id][1] for sub in due}
        pace = _pace(settings, store)
        report = send_ranked(
            store, Mailroom.for_settings(settings), day, due, ranked, report=report, pace=pace, **kw
        )
        store.forget_plans(day, list(plans))  # those settled now (about 2.7 KB a reader a day)
        return report


def _without_plan(store: DeliveryStore, day: date, subscriber_ids: Sequence[str]) -> list[Outcome]:
    """Readers of a job with no plan left: settled (a plan goes once its digest is sent or has
    failed: the job runs a second time), or never planned (the next run makes one)."""
    if not subscriber_ids:
        return []
    rows = {d.subscriber_id: d for d in store.deliveries(day, subscribers=subscriber_ids)}
    outcomes = []
    for sid in subscriber_ids:
        row = rows.get(sid)
        if row is not None and row.status in (Status.SENT, Status.FAILED):
            status = Status.ALREADY if row.status == Status.SENT else row.status
            outcomes.append(Outcome(sid, status, len(row.paper_ids), row.location, row.reply))
        else:
            outcomes.append(
                Outcome(sid, Status.NOT_TRIED, detail="no saved plan for this day: the next run makes one")
            )
    return outcomes


def _pace(settings: Settings, store: PostgresStore) -> Callable[[], None] | None:
    """DIGEST_SMTP_RATE over every worker: wait for this message's shared slot."""
    if not settings.smtp.rate:
        return None
    interval = 1.0 / settings.smtp.rate

    def wait_turn() -> None:
        delay = store.take_send_slot(interval)
        if delay > 0:
            time.sleep(delay)

    return wait_turn


STALLED_AFTER = 30.0  # seconds without a heartbeat after which a worker counts as dead


async def _retry_stalled(app: Any, after: float) -> int:
    """Send jobs left `doing` by a worker that died (no heartbeat for `after` seconds) go back
    to the queue. Safe by the ledger: of their readers, those claimed come out `already` (or
    stay `unknown`), never sent again; the others are sent."""
    stalled = await app.job_manager.get_stalled_jobs(
        queue=QUEUE, task_name=TASK, seconds_since_heartbeat=after
    )
    for job in stalled:
        await app.job_manager.retry_job(job)
    if stalled:
        log.warning("%d send job(s) of a worker that stopped answering put back in the queue", len(stalled))
    return len(stalled)


RECONNECT_FIRST = 1.0  # seconds before reconnecting to a database that went away
RECONNECT_MOST = 30.0  # the wait doubles up to this, and starts again after a good hour
RETRY = {"max_attempts": 10, "exponential_wait": 2}  # a batch that failed on the database: again


def run_worker(
    settings: Settings,
    *,
    until_done: bool = False,
    concurrency: int = 1,
    stalled_after: float = STALLED_AFTER,
) -> None:
    """Process send jobs until stopped (SIGINT/SIGTERM finish the job at hand), or with
    `until_done` until the queue is empty. Jobs of dead workers are put back first, and every
    five minutes while the worker runs.

    A database that goes away (a restart, a failover, the network) does not end the worker: it
    reconnects with backoff and goes on, and the jobs it was running are put back at once (the
    ledger keeps their readers to one copy; a batch that failed on the database is retried).
    Only a database that can never work as configured (a refused login, a database that does
    not exist) ends it, with StoreError: exit status 2."""
    app = _app(settings)

    @app.task(name=TASK, queue=QUEUE, retry=procrastinate_retry(StoreError))
    def _send(day: str, subscribers: list[str]) -> dict[str, int]:
        report = send_batch(settings, date.fromisoformat(day), subscribers)
        counts: dict[str, int] = {}
        for o in report.outcomes:
            counts[str(o.status)] = counts.get(str(o.status), 0) + 1
        log.info("%s: %d readers: %s", day, len(subscribers), counts)
        for o in report.failed:
            log.warning("%s %s: %s %s", day, o.subscriber, o.status, o.detail or "")
        return counts

    async def _retry(context: Any, timestamp: int) -> None:
        await _retry_stalled(context.app, stalled_after)

    # every worker can run the clean-up job; long-running ones also defer it every five minutes
    retry = app.task(name="digest.retry_stalled", queue=QUEUE, pass_context=True)(_retry)
    if not until_done:
        app.periodic(cron="*/5 * * * *", periodic_id="retry-stalled")(retry)
    options = {
        "queues": [QUEUE],
        "wait": not until_done,
        "concurrency": concurrency,
        "delete_jobs": "successful",
        "listen_notify": not until_done,
        "stalled_worker_timeout": stalled_after,
        "install_signal_handlers": False,  # ours: a stop must not read as a lost database
    }
    asyncio.run(_supervise(app, settings, options, until_done=until_done, stalled_after=stalled_after))


def procrastinate_retry(*exceptions: type[BaseException]) -> Any:
    import procrastinate

    return procrastinate.RetryStrategy(**RETRY, retry_exceptions=set(exceptions))


async def _supervise(
    app: Any, settings: Settings, options: dict[str, Any], *, until_done: bool, stalled_after: float
) -> None:
    """Run procrastinate's worker, and run it again whenever it stops without being asked to:
    procrastinate stops a worker whose heartbeat or listener loses the database, and a query
    that fails on a dead connection ends it with an error."""
    from procrastinate.worker import Worker

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    current: list[Any] = []

    def on_signal() -> None:
        stop.set()
        for worker in current:
            worker.stop()  # finishes the job in hand

    signals = [s for s in (signal.SIGINT, signal.SIGTERM) if _can_handle(loop, s, on_signal)]
    wait, schema_ready, gone = RECONNECT_FIRST, False, None
    try:
        while not stop.is_set():
            began = time.monotonic()
            worker = None
            try:
                if not schema_ready:
                    await asyncio.to_thread(_prepare, app, settings)
                    schema_ready = True
                async with app.open_async():
                    if stop.is_set():
                        return
                    if gone is not None:  # the jobs of our last run never finished: back at once
                        await app.job_manager.unregister_worker(gone)
                        gone = None
                    await _retry_stalled(app, stalled_after)
                    worker = Worker(app=app, **options)
                    current[:] = [worker]
                    await worker.run()
                    if stop.is_set() or (until_done and not await _jobs_left(app)):
                        return
                cause = "the worker stopped by itself (most likely it lost the database)"
            except Exception as exc:  # noqa: BLE001 - sorted below: give up, or reconnect
                lasting = _lasting(exc, settings)
                if lasting is not None:
                    raise lasting from exc
                cause = _cause(exc, settings)
            finally:
                current.clear()
            if worker is not None and worker.worker_id is not None:
                gone = worker.worker_id  # its unregistering failed with the database
            if time.monotonic() - began > 3600:
                wait = RECONNECT_FIRST
            log.warning("%s; connecting again in %g s", cause, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            wait = min(wait * 2, RECONNECT_MOST)
    finally:
        for s in signals:
            loop.remove_signal_handler(s)


def _can_handle(loop: asyncio.AbstractEventLoop, sig: signal.Signals, handler: Callable[[], None]) -> bool:
    try:
        loop.add_signal_handler(sig, handler)
    except (RuntimeError, ValueError):  # not the main thread (a test's thread)
        return False
    return True


def _prepare(app: Any, settings: Settings) -> None:
    """The store's and procrastinate's tables, once per worker."""
    with open_store(settings) as store, app.open():
        _ensure_schema(app, postgres(store))


async def _jobs_left(app: Any) -> bool:
    """Send jobs still to do: waiting, or left running by a worker that is gone (a worker that
    ended with `until_done` because it lost the database has not emptied the queue; jobs that
    other live workers are running are theirs to finish)."""
    rows = await app.connector.execute_query_all_async(
        "SELECT 1 FROM procrastinate_jobs WHERE queue_name = %(queue)s"
        " AND (status = 'todo' OR (status = 'doing' AND worker_id IS NULL)) LIMIT 1",
        queue=QUEUE,
    )
    return bool(rows)


def _database_error(exc: BaseException, settings: Settings) -> StoreError | None:
    """The database's own error behind `exc` (procrastinate wraps psycopg's), as our StoreError
    that says what it means; None if `exc` is not the database's."""
    import psycopg

    from ..store.postgres import store_error

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, StoreError):
            return seen
        if isinstance(seen, psycopg.Error):
            return store_error(settings.store.url or "", seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _lasting(exc: BaseException, settings: Settings) -> StoreError | None:
    """The StoreError to end the worker with, if `exc` says the database can never work as
    configured; None for what reconnecting may cure (or what is not the database's)."""
    found = _database_error(exc, settings)
    return found if found is not None and found.lasting else None


def _cause(exc: BaseException, settings: Settings) -> str:
    found = _database_error(exc, settings)
    return f"lost the database ({found})" if found else f"the worker failed ({type(exc).__name__}: {exc})"
