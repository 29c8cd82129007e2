"""The Hugging Face daily_papers API response: a JSON list of {paper: {...}, title, summary, ...}."""

from __future__ import annotations

from datetime import date
from typing import Any

from ..errors import InputError
from ..models import Paper, arxiv_id_from
from .clean import clean


def looks_like_hf(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict) and "paper" in data[0]


def _org(item: dict[str, Any], paper: dict[str, Any]) -> str | None:
    for org in (paper.get("organization"), item.get("organization")):
        if isinstance(org, dict):
            return org.get("fullname") or org.get("name")
    return None


def parse(data: list[Any], *, day: date | None = None, source: str | None = None) -> list[Paper]:
    papers = []
    for number, item in enumerate(data, start=1):
        paper = item.get("paper") if isinstance(item, dict) else None
        if not isinstance(paper, dict):
            raise InputError(
                f"item {number} has no 'paper' object; is this the daily_papers API?", path=source
            )
        title = clean(paper.get("title") or item.get("title"))
        # paper.summary is the full abstract; the top-level summary may be cut for display
        abstract = clean(paper.get("summary") or item.get("summary"))
        if not title or not abstract:
            raise InputError(f"item {number} has no title or summary", path=source)
        arxiv_id = arxiv_id_from(str(paper.get("id") or ""))
        authors = tuple(
            a["name"].strip()
            for a in paper.get("authors") or []
            if isinstance(a, dict) and isinstance(a.get("name"), str) and a["name"].strip()
        )
        upvotes = paper.get("upvotes")
        published = paper.get("publishedAt") or item.get("publishedAt")
        papers.append(
            Paper.create(
                title,
                abstract,
                arxiv_id=arxiv_id,
                authors=authors,
                day=day,
                published=published[:10] if isinstance(published, str) else None,
                upvotes=upvotes if isinstance(upvotes, int) else None,
                organization=_org(item, paper),
                url=f"https://huggingface.co/papers/{arxiv_id}" if arxiv_id else None,
                source=source,
            )
        )
    return papers
