"""The send loop: workers with a connection each, retries with backoff, a rate limit, and a
brake when the server keeps refusing.

    for each job (pulled lazily, so nothing is claimed that will not be tried):
        wait for the rate limit, then pull the job (its reader is claimed only then)
        a worker sends it; 4xx or a dropped connection -> retry after a jittered backoff
    yield each result as it finishes: sent | failed (5xx, for good) | pending (retry next run)
        | sending, i.e. unknown (the server may hold it: a lost reply after DATA, or an error
          we did not expect; that worker's connection is closed, never reused)
    after `max_failures` failed, pending or unknown results in a row: stop taking jobs, say why

The caller (send.send_ranked) records every result in the ledger from its own thread, so
the SQLite connection never crosses threads.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from ..errors import SendError
from ..models import Status
from .mail import Mailer, Outgoing


@dataclass(frozen=True)
class Policy:
    concurrency: int = 1
    rate: float | None = None  # messages per second, all workers together
    retries: int = 3
    backoff: float = 2.0
    backoff_cap: float = 60.0
    max_failures: int = 10


@dataclass(frozen=True)
class Result:
    outgoing: Outgoing
    status: Status  # SENT | FAILED | PENDING | SENDING (unknown: the server may hold it)
    location: str | None = None
    reply: str | None = None
    attempts: int = 1
    fatal: bool = False  # nothing else can be sent until the configuration is fixed


class Stopped(Exception):
    """Raised by `dispatch` after its last result when it stopped early; says why."""


def backoff_delay(attempt: int, policy: Policy, rng: random.Random) -> float:
    """Exponential, capped, with full jitter between half and all of the step."""
    step = min(policy.backoff_cap, policy.backoff * 2 ** (attempt - 1))
    return step * rng.uniform(0.5, 1.0)


def send_with_retries(
    outgoing: Outgoing,
    mailer: Mailer,
    policy: Policy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Result:
    rng = rng or random.Random()
    for attempt in range(1, policy.retries + 2):
        try:
            return Result(outgoing, Status.SENT, mailer.send(outgoing), attempts=attempt)
        except SendError as exc:
            reply = exc.reply or str(exc)
            if exc.unknown:  # resending could deliver a second copy
                return Result(outgoing, Status.SENDING, reply=reply, attempts=attempt)
            if exc.fatal:
                return Result(outgoing, Status.PENDING, reply=reply, attempts=attempt, fatal=True)
            if exc.permanent:
                return Result(outgoing, Status.FAILED, reply=reply, attempts=attempt)
            if attempt > policy.retries:
                return Result(outgoing, Status.PENDING, reply=reply, attempts=attempt)
            sleep(backoff_delay(attempt, policy, rng))
    raise AssertionError("unreachable")


def dispatch(
    jobs: Iterable[Outgoing],
    new_mailer: Callable[[], Mailer],
    policy: Policy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    pace: Callable[[], None] | None = None,
) -> Iterator[Result]:
    """Send `jobs` with `policy.concurrency` workers; yield results as they finish. `pace`, if
    given, is called before each message is handed to a worker and returns when its turn has
    come: a rate limit kept outside this process (policy.rate keeps it inside)."""
    local = threading.local()
    mailers: list[Mailer] = []
    lock = threading.Lock()

    def work(outgoing: Outgoing) -> Result:
        mailer = getattr(local, "mailer", None)
        try:
            if mailer is None:
                mailer = local.mailer = new_mailer()
                with lock:
                    mailers.append(mailer)
            return send_with_retries(outgoing, mailer, policy, sleep=sleep)
        except Exception as exc:  # noqa: BLE001 - one digest's failure, whatever it is, is its own
            local.mailer = None  # a mailer in an unknown state is closed, not reused
            if mailer is not None:
                with lock:
                    mailers.remove(mailer)
                with contextlib.suppress(Exception):
                    mailer.close()
            return Result(outgoing, Status.SENDING, reply=f"unexpected {type(exc).__name__}: {exc}")

    interval = 1.0 / policy.rate if policy.rate else 0.0
    next_slot = time.monotonic()
    failures_in_a_row = 0
    stop_reason: str | None = None
    pending: set[Future[Result]] = set()
    queue = iter(jobs)
    exhausted = False
    with ThreadPoolExecutor(max_workers=policy.concurrency, thread_name_prefix="digest-send") as pool:
        try:
            while True:
                while not exhausted and stop_reason is None and len(pending) < policy.concurrency:
                    # the turn is waited for before the next job is pulled (and its reader
                    # claimed), so a run killed while it waits leaves nobody "unknown"
                    if pace is not None:
                        pace()
                    if interval:
                        now = time.monotonic()
                        if next_slot > now:
                            sleep(next_slot - now)
                        next_slot = max(now, next_slot) + interval
                    outgoing = next(queue, None)
                    if outgoing is None:
                        exhausted = True
                        break
                    pending.add(pool.submit(work, outgoing))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    if result.fatal and stop_reason is None:
                        stop_reason = f"stopped: {result.reply}"
                    if result.status == Status.SENT:
                        failures_in_a_row = 0
                    else:
                        failures_in_a_row += 1
                        if failures_in_a_row >= policy.max_failures and stop_reason is None:
                            stop_reason = (
                                f"stopped after {failures_in_a_row} failed deliveries in a row; "
                                f"last reply: {result.reply}"
                            )
                    yield result
        finally:
            for future in pending:  # only if the caller stopped iterating early
                future.cancel()
            for mailer in mailers:
                mailer.close()
    if stop_reason:
        raise Stopped(stop_reason)
