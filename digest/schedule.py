"""When each subscriber's digest is due, as data (no I/O), and the APScheduler daemon.

A subscriber's digest for local date D is due once their local clock has passed their
`send_time` on D. The ledger key is D, so each local morning gets one digest, a run at
any later hour of that day still sends it (a machine that slept sends once, late), and a
day missed entirely is not sent twice: its papers are in the next digest, which looks back
over the catch-up window for papers the subscriber never got.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .models import Subscriber

log = logging.getLogger("digest")


def local_send_time(subscriber: Subscriber, day: date) -> datetime:
    """The instant of the subscriber's send time on local date `day`. A time that a DST
    switch skips (02:30 on a spring-forward night) moves forward by the gap."""
    zone = ZoneInfo(subscriber.timezone)
    hour, minute = map(int, subscriber.send_time.split(":"))
    wall = datetime.combine(day, time(hour, minute), tzinfo=zone)
    return wall.astimezone(UTC).astimezone(
        zone
    )  # the round trip resolves gaps; fold=0 picks the first of two


def due_day(subscriber: Subscriber, now: datetime) -> date | None:
    """The local date whose digest is due at `now` (aware), or None before today's send time."""
    local = now.astimezone(ZoneInfo(subscriber.timezone))
    return local.date() if local >= local_send_time(subscriber, local.date()) else None


def next_send(subscriber: Subscriber, now: datetime) -> datetime:
    """The next send instant strictly after `now`, in the subscriber's zone."""
    local = now.astimezone(ZoneInfo(subscriber.timezone))
    candidate = local_send_time(subscriber, local.date())
    if candidate <= local:
        candidate = local_send_time(subscriber, local.date() + timedelta(days=1))
    return candidate


def due(
    subscribers: Sequence[Subscriber], now: datetime, sent_days: dict[str, set[date]]
) -> dict[date, list[Subscriber]]:
    """Active subscribers whose digest is due and not yet in the ledger, grouped by digest day."""
    out: dict[date, list[Subscriber]] = {}
    for s in subscribers:
        day = due_day(s, now) if s.active else None
        if day is not None and day not in sent_days.get(s.id, set()):
            out.setdefault(day, []).append(s)
    return out


# --- the daemon ------------------------------------------------------------------------------

MISFIRE_GRACE = 12 * 3600  # a send missed by less than this (a sleeping laptop) still runs, once


def build_scheduler(
    subscribers: Sequence[Subscriber],
    send: Callable[[str], None],
    poll: Callable[[], None],
    *,
    poll_seconds: float = 60,
):
    """A BlockingScheduler with one CronTrigger per subscriber in their own zone (DST-correct),
    coalesced so a backlog of missed runs fires once, plus the inbox/subscribers poll."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler = BlockingScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(1)},  # one job at a time: model and SQLite unshared
        job_defaults={"coalesce": True, "misfire_grace_time": MISFIRE_GRACE, "max_instances": 1},
    )
    scheduler.add_job(poll, IntervalTrigger(seconds=poll_seconds), id="poll", next_run_time=datetime.now(UTC))
    schedule_subscribers(scheduler, subscribers, send)
    return scheduler


def schedule_subscribers(scheduler, subscribers: Sequence[Subscriber], send: Callable[[str], None]) -> None:  # noqa: ANN001
    """(Re)place the send jobs to match `subscribers`."""
    from apscheduler.triggers.cron import CronTrigger

    wanted = {f"send:{s.id}": s for s in subscribers if s.active}
    for job in scheduler.get_jobs():
        if job.id.startswith("send:") and job.id not in wanted:
            job.remove()
    for job_id, s in wanted.items():
        hour, minute = map(int, s.send_time.split(":"))
        trigger = CronTrigger(hour=hour, minute=minute, timezone=ZoneInfo(s.timezone))
        scheduler.add_job(send, trigger, args=[s.id], id=job_id, replace_existing=True)


def stop_on_sigterm(scheduler) -> None:  # noqa: ANN001
    def stop(signum: int, frame: object) -> None:
        log.info("stopping (signal %s)", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
