"""The store's memory of bounces and complaints (a part of sql.SQLStore, every backend): each
report once (`bounces`, keyed by the report's own identity, so a mailbox read twice or a
webhook posted twice counts once), and who is suppressed (`suppressions`: one row a reader,
naming the address it stopped, so a new address in subscribers.yaml is mailed again)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .common import Connection


@dataclass(frozen=True)
class Bounce:
    """One report tied to a reader, as recorded."""

    key: str  # the report's identity: its Message-ID, the SNS message and recipient, ...
    subscriber_id: str
    email: str  # the address it is about, lower case
    kind: str  # hard | soft | complaint
    status: str | None  # the enhanced status code, 5.1.1
    diagnostic: str  # the server's words, one line
    source: str  # dsn, arf, bounce, smtp, ses
    at: str  # ISO time, UTC: when the report says it was written (else when it was read)


@dataclass(frozen=True)
class Suppression:
    """A reader no mail goes to until they are resubscribed or their address changes."""

    subscriber_id: str
    email: str  # the address that bounced or complained, lower case
    kind: str  # hard | complaint | soft (too many soft bounces)
    at: str
    status: str | None
    diagnostic: str
    source: str

    @property
    def what(self) -> str:
        """The kind in words: "hard bounce", "soft bounces", "complaint"."""
        return {"hard": "hard bounce", "soft": "soft bounces"}.get(self.kind, self.kind)

    @property
    def reason(self) -> str:
        """With the status: "hard bounce 5.1.1", "soft bounces 4.2.2", "complaint"."""
        return f"{self.what} {self.status}" if self.status else self.what

    def holds_for(self, email: str) -> bool:
        """It stops mail to `email`: the reader's address is still the one that bounced."""
        return self.email == email.strip().lower()


class BounceQueries:
    """Bounce and suppression queries over `self.conn`; `transaction` is SQLStore's."""

    conn: Connection

    if TYPE_CHECKING:

        def transaction(self, immediate: bool = False) -> AbstractContextManager[Connection]: ...

    def record_bounce(self, bounce: Bounce) -> bool:
        """Keep one report; False when it was recorded before (the same key)."""
        with self.transaction(immediate=True) as conn:
            done = conn.execute(
                "INSERT INTO bounces (key, subscriber, email, kind, status, diagnostic, source, at)"
                " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (
                    bounce.key,
                    bounce.subscriber_id,
                    bounce.email,
                    bounce.kind,
                    bounce.status,
                    bounce.diagnostic,
                    bounce.source,
                    bounce.at,
                ),
            ).rowcount
        return bool(done)

    def soft_bounces(self, subscriber: str, email: str, since: str) -> int:
        """Soft bounces of `subscriber` at `email` written at `since` (ISO, UTC) or later."""
        rows = self.conn.rows(
            "SELECT COUNT(*) FROM bounces WHERE subscriber = ? AND email = ? AND kind = 'soft' AND at >= ?",
            (subscriber, email, since),
        )
        return int(rows[0][0])

    def bounces(
        self, subscriber: str | None = None, *, kind: str | None = None, since: str | None = None
    ) -> list[Bounce]:
        """Recorded reports, oldest first: of one reader, of one kind, written at `since` or later."""
        tests = [("subscriber = ?", subscriber), ("kind = ?", kind), ("at >= ?", since)]
        given = [(test, value) for test, value in tests if value is not None]
        where = "WHERE " + " AND ".join(test for test, _ in given) if given else ""
        args = tuple(value for _, value in given)
        return [
            Bounce(
                r["key"],
                r["subscriber"],
                r["email"],
                r["kind"],
                r["status"],
                r["diagnostic"],
                r["source"],
                r["at"],
            )
            for r in self.conn.rows(f"SELECT * FROM bounces {where} ORDER BY at, key", args)
        ]

    def suppress(self, s: Suppression, current: str | None = None) -> bool:
        """Stop mail to the reader at `s.email`; False when their mail is stopped already: at that
        address (the first reason stays), or at `current`, their address of now (a report about
        another address never lifts it). A suppression of an address they no longer use gives way."""
        keep = {s.email, (current or s.email).strip().lower()}
        with self.transaction(immediate=True) as conn:
            held = conn.rows("SELECT email FROM suppressions WHERE subscriber = ?", (s.subscriber_id,))
            if held and held[0][0] in keep:
                return False
            conn.execute("DELETE FROM suppressions WHERE subscriber = ?", (s.subscriber_id,))
            conn.execute(
                "INSERT INTO suppressions (subscriber, email, kind, at, status, diagnostic, source)"
                " VALUES (?,?,?,?,?,?,?)",
                (s.subscriber_id, s.email, s.kind, s.at, s.status, s.diagnostic, s.source),
            )
        return True

    def lift_suppression(self, subscriber: str) -> bool:
        """Mail them again; False if they were not suppressed."""
        with self.transaction(immediate=True) as conn:
            done = conn.execute("DELETE FROM suppressions WHERE subscriber = ?", (subscriber,)).rowcount
        return bool(done)

    def subscriber_of_message(self, message_id: str) -> str | None:
        """The reader our digest with this Message-ID went to (the ledger keeps each one)."""
        rows = self.conn.rows("SELECT subscriber FROM deliveries WHERE message_id = ?", (message_id.strip(),))
        return rows[0][0] if rows else None

    def suppressed(self) -> dict[str, Suppression]:
        """Every suppression, by reader: check `holds_for` their address of now."""
        return {
            r["subscriber"]: Suppression(
                r["subscriber"], r["email"], r["kind"], r["at"], r["status"], r["diagnostic"], r["source"]
            )
            for r in self.conn.rows("SELECT * FROM suppressions")
        }
