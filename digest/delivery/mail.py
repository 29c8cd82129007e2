"""The message (MIME, headers) and the two mailers: SMTP, and the outbox (the embedded
default, shipped beside the real one as httpx ships MockTransport)."""

from __future__ import annotations

import base64
import contextlib
import email.policy
import os
import smtplib
import ssl
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from ..addresses import mail_address
from ..errors import ConfigError, SendError
from ..models import Digest
from ..settings import DKIM, SMTPSettings
from ..text import one_line

# Headers a machine parses as they are (RFC 2369, RFC 8058): never folded or RFC 2047-encoded,
# which is what the email package does to a line longer than 78 characters, and what makes
# mailbox providers drop one-click unsubscribe. Our values are ASCII and one line by construction.
VERBATIM_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post", "list-id"})


_WORD_BYTES = 42  # UTF-8 bytes per encoded word: 56 base64 characters, 68 with its =?utf-8?b?...?=


def encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 encoded words, whole characters in each, every one under 75 characters.
    A reader's client joins them with the whitespace between them dropped (RFC 2047 6.2), so the
    text's own spaces, inside the words, are kept exactly."""
    words, chunk = [], b""
    for ch in text:
        data = ch.encode("utf-8")
        if chunk and len(chunk) + len(data) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += data
    if chunk:
        words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words]


class _WirePolicy(email.policy.EmailPolicy):
    def fold_binary(self, name: str, value: str) -> bytes:
        text = str(value)
        if name.lower() in VERBATIM_HEADERS and text.isascii() and len(name) + len(text) < 990:
            return f"{name}: {one_line(text)}{self.linesep}".encode("ascii")
        if name.lower() == "subject" and not text.isascii() and not self.utf8:
            # the email package folds "networks =?utf-8?b?4oCU?=" with the space left at the end
            # of the line, which a client shows as two: the subject is encoded here, word by word
            folded = f"{self.linesep} ".join(encoded_words(one_line(text)))
            return f"{name}: {folded}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


SMTP_POLICY = _WirePolicy(linesep="\r\n")  # CRLF line ends, non-ASCII headers as encoded words
SMTPUTF8_POLICY = _WirePolicy(linesep="\r\n", utf8=True)  # for internationalized addresses


def build_message(digest: Digest, smtp: SMTPSettings, *, to: str | None = None) -> EmailMessage:
    """multipart/alternative (text, then HTML) with the list headers mail clients act on."""
    sender = smtp.from_address
    subscriber = digest.subscriber
    msg = EmailMessage()
    msg["From"] = sender
    if to is None:
        msg["To"] = mail_address(subscriber.name or "", subscriber.email)
    else:
        msg["To"] = mail_address("", to)
    msg["Subject"] = one_line(digest.subject)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring=f"{digest.day.isoformat()}.{subscriber.id}", domain=sender.domain)
    msg["List-Id"] = f"Paper Digest <digest.{sender.domain}>"
    links = digest.links
    if links.unsubscribe_https:
        msg["List-Unsubscribe"] = f"<{links.unsubscribe_https}>, <{links.unsubscribe_mailto}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    else:
        msg["List-Unsubscribe"] = f"<{links.unsubscribe_mailto}>"
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
    smtputf8: bool = False  # an address is not ASCII: only a server offering SMTPUTF8 can take it


DKIM_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post")


def serialize(message: EmailMessage, smtp: SMTPSettings, *, key: str, sender: str | None = None) -> Outgoing:
    """The wire form of `message` (CRLF line ends), signed with DKIM when it is configured.
    `sender`: the envelope sender (the return path bounces go to); the From address if None."""
    recipients = tuple(a.addr_spec for a in message["To"].addresses)
    sender = sender or smtp.from_address.addr_spec
    smtputf8 = not all(a.isascii() for a in (sender, *recipients))
    data = message.as_bytes(policy=SMTPUTF8_POLICY if smtputf8 else SMTP_POLICY)
    if smtp.dkim is not None:
        data = dkim_sign(data, smtp.dkim, [h for h in DKIM_HEADERS if message[h] is not None])
    return Outgoing(key, sender, recipients, data, str(message["Message-ID"]), smtputf8)


