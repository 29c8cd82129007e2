"""`digest serve`: the small web app that makes every link in the mail work.

    GET  /healthz                      "ok" when the database can be opened
    GET  /unsubscribe?t=T              a page with one button (mail scanners prefetch links:
                                       a GET never changes anything)
    POST /unsubscribe?t=T              List-Unsubscribe=One-Click (RFC 8058): unsubscribed at once
    POST /resubscribe?t=T              undo a mistaken click (the same token)
    GET  /feedback?t=T                 "more / less like this": a confirmation page
    POST /feedback?t=T                 vote=confirm: records the vote (a later one replaces it)
    GET  /archive/DAY/ID?t=T           a sent digest, as archived (no live links in it)
    GET  /archive/ID?t=T               the reader's past digests
    POST /webhooks/ses                 Amazon SES bounces and complaints via SNS (digest.webhook)

Only a POST with its expected form changes anything: GET and HEAD (which Starlette answers on
every GET route) only ever show a page, whatever they carry. Every token is checked by
digest.delivery.links against the subscriber's current address; a bad one gets the same plain page
whatever was wrong, and no page says whether an address is subscribed. Bodies are capped, each
route answers only its methods, nothing redirects, and every response carries a strict
Content-Security-Policy and no referrer.

Many readers at once: subscribers are looked up in the index of the last good subscribers.yaml
(digest.roster: one stat per request, a parse only when the file changed), store calls run in
worker threads, never on the event loop, and a client that sends its request too slowly is cut
off (HEADER_TIMEOUT, BODY_TIMEOUT). A store that is down, locked or busy answers 503 with
Retry-After ("try again in a minute") after at most STORE_WAIT seconds, and logs one line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import date
from functools import cached_property
from html import escape
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote

import anyio
import h11
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import webhook
from .app import Digest
from .delivery import links, render
from .errors import StoreError
from .models import Subscriber
from .roster import SubscriberFile
from .settings import Settings
from .store import Store
from .text import SLUG

log = logging.getLogger("digest")

MAX_BODY = 16 * 1024  # a one-click POST is 26 bytes; nothing here needs more
HEADER_TIMEOUT = 10.0  # seconds for a request line and headers to arrive
BODY_TIMEOUT = 10.0  # seconds for a request's body to arrive, once its headers have
STORE_WAIT = 5.0  # seconds a request waits for a locked or slow database before it says 503
RETRY_AFTER = "60"
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")


class Guard:
    """ASGI middleware: bodies over MAX_BODY (or their path's cap in `limits`) get 413 and bodies
    slower than `body_timeout` get 408 before the app sees them; every response gets the security headers."""

    def __init__(
        self, app: ASGIApp, body_timeout: float = BODY_TIMEOUT, limits: dict[str, int] | None = None
    ):
        self.app, self.body_timeout, self.limits = app, body_timeout, limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode().lower() not in SECURITY_HEADERS
                ]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        declared = dict(scope.get("headers", [])).get(b"content-length")
        max_body = self.limits.get(scope["path"], MAX_BODY)
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            await _plain("Request body too large.\n", 413)(scope, receive, send_guarded)
            return
        body = b""
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client went away
                    body += message.get("body", b"")
                    if len(body) > max_body:
                        await _plain("Request body too large.\n", 413)(scope, receive, send_guarded)
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            response = _plain("The request was too slow to arrive.\n", 408)
            response.headers["connection"] = "close"
            await response(scope, receive, send_guarded)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_guarded)


def _plain(text: str, status: int) -> PlainTextResponse:
    return PlainTextResponse(text, status_code=status)


class Pages:
    """The routes, over one Settings. Subscribers come from the last good subscribers.yaml
    (re-read when it changes, kept through a broken edit: mailbox providers give us 48 hours to
    honour an unsubscribe, not a fix); the store is opened per request, in a worker thread, so an
    unsubscribe is seen at once by every process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.digest = Digest(settings)
        self.file = SubscriberFile(settings.subscribers, required=False)
        self.templates = render.environment(settings.templates)
        self.health = anyio.CapacityLimiter(2)  # /healthz never queues behind a burst of clicks

    @cached_property
    def key(self) -> str:
        """The links' secret, read at the first request that needs it."""
        return links.secret(self.settings)

    # --- helpers ---------------------------------------------------------------------------

    def page(self, title: str, *lines: str, status: int = 200, **extra: Any) -> HTMLResponse:
        context = {"title": title, "lines": lines, "form": None, "items": (), **extra}
        html = self.templates.get_template("page.html.j2").render(context)
        return HTMLResponse(html, status_code=status)

    def invalid(self) -> HTMLResponse:
        """The one answer to every bad, stale or foreign token: it reveals nothing."""
        return self.page(
            "This link does not work",
            "It may be incomplete or out of date. Open the newest digest and use its link.",
            status=400,
        )

    async def store(self, work: Callable[[Store], T], *, limiter: anyio.CapacityLimiter | None = None) -> T:
        """`work` on a store opened for this request, in a worker thread; a database that is
        locked or slow for STORE_WAIT seconds is a StoreError (answered 503 by `unavailable`)."""

        def run() -> T:
            with self.digest.request_store(STORE_WAIT) as store:
                return work(store)

        return await anyio.to_thread.run_sync(run, limiter=limiter)

    async def reader(self, request: Request, purpose: str) -> tuple[Subscriber, links.Claim] | None:
        """The subscriber a valid token of `purpose` speaks for, or None."""
        await anyio.to_thread.run_sync(self.file.refresh)  # a stat; a parse only after an edit
        token = request.query_params.get("t", "")
        claim = links.read_token(token)
        if claim is None:
            return None
        subscriber = self.file.subscriber(claim.subscriber_id)
        if subscriber is None:
            return None
        verified = links.verify_token(self.key, token, purpose, subscriber)
        return (subscriber, verified) if verified else None

    # --- routes ----------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        try:
            await self.store(lambda store: store.days(), limiter=self.health)
        except StoreError as exc:
            log.error("serve: /healthz: %s", exc)
            return PlainTextResponse(
                "database unavailable\n", status_code=503, headers={"retry-after": RETRY_AFTER}
            )
        return PlainTextResponse("ok\n")

    async def unsubscribe(self, request: Request) -> Response:
        found = await self.reader(request, "unsubscribe")
        if found is None:
            return self.invalid()
        subscriber, _ = found
        token = request.query_params["t"]
        if request.method != "POST":  # GET, and HEAD: a link fetched is never a click
            return self.page(
                "Unsubscribe from Paper Digest?",
                "You will get no more morning digests. You can undo this on the next page.",
                form={
                    "action": f"?t={quote(token)}",
                    "fields": [("List-Unsubscribe", "One-Click"), ("via", "page")],
                    "button": "Unsubscribe",
                },
            )
        form = await _form(request)
        if form.get("List-Unsubscribe") != "One-Click":
            return self.page("Nothing was changed", "This request did not ask to unsubscribe.", status=400)
        how = "page" if form.get("via") == "page" else "one-click"
        await self.store(lambda store: store.unsubscribe(subscriber.id, how))
        return self.page(
            "You are unsubscribed",
            "No more digests will be sent. Clicked by mistake?",
            form={"action": f"resubscribe?t={quote(token)}", "fields": [], "button": "Undo: keep my digest"},
        )

    async def resubscribe(self, request: Request) -> Response:
        found = await self.reader(request, "unsubscribe")
        if found is None:
            return self.invalid()
        subscriber, _ = found
        await self.store(lambda store: store.resubscribe(subscriber.id))
        return self.page("Welcome back", "Your morning digest will come again from the next send time.")

    async def feedback(self, request: Request) -> Response:
        found = await self.reader(request, "feedback")
        parsed = _vote(found[1].extra) if found else None
        if found is None or parsed is None:
            return self.invalid()
        subscriber, _ = found
        paper_id, vote = parsed
        if request.method == "POST" and (await _form(request)).get("vote") != "confirm":
            return self.page("Nothing was changed", "This request did not confirm a vote.", status=400)

        def title_and_vote(store: Store) -> str:
            paper = store.papers_by_id([paper_id]).get(paper_id)
            if request.method == "POST":
                store.record_vote(subscriber.id, paper_id, vote)
            return paper.title if paper else "this paper"

        title = await self.store(title_and_vote)
        if request.method == "POST":
            return self.page(
                "Thank you", f"Noted for “{title}”. Tomorrow's digest will take it into account."
            )
        what = "more" if vote > 0 else "fewer"
        return self.page(
            "More like this?" if vote > 0 else "Less like this?",
            f"“{title}”",
            f"Your digest will show {what} papers like it.",
            form={
                "action": f"?t={quote(request.query_params['t'])}",
                "fields": [("vote", "confirm")],
                "button": "Yes, more like this" if vote > 0 else "Yes, less like this",
            },
        )

    async def archive_day(self, request: Request) -> Response:
        day, sid = request.path_params["day"], request.path_params["sid"]
        if not _is_day(day) or not SLUG.match(sid):
            return _not_found()
        found = await self.reader(request, "archive")
        if found is None or found[0].id != sid or found[1].extra != day:
            return _not_found()
        page = self.digest.mailroom.archived(date.fromisoformat(day), sid)
        html = await anyio.to_thread.run_sync(_read_page, page)
        if html is None:
            return _not_found()
        every = escape(links.archive_url(self._base(request), self.key, found[0]))
        back = f'<p style="text-align:center;font:14px sans-serif"><a href="{every}">All your digests</a></p>'
        return HTMLResponse(html.replace("</body>", back + "</body>", 1))

    async def archive_list(self, request: Request) -> Response:
        sid = request.path_params["sid"]
        found = await self.reader(request, "archive")
        if found is None or found[0].id != sid or found[1].extra != "":
            return _not_found()
        subscriber, base = found[0], self._base(request)
        folder = self.digest.mailroom.archive
        pages = await anyio.to_thread.run_sync(lambda: [p.parent.name for p in folder.glob(f"*/{sid}.html")])
        days = sorted((d for d in pages if _is_day(d)), reverse=True)
        items = [(d, links.archive_url(base, self.key, subscriber, date.fromisoformat(d))) for d in days]
        lines = () if items else ("No digest has been archived for you yet.",)
        return self.page("Your past digests", *lines, items=items)

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        """The store is down, locked or busy: a short page and one log line; nothing changed."""
        log.error("serve: %s %s: %s", request.method, request.url.path, exc)
        response = self.page(
            "Please try again in a minute",
            "We could not take your request just now, and nothing was changed.",
            status=503,
        )
        response.headers["retry-after"] = RETRY_AFTER
        return response

    async def failed(self, request: Request, exc: Exception) -> Response:
        """A bug: one line here (uvicorn logs the traceback); the reader gets a short page, not a
        bare "Internal Server Error"."""
        log.error("serve: %s %s failed (%s: %s)", request.method, request.url.path, type(exc).__name__, exc)
        return self.page("Something went wrong", "Please try again later.", status=500)

    def _base(self, request: Request) -> str:
        """Links on pages point at the public origin when it is known, else where we were asked."""
        return (self.settings.web.base_url or str(request.base_url)).rstrip("/")


def _read_page(page: Any) -> str | None:
    return page.read_text(encoding="utf-8") if page.is_file() else None


def _not_found() -> Response:
    return PlainTextResponse("Not found.\n", status_code=404)


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _vote(extra: str) -> tuple[str, int] | None:
    paper_id, _, word = extra.rpartition(" ")
    if not paper_id or word not in ("up", "down"):
        return None
    return paper_id, 1 if word == "up" else -1


async def _form(request: Request) -> dict[str, str]:
    """The posted fields, urlencoded (what we and most providers send) or multipart."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def create_app(settings: Settings, *, body_timeout: float = BODY_TIMEOUT, **fetchers: Any) -> ASGIApp:
    """The app; `fetchers`: SesWebhook's fetchers (tests inject their own, never calling AWS)."""
    pages = Pages(settings)
    ses = webhook.SesWebhook(settings, pages.store, pages.file, lambda: pages.key, **fetchers)
    app = Starlette(
        routes=[
            Route("/healthz", pages.healthz, methods=["GET"]),
            Route("/unsubscribe", pages.unsubscribe, methods=["GET", "POST"]),
            Route("/resubscribe", pages.resubscribe, methods=["POST"]),
            Route("/feedback", pages.feedback, methods=["GET", "POST"]),
            Route("/archive/{day:str}/{sid:str}", pages.archive_day, methods=["GET"]),
            Route("/archive/{sid:str}", pages.archive_list, methods=["GET"]),
            Route(webhook.PATH, ses.post, methods=["POST"]),
        ],
        exception_handlers={StoreError: pages.unavailable, Exception: pages.failed},
    )
    return Guard(app, body_timeout=body_timeout, limits={webhook.PATH: webhook.MAX_BODY})


class SlowClientTimeouts(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's line and headers:
    uvicorn times out an idle kept-alive connection, but not a client that connects and sends
    nothing, or drips its headers a byte at a time (each such client holds a connection)."""

    header_timeout = HEADER_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._headers_due: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # still waiting for a whole request line and headers
            self._arm()
        elif self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._headers_due is None and not self.transport.is_closing():
            self._headers_due = self.loop.call_later(self.header_timeout, self._too_slow)

    def _too_slow(self) -> None:
        self._headers_due = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def server_config(
    settings: Settings, host: str, port: int, *, header_timeout: float = HEADER_TIMEOUT, **app: Any
) -> Any:
    """uvicorn's Config for `digest serve`: the app, the slow-client timeouts, and a cap on
    connections (past it, uvicorn answers 503 at once instead of queueing without end)."""
    import uvicorn

    protocol = type("Protocol", (SlowClientTimeouts,), {"header_timeout": header_timeout})
    return uvicorn.Config(
        create_app(settings, **app),
        host=host,
        port=port,
        http=protocol,
        proxy_headers=True,
        server_header=False,
        timeout_keep_alive=5,
        limit_concurrency=1000,
        log_level=(settings.log_level or "info").lower(),
    )


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the app with uvicorn; behind a reverse proxy that terminates TLS (see the README)."""
    import uvicorn

    uvicorn.Server(server_config(settings, host, port)).run()


__all__ = ["Guard", "SlowClientTimeouts", "create_app", "serve", "server_config"]
