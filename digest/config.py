"""Settings (flags > DIGEST_* environment > defaults) and subscribers.yaml, as typed objects.

subscribers.yaml is validated as a whole: every problem is collected with the subscriber,
the field and the line, and the file is refused if there is any, so nothing is ever sent
from a half-read file.
"""

from __future__ import annotations

import difflib
import gc
import math
import os
import re
import reprlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from email.utils import getaddresses
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from email_validator import EmailNotValidError, validate_email

from .errors import ConfigError
from .models import Roster, Source, Subscriber
from .text import has_controls, http_url, printable

SECURITY_MODES = ("none", "starttls", "ssl")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_YES, _NO = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}
MIN_SECRET = 16

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60
_repr.maxlist = _repr.maxtuple = _repr.maxdict = 4
_repr.maxlevel = 2


def shown(value: Any) -> str:
    """A user's value quoted in a message: cut short (never expanded in full, whatever its
    nesting) and free of control characters."""
    return printable(_repr.repr(value))


def check_address(value: str, what: str) -> str:
    """One e-mail address given by hand (`--to`), normalized; ConfigError naming `what` if not."""
    if has_controls(value) or any(ch in value for ch in "\r\n"):
        raise ConfigError(f"{what} {shown(value)} holds control characters or line breaks; give one address")
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ConfigError(f"{what} {shown(value)} is not an e-mail address ({exc})") from exc


