"""JSON Lines, one paper per line: {id?, title, abstract, authors?, url?, published?, upvotes?,
categories?}; also the arXiv daily listing JSONL ({id, title, summary, authors, abs, categories})."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from ..errors import InputError
from ..models import Paper, arxiv_id_from
from .clean import clean


def looks_like_jsonl(text: str) -> bool:
    """True when the first non-blank line is a whole JSON object."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first.startswith("{"):
        return False
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _authors(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(a.strip() for a in re.split(r",\s*|\s+and\s+", value) if a.strip())
    if isinstance(value, list):
        names = [a.get("name", "") if isinstance(a, dict) else str(a) for a in value]
        return tuple(n.strip() for n in names if n and n.strip())
    return ()


def paper_from_record(record: dict[str, Any], *, day: date | None, source: str | None) -> Paper:
    """One paper from a JSON object; raises ValueError naming the missing field."""
    title = record.get("title")
    abstract = record.get("abstract", record.get("summary"))
    if not isinstance(title, str) or not title.strip():
        raise ValueError("field 'title' is missing or empty")
    if not isinstance(abstract, str) or not abstract.strip():
        raise ValueError("field 'abstract' is missing or empty")
    url = record.get("url") or record.get("abs")
    raw_id = record.get("id") or record.get("arxiv_id")
    arxiv_id = arxiv_id_from(str(raw_id)) if raw_id else None
    arxiv_id = arxiv_id or arxiv_id_from(url)
    upvotes = record.get("upvotes")
    categories = record.get("categories") or ()
    return Paper.create(
        clean(title),
        clean(abstract),
        arxiv_id=arxiv_id,
        authors=_authors(record.get("authors")),
        day=day,
        published=record.get("published"),
        upvotes=int(upvotes) if isinstance(upvotes, int | float) else None,
        url=url if isinstance(url, str) else None,
        source=source,
        categories=tuple(str(c) for c in categories) if isinstance(categories, list) else (),
    )


def parse(text: str, *, day: date | None = None, source: str | None = None) -> list[Paper]:
    papers: list[Paper] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("expected one JSON object per line")
            papers.append(paper_from_record(record, day=day, source=source))
        except (json.JSONDecodeError, ValueError) as exc:
            raise InputError(f"{exc}; fix or remove this line", path=source, line=number) from exc
    if not papers:
        raise InputError("no papers in this JSON Lines file", path=source)
    return papers
