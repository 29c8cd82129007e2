"""The store's SQL, written once for every backend: papers, ingested files, the embedding and
keyphrase caches, the delivery ledger, readers' unsubscribes and votes, and source states.

`SQLStore` holds every query; a backend (sqlite.py, postgres.py) opens the connection, keeps its
own migrations and turns its driver's errors into StoreError. The SQL is the common ground of
SQLite 3.35+ and PostgreSQL: `?` placeholders (a backend may rewrite them), upserts as
``INSERT ... ON CONFLICT``, ``RETURNING``, and a ``rowid`` that orders rows by arrival (SQLite's
own; a column of PostgreSQL's tables).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime
from typing import Any, Protocol

import numpy as np

from ..errors import StoreError
from ..models import Delivery, Paper, Status
from .base import AddResult, IngestedFile, SourceState, Unsubscribe, Vote

_PAPER_COLUMNS = (
    "id, title, abstract, authors, authors_count, published, upvotes, organization, url, day, source,"
    " categories, added_at, updated_at"
)
_SOURCE_COLUMNS = "name, url, etag, last_modified, last_attempt, last_ok, status, detail"
# a plan whose digest is settled: its ledger row says sent, or failed for good
_SETTLED = (
    "EXISTS (SELECT 1 FROM deliveries d WHERE d.subscriber = plans.subscriber AND d.day = plans.day"
    " AND d.status IN ('sent', 'failed'))"
)


class Row(Protocol):
    """A result row, read by position or by column name (sqlite3.Row, and postgres.Row)."""

    def __getitem__(self, key: int | str) -> Any: ...
    def __len__(self) -> int: ...


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...


class Connection(Protocol):
    """What SQLStore needs of a backend's connection: every driver error already a StoreError."""

    def execute(self, sql: str, args: Iterable[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> Cursor: ...
    def rows(self, sql: str, args: Iterable[Any] = ()) -> Sequence[Row]: ...
    def begin(self, immediate: bool) -> None: ...
    def close(self) -> None: ...


def _chunks(values: Sequence[str], size: int = 500) -> Iterator[tuple[Sequence[str], str]]:
    """`values` `size` at a time, each with its `?,?,...` for an IN list: a query asks for at
    most 500 at once (SQLite's limit on variables in one statement)."""
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield chunk, ",".join("?" * len(chunk))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _iso(day: date) -> str:
    """Days are stored as ISO text: it sorts and compares as the dates do."""
    return day.isoformat()


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


class SQLStore:
    """The queries of `Store` over a backend's connection. Use as a context manager."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, immediate: bool = False) -> Iterator[Connection]:
        """All or nothing; `immediate` takes the backend's write lock up front, so writers that
        read before they write (ingest, the migrations) go one at a time."""
        self.conn.begin(immediate)
        try:
            yield self.conn
        except BaseException:
            # the error that got here is the one to report: SQLite may already have rolled
            # back by itself (a full disk), and then ROLLBACK fails with "no transaction"
            with suppress(StoreError):
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- papers ---------------------------------------------------------------------

    def add_papers(self, papers: Iterable[Paper]) -> AddResult:
        """Insert new papers; for known ones keep the first day and text, add missing metadata
        and take newer upvotes. One transaction: a failure stores nothing."""
        with self.transaction(immediate=True) as conn:
            return _add_papers(conn, papers)

    def papers(self, day: date | None = None, *, since: date | None = None) -> list[Paper]:
        """Papers of one day, or of every day from `since` up to `day`, in arrival order."""
        if day is None:
            rows = self.conn.rows("SELECT * FROM papers ORDER BY day, rowid")
        elif since is None:
            rows = self.conn.rows("SELECT * FROM papers WHERE day = ? ORDER BY rowid", (_iso(day),))
        else:
            rows = self.conn.rows(
                "SELECT * FROM papers WHERE day BETWEEN ? AND ? ORDER BY day, rowid", (_iso(since), _iso(day))
            )
        return [_paper(row) for row in rows]

    def papers_by_id(self, ids: Iterable[str]) -> dict[str, Paper]:
        ids = list(dict.fromkeys(ids))
        marks = ",".join("?" * len(ids))
        rows = self.conn.rows(f"SELECT * FROM papers WHERE id IN ({marks})", ids) if ids else []
        return {row["id"]: _paper(row) for row in rows}

    def days(self) -> list[date]:
        return [
            date.fromisoformat(r[0]) for r in self.conn.rows("SELECT DISTINCT day FROM papers ORDER BY day")
        ]

    # --- ingested files -------------------------------------------------------------

    def file_seen(self, sha256: str) -> bool:
        return bool(self.conn.rows("SELECT 1 FROM files WHERE sha256 = ?", (sha256,)))

    def ingest_file(self, sha256: str, path: str, day: date | None, papers: list[Paper]) -> AddResult:
        """Store a file's papers and remember the file, in one transaction."""
        with self.transaction(immediate=True) as conn:
            result = _add_papers(conn, papers)
            conn.execute(
                "INSERT INTO files (sha256, path, day, papers, ingested_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT (sha256) DO UPDATE SET path = excluded.path, day = excluded.day,"
                " papers = excluded.papers, ingested_at = excluded.ingested_at",
                (sha256, path, day and _iso(day), len(papers), _now()),
            )
        return result

    def recent_files(self, limit: int = 10) -> list[IngestedFile]:
        rows = self.conn.rows(
            "SELECT path, day, papers, ingested_at FROM files ORDER BY ingested_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [IngestedFile(r["path"], _day(r["day"]), r["papers"], r["ingested_at"]) for r in rows]

    # --- caches ---------------------------------------------------------------------

    def _cached(self, table: str, column: str, model: str, hashes: list[str]) -> Iterator[Row]:
        """Rows of a cache table for `hashes`."""
        for chunk, marks in _chunks(hashes):
            yield from self.conn.rows(
                f"SELECT text_hash, {column} FROM {table} WHERE model = ? AND text_hash IN ({marks})",
                (model, *chunk),
            )

    def cached_vectors(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        rows = self._cached("embeddings", "vector", model, hashes)
        return {row[0]: np.frombuffer(row[1], dtype=np.float32) for row in rows}

    def cache_vectors(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        now = _now()
        with self.transaction() as conn:
            conn.executemany(  # a generator: rows are serialized one at a time, not all at once
                "INSERT INTO embeddings (model, text_hash, vector, added_at) VALUES (?,?,?,?)"
                " ON CONFLICT (model, text_hash) DO UPDATE SET vector = excluded.vector,"
                " added_at = excluded.added_at",
                ((model, h, np.asarray(v, dtype=np.float32).tobytes(), now) for h, v in vectors.items()),
            )

    def cache_size(self) -> tuple[int, int]:
        """(vectors, bytes) in the embedding cache."""
        rows = self.conn.rows("SELECT COUNT(*), COALESCE(SUM(LENGTH(vector)), 0) FROM embeddings")
        return int(rows[0][0]), int(rows[0][1])

    def prune_cache(self, max_bytes: int) -> int:
        """Drop the oldest vectors until the cache holds at most `max_bytes`; how many went.
        A dropped vector costs only its re-embedding, the next time its text is seen."""
        count, size = self.cache_size()
        if size <= max_bytes or count == 0:
            return 0
        per_row = size / count
        excess = int((size - max_bytes) / per_row) + 1
        with self.transaction(immediate=True) as conn:
            return conn.execute(
                "DELETE FROM embeddings WHERE rowid IN"
                " (SELECT rowid FROM embeddings ORDER BY added_at, rowid LIMIT ?)",
                (excess,),
            ).rowcount

    def cached_keyphrases(self, model: str, hashes: list[str]) -> dict[str, list[str]]:
        return {row[0]: json.loads(row[1]) for row in self._cached("keyphrases", "phrases", model, hashes)}

    def cache_keyphrases(self, model: str, phrases: dict[str, list[str]]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO keyphrases (model, text_hash, phrases) VALUES (?,?,?)"
                " ON CONFLICT (model, text_hash) DO UPDATE SET phrases = excluded.phrases",
                [(model, h, json.dumps(p)) for h, p in phrases.items()],
            )

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
            (subscriber, _iso(day), _now(), *claimable),
        )
        return bool(won)

    def note_message_id(self, subscriber: str, day: date, message_id: str) -> None:
        """Record the Message-ID before the SMTP call, so an unknown outcome can be looked up."""
        self.conn.execute(
            "UPDATE deliveries SET message_id = ?, updated_at = ? WHERE subscriber = ? AND day = ?",
            (message_id, _now(), subscriber, _iso(day)),
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
                    _now(),
                    attempts,
                    subscriber,
                    _iso(day),
                ),
            )
            if status == Status.SENT:
                conn.executemany(
                    "INSERT INTO sent_papers (subscriber, paper_id, day) VALUES (?,?,?)"
                    " ON CONFLICT DO NOTHING",
                    [(subscriber, pid, _iso(day)) for pid in ids],
                )

    def sent_paper_ids(self, subscriber: str, before: date | None = None) -> set[str]:
        """Papers already mailed to `subscriber` (in digests of days before `before`, if given)."""
        sql, args = "SELECT paper_id FROM sent_papers WHERE subscriber = ?", [subscriber]
        if before is not None:
            sql, args = sql + " AND day < ?", [*args, _iso(before)]
        return {r[0] for r in self.conn.rows(sql, args)}

    def deliveries(self, day: date | None = None, subscribers: Sequence[str] | None = None) -> list[Delivery]:
        """Ledger rows, of one day or all, by day and subscriber; only `subscribers`' if given
        (a worker's batch reads its own rows, not the whole day's)."""
        if subscribers is not None:
            if day is None:
                raise ValueError("deliveries of some subscribers are asked for one day")
            rows: list[Delivery] = []
            for chunk, marks in _chunks(subscribers):
                rows += self._deliveries(f"day = ? AND subscriber IN ({marks})", (_iso(day), *chunk))
            return sorted(rows, key=lambda d: d.subscriber_id)
        if day is None:
            return self._deliveries("1=1", ())
        return self._deliveries("day = ?", (_iso(day),))

    def unsettled(self) -> list[Delivery]:
        """Rows that need a look: pending, unknown (`sending`) and failed."""
        return self._deliveries("status != 'sent'", ())

    def taken_days(self, since: date) -> dict[str, set[date]]:
        """Per subscriber, the days from `since` on whose digest is settled (sent, or failed for
        good): the scheduler's hourly question, answered from an index."""
        taken: dict[str, set[str]] = {}
        for row in self.conn.rows(
            "SELECT subscriber, day FROM deliveries WHERE day >= ? AND status IN ('sent', 'failed')",
            (_iso(since),),
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
                (subscriber, _now(), how),
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
                    (subscriber, paper_id, vote, _now()),
                )

    def votes(self, subscriber: str | None = None) -> list[Vote]:
        """Votes, of one subscriber or all, oldest first."""
        where, args = ("WHERE subscriber = ?", (subscriber,)) if subscriber else ("", ())
        rows = self.conn.rows(f"SELECT * FROM votes {where} ORDER BY at, rowid", args)
        return [Vote(r["subscriber"], r["paper_id"], r["vote"], r["at"]) for r in rows]

    # --- plans: ranked picks waiting for the workers ------------------------------------

    def save_plans(self, day: date, plans: Mapping[str, Mapping[str, Any]]) -> None:
        """Each subscriber's plan for `day` (a JSON-able dict: digest.queue); a new ranking
        replaces an older one."""
        now = _now()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO plans (subscriber, day, picks, made_at) VALUES (?,?,?,?)"
                " ON CONFLICT (subscriber, day)"
                " DO UPDATE SET picks = excluded.picks, made_at = excluded.made_at",
                ((sid, _iso(day), json.dumps(plan), now) for sid, plan in plans.items()),
            )

    def plans(self, day: date, subscribers: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The saved plans of `day` for those of `subscribers` that have one."""
        ids, found = list(dict.fromkeys(subscribers)), {}
        for chunk, marks in _chunks(ids):
            for row in self.conn.rows(
                f"SELECT subscriber, picks FROM plans WHERE day = ? AND subscriber IN ({marks})",
                (_iso(day), *chunk),
            ):
                found[row[0]] = json.loads(row[1])
        return found

    def forget_plans(self, day: date, subscribers: Sequence[str]) -> int:
        """Delete the plans of `day` for those of `subscribers` whose digest has settled (sent, or
        failed for good): nothing will read them again. How many went."""
        gone = 0
        for chunk, marks in _chunks(subscribers):
            with self.transaction() as conn:
                gone += conn.execute(
                    f"DELETE FROM plans WHERE day = ? AND subscriber IN ({marks}) AND {_SETTLED}",
                    (_iso(day), *chunk),
                ).rowcount
        return gone

    def prune_plans(self, before: date) -> int:
        """Delete every settled plan, and every plan of a day before `before` (no run sends an
        old day's plan: a new ranking would replace it). How many went."""
        with self.transaction() as conn:
            return conn.execute(f"DELETE FROM plans WHERE day < ? OR {_SETTLED}", (_iso(before),)).rowcount

    # --- configured sources ----------------------------------------------------------

    def source_states(self) -> dict[str, SourceState]:
        return {r["name"]: SourceState(*r) for r in self.conn.rows(f"SELECT {_SOURCE_COLUMNS} FROM sources")}

    def save_source_state(self, state: SourceState) -> None:
        with self.transaction(immediate=True) as conn:
            conn.execute(
                "INSERT INTO sources (name, url, etag, last_modified, last_attempt, last_ok, status, detail)"
                " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (name) DO UPDATE SET url = excluded.url,"
                " etag = excluded.etag, last_modified = excluded.last_modified,"
                " last_attempt = excluded.last_attempt, last_ok = excluded.last_ok,"
                " status = excluded.status, detail = excluded.detail",
                (
                    state.name,
                    state.url,
                    state.etag,
                    state.last_modified,
                    state.last_attempt,
                    state.last_ok,
                    state.status,
                    state.detail,
                ),
            )

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


def _paper(row: Row) -> Paper:
    return Paper(
        id=row["id"],
        title=row["title"],
        abstract=row["abstract"],
        authors=tuple(json.loads(row["authors"])),
        authors_count=row["authors_count"],
        published=row["published"],
        upvotes=row["upvotes"],
        organization=row["organization"],
        url=row["url"],
        day=_day(row["day"]),
        source=row["source"],
        categories=tuple(json.loads(row["categories"])),
    )


def _add_papers(conn: Connection, papers: Iterable[Paper]) -> AddResult:
    """Insert new papers; update known ones (see Store.add_papers). Caller holds a transaction."""
    new = updated = 0
    now = _now()
    for p in papers:
        row = conn.execute("SELECT * FROM papers WHERE id = ?", (p.id,)).fetchone()
        if row is None and p.announce_type == "replace":
            continue  # a new version of a paper we never had: not news for this digest
        if row is None:
            conn.execute(
                f"INSERT INTO papers ({_PAPER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    p.id,
                    p.title,
                    p.abstract,
                    json.dumps(list(p.authors)),
                    p.authors_count,
                    p.published,
                    p.upvotes,
                    p.organization,
                    p.url,
                    p.day and _iso(p.day),
                    p.source,
                    json.dumps(list(p.categories)),
                    now,
                    now,
                ),
            )
            new += 1
            continue
        changes = {
            "authors": json.dumps(list(p.authors)) if p.authors and row["authors"] == "[]" else None,
            "authors_count": p.authors_count if row["authors_count"] is None else None,
            "published": p.published if row["published"] is None else None,
            "upvotes": p.upvotes if p.upvotes is not None and p.upvotes != row["upvotes"] else None,
            "organization": p.organization if row["organization"] is None else None,
            "url": p.url if row["url"] is None else None,
            "categories": json.dumps(list(p.categories))
            if p.categories and row["categories"] == "[]"
            else None,
        }
        if p.announce_type == "replace":  # a new version of the paper: its text wins
            changes |= {"title": p.title, "abstract": p.abstract}
        changes = {k: v for k, v in changes.items() if v is not None and v != row[k]}
        if changes:
            sets = ", ".join(f"{k} = ?" for k in changes)
            conn.execute(
                f"UPDATE papers SET {sets}, updated_at = ? WHERE id = ?", (*changes.values(), now, p.id)
            )
            updated += 1
    return AddResult(new, updated)
