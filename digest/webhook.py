"""`POST /webhooks/ses` in `digest serve`: Amazon SES bounces and complaints, as Amazon SNS posts
them, put through the same rule as the bounce mailbox (digest.delivery.bounces).

    off (no DIGEST_SES_TOPIC_ARNS)          404: any AWS account can make SNS post genuinely
                                            signed messages to any URL, so without an allow-list
                                            nothing posted here could be told to be ours
    body over MAX_BODY                       413 (digest.web's Guard, before the app)
    not JSON (whatever the Content-Type:     400
      SNS sends text/plain)
    sns.verify: forged / malformed / the     403 / 400 / 503 (SNS retries 5xx, never 4xx: only a
      signing certificate unreachable            failure that may pass is worth a retry)
    SubscriptionConfirmation                 DIGEST_SES_AUTO_CONFIRM: the SubscribeURL is fetched
                                            (200; 503 when it fails, so SNS sends it again);
                                            otherwise the URL is logged for the operator (200)
    UnsubscribeConfirmation                  logged (200)
    Notification                             each report tied to its reader and absorbed, once
                                            by ses:MESSAGEID:RECIPIENT (SNS delivers at least
                                            once: a message posted twice counts once); 200 with
                                            a one-line summary

Only a POST reaches this; the route answers no GET or HEAD (405), so a scanner or a browser
never changes anything. Every check that can fail on the network (the certificate, the
confirmation) and every store call runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from .delivery import sns
from .delivery.bounces import Absorbed, absorb, tie
from .delivery.reports import Report
from .roster import SubscriberFile
from .settings import Settings
from .store import Store

log = logging.getLogger("digest")

PATH = "/webhooks/ses"
# An SES notification is a few KiB (SES truncates the quoted headers past 10 KiB); SNS caps a
# message at 256 KiB. More than that is not SNS.
MAX_BODY = 256 * 1024
RETRY_AFTER = "60"
T = TypeVar("T")


class InStore(Protocol):
    """digest.web's Pages.store: `work` on a store of the request's own, in a worker thread."""

    def __call__(self, work: Callable[[Store], T], /) -> Awaitable[T]: ...


def _plain(text: str, status: int = 200) -> PlainTextResponse:
    return PlainTextResponse(text + "\n", status_code=status)


def _refused(exc: sns.SnsError, what: str) -> Response:
    """The answer to an SnsError: 403 when nothing proves SNS sent it for our topics, 503 when
    the certificate (or confirmation) fetch may work next time, 400 for the rest. The detail
    goes to the log, not to whoever posted."""
    if exc.forged:
        status, text = 403, "Refused: not signed by Amazon SNS for a topic in DIGEST_SES_TOPIC_ARNS."
    elif not exc.permanent:
        status, text = 503, "Try again later: Amazon SNS could not be reached just now."
    else:
        status, text = 400, "Refused: not an Amazon SNS message digest can read."
    log.warning("serve: %s %s: %s (%d)", PATH, what, exc, status)
    response = _plain(text, status)
    if status == 503:
        response.headers["retry-after"] = RETRY_AFTER
    return response


def summary(outcomes: Sequence[tuple[Report, Absorbed | None]]) -> str:
    """One line for SNS's delivery log (and a curl): how many reports, and what each did."""
    new = [a for _, a in outcomes if a is not None and a.new]
    stopped = sum(1 for a in new if a.suppression is not None)
    parts = [
        (len(new), "recorded" + (f" ({stopped} suppressed)" if stopped else "")),
        (sum(1 for _, a in outcomes if a is not None and not a.new), "recorded before"),
        (sum(1 for _, a in outcomes if a is None), "about nobody on the list"),
    ]
    said = ", ".join(f"{n} {what}" for n, what in parts if n)
    count = f"{len(outcomes)} report{'' if len(outcomes) == 1 else 's'}"
    return f"{count}: {said}" if said else f"{count}: nothing to act on"


