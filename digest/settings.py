"""Settings: flags win over the DIGEST_* environment, the environment over defaults. Secrets come
only from the environment. Everything is parsed and checked once, in `Settings.load`, into
groups that each part of digest takes whole:

    settings.smtp      how mail leaves: the server, security, login, pace, retries, DKIM, From
    settings.fetch     how the configured sources are fetched (and whether URLs may be private)
    settings.web       the public origin of `digest serve` and the links' secret
    settings.store     the database (a SQLite file or a PostgreSQL URL), the state folder, the cache
    settings.ranking   the embedding model and the catch-up window
    settings.bounces   the bounce mailbox, the VERP return path, the soft-bounce rule, the SES webhook

and the few that belong to the run itself (subscribers.yaml, the inbox and outbox, templates,
the clock, the log level).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.utils import getaddresses
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .addresses import LOCAL_ONLY, check_address, check_sender, is_this_machine, mail_address
from .errors import ConfigError
from .text import http_url, quoted

SECURITY_MODES = ("none", "starttls", "ssl")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_YES, _NO = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}
MIN_SECRET = 16
DEFAULT_SENDER = "Paper Digest <digest@localhost>"


@dataclass(frozen=True)
class DKIM:
    selector: str
    domain: str
    key_file: Path


@dataclass(frozen=True)
class SMTPSettings:
    """DIGEST_SMTP_*, DIGEST_FROM and DIGEST_DKIM_*. No host: mail goes to the outbox."""

    host: str | None = None
    port: int | None = None
    security: str = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    timeout: float = 30.0  # seconds to wait for any one SMTP reply
    concurrency: int = 1  # connections used in parallel
    rate: float | None = None  # messages per second over all connections (and workers); None: no limit
    retries: int = 3  # retries of a temporary failure (4xx, dropped connection) in one run
    backoff: float = 2.0  # seconds before the first retry; doubles each time, jittered
    max_failures: int = 10  # stop the run after this many failed recipients in a row
    sender: str = DEFAULT_SENDER  # DIGEST_FROM, checked: one mailbox
    dkim: DKIM | None = None

    @property
    def local(self) -> bool:
        """Mail stays on this machine (the outbox, or a server on loopback): addresses at a host
        without a dot (root@localhost, me@myhost) can be delivered."""
        return is_this_machine(self.host)

    @cached_property
    def from_address(self) -> Address:
        """DIGEST_FROM as a header address, parsed once."""
        name, addr = getaddresses([self.sender])[0]
        if "@" not in addr:
            raise ConfigError(f"DIGEST_FROM={quoted(self.sender)} has no e-mail address")
        return mail_address(name, addr)


@dataclass(frozen=True)
class FetchSettings:
    """DIGEST_FETCH_*: a per-read timeout, a deadline per source, retries of a 408/429/5xx or a
    network fault from `backoff` seconds (doubling), at least `interval` seconds between two
    requests to one host (arXiv asks for 3); DIGEST_INGEST_ALLOW_PRIVATE lets URLs reach
    loopback and private addresses (tests, intranets)."""

    timeout: float = 30.0
    deadline: float = 120.0
    retries: int = 3
    backoff: float = 2.0
    interval: float = 3.0
    allow_private: bool = False


@dataclass(frozen=True)
class WebSettings:
    """DIGEST_BASE_URL, the public origin of `digest serve` (no links without it), and
    DIGEST_SECRET, which signs the links' tokens (None: a random one kept in the state folder)."""

    base_url: str | None = None
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StoreSettings:
    """DIGEST_DB (a SQLite file, or a postgresql:// URL past one machine), DIGEST_STATE (the
    archive, previews and secret: beside the database by default) and DIGEST_CACHE_MB, the
    embedding cache's bound (the oldest vectors go first; 400 MB is about a month of phrases)."""

    db: Path = Path("var/digest.db")
    url: str | None = field(default=None, repr=False)  # postgresql://...: db is then unused
    state: Path | None = None
    cache_mb: float = 400.0

    @property
    def state_dir(self) -> Path:
        """Where the archive, previews and the secret live: DIGEST_STATE, else beside the database
        (./var with PostgreSQL)."""
        return self.state or (Path("var") if self.url else self.db.parent)

    @property
    def description(self) -> str:
        """The database in words: the SQLite file, or the PostgreSQL URL without its password."""
        return redacted(self.url) if self.url else str(self.db)


