"""Settings (flags > DIGEST_* environment > defaults) and subscribers.yaml, as typed objects.

subscribers.yaml is validated as a whole: every problem is collected with the subscriber,
the field and the line, and the file is refused if there is any, so nothing is ever sent
from a half-read file.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from email_validator import EmailNotValidError, validate_email

from .errors import ConfigError
from .models import Subscriber

SECURITY_MODES = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class Settings:
    subscribers: Path = Path("subscribers.yaml")
    db: Path = Path("var/digest.db")
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

    def clock(self) -> datetime:
        return self.now or datetime.now(UTC)

    model: str = "minilm"  # or "hashing": a tiny lexical stand-in for fast tests

    @property
    def state_dir(self) -> Path:
        """Where the archive and other state live: beside the database."""
        return self.db.parent

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
        ]:
            raw = pick(name, var)
            if raw is not None:
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
        security = (pick("smtp_security", "DIGEST_SMTP_SECURITY") or "starttls").lower()
        if security not in SECURITY_MODES:
            raise ConfigError(f"DIGEST_SMTP_SECURITY={security!r} is not one of {', '.join(SECURITY_MODES)}")
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
        ]
        for name, var, kind, least in numbers:
            raw = pick(name, var)
            if raw is None:
                continue
            try:
                value = kind(raw)
            except ValueError as exc:
                raise ConfigError(f"{var}={raw!r} is not a {'whole ' if kind is int else ''}number") from exc
            if value < least:
                raise ConfigError(f"{var}={raw!r} must be at least {least}")
            values[name] = value
        raw_now = pick("now", "DIGEST_NOW")
        if raw_now is not None:
            try:
                now = datetime.fromisoformat(raw_now.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ConfigError(
                    f"DIGEST_NOW={raw_now!r} is not an ISO time such as 2026-11-20T07:00:00Z"
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


def _did_you_mean(key: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


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

    for name in ("keywords", "exclude", "profile_papers"):
        if name in entry and _as_str_list(entry[name]) is None:
            bad(name, "must be a list of strings")
    if "timezone" in entry:
        try:
            ZoneInfo(str(entry["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            bad("timezone", f"{entry['timezone']!r} is not an IANA time zone such as Europe/Berlin")
    if "send_time" in entry and not _HHMM.match(str(entry["send_time"])):
        bad("send_time", f'{entry["send_time"]!r} is not a 24-hour HH:MM time such as "07:30"')
    if "max_papers" in entry:
        v = entry["max_papers"]
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 100:
            bad("max_papers", f"{v!r} must be a whole number from 1 to 100")
    for name in ("min_score", "trending_weight"):
        if name in entry:
            v = entry[name]
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                bad(name, f"{v!r} must be a number from 0 to 1")
    for name in ("send_empty", "active"):
        if name in entry and not isinstance(entry[name], bool):
            bad(name, f"{entry[name]!r} must be true or false")
    if "name" in entry and not isinstance(entry["name"], str):
        bad("name", "must be a string")
    return problems


def parse_subscribers(text: str, path: str = "subscribers.yaml") -> list[Subscriber]:
    """Every subscriber in the file, or ConfigError listing every problem found."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("subscribers"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'subscribers:' list (see README)")
    unknown_top = set(data) - {"defaults", "subscribers"}
    problems = [
        f"{path}: unknown top-level key {k!r}{_did_you_mean(k, {'defaults', 'subscribers'})}"
        for k in sorted(unknown_top)
    ]
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        problems.append(f"{path}: 'defaults' must be a mapping")
        defaults = {}
    for key in sorted(set(defaults) - _DEFAULTABLE):
        problems.append(
            f"{path}: defaults, unknown field {key!r}{_did_you_mean(key, _DEFAULTABLE)}"
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
        who = f"{path}: subscriber {sid!r}" if sid else f"{path}: subscriber #{i + 1}"

        def line(name: str, i: int = i) -> str:
            n = _line_of(root, "subscribers", i, name) or _line_of(root, "subscribers", i)
            return f" (line {n})" if n else ""

        before = len(problems)
        for key in sorted(set(entry) - _SUBSCRIBER_FIELDS):
            problems.append(
                f"{who}: unknown field {key!r}{_did_you_mean(key, _SUBSCRIBER_FIELDS)}{line(key)}"
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
                        f"{seen_emails[email.lower()]!r}"
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
    return subscribers


def load_subscribers(path: Path) -> list[Subscriber]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: not found; create it (see README, 'Subscribe') or set DIGEST_SUBSCRIBERS"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    return parse_subscribers(text, str(path))
