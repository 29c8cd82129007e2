"""Reading inputs into papers. Each format has a module with ``parse(text, day=, source=)``;
`read_file` picks the format by content, not by extension:

    <html …>                      refused: a saved web page, not its text
    JSON Lines ({…} per line)     jsonl   (also arXiv daily listings)
    JSON list of {paper: …}       hfjson  (Hugging Face daily_papers API)
    XML (RSS 2.0, Atom)           feed    (arXiv RSS/Atom, arXiv API)
    anything else                 pagedump (the Daily Papers page copied as text)
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ..errors import InputError
from ..models import Paper
from . import feed, hfjson, http, jsonl, pagedump

MAX_BYTES = 50 * 1024 * 1024
_DAY_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class Parsed:
    """A file's papers, its format, and notes on what was left out (one line each)."""

    papers: list[Paper]
    kind: str
    notes: list[str] = field(default_factory=list)


def decode(data: bytes, source: str) -> str:
    """Text of a file: UTF-8 (with or without BOM), else Windows-1252/latin-1; binaries refused."""
    if not data.strip():
        raise InputError("empty file; nothing to ingest", path=source)
    if b"\x00" in data[:8192]:
        raise InputError("binary file, not text; give a page dump, feed or JSON Lines file", path=source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="strict") if _is_cp1252(data) else data.decode("latin-1")
    if sum(not (ch.isprintable() or ch.isspace()) for ch in text[:8192]) > 0.05 * min(len(text), 8192):
        raise InputError("mostly unprintable characters; give a text, feed or JSON Lines file", path=source)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _is_cp1252(data: bytes) -> bool:
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def day_from_name(path: Path) -> date | None:
    """'2026-03-12.txt' -> 2026-03-12."""
    match = _DAY_IN_NAME.search(path.name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def _is_web_page(head: str) -> bool:
    """A saved HTML page, from the lower-cased start of a file. It starts with markup: "<body"
    further in, inside a JSON record or a dumped title, is a word of the paper."""
    if not head.startswith("<"):
        return False
    return head.startswith(("<!doctype html", "<html")) or ("<body" in head and "<rss" not in head)


def parse_text(text: str, *, day: date | None, source: str) -> tuple[str, list[Paper], list[str]]:
    """(kind, papers, notes) for `text`, whatever its format; InputError naming `source` if unreadable."""
    stripped = text.lstrip()
    head = stripped[:1000].lower()
    if _is_web_page(head):
        raise InputError(
            "an HTML page, not the page's text; open the page, select all, copy, and paste as text",
            path=source,
        )
    notes: list[str] = []
    if jsonl.looks_like_jsonl(text):
        return "jsonl", jsonl.parse(text, day=day, source=source, notes=notes), notes
    if stripped.startswith("["):
        try:
            data = jsonl.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg})", path=source, line=exc.lineno) from exc
        except RecursionError as exc:
            raise InputError("JSON nested too deeply to be a list of papers", path=source) from exc
        if not hfjson.looks_like_hf(data):
            raise InputError("a JSON list, but not the Hugging Face daily_papers format", path=source)
        return "hf-json", hfjson.parse(data, day=day, source=source, notes=notes), notes
    if stripped.startswith("{"):
        raise InputError(
            "a JSON object; expected JSON Lines (one paper object per line) or the daily_papers list",
            path=source,
        )
    if stripped.startswith("<"):
        if not feed.looks_like_feed(text):
            raise InputError("XML or markup that is not an RSS or Atom feed", path=source)
        return "feed", feed.parse(text, day=day, source=source, notes=notes), notes
    return "page-dump", pagedump.parse(text, day=day, source=source, notes=notes), notes


def parse_bytes(data: bytes, *, day: date | None, source: str) -> Parsed:
    """The papers in one input's raw bytes, or InputError naming `source`."""
    kind, papers, notes = parse_text(decode(data, source), day=day, source=source)
    return Parsed(papers, kind, notes)


def read_limited(path: Path, max_bytes: int | None = None) -> bytes:
    """A regular file's bytes, refused by its size before it is read if it is over `max_bytes`.

    Devices (/dev/zero never ends), FIFOs (opening one blocks), sockets and folders are refused
    by their type before they are opened; a file that grows while it is read is cut off."""
    source = str(path)
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    try:
        info = path.stat()
        if stat.S_ISREG(info.st_mode):
            # O_NONBLOCK: if the file was swapped for a FIFO since, opening it still returns
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(f.fileno())
                if stat.S_ISREG(info.st_mode) and info.st_size <= max_bytes:
                    os.set_blocking(fd, True)
                    data = f.read(max_bytes + 1)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device, pipe or socket"
            raise InputError(f"{kind}, not a file; give a dump, feed or JSON Lines file", path=source)
        if info.st_size > max_bytes:
            raise InputError(
                f"{info.st_size // 2**20} MB is over the {max_bytes // 2**20} MB limit; split the file",
                path=source,
            )
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", path=source) from exc
    if len(data) > max_bytes:
        raise InputError(f"grew past the {max_bytes // 2**20} MB limit while being read", path=source)
    return data


def read_file(path: Path, *, day: date | None = None) -> Parsed:
    """The papers of one input file, or InputError naming it."""
    return parse_bytes(read_limited(path), day=day or day_from_name(path), source=str(path))


def fetch(
    url: str,
    *,
    allow_private: bool = False,
    timeout: float = 30,
    deadline: float = 120,
    max_bytes: int | None = None,
) -> bytes:
    """The body of an http(s) URL (see `digest.sources.http`); InputError naming the URL."""
    return http.fetch(
        url,
        allow_private=allow_private,
        timeout=timeout,
        deadline=deadline,
        max_bytes=MAX_BYTES if max_bytes is None else max_bytes,
    )
