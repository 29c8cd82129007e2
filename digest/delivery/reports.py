"""Bounce and complaint reports: what a returned message says, read from its bytes.

A report is one of three kinds:
- "hard": the address cannot take mail (a DSN with Action: failed and a 5.x.x status, or a 5xx
  reply at RCPT or after DATA);
- "soft": it could not take it this time (Action: delayed, or a 4.x.x status);
- "complaint": the reader marked a digest as spam (an RFC 5965 report with Feedback-Type: abuse).

Everything else (an auto-reply, an out-of-office text, any other mail) is not a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

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
    source: str  # "dsn", "arf", "smtp" (a reply during our own send) or a provider's name ("ses")
    arrived: datetime | None = None  # when the report was written, from its Date header
