"""JSON Lines, one paper per line: {id?, title, abstract, authors?, url?, published?, upvotes?,
categories?}; also the arXiv daily listing JSONL ({id, title, summary, authors, abs, categories}).

Each line is one record: a bad one (not JSON, or a field of the wrong type) is left out with a
note naming its line and field, and the rest of the file goes in."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from ..errors import InputError
from ..models import Paper, arxiv_id_from
from . import records
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


def paper_from_record(record: dict[str, Any], *, day: date | None, source: str | None) -> Paper:
    """One paper from a JSON object; raises FieldError naming the field that is unusable."""
    title = clean(records.text(record.get("title"), "title", required=True))
    abstract_field = "abstract" if "abstract" in record else "summary"
    abstract = clean(records.text(record.get(abstract_field), "abstract", required=True))
    if not title:
        raise records.FieldError("title", "has no visible text")
    if not abstract:
        raise records.FieldError("abstract", "has no visible text")
    url_field = "url" if record.get("url") is not None else "abs"
    url = records.url(record.get(url_field), url_field)
    raw_id = records.identifier(record.get("id"), "id") or records.identifier(
        record.get("arxiv_id"), "arxiv_id"
    )
    return Paper.create(
        title,
        abstract,
        arxiv_id=arxiv_id_from(raw_id) or arxiv_id_from(url),
        authors=records.authors(record.get("authors")),
        day=day,
        published=records.published(record.get("published")),
        upvotes=records.upvotes(record.get("upvotes")),
        url=url,
        source=source,
        categories=records.strings(record.get("categories"), "categories"),
    )


def parse(
    text: str, *, day: date | None = None, source: str | None = None, notes: list[str] | None = None
) -> list[Paper]:
    """Every good record's paper; each bad line becomes one line in `notes`. A file with no
    good record at all is refused (InputError naming its first bad line)."""
    notes = [] if notes is None else notes
    papers: list[Paper] = []
    problems: list[tuple[int, str]] = []  # (line, what is wrong and what to do)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("expected one JSON object per line")
            papers.append(paper_from_record(record, day=day, source=source))
        except (json.JSONDecodeError, ValueError, RecursionError) as exc:
            problem = f"not valid JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else str(exc)
            problems.append((number, f"{problem}; fix or remove this line"))
    if not papers:
        if not problems:
            raise InputError("no papers in this JSON Lines file", path=source)
        line, problem = problems[0]
        more = f" (and {len(problems) - 1} more bad lines)" if len(problems) > 1 else ""
        raise InputError(problem + more, path=source, line=line)
    notes.extend(str(InputError(problem, path=source, line=line)) for line, problem in problems)
    return papers
