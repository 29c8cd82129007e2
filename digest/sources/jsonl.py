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


def lines(text: str) -> list[str]:
    """The file's lines, split on \\n only (`decode` has made every line end one): JSON may hold
    U+2028, U+2029 and U+0085 unescaped inside a string, where str.splitlines() would cut a
    record in two."""
    return text.split("\n")


def looks_like_jsonl(text: str) -> bool:
    """True when the first non-blank line starts a JSON object on that line. Whether it parses is
    the record's business (a broken first record is a note, like any other); a line of just "{"
    opens one object pretty-printed over several lines, which is not JSON Lines."""
    first = text.lstrip().split("\n", 1)[0].strip()
    return first.startswith("{") and first != "{"


def loads(text: str) -> Any:
    """json.loads for strangers' JSON: a number too long for int() is read as a float (±inf), so
    the field's own check refuses it with its record instead of a ValueError stopping the file."""
    return json.loads(text, parse_int=_int)


def _int(digits: str) -> int | float:
    try:
        return int(digits)
    except ValueError:  # over sys.get_int_max_str_digits() (4300): no count or id is that long
        return float(digits)


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
    for number, line in enumerate(lines(text), start=1):
        if not line.strip():
            continue
        try:
            record = loads(line)
            if not isinstance(record, dict):
                raise ValueError("expected one JSON object per line")
            papers.append(paper_from_record(record, day=day, source=source))
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and FieldError are ValueErrors
            problems.append((number, f"{_problem(exc)}; fix or remove this line"))
    if not papers:
        if not problems:
            raise InputError("no papers in this JSON Lines file", path=source)
        line, problem = problems[0]
        more = f" (and {len(problems) - 1} more bad lines)" if len(problems) > 1 else ""
        raise InputError(problem + more, path=source, line=line)
    notes.extend(str(InputError(problem, path=source, line=line)) for line, problem in problems)
    return papers


def _problem(exc: ValueError | RecursionError) -> str:
    """What is wrong with one line, in words for whoever wrote it."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg})"
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply to be a paper record"
    return str(exc)
