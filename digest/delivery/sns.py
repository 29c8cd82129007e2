"""Amazon SES bounces and complaints, as Amazon SNS posts them to ``digest serve``: proved, then read.

    POST body (JSON) -> verify(): every field there, a certificate URL on an SNS host (https,
        .pem), a signature by that certificate's key over the fields SNS signs, a Timestamp
        under an hour old, a TopicArn of ours
      Type "SubscriptionConfirmation" -> subscription_confirm_url() -> the URL to GET (or to log)
      Type "Notification"             -> reports_from_ses() -> [Report, ...]
      Type "UnsubscribeConfirmation"  -> nothing to do but log it

Why each check: anyone can POST to the endpoint, so an unsigned or badly signed message proves
nothing; the signature proves only that *SNS* sent it, and any AWS account can make SNS send
to any URL, so the TopicArn allow-list is what makes a notification *ours* (without one, a
stranger's topic could "bounce" every reader off the list); the Timestamp bounds replays to
the hour SNS itself may spend retrying. The certificate is trusted because it came over https
from an SNS host (as AWS's own SDK validators do: the host pattern, https, a path ending .pem),
so that check is the core and is never relaxed for tests; tests inject the fetcher instead.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import re
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..errors import InputError
from ..text import one_line, quoted
from .reports import Kind, Report


class SnsError(InputError):
    """An SNS post we will not act on. ``forged``: nothing proves SNS sent it for one of our
    topics (bad signature, a certificate off SNS's hosts, too old, another topic): answer 403.
    Otherwise it is malformed (400), or, when not ``permanent``, the signing certificate could not
    be fetched this time (503: SNS retries 5xx and never 4xx)."""

    def __init__(self, message: str, *, forged: bool = False, permanent: bool = True):
        self.forged = forged
        super().__init__(message, permanent=permanent)


# The pattern of AWS's SDK validators (PHP, .NET, sns-validator for Node): sns.<region>.amazonaws.com
# or .amazonaws.com.cn. Matched with fullmatch: "$" would also accept a trailing newline.
SNS_HOST = re.compile(r"sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?")
# The name the signing certificate itself carries (AWS's Java SDK checks it): sns.amazonaws.com,
# sns-signing.<region>.amazonaws.com, sns-cn-north-1.amazonaws.com.cn ... A second line of defence.
CERT_NAME = re.compile(r"sns[a-z0-9.-]*\.amazonaws\.com(\.cn)?")
# SNS gives up retrying an HTTP(S) endpoint after 3600 s; five more minutes for clock skew.
MAX_AGE = timedelta(hours=1, minutes=5)
FUTURE_SKEW = timedelta(minutes=5)
CERT_MAX_BYTES = 64 * 1024  # a PEM certificate is a few KiB; more is not a certificate
FETCH_TIMEOUT = 5.0  # seconds; SNS itself waits 15 s for our answer

HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
# Every post has these; the confirmations add SubscribeURL and Token (string_to_sign asks for them).
ENVELOPE = ("Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion", "Signature",
            "SigningCertURL")  # fmt: skip
# The fields SNS signs, in the order it signs them (each as "Key\nValue\n"); Subject only when present.
_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNED: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION,
    "UnsubscribeConfirmation": _CONFIRMATION,
}
OPTIONAL = frozenset({"Subject"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


def check_sns_url(url: object, *, pem: bool, host_pattern: re.Pattern[str] = SNS_HOST) -> str:
    """`url` if it is https on an SNS host with nothing hidden in it (no user@, no port, no
    whitespace or controls); for a certificate (`pem`) the path ends .pem and there is no query."""
    if not isinstance(url, str) or not url.isascii() or not url.isprintable() or " " in url or "\\" in url:
        raise SnsError("the SNS URL is not a plain ASCII URL", forged=True)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SnsError(f"the SNS URL does not parse: {exc}", forged=True) from exc
    if parts.scheme != "https":
        raise SnsError("the SNS URL is not https", forged=True)
    host = parts.hostname or ""
    if "@" in parts.netloc or port is not None or not host_pattern.fullmatch(host):
        raise SnsError(f"the SNS URL's host {quoted(host)} is not an Amazon SNS host", forged=True)
    if pem and (not parts.path.endswith(".pem") or parts.query or parts.fragment):
        raise SnsError("the signing certificate URL is not a .pem file", forged=True)
    return url


def _field(message: Mapping[str, Any], key: str) -> str:
    value = message.get(key)
    if not isinstance(value, str):
        raise SnsError(f"the SNS message has no {key} (or it is not a string)")
    return value


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signed: each signed field present, as "Key\\nValue\\n", in SNS's order."""
    kind = _field(message, "Type")
    if kind not in SIGNED:
        raise SnsError(f"the SNS message Type {quoted(kind)} is not one digest knows")
    lines = []
    for key in SIGNED[kind]:
        if key in OPTIONAL and message.get(key) is None:  # as AWS's SDKs: a null Subject is no Subject
            continue
        lines.append(f"{key}\n{_field(message, key)}\n")
    return "".join(lines).encode("utf-8")


class CertCache:
    """Certificates by URL, the newest `size` kept: SNS signs with one certificate for months,
    so one fetch serves every post. Failures are not kept (the next post asks again)."""

    def __init__(self, size: int = 16):
        self.size = size
        self._certs: OrderedDict[str, x509.Certificate] = OrderedDict()
        self._lock = threading.Lock()  # Starlette runs sync work in a thread pool

    def get(self, url: str, fetch_cert: Callable[[str], bytes]) -> x509.Certificate:
        with self._lock:
            if url in self._certs:
                self._certs.move_to_end(url)
                return self._certs[url]
        cert = _load_cert(fetch_cert(url))  # outside the lock: a slow fetch blocks no other URL
        with self._lock:
            self._certs[url] = cert
            while len(self._certs) > self.size:
                self._certs.popitem(last=False)
        return cert

    def __len__(self) -> int:
        return len(self._certs)


def _load_cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise SnsError("the signing certificate URL did not give a PEM certificate", forged=True) from exc


def _names(cert: x509.Certificate) -> list[str]:
    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        pass
    return names


def _check_cert(cert: x509.Certificate, now: datetime) -> rsa.RSAPublicKey:
    """The certificate's RSA key, if the certificate names SNS and is valid now."""
    if not any(CERT_NAME.fullmatch(name.lower()) for name in _names(cert)):
        raise SnsError("the signing certificate is not issued to Amazon SNS", forged=True)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SnsError("the signing certificate is expired or not yet valid", forged=True)
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsError("the signing certificate's key is not RSA", forged=True)
    return key


def _parse_time(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


_CACHE = CertCache()


def verify(
    message: Mapping[str, Any],
    *,
    topics: Collection[str] | None,
    fetch_cert: Callable[[str], bytes],
    cert_host_pattern: re.Pattern[str] = SNS_HOST,
    now: Callable[[], datetime] = _utcnow,
    max_age: timedelta = MAX_AGE,
    cache: CertCache = _CACHE,
) -> None:
    """Raise SnsError unless `message` (the parsed POST body) was signed by SNS for one of
    `topics`, within `max_age`. `topics` has no default: None (any topic) must be a choice, since
    any AWS account can point SNS at us. The cheap checks run first, so junk costs no fetch."""
    if not isinstance(message, Mapping):
        raise SnsError("the SNS message is not a JSON object")
    for key in ENVELOPE:
        _field(message, key)
    signed = string_to_sign(message)
    version = message["SignatureVersion"]
    if version not in HASHES:
        raise SnsError(f"SignatureVersion {quoted(version)} is not 1 (SHA1withRSA) or 2 (SHA256withRSA)")
    url = check_sns_url(message["SigningCertURL"], pem=True, host_pattern=cert_host_pattern)
    topic, timestamp = quoted(message["TopicArn"]), quoted(message["Timestamp"])
    if topics is not None and message["TopicArn"] not in topics:
        raise SnsError(f"topic {topic} is not one of DIGEST_SES_TOPIC_ARNS", forged=True)
    stamp, current = _parse_time(message["Timestamp"]), now()
    if stamp is None:
        raise SnsError(f"the SNS Timestamp {timestamp} is not an ISO 8601 time")
    if stamp < current - max_age or stamp > current + FUTURE_SKEW:
        raise SnsError(f"the SNS Timestamp {timestamp} is out of date (a replay?)", forged=True)
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnsError("the SNS Signature is not base64", forged=True) from exc
    key = _check_cert(cache.get(url, fetch_cert), current)
    try:
        key.verify(signature, signed, padding.PKCS1v15(), HASHES[version]())
    except InvalidSignature as exc:
        raise SnsError("the SNS signature does not match the message", forged=True) from exc


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: the URL we checked must be the URL we read."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def fetch_url(url: str, *, timeout: float = FETCH_TIMEOUT, max_bytes: int = CERT_MAX_BYTES) -> bytes:
    """GET `url` (already checked by the caller), at most `max_bytes`, no redirects. A 4xx,
    3xx or an oversized body is permanent; a timeout, refused connection or 5xx may pass."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            body: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise SnsError(f"{url} answered HTTP {exc.code}", permanent=exc.code < 500) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise SnsError(f"{url} could not be read: {exc}", permanent=False) from exc
    if len(body) > max_bytes:
        raise SnsError(f"{url} sent more than {max_bytes} bytes")
    return body


def fetch_pem(url: str) -> bytes:
    """The default `fetch_cert`: the certificate's PEM bytes, with a short timeout and a size cap."""
    return fetch_url(url)


def subscription_confirm_url(
    message: Mapping[str, Any], *, host_pattern: re.Pattern[str] = SNS_HOST
) -> str | None:
    """For a verified SubscriptionConfirmation, the SubscribeURL to GET; None for any other Type.
    The URL must be an SNS ConfirmSubscription call for the message's own topic, so confirming
    can never be made to call another action or another host."""
    if message.get("Type") != "SubscriptionConfirmation":
        return None
    url = check_sns_url(message.get("SubscribeURL"), pem=False, host_pattern=host_pattern)
    query = parse_qs(urlsplit(url).query)
    if query.get("Action") != ["ConfirmSubscription"] or query.get("TopicArn") != [message.get("TopicArn")]:
        raise SnsError("the SubscribeURL is not a ConfirmSubscription for this topic", forged=True)
    return url


# -- SES notifications ---------------------------------------------------------------------------

# Undetermined is soft: SES could not tell why the mail came back, and a hard bounce takes a
# reader off the list for good; soft ones only count, so a dead address still ends up removed.
BOUNCE_KINDS: dict[str, Kind] = {"Permanent": "hard", "Transient": "soft", "Undetermined": "soft"}
# Feedback types that are a reader's complaint. A report without a type (most mailbox providers
# send none) is one too. "not-spam" is the reader taking a complaint back; "auth-failure" and
# "virus" are a provider's findings about our sending, for the operator's log, not the reader.
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "other"})
STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
DIAGNOSTIC_CHARS = 300


