"""The message (MIME, headers) and the two mailers: SMTP, and the outbox (the embedded
default, shipped beside the real one as httpx ships MockTransport)."""

from __future__ import annotations

import contextlib
import email.policy
import hashlib
import hmac
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from .config import Settings
from .errors import ConfigError, SendError
from .models import Digest, Subscriber

SMTP_POLICY = email.policy.SMTP  # CRLF line ends, non-ASCII headers as encoded words


def _one_line(text: str) -> str:
    """Display names come from a hand-edited file: no CR/LF may reach a header."""
    return " ".join(text.split())


def sender_address(settings: Settings) -> Address:
    name, addr = parseaddr(settings.sender)
    if "@" not in addr:
        raise ConfigError(f"DIGEST_FROM={settings.sender!r} has no e-mail address")
    user, domain = addr.rsplit("@", 1)
    return Address(display_name=_one_line(name), username=user, domain=domain)


def unsubscribe_token(subscriber_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), subscriber_id.encode(), hashlib.sha256).hexdigest()[:32]


def unsubscribe_links(subscriber: Subscriber, settings: Settings, secret: str) -> tuple[str, str | None]:
    """(mailto link, https link or None) for List-Unsubscribe and the footer."""
    sender = sender_address(settings)
    mailto = f"mailto:{sender.addr_spec}?subject={quote('unsubscribe ' + subscriber.id)}"
    if not settings.base_url:
        return mailto, None
    token = unsubscribe_token(subscriber.id, secret)
    base = settings.base_url.rstrip("/")
    return mailto, f"{base}/unsubscribe?u={quote(subscriber.id)}&t={token}"


def build_message(digest: Digest, settings: Settings, *, secret: str, to: str | None = None) -> EmailMessage:
    """multipart/alternative (text, then HTML) with the list headers mail clients act on."""
    sender = sender_address(settings)
    subscriber = digest.subscriber
    msg = EmailMessage()
    msg["From"] = sender
    if to is None:
        user, domain = subscriber.email.rsplit("@", 1)
        msg["To"] = Address(display_name=_one_line(subscriber.name or ""), username=user, domain=domain)
    else:
        msg["To"] = to
    msg["Subject"] = _one_line(digest.subject)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring=f"{digest.day.isoformat()}.{subscriber.id}", domain=sender.domain)
    msg["List-Id"] = f"Paper Digest <digest.{sender.domain}>"
    mailto, https = unsubscribe_links(subscriber, settings, secret)
    if https:
        msg["List-Unsubscribe"] = f"<{https}>, <{mailto}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    else:
        msg["List-Unsubscribe"] = f"<{mailto}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Digest-Day"] = digest.day.isoformat()
    msg.set_content(digest.text, subtype="plain", charset="utf-8")
    msg.add_alternative(digest.html, subtype="html", charset="utf-8")
    return msg


@dataclass(frozen=True)
class Outgoing:
    """One message ready for the wire: the exact bytes (DKIM-signed when configured), the
    envelope, and the key naming it in the outbox and the ledger."""

    key: str
    sender: str
    recipients: tuple[str, ...]
    data: bytes
    message_id: str


DKIM_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post")


def serialize(message: EmailMessage, settings: Settings, *, key: str) -> Outgoing:
    """The wire form of `message` (CRLF line ends), signed with DKIM when it is configured."""
    data = message.as_bytes(policy=SMTP_POLICY)
    if settings.dkim_selector and settings.dkim_domain and settings.dkim_key_file:
        data = dkim_sign(
            data,
            settings.dkim_selector,
            settings.dkim_domain,
            settings.dkim_key_file,
            [h for h in DKIM_HEADERS if message[h] is not None],
        )
    recipients = tuple(a.addr_spec for a in message["To"].addresses)
    return Outgoing(key, sender_address(settings).addr_spec, recipients, data, str(message["Message-ID"]))


def dkim_sign(data: bytes, selector: str, domain: str, key_file: Path, headers: list[str]) -> bytes:
    import dkim

    try:
        private_key = key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"DIGEST_DKIM_KEY_FILE={key_file}: cannot be read ({exc.strerror})") from exc
    try:
        signature = dkim.sign(
            data,
            selector.encode(),
            domain.encode(),
            private_key,
            include_headers=[h.lower().encode() for h in headers],
        )
    except dkim.DKIMException as exc:
        raise ConfigError(f"DKIM signing failed ({exc}); check DIGEST_DKIM_KEY_FILE") from exc
    return signature + data