def _check_sender(raw: str) -> str:
    """DIGEST_FROM: one mailbox, "Name <user@domain>" or "user@domain"; nothing that could add a
    header or a second address."""
    if has_controls(raw) or any(ch in raw for ch in "\r\n"):
        raise ConfigError(
            f"DIGEST_FROM={shown(raw)} holds a line break or control character; give one address "
            'such as "Paper Digest <digest@example.org>"'
        )
    addresses = getaddresses([raw])
    if len(addresses) != 1 or not addresses[0][1]:
        raise ConfigError(f"DIGEST_FROM={shown(raw)} must be exactly one address such as digest@example.org")
    name, addr = addresses[0]
    try:
        validate_email(addr, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ConfigError(f"DIGEST_FROM={shown(raw)} has no usable address ({exc})") from exc
    return f"{name} <{addr}>" if name else addr


def _check_base_url(raw: str) -> str:
    """DIGEST_BASE_URL: the public origin (and path) of `digest serve`, http(s), no query."""
    url = http_url(raw)
    parts = urlsplit(url) if url else None
    if parts is None or parts.query or parts.fragment or "?" in raw or "#" in raw:
        raise ConfigError(
            f"DIGEST_BASE_URL={shown(raw)} must be an http(s) address such as https://digest.example.org "
            "(no query or fragment)"
        )
    return url.rstrip("/")


def _check_secret(raw: str) -> str:
    if len(raw.strip()) < MIN_SECRET:
        raise ConfigError(
            f"DIGEST_SECRET is set but {'empty' if not raw.strip() else 'too short'} (anyone could forge "
            f"links); use at least {MIN_SECRET} random characters, e.g. "
            '`python3 -c "import secrets; print(secrets.token_hex(32))"`, or unset it'
        )
    return raw.strip()


def _check_flag(var: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word not in _YES | _NO:
        raise ConfigError(f"{var}={shown(raw)} must be yes or no (1/0, true/false, on/off)")
    return word in _YES


def _checked_strings(values: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The string settings that can do harm when wrong, checked and normalized."""
    checked: dict[str, Any] = {}
    if "sender" in values:
        checked["sender"] = _check_sender(values["sender"])
    if "base_url" in values:
        checked["base_url"] = _check_base_url(values["base_url"])
    if "DIGEST_SECRET" in env:  # present, even empty, means the operator meant to set it
        checked["secret"] = _check_secret(env["DIGEST_SECRET"])
    if "DIGEST_INGEST_ALLOW_PRIVATE" in env:
        checked["ingest_allow_private"] = _check_flag(
            "DIGEST_INGEST_ALLOW_PRIVATE", env["DIGEST_INGEST_ALLOW_PRIVATE"]
        )
    return checked


@dataclass(frozen=True)
class Settings:
    subscribers: Path = Path("subscribers.yaml")
    db: Path = Path("var/digest.db")
    # DIGEST_DB=postgresql://...: the database past one machine (digest.store.postgres); db unused
    database_url: str | None = field(default=None, repr=False)
    inbox: Path = Path("inbox")
    outbox: Path = Path("var/outbox")
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str = "starttls"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_ca_file: Path | None = None
    sender: str = "Paper Digest <digest@localhost>"
    base_url: str | None = None
    catchup_days: int = 3
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_key_file: Path | None = None
    smtp_concurrency: int = 1  # connections used in parallel
    smtp_rate: float | None = None  # messages per second over all connections; None: no limit
    smtp_retries: int = 3  # retries of a temporary failure (4xx, dropped connection) in one run
    smtp_backoff: float = 2.0  # seconds before the first retry; doubles each time, jittered
    smtp_max_failures: int = 10  # stop the run after this many failed recipients in a row
    now: datetime | None = None  # DIGEST_NOW: pretend it is this instant (tests, rehearsals)
    poll_seconds: float = 60.0  # how often `digest schedule` looks at the inbox and subscribers.yaml
    smtp_timeout: float = 30.0  # DIGEST_SMTP_TIMEOUT: seconds to wait for any one SMTP reply
    # sources: DIGEST_FETCH_TIMEOUT per read, DIGEST_FETCH_DEADLINE per source in all, retries
    # of a 429/5xx/network fault from DIGEST_FETCH_BACKOFF seconds (doubling), and at least
    # DIGEST_FETCH_INTERVAL seconds between two requests to one host (arXiv asks for 3)
    fetch_timeout: float = 30.0
    fetch_deadline: float = 120.0
    fetch_retries: int = 3
    fetch_backoff: float = 2.0
    fetch_interval: float = 3.0
    # DIGEST_CACHE_MB: the embedding cache's bound; the oldest vectors go first (re-embedded if
    # their text comes back). 400 MB holds about a month of phrase vectors at today's volume.
    cache_mb: float = 400.0
    # DIGEST_SECRET: signs the links' tokens; None = a random one kept in the state folder
    secret: str | None = field(default=None, repr=False)
    # DIGEST_INGEST_ALLOW_PRIVATE: URLs may reach loopback and private addresses (tests, intranets)
    ingest_allow_private: bool = False

    model: str = "minilm"  # or "hashing": a tiny lexical stand-in for fast tests
    state: Path | None = None  # DIGEST_STATE: archive, previews, the secret; default beside the database
    templates: Path | None = None  # DIGEST_TEMPLATES: a folder of your own mail templates
    log_level: str | None = None  # DIGEST_LOG_LEVEL: default INFO on a terminal, WARNING under cron

    def clock(self) -> datetime:
        return self.now or datetime.now(UTC)

    @property
    def state_dir(self) -> Path:
        """Where the archive, previews and the secret live: DIGEST_STATE, else beside the database
        (./var with PostgreSQL)."""
        return self.state or (Path("var") if self.database_url else self.db.parent)

    @property
    def database(self) -> str:
        """The database in words: the SQLite file, or the PostgreSQL URL without its password."""
        if self.database_url:
            from .store.postgres import shown

            return shown(self.database_url)
        return str(self.db)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **flags: Any) -> Settings:
        """Flags win over the environment, the environment over defaults."""
        env = os.environ if env is None else env

        def pick(flag: str, var: str) -> str | None:
            value = flags.get(flag)
            if value is not None:
                return str(value)
            return env.get(var) or None

        values: dict[str, Any] = {}
        for name, var in [
            ("subscribers", "DIGEST_SUBSCRIBERS"),
            ("db", "DIGEST_DB"),
            ("inbox", "DIGEST_INBOX"),
            ("outbox", "DIGEST_OUTBOX"),
            ("smtp_ca_file", "DIGEST_SMTP_CA_FILE"),
            ("dkim_key_file", "DIGEST_DKIM_KEY_FILE"),
            ("state", "DIGEST_STATE"),
            ("templates", "DIGEST_TEMPLATES"),
        ]:
            raw = pick(name, var)
            if raw is not None and name == "db" and raw.startswith(("postgresql://", "postgres://")):
                values["database_url"] = raw
            elif raw is not None:
                values[name] = Path(raw)
        for name, var in [
            ("smtp_host", "DIGEST_SMTP_HOST"),
            ("smtp_user", "DIGEST_SMTP_USER"),
            ("smtp_password", "DIGEST_SMTP_PASSWORD"),
            ("sender", "DIGEST_FROM"),
            ("base_url", "DIGEST_BASE_URL"),
            ("model", "DIGEST_MODEL"),
            ("dkim_selector", "DIGEST_DKIM_SELECTOR"),
            ("dkim_domain", "DIGEST_DKIM_DOMAIN"),
        ]:
            raw = pick(name, var)
            if raw is not None:
                values[name] = raw
        level = pick("log_level", "DIGEST_LOG_LEVEL")
        if level is not None:
            if level.upper() not in LOG_LEVELS:
                raise ConfigError(f"DIGEST_LOG_LEVEL={shown(level)} is not one of {', '.join(LOG_LEVELS)}")
            values["log_level"] = level.upper()
        security = (pick("smtp_security", "DIGEST_SMTP_SECURITY") or "starttls").lower()
        if security not in SECURITY_MODES:
            raise ConfigError(
                f"DIGEST_SMTP_SECURITY={shown(security)} is not one of {', '.join(SECURITY_MODES)}"
            )
        values["smtp_security"] = security
        numbers: list[tuple[str, str, type, float]] = [
            ("smtp_port", "DIGEST_SMTP_PORT", int, 1),
            ("catchup_days", "DIGEST_CATCHUP_DAYS", int, 1),
            ("smtp_concurrency", "DIGEST_SMTP_CONCURRENCY", int, 1),
            ("smtp_rate", "DIGEST_SMTP_RATE", float, 0.001),
            ("smtp_retries", "DIGEST_SMTP_RETRIES", int, 0),
            ("smtp_backoff", "DIGEST_SMTP_BACKOFF", float, 0),
            ("smtp_max_failures", "DIGEST_SMTP_MAX_FAILURES", int, 1),
            ("poll_seconds", "DIGEST_POLL_SECONDS", float, 0.1),
            ("smtp_timeout", "DIGEST_SMTP_TIMEOUT", float, 0.1),
            ("fetch_timeout", "DIGEST_FETCH_TIMEOUT", float, 0.1),
            ("fetch_deadline", "DIGEST_FETCH_DEADLINE", float, 0.1),
            ("fetch_retries", "DIGEST_FETCH_RETRIES", int, 0),
            ("fetch_backoff", "DIGEST_FETCH_BACKOFF", float, 0),
            ("fetch_interval", "DIGEST_FETCH_INTERVAL", float, 0),
            ("cache_mb", "DIGEST_CACHE_MB", float, 1),
        ]
        for name, var, kind, least in numbers:
            raw = pick(name, var)
            if raw is None:
                continue
            try:
                value = kind(raw)
            except ValueError as exc:
                raise ConfigError(
                    f"{var}={shown(raw)} is not a {'whole ' if kind is int else ''}number"
                ) from exc
            if not math.isfinite(value) or value < least:
                raise ConfigError(f"{var}={shown(raw)} must be at least {least}")
            values[name] = value
        values.update(_checked_strings(values, env))
        raw_now = pick("now", "DIGEST_NOW")
        if raw_now is not None:
            try:
                now = datetime.fromisoformat(raw_now.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ConfigError(
                    f"DIGEST_NOW={shown(raw_now)} is not an ISO time such as 2026-11-20T07:00:00Z"
                ) from exc
            values["now"] = now if now.tzinfo else now.replace(tzinfo=UTC)
        dkim = [values.get("dkim_selector"), values.get("dkim_domain"), values.get("dkim_key_file")]
        if any(dkim) and not all(dkim):
            raise ConfigError(
                "DKIM needs all of DIGEST_DKIM_SELECTOR, DIGEST_DKIM_DOMAIN and DIGEST_DKIM_KEY_FILE"
            )
        return cls(**values)


# --- subscribers.yaml -------------------------------------------------------------------

_SUBSCRIBER_FIELDS = {f.name for f in fields(Subscriber)}
_DEFAULTABLE = _SUBSCRIBER_FIELDS - {"id", "email"}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_PHRASE = 200  # characters in a keyword, exclude phrase or name
MAX_SUBSCRIBERS_BYTES = 32 * 2**20  # 20,000 subscribers take about 2 MB; 300,000 fit


def _line_of(node: yaml.Node | None, *path: str | int) -> int | None:
    """1-based line of the node at `path` inside a composed YAML document, if found."""
    for key in path:
        if node is None:
            return None
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            node = node.value[key] if key < len(node.value) else None
        else:
            return None
    return None if node is None else node.start_mark.line + 1


def _did_you_mean(key: object, choices: set[str]) -> str:
    close = difflib.get_close_matches(str(key), sorted(choices), n=1)
    return f" (did you mean {shown(close[0])}?)" if close else ""


def _as_str_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    return None


def _check_fields(entry: dict[str, Any], who: str, line: Any) -> list[str]:
    """Problems with one subscriber's (or the defaults') field values."""
    problems: list[str] = []

    def bad(name: str, what: str) -> None:
        problems.append(f"{who}, field {name!r}{line(name)}: {what}")

    for name, longest in (("keywords", MAX_PHRASE), ("exclude", MAX_PHRASE), ("profile_papers", 1000)):
        if name not in entry:
            continue
        items = [entry[name]] if isinstance(entry[name], str) else entry[name]
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            bad(name, "must be a list of strings")
        elif problem := next(filter(None, (_text_problem(v, longest) for v in items)), None):
            bad(name, problem)
    if "timezone" in entry:
        try:
            ZoneInfo(str(entry["timezone"]))
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, a name too long
            bad("timezone", f"{shown(entry['timezone'])} is not an IANA time zone such as Europe/Berlin")
    if "send_time" in entry and not _HHMM.match(str(entry["send_time"])):
        bad("send_time", f'{shown(entry["send_time"])} is not a 24-hour HH:MM time such as "07:30"')
    if "max_papers" in entry:
        v = entry["max_papers"]
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 100:
            bad("max_papers", f"{shown(v)} must be a whole number from 1 to 100")
    for name in ("min_score", "trending_weight"):
        if name in entry:
            v = entry[name]
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                bad(name, f"{shown(v)} must be a number from 0 to 1")
    for name in ("send_empty", "active"):
        if name in entry and not isinstance(entry[name], bool):
            bad(name, f"{shown(entry[name])} must be true or false")
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
        return f"{shown(value)} holds control characters or a line break; remove them"
    if not value.strip():
        return "is blank; give some text or remove the entry"
    if len(value) > longest:
        return f"{shown(value)} is longer than {longest} characters"
    return None


class _Checks:
    """What a hand-edited subscriber list never needs and an attacker would use, refused: a key
    given twice (the second silently won), and aliases to lists or mappings (nested, they expand
    exponentially: the "billion laughs")."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
            line = key_node.start_mark.line + 1
            if isinstance(key, str) and key in seen:
                raise _Refused(
                    f"line {line}: duplicate key {shown(key)} (first on line {seen[key]}); keep one of them"
                )
            if isinstance(key, str):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


class _Loader(_Checks, yaml.SafeLoader):
    """The pure-Python loader: it sees each alias as it composes, so it names the alias and its
    line. Used for the message when the fast loader refuses a file or finds it broken."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if isinstance(node, yaml.CollectionNode):
                raise _Refused(
                    f"line {event.start_mark.line + 1}: the alias *{shown(event.anchor)} repeats a list "
                    "or mapping; write it out, or put shared settings under 'defaults:'"
                )
        return super().compose_node(parent, index)


class _FastLoader(_Checks, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser and composer (20,000 subscribers in a second or two, against half a
    minute in pure Python), with the same refusals. Composing cannot expand an alias (a node is
    shared, not copied); constructing the same list or mapping a second time is the alias."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if isinstance(node, yaml.CollectionNode) and node in self.constructed_objects:
            raise _Refused("an alias repeats a list or mapping")
        return super().construct_object(node, deep=deep)


class _Refused(yaml.YAMLError):
    pass


def _load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """The document and its composed root (for line numbers). The fast loader reads a good file;
    a file it refuses or cannot parse is read again by the pure-Python one, whose message says
    exactly where (it stops at the first alias or error, so a bomb stays cheap)."""
    try:
        return _compose_and_construct(_FastLoader, text)
    except yaml.YAMLError:
        return _compose_and_construct(_Loader, text)


def _compose_and_construct(kind: type, text: str) -> tuple[Any, yaml.Node | None]:
    loader = kind(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()


_TOP_LEVEL = {"defaults", "subscribers", "sources"}


def _document(text: str, path: str) -> tuple[dict[str, Any], yaml.Node | None]:
    """The file as a mapping with a 'subscribers:' list, or ConfigError."""
    try:
        data, root = _load_yaml(text)
    except _Refused as exc:
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


def parse_subscribers(text: str, path: str = "subscribers.yaml") -> list[Subscriber]:
    """Every subscriber in the file, or ConfigError listing every problem found."""
    return list(parse_roster(text, path).subscribers)


def parse_roster(text: str, path: str = "subscribers.yaml") -> Roster:
    """The whole file, subscribers and sources, read once; ConfigError listing every problem."""
    with _collector_paused():
        return _parse_roster(text, path)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Reading 20,000 subscribers makes millions of small objects, none of them garbage: the
    cycle collector would walk them all again and again (it halves the time to leave it off for
    the read; what it would have found is collected after)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _parse_roster(text: str, path: str) -> Roster:
    data, root = _document(text, path)
    unknown_top = set(data) - _TOP_LEVEL
    problems = [
        f"{path}: unknown top-level key {shown(k)}{_did_you_mean(k, _TOP_LEVEL)}"
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
            f"{path}: defaults, unknown field {shown(key)}{_did_you_mean(key, _DEFAULTABLE)}"
            f" (line {_line_of(root, 'defaults', key)})"
        )

    def defaults_line(name: str) -> str:
        n = _line_of(root, "defaults", name)
        return f" (line {n})" if n else ""

    problems += _check_fields(
        {k: v for k, v in defaults.items() if k in _DEFAULTABLE}, f"{path}: defaults", defaults_line
    )

    subscribers: list[Subscriber] = []
    seen_ids: dict[str, int] = {}
    seen_emails: dict[str, str] = {}
    for i, entry in enumerate(data["subscribers"]):
        entry_line = _line_of(root, "subscribers", i)
        if not isinstance(entry, dict):
            problems.append(f"{path}: subscriber #{i + 1} (line {entry_line}) must be a mapping")
            continue
        sid = entry.get("id")
        who = f"{path}: subscriber {shown(sid)}" if sid else f"{path}: subscriber #{i + 1}"

        def line(name: str, i: int = i) -> str:
            n = _line_of(root, "subscribers", i, name) or _line_of(root, "subscribers", i)
            return f" (line {n})" if n else ""

        before = len(problems)
        for key in sorted(set(entry) - _SUBSCRIBER_FIELDS, key=str):
            problems.append(
                f"{who}: unknown field {shown(key)}{_did_you_mean(key, _SUBSCRIBER_FIELDS)}{line(key)}"
            )
        if not isinstance(sid, str) or not _SLUG.match(sid):
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
                email = validate_email(email, check_deliverability=False).normalized
            except EmailNotValidError as exc:
                problems.append(f"{who}, field 'email'{line('email')}: {exc}")
            else:
                if email.lower() in seen_emails:
                    problems.append(
                        f"{who}, field 'email'{line('email')}: {email} is already used by "
                        f"{shown(seen_emails[email.lower()])}"
                    )
                seen_emails[email.lower()] = str(sid)
        merged = {**{k: v for k, v in defaults.items() if k in _DEFAULTABLE}, **entry}
        problems += _check_fields({k: v for k, v in entry.items() if k in _SUBSCRIBER_FIELDS}, who, line)
        if not _as_str_list(merged.get("keywords") or []) and not _as_str_list(
            merged.get("profile_papers") or []
        ):
            problems.append(f"{who}, field 'keywords'{line('keywords')}: required (or give profile_papers)")
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
                timezone=str(merged.get("timezone", "UTC")),
                send_time=str(merged.get("send_time", "07:00")),
                max_papers=int(merged.get("max_papers", 10)),
                min_score=float(merged.get("min_score", 0.0)),
                trending_weight=float(merged.get("trending_weight", 0.0)),
                send_empty=bool(merged.get("send_empty", False)),
                active=bool(merged.get("active", True)),
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
        line = _line_of(root, "sources", i)
        where = f"{path}: sources #{i + 1} (line {line})"
        url, name = (entry, None) if isinstance(entry, str) else (None, None)
        if isinstance(entry, dict):
            unknown = set(entry) - {"url", "name"}
            if unknown:
                problems.append(
                    f"{where}: unknown field {shown(sorted(map(str, unknown))[0])}; use url and name"
                )
                continue
            url, name = entry.get("url"), entry.get("name")
        if not isinstance(url, str) or http_url(url.replace("{date}", "2026-01-01")) is None:
            problems.append(
                f"{where}: {shown(url)} is not an http(s) URL (a {{date}} placeholder is allowed)"
            )
            continue
        if name is not None and (not isinstance(name, str) or _text_problem(name, 80)):
            problems.append(f"{where}, field 'name': must be a short text")
            continue
        name = name or _name_for(url)
        if name in names:
            problems.append(f"{where}: the name {shown(name)} is used twice; give each source its own name")
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
    data, root = _document(read_config_text(path), str(path))
    sources, problems = _source_problems(data.get("sources"), root, str(path))
    if problems:
        raise ConfigError("\n".join(problems))
    return sources


def load_subscribers(path: Path) -> list[Subscriber]:
    return list(load_roster(path).subscribers)


def load_roster(path: Path) -> Roster:
    """subscribers.yaml, subscribers and sources, read and checked once."""
    return parse_roster(read_config_text(path), str(path))


def read_config_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_SUBSCRIBERS_BYTES:
            raise ConfigError(
                f"{path}: {size / 2**20:.1f} MB is over the {MAX_SUBSCRIBERS_BYTES // 2**20} MB limit for "
                "a subscriber list; is this the right file?"
            )
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: not found; create it (see README, 'Subscribe') or set DIGEST_SUBSCRIBERS"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    return text
