"""What a subscriber entry's fields (and the defaults') may hold, and the one-line problem each
wrong value is reported as: the subscriber, the field, the line and what to write instead, with
a did-you-mean for a misspelled name or time zone.

    _check_fields(entry, who, line, base)   every problem with one entry's values
    _text_problem(value, longest)           why a hand-written text cannot be used, or None
    _as_str_list(value)                     a string or a list of strings as a tuple

digest.roster parses the document and builds the Subscribers; the next fields (`authors:`,
`always:`, `categories:`) are checked here.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from .models import arxiv_id_from
from .names import parse as parse_name
from .text import has_controls, quoted, words

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_PHRASE = 200  # characters in a keyword, exclude phrase or name


def _did_you_mean(key: object, choices: set[str]) -> str:
    close = difflib.get_close_matches(str(key), sorted(choices), n=1)
    return f" (did you mean {quoted(close[0])}?)" if close else ""


@functools.cache
def _zones() -> dict[str, str]:
    """Every IANA zone name this machine knows, by its lower-case form."""
    return {name.lower(): name for name in available_timezones()}


def _zone_did_you_mean(value: object) -> str:
    """' (did you mean 'America/Los_Angeles'?)' for a misspelled zone, in any case."""
    zones = _zones()
    close = difflib.get_close_matches(str(value).lower(), sorted(zones), n=1, cutoff=0.8)
    return f" (did you mean {quoted(zones[close[0]])}?)" if close else ""


# an arXiv category ("cs.RO", "math.AG", "astro-ph.GA", "hep-th", "q-bio.NC") or a group ("cs.*")
_CATEGORY = re.compile(r"^([a-z][a-z-]*)(?:\.(?:[A-Za-z][A-Za-z-]*|\*))?$")
ARXIV_ARCHIVES = frozenset(
    """cs math physics q-bio q-fin stat eess econ astro-ph cond-mat gr-qc hep-ex hep-lat hep-ph
    hep-th math-ph nlin nucl-ex nucl-th quant-ph""".split()  # noqa: SIM905
)
_STORED_ID = re.compile(r"^t:[0-9a-f]{16}$")  # models.paper_identity of a paper without an arXiv id


def _missing_profile_file(entry: str, base: Path) -> bool:
    """A profile_papers entry is a file relative to subscribers.yaml's folder, or the id of a
    stored paper (an arXiv id, or t:<hash>): one shaped like neither and not on disk is a
    mistake the file can be refused for now (an id is looked up in the store when ranking)."""
    if arxiv_id_from(entry) == entry or _STORED_ID.match(entry):
        return False
    try:
        return not (base / entry).exists()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return True


def _as_str_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    return None


def _category_problem(value: str, base: Path) -> str | None:
    found = _CATEGORY.match(value.strip())
    if found and found.group(1) in ARXIV_ARCHIVES:
        return None
    return f"{quoted(value)} is not an arXiv category such as cs.RO, or a group such as cs.*"


def _author_problem(value: str, base: Path) -> str | None:
    if (person := parse_name(value)) is None:
        return f"{quoted(value)} is not a name"
    if not person.first:
        return f"{quoted(value)} has no given name: add one, or its initial (A. Søgaard)"
    return None


def _always_problem(value: str, base: Path) -> str | None:
    if any(len(w) > 1 for w in words(value)):
        return None
    return f"{quoted(value)} has no word of two or more letters or digits to look for"


def _profile_problem(value: str, base: Path) -> str | None:
    if not _missing_profile_file(value.strip(), base):
        return None
    return f"{quoted(value)} is neither a file (relative to {base}) nor the id of a paper such as 2401.12345"


# the checks of each item of a list field (relative paths against `base`): a problem, or None
_ITEM_CHECKS: dict[str, Callable[[str, Path], str | None]] = {
    "categories": _category_problem,
    "authors": _author_problem,
    "always": _always_problem,
    "profile_papers": _profile_problem,
}


def _check_fields(entry: dict[str, Any], who: str, line: Callable[..., str], base: Path) -> list[str]:
    """Problems with one subscriber's (or the defaults') field values; `line(name, *index)` says
    where a field (or an item of its list) is, `base` is the folder profile files are relative to."""
    problems: list[str] = []

    def bad(name: str, what: str, *index: int) -> None:
        problems.append(f"{who}, field {name!r}{line(name, *index)}: {what}")

    lists = ("keywords", "exclude", "always", "authors", "categories")
    for name, longest in (*((n, MAX_PHRASE) for n in lists), ("profile_papers", 1000)):
        if name not in entry:
            continue
        items = [entry[name]] if isinstance(entry[name], str) else entry[name]
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            bad(name, "must be a list of strings")
        elif problem := next(filter(None, (_text_problem(v, longest) for v in items)), None):
            bad(name, problem)
        elif (check := _ITEM_CHECKS.get(name)) is not None:
            indexed = isinstance(entry[name], list)  # a lone string has no item line of its own
            for j, v in enumerate(items):
                if (what := check(v, base)) is not None:
                    bad(name, what, *([j] if indexed else []))
    if "timezone" in entry:
        try:
            ZoneInfo(str(entry["timezone"]))
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, a name too long
            zone = entry["timezone"]
            bad(
                "timezone",
                f"{quoted(zone)} is not an IANA time zone such as Europe/Berlin{_zone_did_you_mean(zone)}",
            )
    if "send_time" in entry and not _HHMM.match(str(entry["send_time"])):
        bad("send_time", f'{quoted(entry["send_time"])} is not a 24-hour HH:MM time such as "07:30"')
    if "max_papers" in entry:
        v = entry["max_papers"]
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 100:
            bad("max_papers", f"{quoted(v)} must be a whole number from 1 to 100")
    for name in ("min_score", "trending_weight"):
        if name in entry:
            v = entry[name]
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                bad(name, f"{quoted(v)} must be a number from 0 to 1")
    for name in ("send_empty", "active", "explore"):
        if name in entry and not isinstance(entry[name], bool):
            bad(name, f"{quoted(entry[name])} must be true or false")
    if "name" in entry:
        if not isinstance(entry["name"], str):
            bad("name", "must be a string")
        elif problem := _text_problem(entry["name"], MAX_PHRASE):
            bad("name", problem)
    return problems


def _text_problem(value: str, longest: int) -> str | None:
    """Why a hand-written text value cannot be used, or None: it reaches mail headers, the
    email and terminals, so it must be visible text on one line."""
    if has_controls(value) or any(ch in value for ch in "\r\n"):
        return f"{quoted(value)} holds control characters or a line break; remove them"
    if not value.strip():
        return "is blank; give some text or remove the entry"
    if len(value) > longest:
        return f"{quoted(value)} is longer than {longest} characters"
    return None