class SesWebhook:
    """The route's handler over one Settings. `store`, `roster` and `key` are the web app's own
    (the last good subscribers.yaml, the links' secret for VERP return paths); `fetch_cert` and
    `fetch_confirm` are the network, injectable so that tests sign with a key of their own and
    never call AWS. Certificates are cached per app: SNS signs with one for months."""

    def __init__(
        self,
        settings: Settings,
        store: InStore,
        roster: SubscriberFile,
        key: Callable[[], str],
        *,
        fetch_cert: Callable[[str], bytes] = sns.fetch_pem,
        fetch_confirm: Callable[[str], bytes] = sns.fetch_url,
    ):
        self.settings = settings
        self.store = store
        self.roster = roster
        self.key = key
        self.fetch_cert = fetch_cert
        self.fetch_confirm = fetch_confirm
        self.certs = sns.CertCache()

    async def post(self, request: Request) -> Response:
        topics = self.settings.bounces.ses_topics
        if not topics:
            return _plain("Not found: the SES webhook is off (DIGEST_SES_TOPIC_ARNS is not set).", 404)
        body = await request.body()
        if len(body) > MAX_BODY:  # the Guard caps it first; this holds wherever the app is mounted
            return _plain("Request body too large.", 413)
        try:
            message: Any = json.loads(body)
        except ValueError:  # UnicodeDecodeError too
            log.warning("serve: %s: a post that is not JSON (%d bytes)", PATH, len(body))
            return _plain("Refused: the body is not JSON.", 400)
        try:
            await run_in_threadpool(
                sns.verify, message, topics=topics, fetch_cert=self.fetch_cert, cache=self.certs
            )
        except sns.SnsError as exc:
            return _refused(exc, "refused a post")
        kind, topic = message["Type"], message["TopicArn"]
        if kind == "SubscriptionConfirmation":
            return await self.confirm(message)
        if kind == "UnsubscribeConfirmation":
            again = message.get("SubscribeURL")
            log.warning(
                "serve: %s: topic %s no longer posts here (to subscribe again: %s)", PATH, topic, again
            )
            return _plain("Noted.")
        return await self.notification(message)

    async def confirm(self, message: dict[str, Any]) -> Response:
        """Confirm the subscription (GET its SubscribeURL, an SNS URL for this very topic), or,
        with DIGEST_SES_AUTO_CONFIRM off, leave the URL in the log for the operator to open."""
        topic = message["TopicArn"]
        try:
            url = sns.subscription_confirm_url(message)
        except sns.SnsError as exc:
            return _refused(exc, "refused a subscription confirmation")
        if url is None or not self.settings.bounces.ses_auto_confirm:
            log.warning(
                "serve: SNS asks %s to confirm the subscription to %s; DIGEST_SES_AUTO_CONFIRM is off,"
                " so to confirm it, open: %s",
                PATH,
                topic,
                url,
            )
            return _plain("Noted, not confirmed: DIGEST_SES_AUTO_CONFIRM is off (the URL is in the log).")
        try:
            await run_in_threadpool(self.fetch_confirm, url)
        except sns.SnsError as exc:
            return _refused(sns.SnsError(str(exc), permanent=False), "could not confirm a subscription")
        log.warning("serve: %s confirmed the subscription to %s", PATH, topic)
        return _plain("Subscription confirmed.")

    async def notification(self, message: dict[str, Any]) -> Response:
        """Each report tied to its reader and absorbed; reports about nobody are logged only."""
        try:
            reports = sns.reports_from_ses(message)
        except sns.SnsError as exc:
            return _refused(exc, f"could not read notification {message['MessageId']}")
        if not reports:
            return _plain(summary([]))
        await run_in_threadpool(self.roster.refresh)  # a stat; a parse only after an edit
        subscribers, bounces = self.roster.subscribers, self.settings.bounces
        prefix = f"ses:{message['MessageId']}:"

        def work(store: Store) -> list[tuple[Report, Absorbed | None]]:
            key = self.key() if any(r.verp_token for r in reports) else None
            outcomes: list[tuple[Report, Absorbed | None]] = []
            for report in reports:
                reader = tie(report, subscribers, store, key)
                key_of = prefix + report.recipient
                outcomes.append((report, absorb(store, reader, report, key_of, bounces) if reader else None))
            return outcomes

        outcomes = await self.store(work)
        for report, absorbed in outcomes:
            if absorbed is None:
                log.info(
                    "serve: SES %s about %s: no reader has it, nothing recorded",
                    report.kind,
                    report.recipient,
                )
            elif absorbed.new:
                bounce, done = absorbed.bounce, "suppressed" if absorbed.suppression else "recorded"
                log.info(
                    "serve: SES %s for %s (%s): %s", bounce.kind, bounce.subscriber_id, bounce.email, done
                )
        return _plain(summary(outcomes))


__all__ = ["MAX_BODY", "PATH", "SesWebhook", "summary"]
