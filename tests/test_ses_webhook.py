"""`POST /webhooks/ses` against a real uvicorn on 127.0.0.1, on each of the store's backends:
SES bounces and complaints posted as SNS posts them (text/plain JSON, signed with a real RSA key
whose self-signed certificate the injected fetcher serves for the SNS certificate URL), tied to
the readers of a real subscribers.yaml and recorded in a real store."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SUBSCRIBERS, free_port, opened
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from test_serve import serving  # digest serve's uvicorn in a thread
from test_sns import ORDER as SIGNED  # the fields SNS signs, in its order
from test_sns import _cert as sns_cert

from digest.delivery import links
from digest.delivery.sns import SnsError
from digest.models import Subscriber
from digest.settings import Settings

SECRET = "a-webhook-test-secret-of-enough-length"
TOPIC = "arn:aws:sns:eu-west-1:204518337921:digest-ses-feedback"
OTHER_TOPIC = "arn:aws:sns:eu-west-1:999999999999:someone-elses-topic"
CERT_URL = (
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-5c2e8a41f07b9d36e1a4c8b2f6d03e57.pem"
)
SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2425a8a5873e3d5b1d7fc4e0b66c0f7e14c4a9d0e"
)
ADDRESSES = {"alice": "alice@example.org", "bob": "bob@example.org", "carol": "carol@example.org"}
SNS_HEADERS = {
    "Content-Type": "text/plain; charset=UTF-8",
    "User-Agent": "Amazon Simple Notification Service Agent",
}


# --- SNS's side: a key, its certificate, signed posts -----------------------------------------


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pem(key: rsa.RSAPrivateKey) -> bytes:
    """A self-signed certificate named as SNS's are, valid around the real now (verify checks
    the real clock, as the server does)."""
    return sns_cert(key, days=(-1, 30), now=datetime.now(UTC))


def sign(message: dict[str, Any], key: rsa.RSAPrivateKey) -> dict[str, Any]:
    text = "".join(f"{k}\n{message[k]}\n" for k in SIGNED[message["Type"]] if message.get(k) is not None)
    signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    return message | {"SignatureVersion": "2", "Signature": base64.b64encode(signature).decode()}


def envelope(kind: str = "Notification", **fields: Any) -> dict[str, Any]:
    """An unsigned SNS post of `kind`, stamped now, with a MessageId of its own."""
    message: dict[str, Any] = {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "TopicArn": TOPIC,
        "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "SigningCertURL": CERT_URL,
    }
    if kind == "Notification":
        message["Subject"] = "Amazon SES Email Event Notification"
    else:
        message |= {
            "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
            "SubscribeURL": SUBSCRIBE_URL,
        }
        message["Token"] = "2336412f37fb687f5d51e6e2425a8a5873e3d5b1d7fc4e0b66c0f7e14c4a9d0e"
    return message | fields


def ses_mail(to: str, source: str = "digest@digest.example.org") -> dict[str, Any]:
    return {
        "timestamp": "2026-12-04T06:59:57.004Z",
        "source": source,
        "messageId": "0102019394d1a7f2-3e5c1b8a-77a0-4c2e-9d3b-5f1e2a7c9b60-000000",
        "destination": [to],
        "commonHeaders": {"to": [to], "subject": "Your papers for 4 December"},
    }


def bounce(
    *recipients: str,
    bounce_type: str = "Permanent",
    status: str = "5.1.1",
    to: str | None = None,
    **mail: str,
) -> str:
    """SES's Bounce notification (the Message of the SNS post) for `recipients`, of a mail to `to`
    (the first recipient unless given)."""
    return json.dumps(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": "General" if bounce_type == "Permanent" else "MailboxFull",
                "bouncedRecipients": [
                    {
                        "emailAddress": r,
                        "action": "failed",
                        "status": status,
                        "diagnosticCode": f"smtp; 550 {status}",
                    }
                    for r in recipients
                ],
                "timestamp": datetime.now(UTC).isoformat(),
            },
            "mail": ses_mail(to or recipients[0], **mail),
        }
    )


def complaint(recipient: str) -> str:
    return json.dumps(
        {
            "notificationType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": recipient}],
                "complaintFeedbackType": "abuse",
                "userAgent": "Mailbox-Feedback/1.3",
                "timestamp": datetime.now(UTC).isoformat(),
            },
            "mail": ses_mail(recipient),
        }
    )


class Fetcher:
    """An injected fetcher: answers `body` (or raises `fails`) and keeps every URL asked for."""

    def __init__(self, body: bytes, fails: Exception | None = None):
        self.body, self.fails = body, fails
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if self.fails is not None:
            raise self.fails
        return self.body


# --- our side: digest serve on loopback ----------------------------------------------------------


class Hook:
    """A running `digest serve`, its fetchers, and a way to post and to look at the store."""

    def __init__(self, base: str, database: str, cert: Fetcher, confirm: Fetcher, key: rsa.RSAPrivateKey):
        self.url, self.database, self.cert, self.confirm, self.key = (
            f"{base}/webhooks/ses",
            database,
            cert,
            confirm,
            key,
        )

    def post(self, message: dict[str, Any] | bytes, *, signed: bool = True) -> httpx.Response:
        if isinstance(message, bytes):
            return httpx.post(self.url, content=message, headers=SNS_HEADERS)
        body = sign(message, self.key) if signed else message
        headers = SNS_HEADERS | {
            "x-amz-sns-message-type": body["Type"],
            "x-amz-sns-topic-arn": body["TopicArn"],
        }
        return httpx.post(self.url, content=json.dumps(body).encode(), headers=headers)

    def state(self) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
        """Whose mail stops (by kind: a suppression that holds for their address in the list, as
        the sending paths check it) and every bounce recorded (reader, address, kind)."""
        with opened(self.database) as store:
            held = store.suppressed().items()
            suppressed = {sid: s.kind for sid, s in held if s.holds_for(ADDRESSES.get(sid, ""))}
            return suppressed, [(b.subscriber_id, b.email, b.kind) for b in store.bounces()]


@pytest.fixture
def serve_hook(tmp_path: Path, database: str, key: rsa.RSAPrivateKey, pem: bytes):
    """Start `digest serve` with DIGEST_SES_TOPIC_ARNS=TOPIC and `env` on top; a Hook."""

    @contextmanager
    def start(cert: Fetcher | None = None, **env: str) -> Iterator[Hook]:
        subscribers = tmp_path / "subscribers.yaml"
        shutil.copy(SUBSCRIBERS, subscribers)
        settings = Settings.load(
            env={
                "DIGEST_SUBSCRIBERS": str(subscribers),
                "DIGEST_DB": database,
                "DIGEST_STATE": str(tmp_path / "var"),
                "DIGEST_MODEL": "hashing",
                "DIGEST_SECRET": SECRET,
                "DIGEST_SES_TOPIC_ARNS": f"arn:aws:sns:us-east-1:204518337921:unused, {TOPIC}",
                **env,
            }
        )
        cert = cert or Fetcher(pem)
        confirm = Fetcher(b"<ConfirmSubscriptionResponse/>")
        with serving(settings, free_port(), fetch_cert=cert, fetch_confirm=confirm) as base:
            yield Hook(base, database, cert, confirm, key)

    return start


@pytest.fixture
def hook(serve_hook) -> Iterator[Hook]:
    with serve_hook() as running:
        yield running


@contextmanager
def logged() -> Iterator[list[logging.LogRecord]]:
    """The "digest" logger's records in the block (the CLI may have stopped it propagating)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("digest")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# --- notifications ------------------------------------------------------------------------------