@dataclass(frozen=True)
class BounceSettings:
    """Bounces and complaints (digest.delivery.bounces): DIGEST_BOUNCE_MAILBOX (a Maildir folder
    or an imap:// / imaps:// URL, its password in DIGEST_BOUNCE_PASSWORD), DIGEST_BOUNCE_ADDRESS
    (bounces@your.domain: each digest's return path becomes bounces+TOKEN@your.domain, VERP),
    DIGEST_SOFT_BOUNCES within DIGEST_SOFT_BOUNCE_DAYS (soft bounces that stop the mail), and the
    Amazon SES webhook's DIGEST_SES_TOPIC_ARNS (the only SNS topics it believes) and
    DIGEST_SES_AUTO_CONFIRM (confirm its subscription by itself)."""

    mailbox: str | None = None
    password: str | None = field(default=None, repr=False)
    address: str | None = None
    soft_limit: int = 3
    soft_days: int = 7
    ses_topics: tuple[str, ...] = ()
    ses_auto_confirm: bool = True


@dataclass(frozen=True)
class RankingSettings:
    """DIGEST_MODEL (minilm, the bundled all-MiniLM-L6-v2; hashing, a tiny lexical stand-in for
    fast tests; a folder holding a sentence-transformers model; a hub name, fetched only with
    DIGEST_MODEL_DOWNLOAD=1) and DIGEST_CATCHUP_DAYS (papers of earlier days never sent stay
    eligible)."""

    model: str = "minilm"
    catchup_days: int = 3
    download: bool = False  # DIGEST_MODEL_DOWNLOAD: the operator allows fetching DIGEST_MODEL


