"""Reading the parts of a message strangers wrote (bounces, complaints, auto-replies): helpers
that never raise on an odd shape, only find less. compat32 is the policy throughout: it keeps a
header it cannot parse as text where the modern policy raises on access."""

from __future__ import annotations

import html
import re
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from ..text import one_line

_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_HEADER_TYPES = frozenset({"text/rfc822-headers", "message/global-headers"})
_TAGS = re.compile(r"(?s)<(?:style|script)\b.*?</(?:style|script)>|<[^>]*>")
_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s]+>")


def children(msg: Message) -> list[Message]:
    payload = msg.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def first_part(parts: list[Message], types: set[str] | frozenset[str]) -> Message | None:
    return next((p for p in parts if p.get_content_type() in types), None)


def field_blocks(part: Message) -> list[dict[str, str]]:
    """The blocks of "Name: value" fields of a delivery-status or feedback-report part. The email
    package splits a delivery-status part into one header-only message per block, and parses a
    feedback-report part as one message whose body holds any further blocks."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return _blocks_in(text_of(part))
    blocks = []
    for sub in payload:
        if isinstance(sub, Message):
            blocks.append({k.lower(): clean(str(v)) for k, v in reversed(sub.items())})
            body = sub.get_payload()
            if isinstance(body, str):
                blocks.extend(_blocks_in(body))
    return [b for b in blocks if b]


def _blocks_in(text: str) -> list[dict[str, str]]:
    blocks = []
    for chunk in re.split(r"\r?\n[ \t]*\r?\n", text):
        fields: dict[str, str] = {}
        name = None
        for line in chunk.splitlines():
            if line[:1] in (" ", "\t") and name is not None:
                fields[name] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                name = key.strip().lower()
                fields.setdefault(name, value.strip())
        if fields:
            blocks.append(fields)
    return blocks


def returned_headers(parts: list[Message]) -> Message | None:
    """The headers of the returned message: a whole message/rfc822 part, or the headers alone."""
    for part in parts:
        ctype = part.get_content_type()
        if ctype in _MESSAGE_TYPES:
            inner = children(part)
            if inner:
                return inner[0]
        elif ctype in _HEADER_TYPES:
            return HeaderParser(policy=compat32).parsestr(text_of(part).lstrip("\r\n"), headersonly=True)
    return None


def message_id_in(value: str) -> str | None:
    found = _MESSAGE_ID.search(value)
    return found.group() if found else None


def body_text(msg: Message) -> str:
    """The text parts of a message, not descending into an attached message (the returned one)."""
    if msg.is_multipart():
        return "\n\n".join(body_text(p) for p in children(msg) if p.get_content_maintype() != "message")
    if msg.get_content_type() == "text/html":
        return html.unescape(_TAGS.sub(" ", text_of(msg)))  # old Exchange: an NDR in HTML only
    return text_of(msg) if msg.get_content_maintype() == "text" else ""


def text_of(part: Message) -> str:
    """A part's text, transfer encoding undone, in its charset (UTF-8 when unknown)."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        payload = part.get_payload()
        text = clean(payload) if isinstance(payload, str) else ""
    else:
        try:
            text = data.decode(part.get_content_charset() or "utf-8", "replace")
        except LookupError:
            text = data.decode("utf-8", "replace")
    return text.replace("\r\n", "\n")  # as on the wire or as a file: one line end to match


def subject(msg: Message) -> str:
    raw = header(msg, "Subject")
    try:
        return one_line(str(make_header(decode_header(raw))))
    except (ValueError, LookupError, UnicodeError):  # a broken encoded word: show it as it is
        return one_line(raw)


def header(msg: Message | None, name: str) -> str:
    value = msg.get(name) if msg is not None else None
    return "" if value is None else clean(str(value))


def clean(text: str) -> str:
    """Text with the raw 8-bit bytes the compat32 parser keeps as surrogates made readable."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        return text.encode("utf-8", "replace").decode("utf-8")