def test_a_signed_hard_bounce_suppresses_its_reader_and_posted_twice_counts_once(hook: Hook):
    message = envelope(Message=bounce("alice@example.org"))
    first = hook.post(message)
    assert (first.status_code, first.text) == (200, "1 report: 1 recorded (1 suppressed)\n")
    again = hook.post(message)  # SNS delivers at least once
    assert (again.status_code, again.text) == (200, "1 report: 1 recorded before\n")
    assert hook.state() == ({"alice": "hard"}, [("alice", "alice@example.org", "hard")])
    assert hook.cert.urls == [CERT_URL]  # fetched once, then cached


def test_a_complaint_suppresses_its_reader_at_once(hook: Hook):
    response = hook.post(envelope(Message=complaint("Bob@Example.org")))
    assert response.status_code == 200
    assert hook.state() == ({"bob": "complaint"}, [("bob", "bob@example.org", "complaint")])


def test_a_transient_bounce_only_counts_until_DIGEST_SOFT_BOUNCES_of_them(serve_hook):
    with serve_hook(DIGEST_SOFT_BOUNCES="2") as hook:
        first = hook.post(
            envelope(Message=bounce("carol@example.org", bounce_type="Transient", status="4.2.2"))
        )
        assert (first.status_code, first.text) == (200, "1 report: 1 recorded\n")
        assert hook.state()[0] == {}
        second = hook.post(
            envelope(Message=bounce("carol@example.org", bounce_type="Transient", status="4.2.2"))
        )
        assert second.text == "1 report: 1 recorded (1 suppressed)\n"
        suppressed, recorded = hook.state()
        assert suppressed == {"carol": "soft"} and [kind for *_, kind in recorded] == ["soft", "soft"]


