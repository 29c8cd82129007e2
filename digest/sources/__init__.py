"""Reading inputs into papers. Each format has a module with ``parse(text, day=, source=)``;
`read_file` picks the format by content, not by extension."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from ..errors import InputError
from ..models import Paper
from . import jsonl, pagedump

MAX_BYTES = 50 * 1024 * 1024
_DAY_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


def decode(data: bytes, source: str) -> str:
    """Text of a file: UTF-8 (with or without BOM), else Windows-1252/latin-1; binaries refused."""
    if not data.strip():
        raise InputError("empty file; nothing to ingest", path=source)
    if b"\x00" in data[:8192]:
        raise InputError("binary file, not text; give a page dump, feed or JSON Lines file", path=source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def day_from_name(path: Path) -> date | None:
    """'2026-03-12.txt' -> 2026-03-12."""
    match = _DAY_IN_NAME.search(path.name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def parse_text(text: str, *, day: date | None, source: str) -> list[Paper]:
    """Papers in `text`, whatever its format; InputError naming `source` if unreadable."""
    head = text.lstrip()[:500].lower()
    if head.startswith(("<!doctype html", "<html")) or "<body" in head:
        raise InputError(
            "an HTML page, not the page's text; open the page, select all, copy, and paste as text",
            path=source,
        )
    if jsonl.looks_like_jsonl(text):
        return jsonl.parse(text, day=day, source=source)
    if head.startswith("<"):
        raise InputError("feeds (RSS/Atom) are not supported yet by this version", path=source)
    if head.startswith("["):
        raise InputError("Hugging Face API JSON is not supported yet by this version", path=source)
    return pagedump.parse(text, day=day, source=source)


def read_file(path: Path, *, day: date | None = None) -> tuple[bytes, list[Paper]]:
    """Raw bytes (for the content hash) and the papers of one input file."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(
                f"{size // 2**20} MB is over the {MAX_BYTES // 2**20} MB limit; split the file",
                path=source,
            )
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=source) from exc
    day = day or day_from_name(path)
    return data, parse_text(decode(data, source), day=day, source=source)