class Mailer(Protocol):
    """Sends one message; returns where it went (a file path or a host); raises SendError."""

    def send(self, outgoing: Outgoing) -> str: ...

    def close(self) -> None: ...


class OutboxMailer:
    """The embedded default: each message becomes `<outbox>/<key>.eml` (and its HTML beside it)."""

    def __init__(self, outbox: Path):
        self.outbox = outbox

    def send(self, outgoing: Outgoing) -> str:
        path = self.outbox / f"{outgoing.key}.eml"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".eml.tmp")
            tmp.write_bytes(outgoing.data)
            tmp.replace(path)  # a reader never sees half a message
            message = message_from_bytes(outgoing.data, policy=email.policy.default)
            html = message.get_body(("html",)) if isinstance(message, EmailMessage) else None
            if html is not None:
                path.with_suffix(".html").write_text(html.get_content(), encoding="utf-8")
        except OSError as exc:  # a full or read-only disk: nothing went out, try again later
            raise SendError(f"cannot write {path} ({exc.strerror})") from exc
        return str(path)

    def close(self) -> None:
        pass


class SMTPMailer:
    """smtplib over one reused connection (reopened when the server drops it); none, starttls
    or ssl, with certificates verified against the system CAs or DIGEST_SMTP_CA_FILE."""

    def __init__(self, settings: Settings, timeout: float = 30):
        if not settings.smtp_host:
            raise ConfigError("DIGEST_SMTP_HOST is not set")
        self.settings = settings
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        ca = self.settings.smtp_ca_file
        try:
            return ssl.create_default_context(cafile=str(ca) if ca else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"DIGEST_SMTP_CA_FILE={ca}: cannot be used ({exc})") from exc

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        mode = s.smtp_security
        port = s.smtp_port or {"ssl": 465, "starttls": 587, "none": 25}[mode]
        smtp: smtplib.SMTP | None = None
        try:
            if mode == "ssl":
                smtp = smtplib.SMTP_SSL(s.smtp_host, port, timeout=self.timeout, context=self._context())
            else:
                smtp = smtplib.SMTP(s.smtp_host, port, timeout=self.timeout)
                if mode == "starttls":
                    smtp.starttls(context=self._context())
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(
                f"SMTP login to {s.smtp_host} refused: {exc.smtp_code} {_text(exc.smtp_error)}; "
                "check DIGEST_SMTP_USER and DIGEST_SMTP_PASSWORD",
                fatal=True,
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise SendError(
                f"the certificate of {s.smtp_host}:{port} is not trusted ({exc.verify_message}); "
                "set DIGEST_SMTP_CA_FILE to its CA",
                fatal=True,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            if smtp is not None:
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    smtp.close()
            raise SendError(f"cannot connect to SMTP {s.smtp_host}:{port} ({mode}): {exc}") from exc
        return smtp

    def send(self, outgoing: Outgoing) -> str:
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            refused = self._smtp.sendmail(outgoing.sender, list(outgoing.recipients), outgoing.data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise SendError(
                f"recipient refused: {code} {_text(reply)}",
                permanent=code >= 500,
                reply=f"{code} {_text(reply)}",
            ) from exc
        except smtplib.SMTPServerDisconnected as exc:
            self._smtp = None
            raise SendError(f"{self.settings.smtp_host} closed the connection: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code in (421,):  # the server is closing this session
                self._drop()
            raise SendError(
                f"server replied {exc.smtp_code} {_text(exc.smtp_error)}",
                permanent=exc.smtp_code >= 500,
                reply=f"{exc.smtp_code} {_text(exc.smtp_error)}",
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise SendError(f"connection to {self.settings.smtp_host} failed: {exc}") from exc
        if refused:
            raise SendError(f"recipients refused: {refused}", permanent=True, reply=str(refused))
        return f"smtp://{self.settings.smtp_host}"

    def _drop(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()  # the messages are already accepted; a rude goodbye is harmless
            self._smtp = None


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def mailer_factory(settings: Settings):  # noqa: ANN201 - a zero-argument callable returning a Mailer
    """A way to make one mailer per worker: SMTP when a host is set, else the outbox."""
    if settings.smtp_host:
        return lambda: SMTPMailer(settings)
    return lambda: OutboxMailer(settings.outbox)
