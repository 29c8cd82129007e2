"""Field checks for structured records (JSON Lines, the daily_papers JSON): a value of the
wrong type or out of range is a FieldError naming the field, never a crash deeper down.

Each check takes the raw JSON value and returns the clean one (or None when absent)."""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any

from ..text import http_url, one_line, quoted

MAX_UPVOTES = 10_000_000
_AND = re.compile(r",\s*|\s+and\s+")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?![0-9])")  # [0-9]: \d would take any script's digits

class FieldError(ValueError):
    """One field of one record is unusable; the message names the field and the value."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"field {field!r}: {problem}")


def text(value: Any, field: str, *, required: bool = False) -> str | None:
    """A string with visible text (control characters dropped)."""
    if value is None or (isinstance(value, str) and not one_line(value)):
        if required:
            raise FieldError(field, "is missing or empty")
        return None
    if not isinstance(value, str):
        raise FieldError(field, f"{quoted(value)} is not a string")
    return value


def upvotes(value: Any, field: str = "upvotes") -> int | None:
    """A whole number from 0 to MAX_UPVOTES (12.0 is 12; true, Infinity and 1e30 are not)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(field, f"{quoted(value)} is not a number")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise FieldError(field, f"{quoted(value)} is not a whole number from 0 to {MAX_UPVOTES}")
    if not 0 <= value <= MAX_UPVOTES:
        raise FieldError(field, f"{quoted(value)} is not a whole number from 0 to {MAX_UPVOTES}")
    return int(value)


def published(value: Any, field: str = "published") -> str | None:
    """An ISO date, or a timestamp that starts with one; kept as YYYY-MM-DD."""
    if value is None or value == "":
        return None
    # YYYY-MM-DD itself: Python 3.11's fromisoformat also takes 20261120 and week dates (2026-W47-5)
    if not isinstance(value, str) or not (match := _ISO_DATE.match(value.strip())):
        raise FieldError(field, f"{quoted(value)} is not a date such as 2026-11-20")
    try:
        return date.fromisoformat(match.group()).isoformat()
    except ValueError as exc:
        raise FieldError(field, f"{quoted(value)} is not a date such as 2026-11-20") from exc


def authors(value: Any, field: str = "authors") -> tuple[str, ...]:
    """Names from "A, B and C", a list of names, or a list of {"name": ...} objects."""
    if value is None:
        return ()
    if isinstance(value, str):
        names: list[Any] = _AND.split(value)
    elif isinstance(value, list):
        names = [a.get("name") if isinstance(a, dict) else a for a in value]
    else:
        raise FieldError(field, f"{quoted(value)} is not a list of names")
    if not all(isinstance(n, str) for n in names):
        raise FieldError(field, f"{quoted(value)} is not a list of names (strings)")
    return tuple(clean for n in names if (clean := one_line(n)))


def strings(value: Any, field: str) -> tuple[str, ...]:
    """A list of strings (one string is a list of one)."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise FieldError(field, f"{quoted(value)} is not a list of strings")
    return tuple(clean for v in items if (clean := one_line(v)))


def url(value: Any, field: str = "url") -> str | None:
    """An absolute http(s) URL; javascript:, data:, relative URLs and non-strings are refused."""
    if value is None or value == "":
        return None
    checked = http_url(value)
    if checked is None:
        raise FieldError(field, f"{quoted(value)} is not an http(s) URL")
    return checked


def identifier(value: Any, field: str = "id") -> str | None:
    """An id as a string: a number would have lost its trailing zeros (2505.01230 -> 2505.0123)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FieldError(field, f'{quoted(value)} must be a string such as "2505.01230"')
    return value
