"""Jinja2 (autoescape on) -> MJML -> HTML with mjml-python, plus the plain-text twin.

The templates see a small view model built here, so they hold no logic beyond loops.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path

import jinja2
from mjml import mjml2html

from ..errors import ConfigError
from ..models import Digest, Links, Ranked, Subscriber
from ..names import Followed
from ..text import one_line, readable
from ..tldr import tldr

# An installed wheel carries its templates inside the package; a source checkout (and an
# editable install) uses the top-level templates/ folder, the one users edit.
PACKAGE = Path(__file__).resolve().parent.parent  # digest/
PACKAGED_TEMPLATES = PACKAGE / "templates"
SOURCE_TEMPLATES = PACKAGE.parent / "templates"


def default_templates() -> Path:
    return PACKAGED_TEMPLATES if PACKAGED_TEMPLATES.is_dir() else SOURCE_TEMPLATES




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


def author_line(r: Ranked) -> str:
    p = r.paper
    if p.authors:
        names = list(p.authors)
        first = ", ".join(names[:3])
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        if r.followed and more and not Followed([r.followed]).match(names[:3]):
            more += f", including {r.followed}"  # the reason it is here is never hidden in "more"
        return first + more
    parts = []
    if p.organization:
        parts.append(p.organization)
    if p.authors_count:
        parts.append(f"{p.authors_count} author{'s' if p.authors_count != 1 else ''}")
    return " · ".join(parts)


def gist(papers: Sequence[Ranked], n: int = 2) -> list[str]:
    """The reader's own keywords most of today's papers matched, most common first."""
    counts = Counter(r.matched[0] for r in papers if r.matched)
    return [k for k, _ in counts.most_common(n)]


def near_own_papers(papers: Sequence[Ranked]) -> bool:
    """Some of the picks came through the reader's own papers."""
    return any(r.close_to or r.from_papers for r in papers)


def day_label(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def _usual(papers: Sequence[Ranked]) -> list[Ranked]:
    """The papers but the exploration slot's, which speaks for none of the reader's interests."""
    return [r for r in papers if not r.explore]


def subject_for(papers: Sequence[Ranked], day: date) -> str:
    if not papers:
        return f"No new papers for your interests today — {day_label(day)}"
    n = len(papers)
    topics = ", ".join(gist(_usual(papers)))  # the reader's words, never phrases we distilled
    noun = "paper" if n == 1 else "papers"
    if topics:
        return f"{n} new {noun} on {topics} — {day_label(day)}"
    if near_own_papers(_usual(papers)):
        return f"{n} new {noun} close to your papers — {day_label(day)}"
    return f"{n} new {noun} — {day_label(day)}"


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
            "tldr": one_line(readable(tldr(r.paper.title, r.paper.abstract))),
            "matched": [one_line(k) for k in r.matched],
            "upvotes": r.paper.upvotes,
            "why": one_line(why_line(r)),
            "explore": r.explore,
            "keyphrases": [one_line(readable(k)) for k in r.keyphrases[:3]],  # for operators' templates
            "more": links.feedback.get(r.paper.id, (None, None))[0],
            "less": links.feedback.get(r.paper.id, (None, None))[1],
        }
        for i, r in enumerate(papers, start=1)
    ]
    topics = [one_line(t) for t in gist(_usual(papers))]
    context = {
        "own": near_own_papers(papers),
        "footer": footer(subscriber, voting=bool(links.feedback)),
        "subscriber": subscriber,
        "name": greeting_name(subscriber),
        "day": day_label(day),
        "day_iso": day.isoformat(),
        "subject": one_line(subject),
        "preheader": one_line(_preheader(papers, topics)),
        "papers": items,
        "explore_label": EXPLORE_LABEL,
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


EXPLORE_LABEL = "Something different: does it fit?"  # over the exploration slot's paper
WHY_TITLE_CHARS = 60  # a title quoted in a why-line is cut to this, at a word


def why_line(r: Ranked) -> str:
    """One short sentence, at most two reasons, each saying where it comes from: a followed author
    and an `always` phrase first; the reader's keywords are "your interest", a phrase distilled
    from their papers is "your papers on ...", their own paper and the paper they liked are named."""
    if r.explore:
        return "It is outside your usual picks: a vote either way on it teaches your digest the most."
    reasons = []
    if r.followed:
        reasons.append(f"is by {r.followed}, whom you follow")
    if r.always:
        reasons.append(f"says “{r.always}”, which you always want")
    if r.matched:
        shown = " and ".join(f"“{k}”" for k in r.matched[:2])
        reasons.append(f"matches your interest{'s' if len(r.matched[:2]) > 1 else ''} {shown}")
    if r.close_to:
        reasons.append(f"is close to your paper “{_cut(readable(r.close_to))}”")
    elif r.from_papers:
        reasons.append(f"is like your papers on “{r.from_papers[0]}”")
    if r.liked_like:
        reasons.append(f"is like “{_cut(readable(r.liked_like))}”, which you liked")
    if not reasons:
        return "It is close to your interests, though no single one matched strongly."
    first, *rest = reasons[:2]
    return f"It {first}" + (f", and {rest[0]}" if rest else "") + "."


def _cut(title: str, limit: int = WHY_TITLE_CHARS) -> str:
    title = one_line(title)
    return title if len(title) <= limit else title[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def footer(subscriber: Subscriber, *, voting: bool) -> dict[str, str]:
    """What the reader can do, and why they get the mail, in their terms (never a file they
    don't have)."""
    keywords = list(subscriber.keywords)
    picked = []
    if keywords:
        shown = ", ".join(keywords[:3]) + (f" and {len(keywords) - 3} more" if len(keywords) > 3 else "")
        picked.append(f"your interests ({shown})")
    if subscriber.profile_papers:
        picked.append("your own papers")
    if subscriber.authors:
        picked.append("the authors you follow")
    if subscriber.always:
        picked.append("the phrases you always want")
    why = f"You get this digest at {subscriber.email} because you are on the Paper Digest list"
    listed = ", ".join(picked[:-1]) + f" and {picked[-1]}" if len(picked) > 1 else "".join(picked)
    why += f"; its papers are picked for {listed}." if picked else "."
    return {
        "why": one_line(why),
        "votes": "“More like this” and “Less like this” teach it what you want." if voting else "",
        "reply": "To change your interests or ask anything, reply to this email.",
    }


def _preheader(papers: Sequence[Ranked], topics: list[str]) -> str:
    if not papers:
        return "Nothing new matched your interests today."
    lead = readable(papers[0].paper.title)
    more = f" and {len(papers) - 1} more" if len(papers) > 1 else ""
    return one_line(f"{lead}{more}" + (f" — on {', '.join(topics)}" if topics else ""))