def _obj(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if not isinstance(value, Mapping):
        raise SnsError(f"the SES notification has no {key!r} object")
    return value


def _items(parent: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = parent.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
        raise SnsError(f"the SES notification has no {key!r} list of objects")
    return value


def _text(parent: Mapping[str, Any], key: str) -> str | None:
    value = parent.get(key)
    return (value.strip() or None) if isinstance(value, str) else None


def _address(value: object) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, str):
        return None
    return parseaddr(value)[1] or None


def _diagnostic(text: str) -> str:
    return one_line(text)[:DIAGNOSTIC_CHARS]


class _Mail:
    """What the notification's `mail` object says of our digest: shared by every recipient."""

    def __init__(self, mail: Mapping[str, Any]):
        common = mail.get("commonHeaders")
        common = common if isinstance(common, Mapping) else {}
        headers = {}
        listed = mail.get("headers")
        for header in listed if isinstance(listed, list) else []:
            if isinstance(header, Mapping) and isinstance(header.get("name"), str):
                headers.setdefault(header["name"].lower(), header.get("value"))
        # commonHeaders.messageId is our Message-ID header; mail.messageId is SES's own id, which
        # no ledger of ours knows (kept as ses_id for logs).
        mid = _text(common, "messageId") or _text(headers, "message-id")
        self.message_id = mid if mid is None or mid.startswith("<") else f"<{mid}>"
        self.ses_id = _text(mail, "messageId")
        self.original_to = _address(common.get("to")) or _address(headers.get("to"))
        source = _address(mail.get("source")) or ""
        local, _, domain = source.rpartition("@")
        prefix, plus, token = local.partition("+")
        self.verp_token = token if plus and domain and prefix.lower() == "bounces" and token else None


def _recipient(entry: Mapping[str, Any]) -> str:
    address = _text(entry, "emailAddress")
    if address is None:
        raise SnsError("an SES recipient entry has no emailAddress")
    return parseaddr(address)[1] or address


def _report(
    kind: Kind, entry: Mapping[str, Any], mail: _Mail, summary: str, arrived: datetime | None
) -> Report:
    """One recipient's report: its status when it is an enhanced code, the remote server's words
    (or the notification's summary when SES gives none)."""
    status = _text(entry, "status")
    return Report(
        kind=kind,
        recipient=_recipient(entry),
        status=status if status and STATUS.fullmatch(status) else None,
        diagnostic=_diagnostic(_text(entry, "diagnosticCode") or summary),
        message_id=mail.message_id,
        original_to=mail.original_to,
        verp_token=mail.verp_token,
        source="ses",
        arrived=arrived,
    )


def _bounces(body: Mapping[str, Any], mail: _Mail) -> list[Report]:
    bounce = _obj(body, "bounce")
    bounce_type = _text(bounce, "bounceType") or ""
    if bounce_type not in BOUNCE_KINDS:
        raise SnsError(f"the SES bounceType {quoted(bounce_type)} is not one SES documents")
    summary = f"SES {bounce_type} bounce ({_text(bounce, 'bounceSubType') or 'no subtype'})"
    arrived = _parse_time(_text(bounce, "timestamp") or "")
    kind = BOUNCE_KINDS[bounce_type]
    return [_report(kind, entry, mail, summary, arrived) for entry in _items(bounce, "bouncedRecipients")]


def _delays(body: Mapping[str, Any], mail: _Mail) -> list[Report]:
    """A DeliveryDelay event is soft, as a DSN with Action: delayed is (reports.py)."""
    delay = _obj(body, "deliveryDelay")
    summary = f"SES delivery delayed ({_text(delay, 'delayType') or 'no reason given'})"
    arrived = _parse_time(_text(delay, "timestamp") or "")
    return [_report("soft", entry, mail, summary, arrived) for entry in _items(delay, "delayedRecipients")]


def _complaints(body: Mapping[str, Any], mail: _Mail) -> list[Report]:
    complaint = _obj(body, "complaint")
    recipients = _items(complaint, "complainedRecipients")
    feedback = _text(complaint, "complaintFeedbackType")
    if feedback is not None and feedback.lower() not in COMPLAINT_TYPES:
        return []
    agent = _text(complaint, "userAgent")
    summary = f"complaint ({feedback or 'no feedback type'})" + (f" via {agent}" if agent else "")
    arrived = _parse_time(_text(complaint, "timestamp") or "")
    return [_report("complaint", entry, mail, summary, arrived) for entry in recipients]


READERS: dict[str, Callable[[Mapping[str, Any], _Mail], list[Report]]] = {
    "Bounce": _bounces,
    "Complaint": _complaints,
    "DeliveryDelay": _delays,
}


def reports_from_ses(message: Mapping[str, Any]) -> list[Report]:
    """The bounces and complaints in a verified SNS Notification carrying an SES notification
    (identity notifications name it `notificationType`, event publishing `eventType`). Events
    about no address (Delivery, Open ...) and types SES adds later give []: nothing to act on."""
    raw = message.get("Message")
    if not isinstance(raw, str):
        raise SnsError("the SNS message has no Message text")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise SnsError(f"the SNS Message is not JSON: {exc}") from exc
    if not isinstance(body, Mapping):
        raise SnsError("the SNS Message is not a JSON object")
    kind = _text(body, "notificationType") or _text(body, "eventType")
    if kind is None:
        raise SnsError("the SES notification has no notificationType or eventType")
    reader = READERS.get(kind)
    if reader is None:
        return []
    return reader(body, _Mail(_obj(body, "mail")))


__all__ = [
    "CertCache",
    "SnsError",
    "check_sns_url",
    "fetch_pem",
    "fetch_url",
    "reports_from_ses",
    "string_to_sign",
    "subscription_confirm_url",
    "verify",
]