def test_a_bounce_about_an_address_nobody_has_is_answered_and_records_nothing(hook: Hook):
    with logged() as records:
        response = hook.post(envelope(Message=bounce("stranger@example.net")))
    assert (response.status_code, response.text) == (200, "1 report: 1 about nobody on the list\n")
    assert hook.state() == ({}, [])
    assert any("stranger@example.net" in r.getMessage() and r.levelno == logging.INFO for r in records)


def test_one_notification_about_a_reader_and_a_stranger_acts_on_the_reader_only(hook: Hook):
    both = bounce("alice@example.org", "stranger@example.net", to="readers@example.org")
    response = hook.post(envelope(Message=both))
    assert response.text == "2 reports: 1 recorded (1 suppressed), 1 about nobody on the list\n"
    assert hook.state()[0] == {"alice": "hard"}


def test_a_bounce_through_a_forwarded_address_is_tied_by_its_verp_return_path_and_stops_the_readers(
    hook: Hook,
):
    bob = Subscriber(id="bob", email="bob@example.org")
    source = links.return_path("bounces@digest.example.org", SECRET, bob)
    assert source.startswith("bounces+bob=")
    response = hook.post(envelope(Message=bounce("bob.forwarded@elsewhere.example", source=source)))
    assert response.status_code == 200 and response.text.startswith("1 report: 1 recorded")
    # the VERP address binds bob's own address: the forward bounced, so the mail feeding it stops
    assert hook.state() == ({"bob": "hard"}, [("bob", "bob@example.org", "hard")])


def test_an_ses_event_that_is_no_bounce_or_complaint_is_answered_with_nothing_to_do(hook: Hook):
    delivery = json.dumps({"eventType": "Delivery", "mail": ses_mail("alice@example.org"), "delivery": {}})
    response = hook.post(envelope(Message=delivery))
    assert (response.status_code, response.text) == (200, "0 reports: nothing to act on\n")
    assert hook.state() == ({}, [])


def test_a_signed_notification_whose_message_is_not_ses_json_is_400(hook: Hook):
    for text in ("not json", json.dumps({"notificationType": "Bounce"})):
        assert hook.post(envelope(Message=text)).status_code == 400
    assert hook.state() == ({}, [])


# --- what is refused ------------------------------------------------------------------------------


def test_a_tampered_message_is_403_and_records_nothing(hook: Hook):
    signed = sign(envelope(Message=bounce("carol@example.org")), hook.key)
    tampered = signed | {"Message": bounce("alice@example.org")}
    response = hook.post(tampered, signed=False)
    assert response.status_code == 403 and "alice" not in response.text
    raw = bytearray(base64.b64decode(signed["Signature"]))
    raw[0] ^= 1
    assert hook.post(signed | {"Signature": base64.b64encode(raw).decode()}, signed=False).status_code == 403
    assert hook.state() == ({}, [])


def test_a_topic_not_in_DIGEST_SES_TOPIC_ARNS_is_403_though_sns_signed_it(hook: Hook):
    response = hook.post(envelope(Message=bounce("alice@example.org"), TopicArn=OTHER_TOPIC))
    assert response.status_code == 403
    assert hook.cert.urls == []  # refused before any fetch
    assert hook.state() == ({}, [])


