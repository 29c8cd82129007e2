"""The Hugging Face daily_papers API response: a JSON list of {paper: {...}, title, summary, ...}.

Each item is one record: a bad one is left out with a note naming its number and field, and
the rest of the list goes in."""

from __future__ import annotations

from datetime import date
from typing import Any

from ..errors import InputError
from ..models import Paper, arxiv_id_from
from ..text import quoted
from . import records
from .clean import clean


def looks_like_hf(data: Any) -> bool:
    """A list with a {"paper": ...} item in it: any other item is a record to report, so a bad
    first item is one note rather than the whole list taken for another format."""
    return isinstance(data, list) and any(isinstance(item, dict) and "paper" in item for item in data)


def _org(item: dict[str, Any], paper: dict[str, Any]) -> str | None:
    for org in (paper.get("organization"), item.get("organization")):
        if isinstance(org, dict):
            name = org.get("fullname") or org.get("name")
            return records.text(name, "organization")
    return None


def _first(paper: dict[str, Any], item: dict[str, Any], key: str) -> Any:
    """The paper's own value when it has one (even a wrong one, to be reported), else the item's."""
    return paper[key] if paper.get(key) is not None else item.get(key)


def paper_from_item(item: Any, *, day: date | None, source: str | None) -> Paper:
    """One paper from one list item; FieldError naming the field that is unusable."""
    paper = item.get("paper") if isinstance(item, dict) else None
    if not isinstance(paper, dict):
        raise records.FieldError("paper", "is missing or not an object")
    # paper.summary is the full abstract; the top-level summary may be cut for display
    title = clean(records.text(paper.get("title") or item.get("title"), "title", required=True))
    abstract = clean(records.text(paper.get("summary") or item.get("summary"), "summary", required=True))
    if not title or not abstract:
        raise records.FieldError("title" if not title else "summary", "has no visible text")
    arxiv_id = arxiv_id_from(records.identifier(paper.get("id"), "paper.id"))
    authors = paper.get("authors")
    if authors is not None and not (isinstance(authors, list) and all(isinstance(a, dict) for a in authors)):
        raise records.FieldError("paper.authors", f"{quoted(authors)} is not a list of author objects")
    return Paper.create(
        title,
        abstract,
        arxiv_id=arxiv_id,
        authors=records.authors([a for a in authors or [] if a.get("name") is not None], "paper.authors"),
        day=day,
        published=records.published(_first(paper, item, "publishedAt"), "publishedAt"),
        upvotes=records.upvotes(paper.get("upvotes"), "paper.upvotes"),
        organization=_org(item, paper),
        url=f"https://huggingface.co/papers/{arxiv_id}" if arxiv_id else None,
        source=source,
    )


def parse(
    data: list[Any], *, day: date | None = None, source: str | None = None, notes: list[str] | None = None
) -> list[Paper]:
    notes = [] if notes is None else notes
    papers: list[Paper] = []
    problems: list[str] = []
    for number, item in enumerate(data, start=1):
        try:
            papers.append(paper_from_item(item, day=day, source=source))
        except (ValueError, AttributeError, RecursionError) as exc:
            problems.append(f"item {number}: {exc}; fix or remove this item")
    if not papers:
        more = f" (and {len(problems) - 1} more bad items)" if len(problems) > 1 else ""
        raise InputError((problems[0] + more) if problems else "an empty list of papers", path=source)
    notes.extend(str(InputError(problem, path=source)) for problem in problems)
    return papers