@dataclass(frozen=True)
class Settings:
    subscribers: Path = Path("subscribers.yaml")
    inbox: Path = Path("inbox")
    outbox: Path = Path("var/outbox")
    templates: Path | None = None  # DIGEST_TEMPLATES: a folder of your own mail templates
    now: datetime | None = None  # DIGEST_NOW: pretend it is this instant (tests, rehearsals)
    poll_seconds: float = 60.0  # how often `digest schedule` looks at the inbox and subscribers.yaml
    log_level: str | None = None  # DIGEST_LOG_LEVEL: default INFO on a terminal, WARNING under cron
    smtp: SMTPSettings = field(default_factory=SMTPSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    web: WebSettings = field(default_factory=WebSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    ranking: RankingSettings = field(default_factory=RankingSettings)
    bounces: BounceSettings = field(default_factory=BounceSettings)

    def clock(self) -> datetime:
        return self.now or datetime.now(UTC)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **flags: Any) -> Settings:
        """Flags win over the environment, the environment over defaults. Flags are named as
        the command line's (`subscribers`, `db`, `inbox`, `outbox`) and, for tests and
        rehearsals, as the environment's without its DIGEST_ (`model`, `state`, `now`...)."""
        return _Reader(os.environ if env is None else env, flags).settings()


class _Reader:
    """One reading of the environment and flags into Settings; ConfigError naming the variable."""

    def __init__(self, env: Mapping[str, str], flags: Mapping[str, Any]):
        self.env, self.flags = env, flags

    def flag(self, var: str) -> bool | None:
        """A yes/no setting, None when not given (the default holds)."""
        return _check_flag(var, self.env[var]) if var in self.env else None

    def raw(self, var: str) -> str | None:
        flag = self.flags.get(var.removeprefix("DIGEST_").lower())
        if flag is not None:
            return str(flag)
        return self.env.get(var) or None

    def path(self, var: str) -> Path | None:
        raw = self.raw(var)
        return Path(raw) if raw is not None else None

    def number(self, var: str, kind: type, least: float) -> Any:
        raw = self.raw(var)
        if raw is None:
            return None
        try:
            value = kind(raw)
        except ValueError as exc:
            raise ConfigError(
                f"{var}={quoted(raw)} is not a {'whole ' if kind is int else ''}number"
            ) from exc
        if not math.isfinite(value) or value < least:
            raise ConfigError(f"{var}={quoted(raw)} must be at least {least}")
        return value

    def given(self, cls: type, **values: Any) -> Any:
        """`cls` with the values that were given (None: its default)."""
        return cls(**{k: v for k, v in values.items() if v is not None})

    def settings(self) -> Settings:
        return self.given(
            Settings,
            subscribers=self.path("DIGEST_SUBSCRIBERS"),
            inbox=self.path("DIGEST_INBOX"),
            outbox=self.path("DIGEST_OUTBOX"),
            templates=self.path("DIGEST_TEMPLATES"),
            now=self.now(),
            poll_seconds=self.number("DIGEST_POLL_SECONDS", float, 0.1),
            log_level=self.log_level(),
            smtp=self.smtp(),
            fetch=self.fetch(),
            web=self.given(WebSettings, base_url=self.base_url(), secret=self.secret()),
            store=self.store(),
            ranking=self.given(
                RankingSettings,
                model=self.raw("DIGEST_MODEL"),
                catchup_days=self.number("DIGEST_CATCHUP_DAYS", int, 1),
                download=self.flag("DIGEST_MODEL_DOWNLOAD"),
            ),
            bounces=self.bounces(),
        )

    def bounces(self) -> BounceSettings:
        address = self.raw("DIGEST_BOUNCE_ADDRESS")
        if address is not None:
            address = check_address(address, "DIGEST_BOUNCE_ADDRESS", self.raw("DIGEST_SMTP_HOST"))
            if "+" in address.partition("@")[0]:
                raise ConfigError(
                    f"DIGEST_BOUNCE_ADDRESS={quoted(address)} holds a '+': give the plain address"
                    " (bounces@example.org); each digest adds +TOKEN to it"
                )
        topics = tuple(t.strip() for t in (self.raw("DIGEST_SES_TOPIC_ARNS") or "").split(",") if t.strip())
        return self.given(
            BounceSettings,
            mailbox=self.raw("DIGEST_BOUNCE_MAILBOX"),
            password=self.env.get("DIGEST_BOUNCE_PASSWORD") or None,
            address=address,
            soft_limit=self.number("DIGEST_SOFT_BOUNCES", int, 1),
            soft_days=self.number("DIGEST_SOFT_BOUNCE_DAYS", int, 1),
            ses_topics=topics or None,
            ses_auto_confirm=self.flag("DIGEST_SES_AUTO_CONFIRM"),
        )

    def smtp(self) -> SMTPSettings:
        security = (self.raw("DIGEST_SMTP_SECURITY") or "starttls").lower()
        if security not in SECURITY_MODES:
            raise ConfigError(
                f"DIGEST_SMTP_SECURITY={quoted(security)} is not one of {', '.join(SECURITY_MODES)}"
            )
        sender, host = self.raw("DIGEST_FROM"), self.raw("DIGEST_SMTP_HOST")
        if sender is None and not is_this_machine(host):
            raise ConfigError(
                f"DIGEST_FROM is not set, and its default {DEFAULT_SENDER} {LOCAL_ONLY}"
                f" (it is {host}); set DIGEST_FROM to an address at your domain"
            )
        return self.given(
            SMTPSettings,
            host=host,
            port=self.number("DIGEST_SMTP_PORT", int, 1),
            security=security,
            user=self.raw("DIGEST_SMTP_USER"),
            password=self.raw("DIGEST_SMTP_PASSWORD"),
            ca_file=self.path("DIGEST_SMTP_CA_FILE"),
            timeout=self.number("DIGEST_SMTP_TIMEOUT", float, 0.1),
            concurrency=self.number("DIGEST_SMTP_CONCURRENCY", int, 1),
            rate=self.number("DIGEST_SMTP_RATE", float, 0.001),
            retries=self.number("DIGEST_SMTP_RETRIES", int, 0),
            backoff=self.number("DIGEST_SMTP_BACKOFF", float, 0),
            max_failures=self.number("DIGEST_SMTP_MAX_FAILURES", int, 1),
            sender=check_sender(sender, host) if sender is not None else None,
            dkim=self.dkim(),
        )

    def dkim(self) -> DKIM | None:
        parts = [
            self.raw("DIGEST_DKIM_SELECTOR"),
            self.raw("DIGEST_DKIM_DOMAIN"),
            self.path("DIGEST_DKIM_KEY_FILE"),
        ]
        if not any(parts):
            return None
        if not all(parts):
            raise ConfigError(
                "DKIM needs all of DIGEST_DKIM_SELECTOR, DIGEST_DKIM_DOMAIN and DIGEST_DKIM_KEY_FILE"
            )
        return DKIM(*parts)  # type: ignore[arg-type]

    def fetch(self) -> FetchSettings:
        return self.given(
            FetchSettings,
            timeout=self.number("DIGEST_FETCH_TIMEOUT", float, 0.1),
            deadline=self.number("DIGEST_FETCH_DEADLINE", float, 0.1),
            retries=self.number("DIGEST_FETCH_RETRIES", int, 0),
            backoff=self.number("DIGEST_FETCH_BACKOFF", float, 0),
            interval=self.number("DIGEST_FETCH_INTERVAL", float, 0),
            allow_private=self.flag("DIGEST_INGEST_ALLOW_PRIVATE"),
        )

    def store(self) -> StoreSettings:
        db = self.raw("DIGEST_DB")
        url = db if db is not None and db.startswith(("postgresql://", "postgres://")) else None
        return self.given(
            StoreSettings,
            db=Path(db) if db is not None and url is None else None,
            url=url,
            state=self.path("DIGEST_STATE"),
            cache_mb=self.number("DIGEST_CACHE_MB", float, 1),
        )

    def base_url(self) -> str | None:
        raw = self.raw("DIGEST_BASE_URL")
        return _check_base_url(raw) if raw is not None else None

    def secret(self) -> str | None:
        """Present, even empty, means the operator meant to set it: checked."""
        return _check_secret(self.env["DIGEST_SECRET"]) if "DIGEST_SECRET" in self.env else None

    def log_level(self) -> str | None:
        level = self.raw("DIGEST_LOG_LEVEL")
        if level is not None and level.upper() not in LOG_LEVELS:
            raise ConfigError(f"DIGEST_LOG_LEVEL={quoted(level)} is not one of {', '.join(LOG_LEVELS)}")
        return level.upper() if level is not None else None

    def now(self) -> datetime | None:
        raw = self.raw("DIGEST_NOW")
        if raw is None:
            return None
        try:
            now = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(
                f"DIGEST_NOW={quoted(raw)} is not an ISO time such as 2026-11-20T07:00:00Z"
            ) from exc
        return now if now.tzinfo else now.replace(tzinfo=UTC)


def redacted(url: str) -> str:
    """A PostgreSQL URL without its password, for messages and `digest status`: user@host:port/db
    as libpq reads them (several hosts, or a socket folder given as a parameter, included)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(an invalid URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def _check_base_url(raw: str) -> str:
    """DIGEST_BASE_URL: the public origin (and path) of `digest serve`, http(s), no query."""
    url = http_url(raw)
    parts = urlsplit(url) if url else None
    if parts is None or parts.query or parts.fragment or "?" in raw or "#" in raw:
        raise ConfigError(
            f"DIGEST_BASE_URL={quoted(raw)} must be an http(s) address such as https://digest.example.org "
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
        raise ConfigError(f"{var}={quoted(raw)} must be yes or no (1/0, true/false, on/off)")
    return word in _YES