def test_an_old_message_replayed_is_403(hook: Hook):
    stale = (datetime.now(UTC) - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    assert hook.post(envelope(Message=bounce("alice@example.org"), Timestamp=stale)).status_code == 403
    assert hook.state() == ({}, [])


def test_without_DIGEST_SES_TOPIC_ARNS_the_route_is_not_found_and_says_why(serve_hook):
    with serve_hook(DIGEST_SES_TOPIC_ARNS="") as hook:
        response = hook.post(envelope(Message=bounce("alice@example.org")))
        assert response.status_code == 404
        assert "DIGEST_SES_TOPIC_ARNS is not set" in response.text and response.text.count("\n") == 1
        assert hook.cert.urls == [] and hook.state() == ({}, [])


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_only_post_is_answered_and_other_methods_change_nothing(hook: Hook, method: str):
    body = json.dumps(sign(envelope(Message=bounce("alice@example.org")), hook.key))
    response = httpx.request(method, hook.url, content=body, headers=SNS_HEADERS)
    assert response.status_code == 405
    assert response.headers["referrer-policy"] == "no-referrer"  # the Guard's headers, as on every page
    assert hook.cert.urls == [] and hook.state() == ({}, [])


def test_a_body_that_is_not_json_is_400_and_one_too_large_is_413(hook: Hook):
    assert hook.post(b"Type=Notification").status_code == 400
    assert hook.post(b"\xff\xfe").status_code == 400
    assert hook.post(b"[1, 2]").status_code == 400  # JSON, but no SNS message
    big = json.dumps(envelope(Message="x" * 300_000)).encode()
    assert hook.post(big).status_code == 413
    assert hook.state() == ({}, [])


def test_a_real_size_notification_passes_the_cap_the_other_pages_have(hook: Hook):
    """The other routes take 16 KiB at most; an SES notification with its headers can be more."""
    message = json.loads(bounce("alice@example.org"))
    message["mail"]["headers"] = [{"name": f"X-Filler-{i}", "value": "y" * 900} for i in range(30)]
    assert hook.post(envelope(Message=json.dumps(message))).status_code == 200
    assert hook.state()[0] == {"alice": "hard"}


def test_a_certificate_that_cannot_be_fetched_now_is_503_so_sns_retries(serve_hook, pem: bytes):
    down = Fetcher(pem, fails=SnsError("sns.eu-west-1.amazonaws.com timed out", permanent=False))
    with serve_hook(cert=down) as hook:
        response = hook.post(envelope(Message=bounce("alice@example.org")))
        assert response.status_code == 503 and response.headers["retry-after"]
        down.fails = SnsError("the signing certificate URL did not give a PEM certificate", forged=True)
        assert hook.post(envelope(Message=bounce("alice@example.org"))).status_code == 403
        down.fails = None  # a failure is not cached: the next post fetches again
        assert hook.post(envelope(Message=bounce("alice@example.org"))).status_code == 200
        assert len(down.urls) == 3 and hook.state()[0] == {"alice": "hard"}


# --- subscription -------------------------------------------------------------------------------


def test_a_subscription_confirmation_is_confirmed_by_getting_its_subscribe_url(hook: Hook):
    response = hook.post(envelope("SubscriptionConfirmation"))
    assert (response.status_code, response.text) == (200, "Subscription confirmed.\n")
    assert hook.confirm.urls == [SUBSCRIBE_URL]


def test_a_confirmation_that_cannot_be_fetched_is_503_so_sns_sends_it_again(hook: Hook):
    hook.confirm.fails = SnsError(f"{SUBSCRIBE_URL} answered HTTP 403", permanent=True)
    assert hook.post(envelope("SubscriptionConfirmation")).status_code == 503
    assert hook.confirm.urls == [SUBSCRIBE_URL]


def test_a_confirmation_for_another_topic_or_host_is_never_fetched(hook: Hook):
    elsewhere = SUBSCRIBE_URL.replace(
        "sns.eu-west-1.amazonaws.com", "sns.eu-west-1.amazonaws.com.evil.example"
    )
    assert hook.post(envelope("SubscriptionConfirmation", SubscribeURL=elsewhere)).status_code == 403
    assert hook.post(envelope("SubscriptionConfirmation", TopicArn=OTHER_TOPIC)).status_code == 403
    assert hook.confirm.urls == []


def test_without_auto_confirm_the_subscribe_url_is_logged_not_fetched(serve_hook):
    with serve_hook(DIGEST_SES_AUTO_CONFIRM="no") as hook, logged() as records:
        response = hook.post(envelope("SubscriptionConfirmation"))
        assert response.status_code == 200 and "DIGEST_SES_AUTO_CONFIRM is off" in response.text
        assert hook.confirm.urls == []
    assert any(SUBSCRIBE_URL in r.getMessage() and r.levelno == logging.WARNING for r in records)


def test_an_unsubscribe_confirmation_is_logged_and_answered(hook: Hook):
    with logged() as records:
        response = hook.post(envelope("UnsubscribeConfirmation"))
    assert response.status_code == 200 and hook.confirm.urls == []
    assert any(TOPIC in r.getMessage() for r in records)
