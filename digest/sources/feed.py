"""RSS 2.0 and Atom through feedparser: arXiv RSS and RSS-Atom listings, and arXiv API
responses (current and legacy formats)."""

from __future__ import annotations

from datetime import date
from typing import Any

import feedparser

from ..errors import InputError
from ..models import Paper, arxiv_id_from
from ..text import one_line
from . import records
from .clean import clean


def looks_like_feed(text: str) -> bool:
    head = text.lstrip()[:2000].lower()
    return head.startswith("<?xml") or "<rss" in head or "<feed" in head


def _authors(entry: Any) -> tuple[str, ...]:
    names = [a.get("name", "") for a in entry.get("authors", []) if isinstance(a, dict)]
    if len(names) == 1 and "," in names[0]:  # dc:creator holds every author in one string
        names = names[0].split(",")
    return tuple(n.strip() for n in names if n and n.strip())


def _published(entry: Any) -> str | None:
    # dict.get: feedparser's own get() answers a missing updated_parsed with published_parsed
    # and a DeprecationWarning
    parsed = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
    try:
        return date(*parsed[:3]).isoformat() if parsed else None
    except ValueError:  # feedparser keeps "0000-01-01" as year 0, which no date has: no date, as
        return None  # for any other date it cannot read


def parse(
    text: str, *, day: date | None = None, source: str | None = None, notes: list[str] | None = None
) -> list[Paper]:
    """Every entry with a title and a summary; each one without becomes a line in `notes`."""
    notes = [] if notes is None else notes
    parsed = feedparser.parse(text)
    problem = parsed.get("bozo_exception")
    if parsed.bozo and not isinstance(problem, feedparser.CharacterEncodingOverride):
        # Broken XML: refuse the whole file rather than keep whatever half of it parsed.
        line = problem.getLineNumber() if hasattr(problem, "getLineNumber") else None
        reason = problem.getMessage() if hasattr(problem, "getMessage") else str(problem)
        raise InputError(
            f"not a readable RSS/Atom feed ({reason}); save the feed again", path=source, line=line
        )
    papers: list[Paper] = []
    for number, entry in enumerate(parsed.entries, start=1):
        entry_id = entry.get("id", "")
        if "api/errors" in entry_id:
            raise InputError(f"the arXiv API returned an error: {clean(entry.get('summary'))}", path=source)
        title = clean(entry.get("title"))
        abstract = clean(entry.get("summary"), strip_tags=True)
        if not title or not abstract:
            problem = records.FieldError("title" if not title else "summary", "is missing or empty")
            notes.append(str(InputError(f"entry {number}: {problem}; it was left out", path=source)))
            continue
        arxiv_id = arxiv_id_from(entry_id) or arxiv_id_from(entry.get("link"))
        link = entry.get("link") or (f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None)
        if arxiv_id and link and "arxiv.org" in link:
            link = f"https://arxiv.org/abs/{arxiv_id}"  # without the version: always the latest
        papers.append(
            Paper.create(
                title,
                abstract,
                arxiv_id=arxiv_id,
                authors=_authors(entry),
                day=day,
                published=_published(entry),
                url=link,
                source=source,
                categories=tuple(t["term"] for t in entry.get("tags", []) if t.get("term")),
                announce_type=one_line(entry.get("arxiv_announce_type") or "").lower() or None,
            )
        )
    return papers