def dkim_sign(data: bytes, key: DKIM, headers: list[str]) -> bytes:
    import dkim

    try:
        private_key = key.key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"DIGEST_DKIM_KEY_FILE={key.key_file}: cannot be read ({exc.strerror})") from exc
    try:
        signature = dkim.sign(
            data,
            key.selector.encode(),
            key.domain.encode(),
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
    """The embedded default: each message becomes `<outbox>/<key>.eml`, its HTML beside it.

    Both are written atomically (a temporary file, then a rename) and the .eml last: it is the
    mark of a delivered message, so a full disk never leaves a complete .eml beside a row that
    says pending. Temporary files a killed run left behind are removed."""

    STALE_AFTER = 600.0  # seconds: older temporary files belong to no live run

    def __init__(self, outbox: Path):
        self.outbox = outbox
        self._cleaned: set[Path] = set()

    def send(self, outgoing: Outgoing) -> str:
        path = self.outbox / f"{outgoing.key}.eml"
        html_path = path.with_suffix(".html")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._clean(path.parent)
            message = message_from_bytes(outgoing.data, policy=email.policy.default)
            html = message.get_body(("html",)) if isinstance(message, EmailMessage) else None
            if html is not None:
                atomic_write(html_path, html.get_content().encode("utf-8"))
            atomic_write(path, outgoing.data)
        except OSError as exc:  # a full or read-only disk: nothing went out, try again later
            with contextlib.suppress(OSError):
                html_path.unlink(missing_ok=True)
            raise SendError(f"cannot write {path} ({exc.strerror or exc})") from exc
        return str(path)

    def _clean(self, folder: Path) -> None:
        if folder in self._cleaned:
            return
        self._cleaned.add(folder)
        now = time.time()
        for stale in folder.glob("*.tmp"):
            with contextlib.suppress(OSError):
                if now - stale.stat().st_mtime > self.STALE_AFTER:
                    stale.unlink()

    def close(self) -> None:
        pass


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """`data` at `path`, all or nothing: written to a temporary file beside it, then renamed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _SMTP(smtplib.SMTP):
    """smtplib.SMTP that knows when the whole message has gone out: the body is the only thing
    ever sent that ends with CRLF.CRLF. After that point a lost reply means "unknown"."""

    data_sent = False

    def send(self, s: bytes | str) -> None:
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.data_sent = True


class _SMTP_SSL(smtplib.SMTP_SSL, _SMTP):  # noqa: N801 - mirrors smtplib's name
    pass


# What to try when DIGEST_SMTP_SECURITY does not match what the server speaks (its values:
# digest.settings.SECURITY_MODES).
# TLS errors that say the connection was dropped, not that the two ends disagree on TLS
_DROPPED = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
_SECURITY_HINT = {
    "ssl": "ssl expects TLS from the first byte (usually port 465); if the server starts in plain "
    "text and offers STARTTLS (usually port 587), set DIGEST_SMTP_SECURITY=starttls",
    "starttls": "if the server speaks TLS from the first byte (usually port 465), set "
    "DIGEST_SMTP_SECURITY=ssl",
    "none": "set DIGEST_SMTP_SECURITY=starttls or ssl to match the server",
}


class SMTPMailer:
    """smtplib over one reused connection (reopened when the server drops it); none, starttls
    or ssl, with certificates verified against the system CAs or DIGEST_SMTP_CA_FILE.

    A connection whose state is unknown (an error we did not expect, a timeout) is closed,
    never reused: a half-finished transaction would answer the next message with 503."""

    def __init__(self, smtp: SMTPSettings, timeout: float | None = None):
        if not smtp.host:
            raise ConfigError("DIGEST_SMTP_HOST is not set")
        self.smtp = smtp
        self.timeout = smtp.timeout if timeout is None else timeout
        self._smtp: _SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        ca = self.smtp.ca_file
        try:
            return ssl.create_default_context(cafile=str(ca) if ca else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"DIGEST_SMTP_CA_FILE={ca}: cannot be used ({exc})") from exc

    def _connect(self) -> _SMTP:
        s = self.smtp
        mode = s.security
        port = s.port or {"ssl": 465, "starttls": 587, "none": 25}[mode]
        smtp: _SMTP | None = None
        try:
            if mode == "ssl":
                smtp = _SMTP_SSL(s.host, port, timeout=self.timeout, context=self._context())
            else:
                smtp = _SMTP(s.host, port, timeout=self.timeout)
                if mode == "starttls":
                    smtp.ehlo_or_helo_if_needed()
                    if not smtp.has_extn("starttls"):
                        raise SendError(
                            f"{s.host}:{port} does not offer STARTTLS, and DIGEST_SMTP_SECURITY=starttls "
                            "needs it; set DIGEST_SMTP_SECURITY=ssl if the server speaks TLS from the "
                            "first byte (usually port 465), or none only for a server on this machine "
                            "or a trusted network",
                            fatal=True,
                        )
                    smtp.starttls(context=self._context())
            if s.user:
                smtp.login(s.user, s.password or "")
            smtp.ehlo_or_helo_if_needed()
        except smtplib.SMTPAuthenticationError as exc:
            _close(smtp)
            raise SendError(
                f"SMTP login to {s.host} refused: {exc.smtp_code} {_text(exc.smtp_error)}; "
                "check DIGEST_SMTP_USER and DIGEST_SMTP_PASSWORD",
                fatal=True,
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            _close(smtp)
            raise SendError(
                f"the certificate of {s.host}:{port} is not trusted ({exc.verify_message}); "
                "set DIGEST_SMTP_CA_FILE to its CA",
                fatal=True,
            ) from exc
        except ssl.SSLError as exc:
            _close(smtp)
            if isinstance(exc, _DROPPED):  # the server went away mid-handshake: try again later
                raise SendError(f"cannot connect to SMTP {s.host}:{port}: {exc}") from exc
            raise SendError(  # the handshake itself: the two ends disagree on TLS
                f"the TLS handshake with {s.host}:{port} failed ({exc.reason or exc}) with "
                f"DIGEST_SMTP_SECURITY={mode}; {_SECURITY_HINT[mode]}",
                fatal=True,
            ) from exc
        except SendError:
            _close(smtp)
            raise
        except (OSError, smtplib.SMTPException) as exc:
            _close(smtp)
            raise SendError(
                f"cannot connect to SMTP {s.host}:{port} (DIGEST_SMTP_SECURITY={mode}): {exc}"
            ) from exc
        return smtp

    def _options(self, smtp: _SMTP, outgoing: Outgoing) -> list[str]:
        """MAIL FROM options: SMTPUTF8 for an internationalized address, if the server offers it."""
        if not outgoing.smtputf8:
            return []
        if not smtp.has_extn("smtputf8"):
            who = ", ".join(a for a in (outgoing.sender, *outgoing.recipients) if not a.isascii())
            raise SendError(
                f"{self.smtp.host} does not offer SMTPUTF8, which the address {who} needs; "
                "use a mail server that supports internationalized addresses, or an ASCII address",
                permanent=True,
                reply="server lacks SMTPUTF8 for an internationalized address",
            )
        return ["SMTPUTF8", "BODY=8BITMIME"] if smtp.has_extn("8bitmime") else ["SMTPUTF8"]

    def send(self, outgoing: Outgoing) -> str:
        if self._smtp is None:
            self._smtp = self._connect()
        smtp = self._smtp
        options = self._options(smtp, outgoing)
        smtp.data_sent = False
        try:
            refused = smtp.sendmail(outgoing.sender, list(outgoing.recipients), outgoing.data, options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise SendError(
                f"recipient refused: {code} {_text(reply)}",
                permanent=code >= 500,
                reply=f"{code} {_text(reply)}",
            ) from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # the server is closing this session
                self._drop()
            else:
                self._reset()
            raise SendError(
                f"server replied {exc.smtp_code} {_text(exc.smtp_error)}",
                permanent=exc.smtp_code >= 500,
                reply=f"{exc.smtp_code} {_text(exc.smtp_error)}",
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:  # timeouts, dropped connections
            self._drop()
            if smtp.data_sent:  # the server has the whole message and may have kept it
                raise SendError(
                    f"no reply from {self.smtp.host} after the message was sent ({exc}); "
                    "it may have been delivered",
                    unknown=True,
                    reply=f"no reply after DATA: {exc}",
                ) from exc
            raise SendError(f"connection to {self.smtp.host} failed: {exc}") from exc
        except BaseException:
            self._drop()  # whatever happened, this connection's state is unknown
            raise
        if refused:
            raise SendError(f"recipients refused: {refused}", permanent=True, reply=str(refused))
        return f"smtp://{self.smtp.host}"

    def _reset(self) -> None:
        """RSET after a refused transaction; a connection that cannot even do that is dropped."""
        if self._smtp is None:
            return
        try:
            code, _ = self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            code = 0
        if code != 250:
            self._drop()

    def _drop(self) -> None:
        _close(self._smtp)
        self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()  # the messages are already accepted; a rude goodbye is harmless
            self._drop()


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.close()


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def mailer_factory(smtp: SMTPSettings, outbox: Path):  # noqa: ANN201 - a callable making a Mailer
    """A way to make one mailer per worker: SMTP when a host is set, else the outbox."""
    if smtp.host:
        return lambda: SMTPMailer(smtp)
    return lambda: OutboxMailer(outbox)
