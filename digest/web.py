"""`digest serve`: the small web app that makes every link in the mail work.

    GET  /healthz                      "ok" when the database can be opened
    GET  /unsubscribe?t=T              a page with one button (mail scanners prefetch links:
                                       a GET never changes anything)
    POST /unsubscribe?t=T              List-Unsubscribe=One-Click (RFC 8058): unsubscribed at once
    POST /resubscribe?t=T              undo a mistaken click (the same token)
    GET  /feedback?t=T                 "more / less like this": a confirmation page
    POST /feedback?t=T                 records the vote (a later vote replaces an earlier one)
    GET  /archive/DAY/ID?t=T           a sent digest, as archived (no live links in it)
    GET  /archive/ID?t=T               the reader's past digests

Every token is checked by digest.links against the subscriber's current address; a bad one
gets the same plain page whatever was wrong, and no page says whether an address is
subscribed. Bodies are capped, each route answers only its methods, nothing redirects, and
every response carries a strict Content-Security-Policy and no referrer.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import date
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from . import links, render
from .config import Settings, load_subscribers
from .errors import DigestError
from .models import Subscriber
from .pipeline import archive_path
from .store import open_store

MAX_BODY = 16 * 1024  # a one-click POST is 26 bytes; nothing here needs more
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
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Guard:
    """ASGI middleware: bodies over MAX_BODY get 413 before the app sees them; every response
    gets the security headers."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY):
        self.app = app
        self.max_body = max_body

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
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _too_large(scope, receive, send_guarded)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await _too_large(scope, receive, send_guarded)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_guarded)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("Request body too large.\n", status_code=413)(scope, receive, send)


class Pages:
    """The routes, over one Settings. Each request reads subscribers.yaml and opens the store
    afresh: an edit or an unsubscribe is seen at once, with no cache to go stale (but the
    last good subscriber list is kept for when an edit breaks the file)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._last_good: dict[str, Subscriber] = {}

    def subscribers(self) -> dict[str, Subscriber]:
        """subscribers.yaml as it is now; while an edit has broken it, the last good version,
        so that an unsubscribe still works (mailbox providers give us 48 hours, not a fix)."""
        with contextlib.suppress(DigestError):
            self._last_good = {s.id: s for s in load_subscribers(self.settings.subscribers)}
        return self._last_good

    # --- helpers ---------------------------------------------------------------------------

    def page(self, title: str, *lines: str, status: int = 200, **extra: Any) -> HTMLResponse:
        env = render.environment(self.settings.templates)
        context = {"title": title, "lines": lines, "form": None, "items": (), **extra}
        html = env.get_template("page.html.j2").render(context)
        return HTMLResponse(html, status_code=status)

    def invalid(self) -> HTMLResponse:
        """The one answer to every bad, stale or foreign token: it reveals nothing."""
        return self.page(
            "This link does not work",
            "It may be incomplete or out of date. Open the newest digest and use its link.",
            status=400,
        )

    def reader(self, request: Request, purpose: str) -> tuple[Subscriber, links.Claim] | None:
        """The subscriber a valid token of `purpose` speaks for, or None."""
        token = request.query_params.get("t", "")
        claim = links.read_token(token)
        if claim is None:
            return None
        subscriber = self.subscribers().get(claim.subscriber_id)
        if subscriber is None:
            return None
        verified = links.verify_token(links.secret(self.settings), token, purpose, subscriber)
        return (subscriber, verified) if verified else None

    # --- routes ----------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        try:
            with open_store(self.settings) as store:
                store.days()
        except DigestError:
            return PlainTextResponse("database unavailable\n", status_code=503)
        return PlainTextResponse("ok\n")

    async def unsubscribe(self, request: Request) -> Response:
        found = self.reader(request, "unsubscribe")
        if found is None:
            return self.invalid()
        subscriber, _ = found
        token = request.query_params["t"]
        if request.method == "GET":
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
        with open_store(self.settings) as store:
            store.unsubscribe(subscriber.id, how)
        return self.page(
            "You are unsubscribed",
            "No more digests will be sent. Clicked by mistake?",
            form={"action": f"resubscribe?t={quote(token)}", "fields": [], "button": "Undo: keep my digest"},
        )

    async def resubscribe(self, request: Request) -> Response:
        found = self.reader(request, "unsubscribe")
        if found is None:
            return self.invalid()
        subscriber, _ = found
        with open_store(self.settings) as store:
            store.resubscribe(subscriber.id)
        return self.page("Welcome back", "Your morning digest will come again from the next send time.")

    async def feedback(self, request: Request) -> Response:
        found = self.reader(request, "feedback")
        parsed = _vote(found[1].extra) if found else None
        if found is None or parsed is None:
            return self.invalid()
        subscriber, _ = found
        paper_id, vote = parsed
        with open_store(self.settings) as store:
            paper = store.papers_by_id([paper_id]).get(paper_id)
            title = paper.title if paper else "this paper"
            if request.method == "GET":
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
            store.record_vote(subscriber.id, paper_id, vote)
        return self.page("Thank you", f"Noted for “{title}”. Tomorrow's digest will take it into account.")

    async def archive_day(self, request: Request) -> Response:
        day, sid = request.path_params["day"], request.path_params["sid"]
        if not _is_day(day) or not _SLUG.match(sid):
            return _not_found()
        found = self.reader(request, "archive")
        if found is None or found[0].id != sid or found[1].extra != day:
            return _not_found()
        page = archive_path(self.settings, date.fromisoformat(day), sid)
        if not page.is_file():
            return _not_found()
        html = page.read_text(encoding="utf-8")
        key, base = links.secret(self.settings), self._base(request)
        every = escape(links.archive_url(base, key, found[0]))
        back = f'<p style="text-align:center;font:14px sans-serif"><a href="{every}">All your digests</a></p>'
        return HTMLResponse(html.replace("</body>", back + "</body>", 1))

    async def archive_list(self, request: Request) -> Response:
        sid = request.path_params["sid"]
        found = self.reader(request, "archive")
        if found is None or found[0].id != sid or found[1].extra != "":
            return _not_found()
        subscriber = found[0]
        key, base = links.secret(self.settings), self._base(request)
        pages = (self.settings.state_dir / "archive").glob(f"*/{sid}.html")
        days = sorted((p.parent.name for p in pages if _is_day(p.parent.name)), reverse=True)
        items = [(d, links.archive_url(base, key, subscriber, date.fromisoformat(d))) for d in days]
        lines = () if items else ("No digest has been archived for you yet.",)
        return self.page("Your past digests", *lines, items=items)

    def _base(self, request: Request) -> str:
        """Links on pages point at the public origin when it is known, else where we were asked."""
        return (self.settings.base_url or str(request.base_url)).rstrip("/")


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


def create_app(settings: Settings) -> ASGIApp:
    pages = Pages(settings)
    app = Starlette(
        routes=[
            Route("/healthz", pages.healthz, methods=["GET"]),
            Route("/unsubscribe", pages.unsubscribe, methods=["GET", "POST"]),
            Route("/resubscribe", pages.resubscribe, methods=["POST"]),
            Route("/feedback", pages.feedback, methods=["GET", "POST"]),
            Route("/archive/{day:str}/{sid:str}", pages.archive_day, methods=["GET"]),
            Route("/archive/{sid:str}", pages.archive_list, methods=["GET"]),
        ]
    )
    return Guard(app)


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the app with uvicorn; behind a reverse proxy that terminates TLS (see the README)."""
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        proxy_headers=True,
        server_header=False,
        log_level=(settings.log_level or "info").lower(),
    )


__all__ = ["Guard", "create_app", "serve"]
