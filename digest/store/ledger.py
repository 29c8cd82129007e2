"""The store's ledger side, written once for every backend (a part of sql.SQLStore): the delivery
ledger (claimed before a message goes out, finished after), readers' unsubscribes and votes, and
the plans the workers send from."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date
from typing import TYPE_CHECKING, Any

from ..models import Delivery, Status
from .base import Unsubscribe, Vote
from .common import Connection, chunks, iso, utc_now

# a plan whose digest is settled: its ledger row says sent, or failed for good
_SETTLED = (
    "EXISTS (SELECT 1 FROM deliveries d WHERE d.subscriber = plans.subscriber AND d.day = plans.day"
    " AND d.status IN ('sent', 'failed'))"
)


class LedgerQueries:
    """The ledger's queries over `self.conn`; `transaction` is SQLStore's."""

    conn: Connection

    if TYPE_CHECKING:  # SQLStore's: all or nothing

        def transaction(self, immediate: bool = False) -> AbstractContextManager[Connection]: ...

    # --- the delivery ledger --------------------------------------------------------

    def claim_delivery(self, subscriber: str, day: date, *, retry_unknown: bool = False) -> bool:
        """Mark (subscriber, day) `sending`; true if this caller won it. Free to claim: no row, or
        `pending` (a temporary failure), or with `retry_unknown` a `sending` row that a killed run
        left behind. One statement, atomic in every backend: it inserts the row, or updates it
        only while its status is claimable, and says whether it did; of two runs (or workers) at
        once, the second waits for the first's row and finds it taken."""
        claimable = ("pending", "sending") if retry_unknown else ("pending",)
        won = self.conn.rows(
            "INSERT INTO deliveries (subscriber, day, status, updated_at) VALUES (?,?,'sending',?)"
            " ON CONFLICT (subscriber, day)"
            " DO UPDATE SET status = 'sending', updated_at = excluded.updated_at"
            f" WHERE deliveries.status IN ({','.join('?' * len(claimable))}) RETURNING 1",
            (subscriber, iso(day), utc_now(), *claimable),
        )
        return bool(won)

    def note_message_id(self, subscriber: str, day: date, message_id: str) -> None:
        """Record the Message-ID before the SMTP call, so an unknown outcome can be looked up."""
        self.conn.execute(
            "UPDATE deliveries SET message_id = ?, updated_at = ? WHERE subscriber = ? AND day = ?",
            (message_id, utc_now(), subscriber, iso(day)),
        )

    def finish_delivery(
        self,
        subscriber: str,
        day: date,
        *,
        status: str,
        message_id: str | None = None,
        paper_ids: Iterable[str] = (),
        location: str | None = None,
        reply: str | None = None,
        attempts: int = 1,
    ) -> None:
        """sent | failed (for good) | pending (the next run tries again) | sending (unknown)."""
        ids = list(paper_ids)
        with self.transaction(immediate=True) as conn:
            conn.execute(
                "UPDATE deliveries SET status = ?, message_id = COALESCE(?, message_id), paper_ids = ?,"
                " location = ?, reply = ?, updated_at = ?, attempts = attempts + ?"
                " WHERE subscriber = ? AND day = ?",
                (
                    status,
                    message_id,
                    json.dumps(ids),
                    location,
                    reply,
                    utc_now(),
                    attempts,
                    subscriber,
                    iso(day),
                ),
            )
            if status == Status.SENT:
                conn.executemany(
                    "INSERT INTO sent_papers (subscriber, paper_id, day) VALUES (?,?,?)"
                    " ON CONFLICT DO NOTHING",
                    [(subscriber, pid, iso(day)) for pid in ids],
                )

    def sent_paper_ids(self, subscriber: str, before: date | None = None) -> set[str]:
        """Papers already mailed to `subscriber` (in digests of days before `before`, if given)."""
        sql, args = "SELECT paper_id FROM sent_papers WHERE subscriber = ?", [subscriber]
        if before is not None:
            sql, args = sql + " AND day < ?", [*args, iso(before)]
        return {r[0] for r in self.conn.rows(sql, args)}

    def deliveries(self, day: date | None = None, subscribers: Sequence[str] | None = None) -> list[Delivery]:
        """Ledger rows, of one day or all, by day and subscriber; only `subscribers`' if given
        (a worker's batch reads its own rows, not the whole day's)."""
        if subscribers is not None:
            if day is None:
                raise ValueError("deliveries of some subscribers are asked for one day")
            rows: list[Delivery] = []
            for chunk, marks in chunks(subscribers):
                rows += self._deliveries(f"day = ? AND subscriber IN ({marks})", (iso(day), *chunk))
            return sorted(rows, key=lambda d: d.subscriber_id)
        if day is None:
            return self._deliveries("1=1", ())
        return self._deliveries("day = ?", (iso(day),))

    def unsettled(self) -> list[Delivery]:
        """Rows that need a look: pending, unknown (`sending`) and failed."""
        return self._deliveries("status != 'sent'", ())

    def taken_days(self, since: date) -> dict[str, set[date]]:
        """Per subscriber, the days from `since` on whose digest is settled (sent, or failed for
        good): the scheduler's hourly question, answered from an index."""
        taken: dict[str, set[str]] = {}
        for row in self.conn.rows(
            "SELECT subscriber, day FROM deliveries WHERE day >= ? AND status IN ('sent', 'failed')",
            (iso(since),),
        ):
            taken.setdefault(row[0], set()).add(date.fromisoformat(row[1]))
        return taken

    def delivery_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.conn.rows("SELECT status, COUNT(*) FROM deliveries GROUP BY status")}

    def last_sent(self) -> dict[str, date]:
        """Per subscriber, the day of their newest digest sent."""
        rows = self.conn.rows(
            "SELECT subscriber, MAX(day) FROM deliveries WHERE status = 'sent' GROUP BY subscriber"
        )
        return {r[0]: date.fromisoformat(r[1]) for r in rows}

    # --- readers' own say: unsubscribes and votes ---------------------------------

    def unsubscribe(self, subscriber: str, how: str) -> bool:
        """Record that `subscriber` wants no more mail; False if they had already said so."""
        with self.transaction(immediate=True) as conn:
            done = conn.execute(
                "INSERT INTO unsubscribes (subscriber, at, how) VALUES (?,?,?) ON CONFLICT DO NOTHING",
                (subscriber, utc_now(), how),
            ).rowcount
        return bool(done)

    def resubscribe(self, subscriber: str) -> bool:
        """Lift an unsubscribe; False if there was none."""
        with self.transaction(immediate=True) as conn:
            done = conn.execute("DELETE FROM unsubscribes WHERE subscriber = ?", (subscriber,)).rowcount
        return bool(done)

    def unsubscribed(self) -> dict[str, Unsubscribe]:
        return {
            r["subscriber"]: Unsubscribe(r["subscriber"], r["at"], r["how"])
            for r in self.conn.rows("SELECT * FROM unsubscribes")
        }

    def record_vote(self, subscriber: str, paper_id: str, vote: int) -> None:
        """+1 (more like this), -1 (less like this) or 0 (take the vote back)."""
        with self.transaction(immediate=True) as conn:
            if vote == 0:
                conn.execute(
                    "DELETE FROM votes WHERE subscriber = ? AND paper_id = ?", (subscriber, paper_id)
                )
            else:
                conn.execute(
                    "INSERT INTO votes (subscriber, paper_id, vote, at) VALUES (?,?,?,?)"
                    " ON CONFLICT (subscriber, paper_id)"
                    " DO UPDATE SET vote = excluded.vote, at = excluded.at",
                    (subscriber, paper_id, vote, utc_now()),
                )

    def votes(self, subscriber: str | None = None) -> list[Vote]:
        """Votes, of one subscriber or all, oldest first."""
        where, args = ("WHERE subscriber = ?", (subscriber,)) if subscriber else ("", ())
        rows = self.conn.rows(f"SELECT * FROM votes {where} ORDER BY at, rowid", args)
        return [Vote(r["subscriber"], r["paper_id"], r["vote"], r["at"]) for r in rows]

    # --- plans: ranked picks waiting for the workers ------------------------------------

    def save_plans(self, day: date, plans: Mapping[str, Mapping[str, Any]]) -> None:
        """Each subscriber's plan for `day` (a JSON-able dict: digest.delivery.queue); a new ranking
        replaces an older one."""
        now = utc_now()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO plans (subscriber, day, picks, made_at) VALUES (?,?,?,?)"
                " ON CONFLICT (subscriber, day)"
                " DO UPDATE SET picks = excluded.picks, made_at = excluded.made_at",
                ((sid, iso(day), json.dumps(plan), now) for sid, plan in plans.items()),
            )

    def plans(self, day: date, subscribers: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The saved plans of `day` for those of `subscribers` that have one."""
        ids, found = list(dict.fromkeys(subscribers)), {}
        for chunk, marks in chunks(ids):
            for row in self.conn.rows(
                f"SELECT subscriber, picks FROM plans WHERE day = ? AND subscriber IN ({marks})",
                (iso(day), *chunk),
            ):
                found[row[0]] = json.loads(row[1])
        return found

    def forget_plans(self, day: date, subscribers: Sequence[str]) -> int:
        """Delete the plans of `day` for those of `subscribers` whose digest has settled (sent, or
        failed for good): nothing will read them again. How many went."""
        gone = 0
        for chunk, marks in chunks(subscribers):
            with self.transaction() as conn:
                gone += conn.execute(
                    f"DELETE FROM plans WHERE day = ? AND subscriber IN ({marks}) AND {_SETTLED}",
                    (iso(day), *chunk),
                ).rowcount
        return gone

    def prune_plans(self, before: date) -> int:
        """Delete every settled plan, and every plan of a day before `before` (no run sends an
        old day's plan: a new ranking would replace it). How many went."""
        with self.transaction() as conn:
            return conn.execute(f"DELETE FROM plans WHERE day < ? OR {_SETTLED}", (iso(before),)).rowcount

    def _deliveries(self, where: str, args: tuple[Any, ...]) -> list[Delivery]:
        return [
            Delivery(
                subscriber_id=r["subscriber"],
                day=date.fromisoformat(r["day"]),
                status=Status(r["status"]),
                message_id=r["message_id"],
                paper_ids=tuple(json.loads(r["paper_ids"])),
                location=r["location"],
                reply=r["reply"],
                updated_at=r["updated_at"],
                attempts=r["attempts"],
            )
            for r in self.conn.rows(f"SELECT * FROM deliveries WHERE {where} ORDER BY day, subscriber", args)
        ]
