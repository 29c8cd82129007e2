"""The Hugging Face Daily Papers page, as a user copies it from the browser.

A dump is a run of paper blocks after some page boilerplate::

    Title line
    Abstract line (one long line)
      • 9 authors          | or an organization line such as "adobe Adobe"
    ·
    Oct 1, 2023 12         | published date, optional year, optional trailing upvotes

Blank lines between the parts are optional (one layout has none, and glues
"Subscribe" to the first title). The meta lines are optional per paper.
"""

from __future__ import annotations

import re
from datetime import date

from ..errors import InputError
from ..models import Paper
from ..text import one_line

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
    )
}
_DATE = re.compile(
    r"^(?P<mon>[A-Z][a-z]{2})\s+(?P<day>\d{1,2})(?:,\s*(?P<year>\d{4}))?(?:\s+(?P<votes>\d+))?$"
)
_AUTHORS = re.compile(r"^[•·*-]?\s*(?P<n>\d+)\s+authors?$")
_DOT = {"·", "•"}
_BOILERPLATE = {
    "new",
    "subscribe",
    "daily papers",
    "byak and the research community",
    "get trending papers in your email inbox!",
    "get trending papers in your email inbox once a day!",
}
_ENDS_SENTENCE = re.compile(r"[.!?)\]\"'”’]\s*$")
_GLUED_SUBSCRIBE = re.compile(r"^Subscribe(?=[A-Z0-9\"'(\[])")
# A title is one line; an abstract shorter than this is more likely a stray line.
MAX_TITLE_CHARS = 400


def _parse_date(match: re.Match[str], dump_day: date | None) -> tuple[str | None, int | None]:
    month = _MONTHS.get(match["mon"].lower())
    if month is None:
        return None, None
    votes = int(match["votes"]) if match["votes"] else None
    day = int(match["day"])
    if match["year"]:
        year = int(match["year"])
    elif dump_day is not None:
        # "Mar 11" on a page seen on 2026-03-12 is this year; "Dec 30" seen in January is last year.
        year = dump_day.year if (month, day) <= (dump_day.month, dump_day.day) else dump_day.year - 1
    else:
        return None, votes
    try:
        return date(year, month, day).isoformat(), votes
    except ValueError:
        return None, votes


def header_date(text: str, today: date | None) -> date | None:
    """The page's own date ("Mar 12" above the first paper), with its year inferred from `today`."""
    for line in text.splitlines()[:30]:
        match = _DATE.match(line.strip())
        if match and not match["votes"]:
            iso, _ = _parse_date(match, today)
            return date.fromisoformat(iso) if iso else None
    return None


def parse(
    text: str,
    *,
    day: date | None = None,
    source: str | None = None,
    reference: date | None = None,
    notes: list[str] | None = None,
) -> list[Paper]:
    """Every complete paper block in a page dump, in page order.

    `day` is the digest day the papers arrive on; `reference` (default: the page's own date,
    else `day`) decides the year of dates shown without one. A paper cut off at the end of
    the file is left out, and `notes` gets a line saying so.
    """
    notes = [] if notes is None else notes
    reference = reference or header_date(text, day) or day
    # Controls out before the layout is read: a line of nothing but escapes is a blank line, not
    # a title (every text field below is then clean, as Paper.create would make it anyway).
    lines = [one_line(line) for line in text.splitlines()]  # \n, \r\n and \r alike
    content = [line for line in lines if line]
    if not content:
        raise InputError("empty file; paste the Daily Papers page text into it", path=source)
    # Skip the header: boilerplate and the page date, until the first real line.
    i = 0
    while i < len(content):
        low = content[i].lower()
        if low in _BOILERPLATE or (_DATE.match(content[i]) and i + 1 < len(content)):
            i += 1
            continue
        content[i] = _GLUED_SUBSCRIBE.sub("", content[i])
        break

    papers: list[Paper] = []
    n = len(content)
    while i < n:
        title = content[i]
        if title.lower() in _BOILERPLATE or title in _DOT or _AUTHORS.match(title):
            i += 1
            continue
        if i + 1 >= n:
            notes.append(
                _note(f"the last title {title[:60]!r} has no abstract (cut off?); it was left out", source)
            )
            break
        abstract = content[i + 1]
        if len(title) > MAX_TITLE_CHARS or abstract in _DOT or _AUTHORS.match(abstract):
            i += 1  # not a title/abstract pair; resynchronise on the next line
            continue
        i += 2
        if i >= n and not _ENDS_SENTENCE.search(abstract):
            notes.append(
                _note(
                    f"the last paper {title[:60]!r} looks cut off mid-abstract; it was left out "
                    "(paste the whole page again to include it)",
                    source,
                )
            )
            break
        authors_count = organization = published = upvotes = None
        if i < n and (m := _AUTHORS.match(content[i])):
            authors_count = int(m["n"])
            i += 1
        elif i + 1 < n and content[i + 1] in _DOT and content[i] not in _DOT:
            organization = content[i]
            i += 1
        if i < n and content[i] in _DOT:
            i += 1
            if i < n and (m := _DATE.match(content[i])):
                published, upvotes = _parse_date(m, reference)
                i += 1
        papers.append(
            Paper.create(
                title,
                abstract,
                authors_count=authors_count,
                day=day,
                published=published,
                upvotes=upvotes,
                organization=_clean_org(organization),
                source=source,
            )
        )
    if not papers:
        raise InputError(
            "no paper blocks found (a title line followed by its abstract); "
            "is this a Daily Papers page copied as text?",
            path=source,
        )
    return papers


def _note(message: str, source: str | None) -> str:
    """A note as every parser writes one: a whole line that starts with the file it is about."""
    return str(InputError(message, path=source))


def _clean_org(line: str | None) -> str | None:
    """'adobe Adobe' is the org's slug (the avatar's alt text) then its name; keep the name."""
    if not line:
        return None
    parts = line.split(maxsplit=1)
    if len(parts) == 2:
        slug, name = (re.sub(r"[^a-z0-9]", "", part.lower()) for part in parts)
        if slug and name and (name.startswith(slug) or slug.startswith(name)):
            return parts[1]
    return line
