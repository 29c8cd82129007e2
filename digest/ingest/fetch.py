"""The morning job fetches its own papers from the sources in subscribers.yaml (`sources:`).

    for each source:
        url = its URL with {date} filled in
        GET with If-None-Match / If-Modified-Since from the last good fetch of the same URL,
            a descriptive User-Agent with DIGEST_FROM as the contact, a per-read timeout and a
            deadline for the source as a whole, and at least FETCH_INTERVAL seconds between two
            requests to one host (arXiv asks for 3)
        408 / 429 / 5xx / network fault: retry with backoff, honouring Retry-After; any other
            4xx, an address refused by policy or a body over the limit: failed at once (asking
            again would only get the same answer, or download the same 50 MB again)
        304: not modified; 200: parse (any format digest reads) and store, a paper seen in
            several sources stored once with the richest metadata; an empty feed is "nothing
            published" (weekends, holidays), never an error; anything else: failed, with why
        remember how it went (digest status shows it)

Every source is tried whatever happened to the others; the caller decides what to do when
all of them failed.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from .. import sources
from ..errors import InputError
from ..models import Source
from ..settings import Settings
from ..store import IngestStore, SourceState
from ..text import mask_query, one_line

OUTCOMES = ("new", "unchanged", "not-modified", "nothing-published", "failed")
RETRIED = (408, 429)  # the 4xx that say "not now" (request timeout, too many requests), not "no"


@dataclass(frozen=True)
class FetchOutcome:
    source: str
    status: str  # one of OUTCOMES
    papers: int = 0
    new: int = 0
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


class _Polite:
    """At most one request per host every `interval` seconds."""

    def __init__(self, interval: float, sleep: Callable[[float], None], clock: Callable[[], float]):
        self.interval, self.sleep, self.clock = interval, sleep, clock
        self.last: dict[str, float] = {}

    def wait(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        if host in self.last:
            gap = self.last[host] + self.interval - self.clock()
            if gap > 0:
                self.sleep(gap)
        self.last[host] = self.clock()


def user_agent(settings: Settings) -> str:
    """Who we are and how to reach the operator, as feed owners ask of robots."""
    contact = settings.smtp.from_address.addr_spec
    return f"digest/0.1 (personal research-paper newsletter; mailto:{contact})"


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date), if it says."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def fetch_sources(
    store: IngestStore,
    settings: Settings,
    configured: Sequence[Source],
    *,
    day: date,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[FetchOutcome]:
    """Fetch every configured source for `day`; one outcome each, in order."""
    polite = _Polite(settings.fetch.interval, sleep, clock)
    states = store.source_states()
    agent = user_agent(settings)
    outcomes = []
    for source in configured:
        outcome, state = _fetch_one(
            store, settings, source, states.get(source.name), day, polite, agent, sleep, clock
        )
        store.save_source_state(state)
        outcomes.append(outcome)
    return outcomes


def _fetch_one(
    store: IngestStore,
    settings: Settings,
    source: Source,
    previous: SourceState | None,
    day: date,
    polite: _Polite,
    agent: str,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> tuple[FetchOutcome, SourceState]:
    url = source.url.replace("{date}", day.isoformat())
    now = settings.clock().astimezone(UTC).isoformat(timespec="seconds")
    state = previous if previous is not None and previous.url == url else SourceState(source.name, url)
    state = replace(state, last_attempt=now)
    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    end = clock() + settings.fetch.deadline
    problem = "no attempt"
    rng = random.Random()
    for attempt in range(settings.fetch.retries + 1):
        left = end - clock()
        if left <= 0:
            problem = f"gave up after {settings.fetch.deadline:g} s ({problem})"
            break
        polite.wait(url)
        try:
            response = sources.http.get(
                url,
                headers=headers,
                allow_private=settings.fetch.allow_private,
                timeout=min(settings.fetch.timeout, left),
                deadline=max(0.1, end - clock()),
                max_bytes=sources.MAX_BYTES,
                user_agent=agent,
            )
        except InputError as exc:
            problem = str(exc)
            if exc.permanent:
                break
            wait = settings.fetch.backoff * 2**attempt * rng.uniform(0.5, 1.0)
        else:
            if response.status == 304:
                return _done(source, state, now, "not-modified")
            if response.status < 300:
                return _store_body(store, source, state, now, url, day, response)
            problem = f"{mask_query(url)}: the server answered {response.status} {response.reason}"
            if response.status not in RETRIED and response.status < 500:
                break  # 404, 403...: asking again will not help
            asked = retry_after(response.headers.get("retry-after"), settings.clock())
            wait = asked if asked is not None else settings.fetch.backoff * 2**attempt * rng.uniform(0.5, 1.0)
            if asked is not None and asked > end - clock():
                problem += f" and asked to retry after {asked:g} s, past this source's deadline"
                break
        if attempt < settings.fetch.retries:
            sleep(min(wait, max(0.0, end - clock())))
    detail = one_line(problem)
    return FetchOutcome(source.name, "failed", detail=detail), replace(state, status="failed", detail=detail)


def _done(
    source: Source, state: SourceState, now: str, status: str, **counts: int
) -> tuple[FetchOutcome, SourceState]:
    return FetchOutcome(source.name, status, **counts), replace(
        state, last_ok=now, status=status, detail=None
    )


def _store_body(
    store: IngestStore,
    source: Source,
    state: SourceState,
    now: str,
    url: str,
    day: date,
    response: sources.http.Response,
) -> tuple[FetchOutcome, SourceState]:
    validators = {
        "etag": response.headers.get("etag"),
        "last_modified": response.headers.get("last-modified"),
    }
    state = replace(state, **validators)
    if response.body.strip() in (b"", b"[]"):
        return _done(source, state, now, "nothing-published")
    name = f"{source.name} ({mask_query(url)})"
    try:
        parsed = sources.parse_bytes(response.body, day=day, source=name)
    except InputError as exc:
        detail = one_line(str(exc))
        return FetchOutcome(source.name, "failed", detail=detail), replace(
            state, status="failed", detail=detail
        )
    if not parsed.papers:
        return _done(source, state, now, "nothing-published")
    sha = hashlib.sha256(response.body).hexdigest()
    if store.file_seen(sha):
        return _done(source, state, now, "unchanged", papers=len(parsed.papers))
    result = store.ingest_file(sha, name, day, parsed.papers)
    outcome, saved = _done(source, state, now, "new", papers=len(parsed.papers), new=result.new)
    if parsed.notes:
        outcome = replace(outcome, detail=one_line("; ".join(parsed.notes[:3])))
    return outcome, saved


def all_sources_failed(outcomes: Sequence[FetchOutcome]) -> bool:
    return bool(outcomes) and not any(o.ok for o in outcomes)
