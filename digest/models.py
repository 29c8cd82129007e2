"""Plain, frozen data passed between the stages."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from .text import http_url, one_line

# new style 2611.00011v2, old style q-bio/0509018v2 or math.AG/0601001
_ARXIV_ID = re.compile(
    r"(?<![\d.])(\d{4}\.\d{4,5})(?:v\d+)?(?!\d)|(?<![\w.-])([a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?(?!\d)"
)


def normalize_title(title: str) -> str:
    """Lower-case, accent-free, punctuation-free title: the identity of a paper without an id."""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def paper_identity(arxiv_id: str | None, title: str) -> str:
    """arXiv id without version when known, else a stable hash of the normalized title."""
    if arxiv_id:
        return arxiv_id
    digest = hashlib.sha1(normalize_title(title).encode("utf-8")).hexdigest()[:16]
    return f"t:{digest}"


def arxiv_id_from(text: str | None) -> str | None:
    """The arXiv id (new style, no version) found in a URL or id string, if any."""
    if not text:
        return None
    match = _ARXIV_ID.search(text)
    return (match.group(1) or match.group(2)) if match else None


@dataclass(frozen=True)
class Paper:
    id: str
    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    authors_count: int | None = None
    published: str | None = None  # ISO date when known
    upvotes: int | None = None
    organization: str | None = None
    url: str | None = None
    day: date | None = None  # the digest day it arrived on
    source: str | None = None  # which file or feed it came from
    categories: tuple[str, ...] = ()
    # arXiv feeds: "new", "cross", "replace"...; a replace updates a stored paper, never adds one
    announce_type: str | None = field(default=None, compare=False)

    @classmethod
    def create(
        cls,
        title: str,
        abstract: str,
        *,
        arxiv_id: str | None = None,
        authors: tuple[str, ...] = (),
        authors_count: int | None = None,
        day: date | None = None,
        **metadata: object,
    ) -> Paper:
        """A paper as a source reads it: identity from the arXiv id or the (clean) title, the
        author count from the names when there are names, the digest day as ISO text.

        The one gate every source passes: text fields leave here on one line without control
        or bidi-override characters, and the URL is an http(s) URL or nothing."""
        title, abstract = one_line(title), one_line(abstract)
        authors = tuple(name for a in authors if (name := one_line(a)))
        for name in ("organization", "source"):
            if isinstance(metadata.get(name), str):
                metadata[name] = one_line(metadata[name]) or None  # type: ignore[arg-type]
        if "categories" in metadata:
            metadata["categories"] = tuple(c for c in map(one_line, metadata["categories"]) if c)  # type: ignore[arg-type]
        if "url" in metadata:
            metadata["url"] = http_url(metadata["url"])
        return cls(
            id=paper_identity(arxiv_id, title),
            title=title,
            abstract=abstract,
            authors=authors,
            authors_count=len(authors) or authors_count,
            day=day,
            **metadata,  # type: ignore[arg-type]
        )

    @property
    def text(self) -> str:
        """What ranking reads: title and abstract."""
        return f"{self.title}. {self.abstract}"

    @property
    def link(self) -> str | None:
        """The paper's page: its own http(s) URL, else arXiv's; never a javascript: or data: URL,
        even from a row stored before URLs were checked."""
        if url := http_url(self.url):
            return url
        if arxiv_id_from(self.id) == self.id:
            return f"https://arxiv.org/abs/{self.id}"
        return None


@dataclass(frozen=True)
class Source:
    """A feed the morning job fetches (subscribers.yaml, `sources:`); `{date}` in the URL
    becomes the day fetched (YYYY-MM-DD)."""

    name: str
    url: str


@dataclass(frozen=True)
class Roster:
    """subscribers.yaml as read: its subscribers and the sources the morning job fetches."""

    subscribers: tuple[Subscriber, ...]
    sources: tuple[Source, ...] = ()

    def by_id(self) -> dict[str, Subscriber]:
        return {s.id: s for s in self.subscribers}


@dataclass(frozen=True)
class Subscriber:
    id: str
    email: str
    name: str | None = None
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    profile_papers: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()  # followed: their papers come first (digest.names)
    always: tuple[str, ...] = ()  # phrases: a paper that says one is always included
    categories: tuple[str, ...] = ()  # arXiv categories ("cs.RO", "cs.*") the other picks come from
    timezone: str = "UTC"
    send_time: str = "07:00"
    max_papers: int = 10
    min_score: float = 0.0
    trending_weight: float = 0.0
    send_empty: bool = False
    active: bool = True
    # the exploration slot (digest.ranking.explore): None, the default, is on once they have voted
    explore: bool | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class Ranked:
    """One paper as ranked for one subscriber, with why."""

    paper: Paper
    score: float  # 0..1: (1 - trending_weight) * relevance + trending_weight * trending
    matched: tuple[str, ...] = ()  # the reader's keywords it clearly matches, strongest first
    keyphrases: tuple[str, ...] = ()
    relevance: float | None = None  # 0..1: how well the paper fits the subscriber's best interest
    trending: float | None = None  # 0..1: community upvotes, log-scaled and capped
    liked_like: str | None = None  # the title of a paper the reader up-voted that this one resembles
    close_to: str | None = None  # the title of the subscriber's own paper nearest to this one
    from_papers: tuple[str, ...] = ()  # phrases distilled from the reader's own papers it matches
    followed: str | None = None  # the followed author it is by, as the reader wrote the name
    always: str | None = None  # the `always` phrase it says
    explore: bool = False  # the exploration slot's paper: outside their usual picks, asked about


@dataclass(frozen=True)
class Links:
    """The links of one message, built once (digest.delivery.links) and used by the HTML, the text and
    the List-Unsubscribe headers."""

    unsubscribe_mailto: str
    unsubscribe_https: str | None = None  # the RFC 8058 one-click target, when DIGEST_BASE_URL is set
    archive: str | None = None
    # paper id -> ("more like this" URL, "less like this" URL), when DIGEST_BASE_URL is set
    feedback: Mapping[str, tuple[str, str]] = field(default_factory=dict, hash=False)

    @property
    def unsubscribe(self) -> str:
        """What the footer links to: the page when there is one, else the mailto."""
        return self.unsubscribe_https or self.unsubscribe_mailto


@dataclass(frozen=True)
class Digest:
    """One subscriber's email for one day, rendered."""

    subscriber: Subscriber
    day: date
    papers: tuple[Ranked, ...]
    subject: str
    html: str
    text: str
    links: Links


