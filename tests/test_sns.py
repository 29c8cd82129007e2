"""Amazon SES feedback over SNS: real RSA signatures over the fields SNS signs, a certificate URL
check that only SNS's hosts pass, the replay window and topic allow-list, the default fetcher
against a real loopback server, and SES bounce/complaint notifications read into Reports.

The sample notifications are written here by hand, shaped like SES's (identity notifications
and event publishing); the signing key and certificate are made per test session."""

from __future__ import annotations

import base64
import copy
import json
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from conftest import http_server, scripted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.delivery.sns import (
    CertCache,
    SnsError,
    check_sns_url,
    fetch_url,
    reports_from_ses,
    string_to_sign,
    subscription_confirm_url,
    verify,
)
from digest.errors import DigestError, InputError

NOW = datetime(2026, 12, 4, 9, 30, 0, tzinfo=UTC)
TOPIC = "arn:aws:sns:eu-west-1:204518337921:digest-ses-feedback"
CERT_URL = (
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-5c2e8a41f07b9d36e1a4c8b2f6d03e57.pem"
)
SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2425a8a5873e3d5b1d7fc4e0b66c0f7e14c4a9d0e"
)


# --- keys, certificates and signed messages ----------------------------------------------------


def _cert(
    key: rsa.RSAPrivateKey,
    name: str = "sns.amazonaws.com",
    days: tuple[int, int] = (-30, 300),
    now: datetime = NOW,
) -> bytes:
    """A self-signed certificate for `key`, issued to `name`, valid `days` around `now`."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=days[0]))
        .not_valid_after(now + timedelta(days=days[1]))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pem(key: rsa.RSAPrivateKey) -> bytes:
    return _cert(key)


# The string SNS signs, spelled out here apart from the module's, so a wrong order there fails.
ORDER = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}
ORDER["UnsubscribeConfirmation"] = ORDER["SubscriptionConfirmation"]  # the same fields, signed alike


def sign(message: dict[str, Any], key: rsa.RSAPrivateKey, version: str = "2") -> dict[str, Any]:
    text = "".join(f"{k}\n{message[k]}\n" for k in ORDER[message["Type"]] if message.get(k) is not None)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(text.encode(), padding.PKCS1v15(), digest)
    return {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode()}


def envelope(kind: str = "Notification", **fields: Any) -> dict[str, Any]:
    """An unsigned SNS post of `kind`, as SNS shapes them."""
    message: dict[str, Any] = {
        "Type": kind,
        "MessageId": "0f4c2b7e-5d1a-5c3b-9e8f-7a6b5c4d3e2f",
        "TopicArn": TOPIC,
        "Timestamp": "2026-12-04T09:29:41.318Z",
        "SigningCertURL": CERT_URL,
    }
    if kind == "Notification":
        message |= {
            "Subject": "Amazon SES Email Event Notification",
            "Message": json.dumps(bounce()),
            "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"
            f"&SubscriptionArn={TOPIC}:9a1b7c3d-2e4f-4a6b-8c0d-1e2f3a4b5c6d",
        }
    else:
        verb = "subscribe" if kind == "SubscriptionConfirmation" else "unsubscribe"
        message |= {
            "Message": f"You have chosen to {verb} the topic {TOPIC}.\nTo confirm, visit the SubscribeURL.",
            "SubscribeURL": SUBSCRIBE_URL,
            "Token": "2336412f37fb687f5d51e6e2425a8a5873e3d5b1d7fc4e0b66c0f7e14c4a9d0e",
        }
    return message | fields


class Fetcher:
    """The injected fetch_cert: serves `pem` for CERT_URL and counts its calls."""

    def __init__(self, pem: bytes):
        self.pem = pem
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.pem


def check(message: dict[str, Any], pem: bytes, **kw: Any) -> Fetcher:
    fetcher = kw.pop("fetcher", None) or Fetcher(pem)
    options: dict[str, Any] = {"topics": {TOPIC}, "now": lambda: NOW, "cache": CertCache()} | kw
    verify(message, fetch_cert=fetcher, **options)
    return fetcher


# --- signatures --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("kind", ["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_a_message_signed_by_the_sns_certificate_verifies(key, pem, version: str, kind: str):
    fetcher = check(sign(envelope(kind), key, version), pem)
    assert fetcher.urls == [CERT_URL]


def test_a_notification_without_a_subject_or_with_a_null_one_verifies(key, pem):
    bare = envelope()
    del bare["Subject"]
    check(sign(bare, key), pem)
    check(sign(envelope(Subject=None), key), pem)


def test_the_string_to_sign_is_each_signed_field_as_key_and_value_lines_in_sns_order():
    message = envelope(Message="m", MessageId="id", Subject="s", Timestamp="t", TopicArn="arn", Token="x")
    assert (
        string_to_sign(message)
        == b"Message\nm\nMessageId\nid\nSubject\ns\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n"
    )
    confirm = envelope("SubscriptionConfirmation", Message="m", MessageId="id", Timestamp="t", TopicArn="arn")
    assert (
        string_to_sign(confirm)
        == (
            f"Message\nm\nMessageId\nid\nSubscribeURL\n{SUBSCRIBE_URL}\nTimestamp\nt\nToken\n{confirm['Token']}\n"
            "TopicArn\narn\nType\nSubscriptionConfirmation\n"
        ).encode()
    )


TAMPERED = [
    ("Notification", "Message", json.dumps({"notificationType": "Delivery"})),
    ("Notification", "MessageId", "0f4c2b7e-5d1a-5c3b-9e8f-000000000000"),
    ("Notification", "Subject", "Amazon SES Email Event Notification (2)"),
    ("Notification", "Timestamp", "2026-12-04T09:29:42.318Z"),
    ("Notification", "TopicArn", "arn:aws:sns:eu-west-1:204518337921:other-topic"),
    ("SubscriptionConfirmation", "Message", "You have chosen to subscribe."),
    ("SubscriptionConfirmation", "MessageId", "11111111-2222-3333-4444-555555555555"),
    ("SubscriptionConfirmation", "SubscribeURL", SUBSCRIBE_URL.replace("Token=2", "Token=3")),
    ("SubscriptionConfirmation", "Timestamp", "2026-12-04T09:29:40.000Z"),
    ("SubscriptionConfirmation", "Token", "2336412f37fb687f5d51e6e2425a8a58"),
    ("SubscriptionConfirmation", "TopicArn", "arn:aws:sns:eu-west-1:204518337921:other-topic"),
    ("SubscriptionConfirmation", "Type", "UnsubscribeConfirmation"),  # the same fields, another meaning
]


@pytest.mark.parametrize(("kind", "field", "value"), TAMPERED, ids=[f"{k}-{f}" for k, f, _ in TAMPERED])
def test_changing_any_signed_field_after_signing_fails_as_forged(key, pem, kind: str, field: str, value: str):
    message = sign(envelope(kind), key)
    message[field] = value
    with pytest.raises(SnsError, match="signature does not match") as caught:
        check(message, pem, topics=None)
    assert caught.value.forged


def test_a_subject_added_to_or_removed_from_a_signed_notification_fails(key, pem):
    bare = envelope()
    del bare["Subject"]
    added = sign(bare, key) | {"Subject": "injected"}
    removed = sign(envelope(), key)
    del removed["Subject"]
    for message in (added, removed):
        with pytest.raises(SnsError, match="signature does not match"):
            check(message, pem)


def test_the_signature_bytes_version_and_key_are_all_checked(key, pem):
    good = sign(envelope(), key, "2")
    raw = bytearray(base64.b64decode(good["Signature"]))
    raw[-1] ^= 1
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for message in (
        good | {"Signature": base64.b64encode(bytes(raw)).decode()},
        good | {"SignatureVersion": "1"},  # a SHA256 signature checked as SHA1
        sign(envelope(), stranger),
        good | {"Signature": "not base64!"},
    ):
        with pytest.raises(SnsError) as caught:
            check(message, pem)
        assert caught.value.forged


def test_fields_sns_does_not_sign_may_change(key, pem):
    message = sign(envelope(), key) | {"UnsubscribeURL": "https://example.org/", "MessageAttributes": {}}
    check(message, pem)


@pytest.mark.parametrize(
    "field",
    [
        "Type",
        "MessageId",
        "TopicArn",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
    ],
)
def test_a_post_missing_an_envelope_field_is_malformed_not_forged(key, pem, field: str):
    for broken in (None, 7):
        message = sign(envelope(), key)
        if broken is None:
            del message[field]
        else:
            message[field] = broken
        with pytest.raises(SnsError, match=f"no {field}") as caught:
            check(message, pem)
        assert not caught.value.forged and caught.value.permanent


@pytest.mark.parametrize("field", ["SubscribeURL", "Token"])
def test_a_confirmation_without_its_url_or_token_is_malformed(key, pem, field: str):
    message = sign(envelope("SubscriptionConfirmation"), key)
    del message[field]
    with pytest.raises(SnsError, match=f"no {field}"):
        check(message, pem)


@pytest.mark.parametrize("version", ["3", "", "2 ", 2])
def test_a_signature_version_other_than_1_or_2_is_refused(key, pem, version: object):
    message = sign(envelope(), key) | {"SignatureVersion": version}
    with pytest.raises(SnsError, match="SignatureVersion"):
        check(message, pem)


def test_an_unknown_type_or_a_post_that_is_no_object_is_malformed(key, pem):
    with pytest.raises(SnsError, match="Type"):
        check(sign(envelope(), key) | {"Type": "Hello"}, pem)
    with pytest.raises(SnsError, match="not a JSON object"):
        check([1, 2], pem)  # type: ignore[arg-type]


def test_the_error_is_an_input_error_under_the_one_root():
    assert issubclass(SnsError, InputError) and issubclass(SnsError, DigestError)


# --- the certificate URL: the security core ----------------------------------------------------

ACCEPTED_URLS = [
    CERT_URL,
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
    "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
]
REFUSED_URLS = [
    "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "ftp://sns.us-east-1.amazonaws.com/x.pem",
    "//sns.us-east-1.amazonaws.com/x.pem",
    "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
    "https://sns.us-east-1.amazonaws.com.cn.evil.com/x.pem",
    "https://sns-us-east-1.amazonaws.com.example.net/x.pem",
    "https://sns.us-east-1.amazonaws.com@evil.com/x.pem",
    "https://user:pw@sns.us-east-1.amazonaws.com/x.pem",
    "https://sns.us-east-1.amazonaws.com\\@evil.com/x.pem",
    "https://evil.com#@sns.us-east-1.amazonaws.com/x.pem",
    "https://evil.com/sns.us-east-1.amazonaws.com/x.pem",
    "https://evil.com/?h=sns.us-east-1.amazonaws.com&x.pem",
    "https://sns.us-east-1.amazonaws.com:8443/x.pem",
    "https://sns.us-east-1.amazonaws.com/x.pem?.pem",
    "https://sns.us-east-1.amazonaws.com/x.txt",
    "https://sns.us-east-1.amazonaws.com/x.txt#.pem",
    "https://sns.us-east-1.amazonaws.com/x.pem\n",
    "https://sns.us-east-1.amazonaws.com\n/x.pem",
    "https://sns.us-east-1.amazonaws.com /x.pem",
    "https://sns.ab.amazonaws.com/x.pem",  # the SDKs' pattern wants a region of 3 or more
    "https://sns.amazonaws.com/x.pem",
    "https://s3.amazonaws.com/bucket/x.pem",
    "https://sns.us-east-1.amazonaws.co/x.pem",
    "https://sns.us-east-1.amazonaws.com.\u0435vil/x.pem",
    "https://[::1]/x.pem",
    "https://sns.us-east-1.amazonaws.com:abc/x.pem",
    "",
    None,
]


@pytest.mark.parametrize("url", ACCEPTED_URLS)
def test_https_on_an_sns_host_with_a_pem_path_is_accepted(url: str):
    assert check_sns_url(url, pem=True) == url


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_certificate_url_off_sns_hosts_is_refused_and_never_fetched(key, pem, url: object):
    with pytest.raises(SnsError) as caught:
        check_sns_url(url, pem=True)
    assert caught.value.forged
    fetcher = Fetcher(pem)
    message = sign(envelope(SigningCertURL=url), key)
    with pytest.raises(SnsError):
        check(message, pem, fetcher=fetcher)
    assert fetcher.urls == []


def test_the_certificate_must_name_sns_be_valid_now_and_hold_an_rsa_key(key):
    message = sign(envelope(), key)
    for pem, why in (
        (_cert(key, name="evil.example.com"), "not issued to Amazon SNS"),
        (_cert(key, name="sns.amazonaws.com.evil.com"), "not issued to Amazon SNS"),
        (_cert(key, days=(-400, -1)), "expired or not yet valid"),
        (_cert(key, days=(1, 400)), "expired or not yet valid"),
        (b"<html>not a certificate</html>", "did not give a PEM certificate"),
    ):
        with pytest.raises(SnsError, match=why):
            check(message, pem)
    check(message, _cert(key, name="sns-signing.ap-east-1.amazonaws.com"))


# --- replays, topics, the certificate cache ----------------------------------------------------


@pytest.mark.parametrize(
    ("age", "fresh"),
    [(timedelta(0), True), (timedelta(minutes=59), True), (timedelta(hours=2), False),
     (timedelta(days=30), False), (-timedelta(minutes=2), True), (-timedelta(hours=1), False)],
)  # fmt: skip
def test_a_timestamp_outside_the_replay_window_is_refused(key, pem, age: timedelta, fresh: bool):
    stamp = (NOW - age).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message = sign(envelope(Timestamp=stamp), key)
    if fresh:
        check(message, pem)
        return
    with pytest.raises(SnsError, match="replay") as caught:
        check(message, pem)
    assert caught.value.forged


def test_the_clock_and_the_window_are_the_callers(key, pem):
    message = sign(envelope(), key)
    later = NOW + timedelta(minutes=10)
    check(message, pem, now=lambda: later)
    with pytest.raises(SnsError, match="replay"):
        check(message, pem, now=lambda: later, max_age=timedelta(minutes=5))


def test_a_timestamp_that_is_no_time_is_malformed(key, pem):
    with pytest.raises(SnsError, match="ISO 8601") as caught:
        check(sign(envelope(Timestamp="yesterday"), key), pem)
    assert not caught.value.forged


def test_a_topic_outside_the_allowed_set_is_refused_before_any_fetch(key, pem):
    message = sign(envelope(TopicArn="arn:aws:sns:eu-west-1:999999999999:someone-elses"), key)
    fetcher = Fetcher(pem)
    with pytest.raises(SnsError, match="DIGEST_SES_TOPIC_ARNS") as caught:
        check(message, pem, fetcher=fetcher)
    assert caught.value.forged and fetcher.urls == []
    check(message, pem, topics=None)  # no allow-list, chosen by the caller: any topic


def test_the_certificate_is_fetched_once_per_url_and_the_cache_is_bounded(key, pem):
    cache, fetcher = CertCache(size=2), Fetcher(pem)
    message = sign(envelope(), key)
    for _ in range(3):
        check(message, pem, fetcher=fetcher, cache=cache)
    assert fetcher.urls == [CERT_URL]
    for n in range(3):
        other = CERT_URL.replace(".pem", f"-{n}.pem")
        check(sign(envelope(SigningCertURL=other), key), pem, fetcher=fetcher, cache=cache)
    assert len(cache) == 2
    check(message, pem, fetcher=fetcher, cache=cache)  # evicted: fetched again
    assert fetcher.urls.count(CERT_URL) == 2


def test_a_failed_fetch_is_passed_on_and_not_cached(key, pem):
    cache, calls = CertCache(), []

    def flaky(url: str) -> bytes:
        calls.append(url)
        if len(calls) == 1:
            raise SnsError("timed out", permanent=False)
        return pem

    message = sign(envelope(), key)
    with pytest.raises(SnsError) as caught:
        check(message, pem, fetcher=flaky, cache=cache)
    assert not caught.value.permanent and not caught.value.forged
    check(message, pem, fetcher=flaky, cache=cache)
    assert len(calls) == 2


# --- the default fetcher, against a real server on loopback ------------------------------------


def _stall(handler: BaseHTTPRequestHandler) -> None:
    time.sleep(1.5)


def test_the_default_fetcher_reads_a_certificate_and_turns_failures_into_sns_errors(pem):
    handler = scripted(
        {
            "/cert.pem": [(200, {}, pem)],
            "/big.pem": [(200, {}, b"x" * 70_000)],
            "/broken.pem": [(503, {}, b"later")],
            "/moved.pem": [(302, {"Location": "/cert.pem"}, b"")],
            "/slow.pem": [_stall],
        }
    )
    with http_server(handler) as base:
        assert fetch_url(f"{base}/cert.pem") == pem
        outcomes = {}
        for path in ("missing.pem", "big.pem", "broken.pem", "moved.pem", "slow.pem"):
            with pytest.raises(SnsError) as caught:
                fetch_url(f"{base}/{path}", timeout=0.5)
            outcomes[path] = caught.value.permanent
    assert outcomes == {
        "missing.pem": True,  # 404
        "big.pem": True,  # over the size cap
        "broken.pem": False,  # 5xx: SNS should retry
        "moved.pem": True,  # a redirect is not followed
        "slow.pem": False,  # timeout
    }
    assert [path for path, _ in handler.seen].count("/cert.pem") == 1  # the redirect was not followed


def test_the_default_fetcher_on_a_closed_port_may_pass():
    with http_server(scripted()) as base:
        pass
    with pytest.raises(SnsError) as caught:
        fetch_url(f"{base}/cert.pem", timeout=0.5)
    assert not caught.value.permanent


# --- subscription confirmation -----------------------------------------------------------------


def test_a_subscription_confirmation_gives_its_subscribe_url():
    assert subscription_confirm_url(envelope("SubscriptionConfirmation")) == SUBSCRIBE_URL
    assert subscription_confirm_url(envelope("UnsubscribeConfirmation")) is None
    assert subscription_confirm_url(envelope()) is None


@pytest.mark.parametrize(
    "url",
    [
        SUBSCRIBE_URL.replace("https://", "http://"),
        SUBSCRIBE_URL.replace("sns.eu-west-1.amazonaws.com", "sns.eu-west-1.amazonaws.com.evil.com"),
        SUBSCRIBE_URL.replace("https://", "https://sns.eu-west-1.amazonaws.com@"),
        SUBSCRIBE_URL.replace("Action=ConfirmSubscription", "Action=Unsubscribe"),
        SUBSCRIBE_URL.replace(TOPIC, TOPIC + "-other"),
        SUBSCRIBE_URL + f"&TopicArn={TOPIC}",
        "https://sns.eu-west-1.amazonaws.com/",
    ],
)
def test_a_subscribe_url_that_is_not_a_confirmation_on_sns_for_this_topic_is_refused(url: str):
    with pytest.raises(SnsError) as caught:
        subscription_confirm_url(envelope("SubscriptionConfirmation", SubscribeURL=url))
    assert caught.value.forged


# --- SES notifications -------------------------------------------------------------------------

DIGEST_ID = "<176485.2026-12-04.ada@digest.example.org>"


def mail(**over: Any) -> dict[str, Any]:
    """SES's `mail` object for one of our digests (SES's own messageId differs from ours)."""
    return {
        "timestamp": "2026-12-04T09:28:57.004Z",
        "source": "bounces+ada.x7Kq2@digest.example.org",
        "sourceArn": "arn:aws:ses:eu-west-1:204518337921:identity/digest.example.org",
        "sendingAccountId": "204518337921",
        "messageId": "0102019394d1a7f2-3e5c1b8a-77a0-4c2e-9d3b-5f1e2a7c9b60-000000",
        "destination": ["ada@uni.example.edu"],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": "Paper digest <digest@digest.example.org>"},
            {"name": "To", "value": "Ada Lovelace <ada@uni.example.edu>"},
            {"name": "Subject", "value": "Your papers for 4 December"},
            {"name": "Message-ID", "value": DIGEST_ID},
        ],
        "commonHeaders": {
            "from": ["Paper digest <digest@digest.example.org>"],
            "to": ["Ada Lovelace <ada@uni.example.edu>"],
            "messageId": DIGEST_ID,
            "subject": "Your papers for 4 December",
        },
    } | over


def bounce(bounce_type: str = "Permanent", **over: Any) -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "feedbackId": "0102019394d1a9c4-6a1f2e3d-1b2c-4d5e-8f90-a1b2c3d4e5f6-000000",
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": "ada@uni.example.edu",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 <ada@uni.example.edu>:\r\n    "
                    "Recipient address rejected: "
                    "User unknown in virtual mailbox table",
                }
            ],
            "timestamp": "2026-12-04T09:29:40.512Z",
            "remoteMtaIp": "192.0.2.25",
            "reportingMTA": "dsn; b224-13.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": mail(),
    } | over


def complaint(feedback: str | None = "abuse") -> dict[str, Any]:
    body: dict[str, Any] = {
        "notificationType": "Complaint",
        "complaint": {
            "feedbackId": "0102019394e0c0de-9b8a7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4-000000",
            "complaintSubType": None,
            "complainedRecipients": [{"emailAddress": "ada@uni.example.edu"}],
            "timestamp": "2026-12-04T11:02:13.000Z",
            "userAgent": "Mailbox-Feedback/1.3",
            "arrivalDate": "2026-12-04T11:01:58.000Z",
        },
        "mail": mail(),
    }
    if feedback is not None:
        body["complaint"]["complaintFeedbackType"] = feedback
    return body


def notification(body: dict[str, Any] | str) -> dict[str, Any]:
    return envelope(Message=body if isinstance(body, str) else json.dumps(body))


def test_a_permanent_bounce_is_a_hard_report_tied_to_our_message_id_and_verp_token():
    [report] = reports_from_ses(notification(bounce()))
    assert report.kind == "hard" and report.source == "ses"
    assert report.recipient == "ada@uni.example.edu" and report.status == "5.1.1"
    assert report.diagnostic == (
        "smtp; 550 5.1.1 <ada@uni.example.edu>: "
        "Recipient address rejected: User unknown in virtual mailbox table"
    )
    assert report.message_id == DIGEST_ID  # ours, not SES's mail.messageId
    assert report.original_to == "ada@uni.example.edu"
    assert report.verp_token == "ada.x7Kq2"
    assert report.arrived == datetime(2026, 12, 4, 9, 29, 40, 512000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("bounce_type", "kind"), [("Permanent", "hard"), ("Transient", "soft"), ("Undetermined", "soft")]
)
def test_each_bounce_type_maps_to_a_kind(bounce_type: str, kind: str):
    assert [r.kind for r in reports_from_ses(notification(bounce(bounce_type)))] == [kind]


def test_every_bounced_recipient_is_a_report_and_a_missing_diagnostic_gets_the_summary():
    body = bounce("Transient")
    body["bounce"]["bounceSubType"] = "MailboxFull"
    body["bounce"]["bouncedRecipients"].append(
        {"emailAddress": "grace@navy.example.mil", "status": "nonsense"}
    )
    first, second = reports_from_ses(notification(body))
    assert second.recipient == "grace@navy.example.mil" and second.status is None
    assert second.diagnostic == "SES Transient bounce (MailboxFull)"
    assert first.message_id == second.message_id == DIGEST_ID


def test_a_long_diagnostic_is_one_line_of_at_most_300_characters():
    body = bounce()
    body["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = "smtp; 550\n\t" + "blocked \x1b[31m" * 100
    [report] = reports_from_ses(notification(body))
    assert len(report.diagnostic) <= 300 and "\n" not in report.diagnostic and "\x1b" not in report.diagnostic


def test_event_publishing_names_the_type_event_type():
    body = bounce()
    body["eventType"] = body.pop("notificationType")
    assert [r.kind for r in reports_from_ses(notification(body))] == ["hard"]


def test_a_delivery_delay_event_is_soft():
    body = {
        "eventType": "DeliveryDelay",
        "mail": mail(),
        "deliveryDelay": {
            "timestamp": "2026-12-04T10:15:00.000Z",
            "delayType": "MailboxFull",
            "expirationTime": "2026-12-05T09:28:57.004Z",
            "delayedRecipients": [
                {"emailAddress": "ada@uni.example.edu", "status": "4.2.2", "diagnosticCode": ""}
            ],
        },
    }
    [report] = reports_from_ses(notification(body))
    assert (report.kind, report.status, report.diagnostic) == (
        "soft",
        "4.2.2",
        "SES delivery delayed (MailboxFull)",
    )


@pytest.mark.parametrize("feedback", ["abuse", None, "fraud", "other"])
def test_a_complaint_is_a_complaint_report(feedback: str | None):
    [report] = reports_from_ses(notification(complaint(feedback)))
    assert report.kind == "complaint" and report.recipient == "ada@uni.example.edu" and report.status is None
    assert report.message_id == DIGEST_ID and report.verp_token == "ada.x7Kq2"
    assert report.arrived == datetime(2026, 12, 4, 11, 2, 13, tzinfo=UTC)
    assert "Mailbox-Feedback/1.3" in report.diagnostic


@pytest.mark.parametrize("feedback", ["not-spam", "auth-failure", "virus"])
def test_feedback_that_is_not_a_readers_complaint_gives_no_report(feedback: str):
    assert reports_from_ses(notification(complaint(feedback))) == []


def test_delivery_and_other_events_give_no_report():
    for kind in ("Delivery", "Send", "Open", "Click", "SomethingNew"):
        body = {"notificationType": kind, "mail": mail(), "delivery": {"recipients": ["ada@uni.example.edu"]}}
        assert reports_from_ses(notification(body)) == []


def test_the_message_id_falls_back_to_the_headers_and_never_to_ses_own_id():
    common = {"to": ["ada@uni.example.edu"]}
    [report] = reports_from_ses(notification(bounce(mail=mail(commonHeaders=common))))
    assert report.message_id == DIGEST_ID
    [bare] = reports_from_ses(notification(bounce(mail=mail(commonHeaders={}, headers=[]))))
    assert bare.message_id is None and bare.original_to is None
    unbracketed = mail(commonHeaders={"messageId": "abc@digest.example.org"})
    assert (
        reports_from_ses(notification(bounce(mail=unbracketed)))[0].message_id == "<abc@digest.example.org>"
    )


@pytest.mark.parametrize(
    ("source", "token"),
    [("bounces+tok123@digest.example.org", "tok123"), ("Bounces+a+b@x.example", "a+b"),
     ("digest@digest.example.org", None), ("bounces@digest.example.org", None),
     ("bounces+@digest.example.org", None), ("notbounces+tok@x.example", None), (None, None)],
)  # fmt: skip
def test_the_verp_token_comes_from_a_bounces_plus_token_source(source: str | None, token: str | None):
    [report] = reports_from_ses(notification(bounce(mail=mail(source=source))))
    assert report.verp_token == token


MALFORMED: list[tuple[str, Any]] = [
    ("not JSON", "Successfully validated SNS topic for Amazon SES event publishing."),
    ("not a JSON object", "[1, 2]"),
    ("no notificationType", {"mail": {}}),
    ("no 'mail' object", {"notificationType": "Bounce", "bounce": bounce()["bounce"]}),
    ("no 'bounce' object", {"notificationType": "Bounce", "mail": mail()}),
    ("bounceType", bounce("Sideways")),
    ("bouncedRecipients", bounce() | {"bounce": bounce()["bounce"] | {"bouncedRecipients": "ada"}}),
    ("bouncedRecipients", bounce() | {"bounce": bounce()["bounce"] | {"bouncedRecipients": []}}),
    (
        "emailAddress",
        bounce() | {"bounce": bounce()["bounce"] | {"bouncedRecipients": [{"status": "5.1.1"}]}},
    ),
    ("complainedRecipients", complaint() | {"complaint": {"complaintFeedbackType": "abuse"}}),
]


@pytest.mark.parametrize(("why", "body"), MALFORMED, ids=[w for w, _ in MALFORMED])
def test_malformed_ses_content_raises_an_input_error_with_a_reason(why: str, body: Any):
    with pytest.raises(SnsError, match=why) as caught:
        reports_from_ses(notification(body))
    assert not caught.value.forged


def test_a_notification_without_a_message_text_is_malformed():
    with pytest.raises(SnsError, match="no Message"):
        reports_from_ses(envelope(Message=None))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
_keys = st.sampled_from(["notificationType", "eventType", "bounce", "complaint", "mail", "deliveryDelay"])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _json | st.sampled_from(["Bounce", "Complaint", "DeliveryDelay"])), st.data())
def test_any_json_gives_reports_or_an_sns_error_never_another_exception(body: dict[str, Any], data: Any):
    base = copy.deepcopy(data.draw(st.sampled_from([bounce(), complaint(), {}])))
    try:
        reports = reports_from_ses(notification(base | body))
    except SnsError:
        return
    assert isinstance(reports, list)
