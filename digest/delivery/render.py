"""Jinja2 (autoescape on) -> MJML -> HTML with mjml-python, plus the plain-text twin.

The templates see a small view model built here, so they hold no logic beyond loops.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path

import jinja2
from mjml import mjml2html

from ..errors import ConfigError
from ..models import Digest, Links, Ranked, Subscriber
from ..text import one_line, readable

# An installed wheel carries its templates inside the package; a source checkout (and an
# editable install) uses the top-level templates/ folder, the one users edit.
PACKAGE = Path(__file__).resolve().parent.parent  # digest/
PACKAGED_TEMPLATES = PACKAGE / "templates"
SOURCE_TEMPLATES = PACKAGE.parent / "templates"


def default_templates() -> Path:
    return PACKAGED_TEMPLATES if PACKAGED_TEMPLATES.is_dir() else SOURCE_TEMPLATES


EXCERPT_SENTENCES = 3
EXCERPT_CHARS = 420
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")


@lru_cache(maxsize=4)
def environment(folder: Path | None = None) -> jinja2.Environment:
    """Templates from `folder` (DIGEST_TEMPLATES), else the ones shipped with digest."""
    path = folder or default_templates()
    if not path.is_dir():
        raise ConfigError(f"templates folder {path} not found; set DIGEST_TEMPLATES to the folder")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(path),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "mjml", "mjml.j2", "html.j2"),
            default_for_string=True,
            default=False,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def excerpt(abstract: str, sentences: int = EXCERPT_SENTENCES, limit: int = EXCERPT_CHARS) -> str:
    """The first few sentences, cut at a word boundary with an ellipsis when too long."""
    parts = _SENTENCE_END.split(abstract.strip())
    text = " ".join(parts[:sentences])
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return text


def author_line(r: Ranked) -> str:
    p = r.paper
    if p.authors:
        names = list(p.authors)
        first = ", ".join(names[:3])
        return first + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    parts = []
    if p.organization:
        parts.append(p.organization)
    if p.authors_count:
        parts.append(f"{p.authors_count} author{'s' if p.authors_count != 1 else ''}")
    return " · ".join(parts)


def gist(papers: Sequence[Ranked], n: int = 2) -> list[str]:
    """The interests most of today's papers matched, most common first."""
    counts = Counter(r.matched[0] for r in papers if r.matched)
    return [k for k, _ in counts.most_common(n)]


def day_label(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def subject_for(papers: Sequence[Ranked], day: date) -> str:
    if not papers:
        return f"No new papers for your interests today — {day_label(day)}"
    n = len(papers)
    topics = ", ".join(gist(papers))
    noun = "paper" if n == 1 else "papers"
    return (
        f"{n} new {noun} on {topics} — {day_label(day)}" if topics else f"{n} new {noun} — {day_label(day)}"
    )


def render(
    subscriber: Subscriber,
    day: date,
    papers: Sequence[Ranked],
    links: Links,
    *,
    templates: Path | None = None,
) -> Digest:
    """The subscriber's digest for `day`: subject, HTML (via MJML) and plain text."""
    env = environment(templates)
    subject = one_line(subject_for(papers, day))
    items = [
        {
            "rank": i,
            "title": one_line(readable(r.paper.title)),
            "link": r.paper.link,
            "authors": one_line(author_line(r)),
            "excerpt": one_line(readable(excerpt(r.paper.abstract))),
            "matched": [one_line(k) for k in r.matched],
            "keyphrases": [one_line(readable(k)) for k in r.keyphrases[:3]],
            "upvotes": r.paper.upvotes,
            "why": one_line(why_line(r)),
            "more": links.feedback.get(r.paper.id, (None, None))[0],
            "less": links.feedback.get(r.paper.id, (None, None))[1],
        }
        for i, r in enumerate(papers, start=1)
    ]
    topics = [one_line(t) for t in gist(papers)]
    context = {
        "subscriber": subscriber,
        "name": greeting_name(subscriber),
        "day": day_label(day),
        "day_iso": day.isoformat(),
        "subject": one_line(subject),
        "preheader": one_line(_preheader(papers, topics)),
        "papers": items,
        "topics": topics,
        "links": links,
    }
    mjml_source = env.get_template("digest.mjml.j2").render(context)
    html = mjml2html(mjml_source, disable_comments=True, fonts={})
    text = env.get_template("digest.txt.j2").render(context)
    return Digest(subscriber, day, tuple(papers), subject, html, text, links)


def greeting_name(subscriber: Subscriber) -> str:
    """The first word of the subscriber's name, else their id."""
    words = one_line(subscriber.name or "").split()
    return words[0] if words else subscriber.id


def why_line(r: Ranked) -> str:
    """One sentence: the interests the paper matched, the own paper it is close to, the paper
    the reader liked that it resembles; whichever apply."""
    parts = []
    if r.matched:
        quoted = ", ".join(f"“{k}”" for k in r.matched)
        parts.append(f"It matches your interest{'s' if len(r.matched) > 1 else ''} {quoted}.")
    if r.close_to:
        parts.append(f"It is close to your paper “{readable(r.close_to)}”.")
    if r.liked_like:
        parts.append(f"It is like “{readable(r.liked_like)}”, which you marked.")
    return " ".join(parts) or "It is close to your interests, though no single one matched strongly."


def _preheader(papers: Sequence[Ranked], topics: list[str]) -> str:
    if not papers:
        return "Nothing new matched your interests today."
    lead = readable(papers[0].paper.title)
    more = f" and {len(papers) - 1} more" if len(papers) > 1 else ""
    return f"{lead}{more}" + (f" — on {', '.join(topics)}" if topics else "")
