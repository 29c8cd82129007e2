"""Every link a digest carries, and the signed tokens in them: made here, verified here.

A token says what it is for (purpose), whom (subscriber id) and, for some purposes, what
(a day, a paper and a vote). It is signed with HMAC-SHA256 over those and the subscriber's
address, so it cannot be used for another purpose or person, and it stops working when the
address in subscribers.yaml changes. The address itself is not in the token: a token leaks
nothing but the subscriber id. Tokens do not expire (an unsubscribe link must work for ever).

    token = base64url(json {"p": purpose, "s": subscriber id, "x": extra}) "." base64url(mac)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

from ..models import Links, Subscriber
from ..settings import Settings

PURPOSES = ("unsubscribe", "archive", "feedback")
_MAC_BYTES = 16  # 128 bits: forging one needs 2**128 tries


def secret(settings: Settings) -> str:
    """DIGEST_SECRET, else a random one kept in the state folder, created readable by its owner
    only from the moment it exists (never chmod-ed after)."""
    if settings.web.secret:
        return settings.web.secret
    path = settings.store.state_dir / "secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret.", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):  # another run made it first: theirs is used
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return Path(path).read_text().strip()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str, purpose: str, subscriber_id: str, address: str, extra: str) -> bytes:
    message = "\x00".join((purpose, subscriber_id, address.lower(), extra)).encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(key: str, purpose: str, subscriber: Subscriber, extra: str = "") -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    payload = json.dumps({"p": purpose, "s": subscriber.id, "x": extra}, separators=(",", ":"))
    return (
        f"{_b64(payload.encode('utf-8'))}.{_b64(_mac(key, purpose, subscriber.id, subscriber.email, extra))}"
    )


@dataclass(frozen=True)
class Claim:
    """What a valid token vouches for."""

    purpose: str
    subscriber_id: str
    extra: str


def read_token(token: str) -> Claim | None:
    """The unverified claim in a token (to look up whose address to verify it with), or None."""
    try:
        body, _ = token.split(".", 1)
        payload = json.loads(_unb64(body))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    purpose, sid, extra = payload.get("p"), payload.get("s"), payload.get("x", "")
    if not all(isinstance(v, str) for v in (purpose, sid, extra)) or purpose not in PURPOSES:
        return None
    return Claim(purpose, sid, extra)


def verify_token(key: str, token: str, purpose: str, subscriber: Subscriber) -> Claim | None:
    """The claim if `token` was made by us for this `purpose` and this subscriber (at this
    address); None otherwise. Compared in constant time."""
    claim = read_token(token)
    if claim is None or claim.purpose != purpose or claim.subscriber_id != subscriber.id:
        return None
    try:
        given = _unb64(token.split(".", 1)[1])
    except (ValueError, binascii.Error):
        return None
    expected = _mac(key, purpose, subscriber.id, subscriber.email, claim.extra)
    return claim if hmac.compare_digest(given, expected) else None


class LinkMaker:
    """The links of every digest of a run: the mailto unsubscribe always; with a public origin
    (DIGEST_BASE_URL) the signed one-click unsubscribe, the archive and the votes. The From
    address and the secret are read at the first digest and kept: a problem with either is that
    digest's failure (reported, and tried again by the next run), never the whole run's."""

    def __init__(self, settings: Settings):
        self.settings = settings
        base = settings.web.base_url
        self.base_url = base.rstrip("/") if base else None

    @cached_property
    def sender(self) -> str:
        return self.settings.smtp.from_address.addr_spec

    @cached_property
    def key(self) -> str:
        return secret(self.settings)

    @classmethod
    def for_settings(cls, settings: Settings) -> LinkMaker:
        return cls(settings)

    def for_digest(self, subscriber: Subscriber, day: date, paper_ids: Sequence[str] = ()) -> Links:
        """The links of `subscriber`'s digest for `day`."""
        mailto = f"mailto:{self.sender}?subject={quote('unsubscribe ' + subscriber.id)}"
        if not self.base_url:
            return Links(mailto)
        base, key = self.base_url, self.key
        return Links(
            unsubscribe_mailto=mailto,
            unsubscribe_https=f"{base}/unsubscribe?t={make_token(key, 'unsubscribe', subscriber)}",
            archive=archive_url(base, key, subscriber, day),
            feedback={
                pid: (
                    f"{base}/feedback?t={make_token(key, 'feedback', subscriber, f'{pid} up')}",
                    f"{base}/feedback?t={make_token(key, 'feedback', subscriber, f'{pid} down')}",
                )
                for pid in paper_ids
            },
        )


def archive_url(base: str, key: str, subscriber: Subscriber, day: date | None = None) -> str:
    """One archived digest (`day`), or the list of the reader's digests (no day)."""
    extra = day.isoformat() if day else ""
    where = (
        f"/archive/{day.isoformat()}/{quote(subscriber.id)}" if day else f"/archive/{quote(subscriber.id)}"
    )
    return f"{base}{where}?t={make_token(key, 'archive', subscriber, extra)}"


# --- VERP: a return path per reader, so a bounce names its reader whatever it quotes ----------

_VERP_MAC = 10  # bytes: 80 bits, 16 base32 characters; a local part has at most 64 characters


def _verp_mac(key: str, subscriber: Subscriber) -> str:
    mac = _mac(key, "bounce", subscriber.id, subscriber.email, "")[:_VERP_MAC]
    return base64.b32encode(mac).decode("ascii").lower()


def return_path(bounce_address: str, key: str, subscriber: Subscriber) -> str:
    """bounces+ID=MAC@domain for `subscriber`: the MAC binds the id to their address, so nobody
    can make a bounce land on another reader, and a changed address no longer matches. The plain
    `bounce_address` when the result would not be a valid address (a local part over 64
    characters, or two dots in a row)."""
    local, _, domain = bounce_address.rpartition("@")
    tagged = f"{local}+{subscriber.id}={_verp_mac(key, subscriber)}"
    if len(tagged) > 64 or ".." in tagged or tagged.endswith("."):
        return bounce_address
    return f"{tagged}@{domain}"


def verp_subscriber(key: str, token: str, subscribers: Sequence[Subscriber]) -> Subscriber | None:
    """The reader a VERP token (ID=MAC, the part after the '+') was made for, at their address
    of now; None for a token we did not make or an address since changed."""
    sid, _, mac = token.rpartition("=")
    for sub in subscribers:
        if sub.id == sid:
            return sub if hmac.compare_digest(mac.lower(), _verp_mac(key, sub)) else None
    return None