class Status(StrEnum):
    """One vocabulary for a delivery: the ledger's rows, the send loop's results, the reports."""

    PENDING = "pending"  # a temporary failure (or nothing went out): the next run tries again
    SENDING = "sending"  # claimed; left so by a killed run or a lost reply: the outcome is unknown
    SENT = "sent"
    FAILED = "failed"  # refused for good (5xx): not retried
    # a report's words for subscribers this run did not send to
    ALREADY = "already"  # the ledger says sent before
    SKIPPED = "skipped"  # nothing new matched and they did not ask for empty digests
    DRY_RUN = "dry-run"
    UNSUBSCRIBED = "unsubscribed"  # they said so (one-click, the page or the CLI): never mailed
    SUPPRESSED = "suppressed"  # their address bounced for good or they complained (delivery.bounces)
    NOT_TRIED = "not-tried"  # the run stopped before their turn
    QUEUED = "queued"  # handed to the workers (digest run --enqueue, digest.delivery.queue)

    @property
    def label(self) -> str:
        """The word a person reads: a row left `sending` after its run means nobody knows
        whether the mail went out."""
        return "unknown" if self is Status.SENDING else self.value


@dataclass(frozen=True)
class Delivery:
    """A row of the ledger: who got which day's digest, and how it went."""

    subscriber_id: str
    day: date
    status: Status  # pending, sending (unknown), sent or failed
    message_id: str | None = None
    paper_ids: tuple[str, ...] = field(default_factory=tuple)
    location: str | None = None  # outbox file or SMTP host
    reply: str | None = None
    updated_at: str | None = None
    attempts: int = 0
