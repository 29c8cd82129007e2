"""Bounce and complaint reports: what a returned message says, read from its bytes.

A report is one of three kinds:
- "hard": the address cannot take mail (a DSN with Action: failed and a 5.x.x status, or a 5xx
  reply at RCPT or after DATA);
- "soft": it could not take it this time (Action: delayed, or a 4.x.x status);
- "complaint": the reader marked a digest as spam (an RFC 5965 report with Feedback-Type: abuse).

Everything else (an auto-reply, an out-of-office text, any other mail) is not a report.

`parse` decides, in this order (the first rule that applies wins)::

    multipart/report with a message/delivery-status part  -> the DSN's per-recipient blocks
    multipart/report with a message/feedback-report part  -> a complaint, or not one (its type)
    X-Autoreply, X-Autorespond, Precedence: auto_reply    -> auto-reply
    X-Failed-Recipients (only MTAs write it)              -> a plain-text bounce
    an out-of-office subject ("Automatic reply: ...")     -> auto-reply
    from MAILER-DAEMON/postmaster (or Return-Path <>)
        with a bounce subject ("Undelivered Mail ...")    -> a plain-text bounce
    Auto-Submitted (not "no"), Precedence: bulk/junk      -> auto-reply
    anything else                                         -> not a report

A report's structure outranks every auto-reply marker because MTAs mark their own DSNs
auto-replied (Postfix and Exim write Auto-Submitted: auto-replied, as RFC 3834 asks): only a
message with no report structure and no MTA's mark is judged by its headers and subject. An
out-of-office text that quotes "550 user unknown" is therefore never read for codes at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Literal

from ..text import one_line
from .mimeparts import (
    body_text,
    children,
    clean,
    field_blocks,
    first_part,
    header,
    message_id_in,
    returned_headers,
    subject,
    text_of,
)

Kind = Literal["hard", "soft", "complaint"]


@dataclass(frozen=True)
class Report:
    """One bounce or complaint, tied to a reader by whichever of its fields are present."""

    kind: Kind
    recipient: str | None  # the address that failed or complained, as the report names it
    status: str | None  # the enhanced status code, "5.1.1"; None for a complaint without one
    diagnostic: str  # the remote server's words (or the report's summary), one line, at most 300 chars
    message_id: str | None  # the Message-ID of our digest the report is about, "<...@...>"
    original_to: str | None  # the To address of our digest, when the report quotes its headers
    verp_token: str | None  # TOKEN of the envelope recipient bounces+TOKEN@domain, when present
    # "dsn", "bounce" (a plain-text bounce: no DSN structure, read from its words), "arf", "smtp"
    # (a reply during our own send) or a provider's name ("ses")
    source: str
    arrived: datetime | None = None  # when the report was written, from its Date header


# Why a message is not a report. "delivered": a DSN that says delivered/relayed/expanded (a
# success notice someone asked for); "not-a-complaint": a feedback report of another type.
SkipReason = Literal["auto-reply", "not-a-report", "delivered", "not-a-complaint", "malformed"]


@dataclass(frozen=True)
class Skip:
    """Why a message from the bounce mailbox is not a report; `detail` is one line for a log."""

    reason: SkipReason
    detail: str


DIAGNOSTIC_CHARS = 300
# RFC 5965 types a reader's "this is spam" or "this is phishing" button produces. "fraud" counts:
# a reader calling a digest phishing wants it gone as much as one calling it spam, and mailbox
# providers weigh both against the sender. "not-spam", "virus", "other" and "auth-failure"
# (RFC 6591: a DKIM/SPF failure, no reader involved) are not a reader's complaint.
COMPLAINT_TYPES = frozenset({"abuse", "fraud"})
_STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d])")
# a basic SMTP reply code where one is written: at a line's start ("550 No such user", "550-...")
# or after "said:" (Postfix, qmail); a bare number elsewhere ("after 450 seconds") is not one
_REPLY_CODE = re.compile(r"(?:^[ \t>]*|said:?\s+)([45])\d\d(?=[ \t-])", re.MULTILINE | re.IGNORECASE)
_TYPE_PREFIX = re.compile(r"^\s*[A-Za-z][\w.-]*\s*;\s*")  # "smtp; ", "rfc822;", "X-Postfix; "
_ADDRESS = re.compile(r"[\w.%+'=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_VERP_TAIL = r"\+(?P<token>[^@\s]+)@(?P<domain>[^@\s]+)"  # after the bounce address's own local part

# Anchored at the start (after any "Re:"): Exchange's "Undeliverable: <our subject>" quotes our
# subject, and a paper titled "Automatic Reply Generation" must not make a bounce an auto-reply.
_OUT_OF_OFFICE = re.compile(
    r"^\s*(?:(?:re|aw|sv|antw|fwd?)\s*:\s*)*(?:out of (?:the )?office|automatic reply|auto[- ]?reply"
    r"|auto[- ]?response|automatische antwort|abwesenheit|r[ée]ponse automatique|respuesta autom[áa]tica"
    r"|risposta automatica|automatisch antwoord|i am out of the office|i'm out of the office"
    r"|on vacation|vacation reply|away from (?:the )?office|absence)"
    r"|\bis out of the office\b",  # Lotus Notes: "Heidi Berg is out of the office."
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undeliver|returned mail|mail delivery failed|delivery status notification"
    r"|delivery (?:failure|has failed|notification|report|problem)|failure notice|non-?delivery"
    r"|could not be delivered|delayed mail|warning: message \S+ delayed|mail system error"
    r"|message not delivered|delivery failed)",
    re.IGNORECASE,
)
_DAEMONS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "maildaemon"})
# where an MTA's plain-text notice ends and its copy of the returned message begins
_COPY_START = re.compile(
    r"^[ \t-]*(?:this is a copy of (?:the|your) message|below this line is a copy of the message"
    r"|original message(?: headers)?(?: follows)?|the original message(?: headers)?"
    r"|a copy of the original message|undelivered message)",
    re.IGNORECASE | re.MULTILINE,
)
_PERMANENT = re.compile(r"permanent (?:error|failure)|i've given up|giving up", re.IGNORECASE)
_TEMPORARY = re.compile(
    r"temporar|delayed|not yet been delivered|will (?:be retried|continue|keep trying)|warning only",
    re.IGNORECASE,
)


def parse(raw: bytes, *, bounce_domain: str | None = None, bounce_local: str = "bounces") -> Report | Skip:
    """The verdict on one message from the bounce mailbox: a Report, or a Skip saying why not.

    Never raises: the bytes come from strangers, and one message the email package chokes on
    must not stop the reading of a mailbox. `bounce_domain` restricts the VERP address
    (bounces+TOKEN@domain) to our own domain; the token is not verified here (the caller holds
    the key that signed it)."""
    try:
        msg = message_from_bytes(raw, policy=compat32)
        verdict = _classify(msg)
        if isinstance(verdict, Report):
            verdict = replace(
                verdict, verp_token=verp_token(msg, bounce_domain, bounce_local), arrived=_arrived(msg)
            )
    except Exception as exc:  # the email package raises many kinds on hostile bytes; none is ours
        return Skip("malformed", f"cannot be read as mail ({type(exc).__name__})")
    return verdict


def _classify(msg: Message) -> Report | Skip:
    parts = children(msg) if msg.get_content_type() == "multipart/report" else []
    report_type = str(msg.get_param("report-type") or "").lower() if parts else ""
    if first_part(parts, _STATUS_TYPES) is not None or report_type == "delivery-status":
        return _dsn(msg, parts)
    if first_part(parts, {"message/feedback-report"}) is not None or report_type == "feedback-report":
        return _arf(parts)
    if marker := _auto_reply_header(msg):
        return Skip("auto-reply", marker)
    title = subject(msg)
    if failed := header(msg, "X-Failed-Recipients"):
        return _plain_bounce(msg, failed)
    if _OUT_OF_OFFICE.search(title):
        return Skip("auto-reply", f"out-of-office subject: {title[:80]}")
    if _from_mail_system(msg) and _BOUNCE_SUBJECT.search(title):
        return _plain_bounce(msg, "")
    if marker := _automatic(msg):
        return Skip("auto-reply", marker)
    return Skip("not-a-report", f"neither a bounce nor a complaint: {title[:80]}")


# --- RFC 3464 delivery status notifications ---------------------------------------------------


def _dsn(msg: Message, parts: list[Message]) -> Report | Skip:
    """The hardest failure among the per-recipient blocks: our digests have one recipient each,
    so a DSN names one address, but an alias expanded on the way can fail in several places."""
    status_part = first_part(parts, _STATUS_TYPES)
    if status_part is None:
        return Skip("malformed", "a delivery-status report without its message/delivery-status part")
    blocks = [b for b in field_blocks(status_part) if "action" in b or "final-recipient" in b]
    if not blocks:
        return Skip("malformed", "a delivery-status report without per-recipient fields")
    found = [r for r in map(_recipient_failure, blocks) if r is not None]
    if not found:
        actions = ", ".join(sorted({b.get("action", "?").strip().lower() for b in blocks}))
        return Skip("delivered", f"the report says {actions}")
    kind, recipient, status, diagnostic = min(found, key=lambda r: r[0] != "hard")
    original = returned_headers(parts)
    message_id = _message_id(original)
    if message_id is None:  # Gmail's DSNs name the returned message in In-Reply-To/References
        message_id = message_id_in(header(msg, "In-Reply-To") or header(msg, "References"))
    return Report(kind, recipient, status, diagnostic, message_id, _original_to(original), None, "dsn")


def _recipient_failure(block: dict[str, str]) -> tuple[Kind, str | None, str | None, str] | None:
    """What one per-recipient block says, or None for a success (delivered, relayed, expanded).

    The status class decides over the action word: Postfix reports a message it gave up on
    after days of 4.4.1 timeouts as "Action: failed, Status: 4.4.1", and a mail host that was
    down for a week says nothing about whether the address exists."""
    action = block.get("action", "").strip().lower()
    if action in ("delivered", "relayed", "expanded"):
        return None
    diagnostic = _one_line(_TYPE_PREFIX.sub("", block.get("diagnostic-code", "")))
    status = _status_in(block.get("status", "")) or _status_in(diagnostic)
    cls = status[0] if status else None
    kind: Kind
    if action == "failed":
        kind = "soft" if cls == "4" else "hard"
    elif action == "delayed" or cls == "4":
        kind = "soft"
    elif cls == "5":
        kind = "hard"
    else:
        return None
    recipient = _address(block.get("original-recipient", "")) or _address(block.get("final-recipient", ""))
    return kind, recipient, status, diagnostic or f"Action: {action or 'none'}"


# --- RFC 5965 feedback reports ----------------------------------------------------------------


def _arf(parts: list[Message]) -> Report | Skip:
    feedback = first_part(parts, {"message/feedback-report"})
    if feedback is None:
        return Skip("malformed", "a feedback report without its message/feedback-report part")
    fields: dict[str, str] = {}
    for block in field_blocks(feedback):
        fields = block | fields  # the first block's value wins
    feedback_type = fields.get("feedback-type", "").strip().lower()
    if feedback_type not in COMPLAINT_TYPES:
        return Skip("not-a-complaint", f"Feedback-Type: {feedback_type or 'missing'}")
    original = returned_headers(parts)
    original_to = _original_to(original)
    # AOL and others redact the enclosed To; Original-Rcpt-To is the envelope, when they give it
    recipient = _address(fields.get("original-rcpt-to", "")) or original_to
    summary = next((t for t in (text_of(p) for p in parts if p.get_content_type() == "text/plain") if t), "")
    diagnostic = _one_line(summary) or f"feedback report: {feedback_type}"
    return Report("complaint", recipient, None, diagnostic, _message_id(original), original_to, None, "arf")


# --- plain-text bounces (Exim's old format, qmail, sendmail, old Exchange) ---------------------


def _plain_bounce(msg: Message, failed: str) -> Report:
    """A bounce written for people: the failed address from X-Failed-Recipients or the notice,
    the status from the first SMTP code in the notice. With no code at all, the notice's own
    words decide ("permanent error" is hard), and a notice that says neither is soft: an address
    is never dropped on a guess."""
    notice, copy = _split_copy(body_text(msg))
    status = _status_in(notice)
    if status is None and _PERMANENT.search(notice):
        status = "5.0.0"
    elif status is None and (_TEMPORARY.search(notice) or _TEMPORARY.search(subject(msg))):
        status = "4.0.0"
    kind: Kind = "hard" if status and status[0] == "5" else "soft"
    recipient = _address(failed) or next(
        (a for a in _ADDRESS.findall(notice) if a.split("@")[0].lower() not in _DAEMONS), None
    )
    original = returned_headers([p for p in msg.walk() if p is not msg])
    if original is None and copy:
        original = HeaderParser(policy=compat32).parsestr(copy.lstrip("\r\n"), headersonly=True)
    return Report(
        kind,
        recipient,
        status,
        _diagnostic_in(notice) or _one_line(subject(msg)),
        _message_id(original),
        _original_to(original),
        None,
        "bounce",
    )


def _split_copy(text: str) -> tuple[str, str]:
    """(the MTA's notice, its copy of the returned message); the copy's "550" is not the MTA's."""
    found = _COPY_START.search(text)
    if found is None:
        return text, ""
    rest = text[found.end() :]
    return text[: found.start()], rest.split("\n", 1)[1] if "\n" in rest else ""


def _diagnostic_in(notice: str) -> str:
    """The server's reply in a notice: from its first code to the end of that paragraph."""
    paragraphs = re.split(r"\n[ \t]*\n", notice)
    for paragraph in paragraphs:
        if code := _REPLY_CODE.search(paragraph):
            return _one_line(paragraph[code.start(1) :])
    # no reply code, only an enhanced status ("(#5.1.1)", qmail): the paragraph it closes
    return next((_one_line(p) for p in paragraphs if _ENHANCED.search(p)), "")


# --- auto-replies (RFC 3834) ------------------------------------------------------------------


def _auto_reply_header(msg: Message) -> str:
    """A header only an auto-responder writes; no MTA puts these on a bounce."""
    for name in ("X-Autoreply", "X-Autorespond"):
        value = header(msg, name).strip().lower()
        if msg.get(name) is not None and value not in ("no", "false", "0"):
            return f"{name}: {value or 'yes'}"
    if header(msg, "Precedence").strip().lower() == "auto_reply":
        return "Precedence: auto_reply"
    return ""


def _automatic(msg: Message) -> str:
    """A header any machine writes, MTAs included: it makes a message automatic, not a bounce.
    Precedence: bulk/junk is on old vacation replies and on some MTAs' bounces alike, so it
    only counts once the bounce rules have passed the message by; "list" is a mailing list."""
    submitted = header(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    precedence = header(msg, "Precedence").strip().lower()
    if precedence in ("bulk", "junk"):
        return f"Precedence: {precedence}"
    return ""


def _from_mail_system(msg: Message) -> bool:
    """From MAILER-DAEMON/postmaster, or sent with the null return path bounces use."""
    senders = getaddresses([header(msg, "From"), header(msg, "Sender")])
    if any(addr.split("@")[0].lower() in _DAEMONS for _, addr in senders):
        return True
    return header(msg, "Return-Path").strip() == "<>"


# --- VERP and Date ----------------------------------------------------------------------------


def verp_token(msg: Message, bounce_domain: str | None = None, bounce_local: str = "bounces") -> str | None:
    """TOKEN from the envelope recipient bounces+TOKEN@domain. Delivered-To and X-Original-To
    (Postfix), Envelope-To (Exim) carry the envelope; To is the last resort, because an MTA
    writes a bounce To the envelope sender it returns the message to."""
    pattern = re.compile(rf"{re.escape(bounce_local)}{_VERP_TAIL}", re.IGNORECASE)
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "To"):
        for _, addr in getaddresses([clean(str(v)) for v in msg.get_all(name) or []]):
            found = pattern.fullmatch(addr.strip())
            if found and (bounce_domain is None or found["domain"].lower() == bounce_domain.lower()):
                return found["token"]
    return None


def _arrived(msg: Message) -> datetime | None:
    value = header(msg, "Date")
    try:
        when = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is not None and when.tzinfo is None:  # "-0000": UTC, with the local zone unknown
        when = when.replace(tzinfo=UTC)
    return when


# --- fields ----------------------------------------------------------------------------------


def _message_id(original: Message | None) -> str | None:
    return message_id_in(header(original, "Message-ID")) if original is not None else None


def _original_to(original: Message | None) -> str | None:
    if original is None:
        return None
    return next((a for _, a in getaddresses([header(original, "To")]) if "@" in a), None)


def _address(value: str) -> str | None:
    """The address in a "rfc822; alice@example.org" field, or in a header value."""
    text = _TYPE_PREFIX.sub("", " ".join(value.split()))
    found = _ADDRESS.search(text)
    return found.group() if found else None


def _status_in(text: str) -> str | None:
    """The enhanced status code in `text`, else the class of its first SMTP reply code ("5.0.0")."""
    found = _ENHANCED.search(text)
    if found:
        return found.group()
    code = _REPLY_CODE.search(text)
    return f"{code.group(1)}.0.0" if code else None


def _one_line(text: str) -> str:
    line = one_line(text)
    return line if len(line) <= DIAGNOSTIC_CHARS else line[: DIAGNOSTIC_CHARS - 3] + "..."
