"""subscribers.yaml: who gets the morning digest, and the sources the morning job fetches.

    parse_roster(text) / load_roster(path)   the whole file checked at once: every problem is
                        collected with the subscriber, the field and the line, and the file is
                        refused if there is any, so nothing is ever sent from a half-read file
    SubscriberFile      the file as a long-running process holds it (`digest schedule`,
                        `digest serve`): read once, kept as the last good version, and read
                        again when it changes

    SubscriberFile.refresh()   one stat of the file (and, every RECHECK seconds, its bytes'
                hash): unchanged, nothing more is done; changed, it is parsed; a broken edit,
                a syntax error or a half-saved file included, is logged once and the last good
                version stays in use until the file is fixed
    SubscriberFile.subscriber(id)   a lookup in an index built once per version

A one-shot command (`digest run`, `digest send`) reads the file once through load_roster and
refuses a broken one instead. What each field may hold is checked in digest.roster_fields.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from email_validator import EmailNotValidError

from . import yamlfile
from .addresses import mailbox
from .errors import ConfigError, NotFoundError
from .models import Roster, Source, Subscriber
from .roster_fields import _as_str_list, _check_fields, _did_you_mean, _text_problem
from .text import SLUG, http_url, quoted

log = logging.getLogger("digest")

_SUBSCRIBER_FIELDS = {f.name for f in fields(Subscriber)}
_DEFAULTABLE = _SUBSCRIBER_FIELDS - {"id", "email"}
_WANTS = ("keywords", "profile_papers", "authors", "always")  # a subscriber names at least one
MAX_SUBSCRIBERS_BYTES = 32 * 2**20  # 20,000 subscribers take about 2 MB; 300,000 fit

_TOP_LEVEL = {"defaults", "subscribers", "sources"}


def parse_subscribers(
    text: str, path: str = "subscribers.yaml", *, smtp_host: str | None = None
) -> list[Subscriber]:
    """Every subscriber in the file, or ConfigError listing every problem found."""
    return list(parse_roster(text, path, smtp_host=smtp_host).subscribers)


def parse_roster(text: str, path: str = "subscribers.yaml", *, smtp_host: str | None = None) -> Roster:
    """The whole file, subscribers and sources, read once; ConfigError listing every problem.
    `smtp_host` (DIGEST_SMTP_HOST; None: the outbox) decides whether an address at a host
    without a dot (root@localhost) can be delivered (digest.addresses.mailbox)."""
    with yamlfile.collector_paused():
        return _parse_roster(text, path, smtp_host)


def _document(text: str, path: str) -> tuple[dict[str, Any], yaml.Node | None]:
    """The file as a mapping with a 'subscribers:' list, or ConfigError."""
    try:
        data, root = yamlfile.load(text)
    except yamlfile.Refused as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("subscribers"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'subscribers:' list (see README)")
    return data, root


def _parse_roster(text: str, path: str, smtp_host: str | None) -> Roster:
    data, root = _document(text, path)
    unknown_top = set(data) - _TOP_LEVEL
    problems = [
        f"{path}: unknown top-level key {quoted(k)}{_did_you_mean(k, _TOP_LEVEL)}"
        for k in sorted(unknown_top, key=str)
    ]
    sources, source_problems = _source_problems(data.get("sources"), root, path)
    problems += source_problems
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        problems.append(f"{path}: 'defaults' must be a mapping")
        defaults = {}
    for key in sorted(set(defaults) - _DEFAULTABLE, key=str):
        problems.append(
            f"{path}: defaults, unknown field {quoted(key)}{_did_you_mean(key, _DEFAULTABLE)}"
            f" (line {yamlfile.line_of(root, 'defaults', key)})"
        )

    def defaults_line(name: str, *index: int) -> str:
        n = yamlfile.line_of(root, "defaults", name, *index) or yamlfile.line_of(root, "defaults", name)
        return f" (line {n})" if n else ""

    base = Path(path).resolve().parent  # profile_papers are relative to the file's folder
    problems += _check_fields(
        {k: v for k, v in defaults.items() if k in _DEFAULTABLE}, f"{path}: defaults", defaults_line, base
    )

    subscribers: list[Subscriber] = []
    seen_ids: dict[str, int] = {}
    seen_emails: dict[str, str] = {}
    for i, entry in enumerate(data["subscribers"]):
        entry_line = yamlfile.line_of(root, "subscribers", i)
        if not isinstance(entry, dict):
            problems.append(f"{path}: subscriber #{i + 1} (line {entry_line}) must be a mapping")
            continue
        sid = entry.get("id")
        who = f"{path}: subscriber {quoted(sid)}" if sid else f"{path}: subscriber #{i + 1}"

        def line(name: str, *index: int, i: int = i) -> str:
            n = (
                yamlfile.line_of(root, "subscribers", i, name, *index)
                or yamlfile.line_of(root, "subscribers", i, name)
                or yamlfile.line_of(root, "subscribers", i)
            )
            return f" (line {n})" if n else ""

        before = len(problems)
        for key in sorted(set(entry) - _SUBSCRIBER_FIELDS, key=str):
            problems.append(
                f"{who}: unknown field {quoted(key)}{_did_you_mean(key, _SUBSCRIBER_FIELDS)}{line(key)}"
            )
        if not isinstance(sid, str) or not SLUG.match(sid):
            problems.append(f"{who}, field 'id'{line('id')}: required, a lower-case slug such as alice")
        elif sid in seen_ids:
            problems.append(f"{who}, field 'id'{line('id')}: duplicate of subscriber #{seen_ids[sid]}")
        else:
            seen_ids[sid] = i + 1
        email = entry.get("email")
        if not isinstance(email, str):
            problems.append(f"{who}, field 'email'{line('email')}: required")
        else:
            try:
                email = mailbox(email, smtp_host)
            except EmailNotValidError as exc:
                problems.append(f"{who}, field 'email'{line('email')}: {exc}")
            else:
                if email.lower() in seen_emails:
                    problems.append(
                        f"{who}, field 'email'{line('email')}: {email} is already used by "
                        f"{quoted(seen_emails[email.lower()])}"
                    )
                seen_emails[email.lower()] = str(sid)
        merged = {**{k: v for k, v in defaults.items() if k in _DEFAULTABLE}, **entry}
        problems += _check_fields(
            {k: v for k, v in entry.items() if k in _SUBSCRIBER_FIELDS}, who, line, base
        )
        if not any(_as_str_list(merged.get(k) or []) for k in _WANTS):
            problems.append(
                f"{who}, field 'keywords'{line('keywords')}: required (or profile_papers, authors or always)"
            )
        if len(problems) > before:
            continue
        subscribers.append(
            Subscriber(
                id=sid,
                email=email,
                name=merged.get("name"),
                keywords=_as_str_list(merged.get("keywords") or []) or (),
                exclude=_as_str_list(merged.get("exclude") or []) or (),
                profile_papers=_as_str_list(merged.get("profile_papers") or []) or (),
                authors=_as_str_list(merged.get("authors") or []) or (),
                always=_as_str_list(merged.get("always") or []) or (),
                categories=_as_str_list(merged.get("categories") or []) or (),
                timezone=str(merged.get("timezone", "UTC")),
                send_time=str(merged.get("send_time", "07:00")),
                max_papers=int(merged.get("max_papers", 10)),
                min_score=float(merged.get("min_score", 0.0)),
                trending_weight=float(merged.get("trending_weight", 0.0)),
                send_empty=bool(merged.get("send_empty", False)),
                active=bool(merged.get("active", True)),
                explore=merged.get("explore"),
            )
        )
    if problems:
        raise ConfigError("\n".join(problems))
    return Roster(tuple(subscribers), tuple(sources))


# --- sources: where the morning job fetches its papers -----------------------------------


def _source_problems(value: Any, root: yaml.Node | None, path: str) -> tuple[list[Source], list[str]]:
    """The `sources:` list as Source objects, and every problem with it."""
    if value is None:
        return [], []
    if not isinstance(value, list):
        return [], [f"{path}: 'sources' must be a list of URLs or {{url, name}} entries"]
    sources: list[Source] = []
    problems: list[str] = []
    names: set[str] = set()
    for i, entry in enumerate(value):
        line = yamlfile.line_of(root, "sources", i)
        where = f"{path}: sources #{i + 1} (line {line})"
        url, name = (entry, None) if isinstance(entry, str) else (None, None)
        if isinstance(entry, dict):
            unknown = set(entry) - {"url", "name"}
            if unknown:
                problems.append(
                    f"{where}: unknown field {quoted(sorted(map(str, unknown))[0])}; use url and name"
                )
                continue
            url, name = entry.get("url"), entry.get("name")
        if not isinstance(url, str) or http_url(url.replace("{date}", "2026-01-01")) is None:
            problems.append(
                f"{where}: {quoted(url)} is not an http(s) URL (a {{date}} placeholder is allowed)"
            )
            continue
        if name is not None and (not isinstance(name, str) or _text_problem(name, 80)):
            problems.append(f"{where}, field 'name': must be a short text")
            continue
        name = name or _name_for(url)
        if name in names:
            problems.append(f"{where}: the name {quoted(name)} is used twice; give each source its own name")
            continue
        names.add(name)
        sources.append(Source(name=name, url=url.strip()))
    return sources, problems


def _name_for(url: str) -> str:
    parts = urlsplit(url)
    tail = [p for p in parts.path.split("/") if p and "{" not in p][-1:]
    return "/".join([parts.hostname or "source", *tail])


def load_sources(path: Path) -> list[Source]:
    """The `sources:` of subscribers.yaml (empty when there are none); ConfigError if invalid."""
    data, root = _document(read_text(path), str(path))
    sources, problems = _source_problems(data.get("sources"), root, str(path))
    if problems:
        raise ConfigError("\n".join(problems))
    return sources


def find(subscribers: Iterable[Subscriber], sid: str) -> Subscriber:
    """The subscriber `sid`, or NotFoundError naming the ones there are."""
    subscribers = list(subscribers)
    for s in subscribers:
        if s.id == sid:
            return s
    known = ", ".join(s.id for s in subscribers) or "none"
    raise NotFoundError(f"no subscriber {sid!r} in the subscribers file (known: {known})")


def load_subscribers(path: Path, *, smtp_host: str | None = None) -> list[Subscriber]:
    return list(load_roster(path, smtp_host=smtp_host).subscribers)


def load_roster(path: Path, *, smtp_host: str | None = None) -> Roster:
    """subscribers.yaml, subscribers and sources, read and checked once (`smtp_host`: as
    parse_roster's)."""
    return parse_roster(read_text(path), str(path), smtp_host=smtp_host)


def read_text(path: Path) -> str:
    return yamlfile.read_text(
        path,
        limit=MAX_SUBSCRIBERS_BYTES,
        missing="create it (see README, 'Subscribe') or set DIGEST_SUBSCRIBERS",
    )


# --- the file as a long-running process holds it ----------------------------------------

RECHECK = 5.0  # seconds after which the bytes are hashed again even if the stat looks the same


class SubscriberFile:
    """The last good version of one subscribers.yaml; safe to share between threads."""

    def __init__(self, path: Path, *, required: bool = True, smtp_host: str | None = None):
        """Read the file now. `required`: a file that cannot be used raises ConfigError (the
        scheduler refuses to start on it); otherwise the problem is logged and the roster is
        empty until the file is fixed (`digest serve` still answers, and says a link does not
        work). `smtp_host`: as parse_roster's."""
        self.path = path
        self.smtp_host = smtp_host
        self.problem: str | None = None  # why the file on disk is not the version in use
        self._roster = Roster(())
        self._index: dict[str, Subscriber] = {}
        self._stat: tuple[int, int, int] | None = None
        self._hash: str | None = None
        self._said: tuple[str | None, str] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        if required:
            stat, text = self._look(), read_text(path)
            self._take(parse_roster(text, str(path), smtp_host=smtp_host), _sha(text))
            self._stat, self._checked = stat, time.monotonic()
        else:
            self.refresh()

    @property
    def roster(self) -> Roster:
        return self._roster

    @property
    def subscribers(self) -> list[Subscriber]:
        return list(self._roster.subscribers)

    def subscriber(self, subscriber_id: str) -> Subscriber | None:
        return self._index.get(subscriber_id)

    def refresh(self) -> bool:
        """Take the file's new version if it changed and is good; True if one was taken."""
        stat = self._look()
        if stat == self._stat and time.monotonic() - self._checked < RECHECK:
            return False
        with self._lock:  # one thread parses; the others go on with the version in use
            self._stat, self._checked = stat, time.monotonic()
            try:
                text = read_text(self.path)
            except ConfigError as exc:
                return self._refused(exc, None)
            digest = _sha(text)
            if digest == self._hash:
                return False
            try:
                roster = parse_roster(text, str(self.path), smtp_host=self.smtp_host)
            except ConfigError as exc:
                return self._refused(exc, digest)
            self._take(roster, digest)
            log.info(
                "reloaded %s: %d subscribers, %d sources",
                self.path,
                len(roster.subscribers),
                len(roster.sources),
            )
            return True

    def _take(self, roster: Roster, digest: str) -> None:
        self._index = roster.by_id()
        self._roster = roster
        self._hash = digest
        self.problem = self._said = None

    def _refused(self, exc: ConfigError, digest: str | None) -> bool:
        """Keep the version in use; say why once per broken version, not at every look."""
        first, *more = str(exc).splitlines()
        self.problem = first + (f" (and {len(more)} more problems)" if more else "")
        if (digest, self.problem) != self._said:
            log.error("not reloaded, still using the last good version: %s", self.problem)
            self._said = (digest, self.problem)
        if digest is not None:
            self._hash = digest  # the same broken bytes are not parsed again
        return False

    def _look(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


__all__ = ["SubscriberFile"]
