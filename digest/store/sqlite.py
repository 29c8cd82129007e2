"""SQLite, the embedded store: papers, ingested files, the embedding and keyphrase caches,
and the delivery ledger (who got which day's digest, and which papers were in it).

Only this module speaks SQL (for SQLite). Schema changes are numbered migrations keyed on
``PRAGMA user_version``, each a tuple of single statements run in one transaction under the
write lock, so an old database is upgraded in place, never rebuilt, and two first runs at once
never both migrate. Every sqlite3 error becomes one StoreError that says what to do.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError
from ..models import Delivery, Paper, Status
from .base import AddResult, IngestedFile, SourceState, Unsubscribe, Vote

MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE papers (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            abstract TEXT NOT NULL,
            authors TEXT NOT NULL DEFAULT '[]',
            authors_count INTEGER,
            published TEXT,
            upvotes INTEGER,
            organization TEXT,
            url TEXT,
            day TEXT NOT NULL,
            source TEXT,
            categories TEXT NOT NULL DEFAULT '[]',
            added_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX papers_by_day ON papers(day)",
        """CREATE TABLE files (
            sha256 TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            day TEXT,
            papers INTEGER NOT NULL,
            ingested_at TEXT NOT NULL
        )""",
        """CREATE TABLE embeddings (
            model TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (model, text_hash)
        )""",
        """CREATE TABLE keyphrases (
            model TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            phrases TEXT NOT NULL,
            PRIMARY KEY (model, text_hash)
        )""",
        """CREATE TABLE deliveries (
            subscriber TEXT NOT NULL,
            day TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
            message_id TEXT,
            paper_ids TEXT NOT NULL DEFAULT '[]',
            location TEXT,
            reply TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (subscriber, day)
        )""",
        """CREATE TABLE sent_papers (
            subscriber TEXT NOT NULL,
            paper_id TEXT NOT NULL,
            day TEXT NOT NULL,
            PRIMARY KEY (subscriber, paper_id)
        )""",
    ),
    # 2: deliveries gain 'pending' (a temporary failure, retried by the next run) and attempts
    (
        """CREATE TABLE deliveries_v2 (
            subscriber TEXT NOT NULL,
            day TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
            message_id TEXT,
            paper_ids TEXT NOT NULL DEFAULT '[]',
            location TEXT,
            reply TEXT,
            updated_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (subscriber, day)
        )""",
        """INSERT INTO deliveries_v2 (subscriber, day, status, message_id, paper_ids, location, reply,
            updated_at)
            SELECT subscriber, day, status, message_id, paper_ids, location, reply, updated_at
            FROM deliveries""",
        "DROP TABLE deliveries",
        "ALTER TABLE deliveries_v2 RENAME TO deliveries",
    ),
    # 3: the ledger's hourly question ("which days are taken since ...") reads an index
    ("CREATE INDEX deliveries_by_day ON deliveries(day, status)",),
    # 4: readers who unsubscribed (kept apart from subscribers.yaml, which an edit must not undo)
    # and their "more / less like this" votes (one per paper: a later vote replaces an earlier one)
    (
        """CREATE TABLE unsubscribes (
            subscriber TEXT PRIMARY KEY,
            at TEXT NOT NULL,
            how TEXT NOT NULL
        )""",
        """CREATE TABLE votes (
            subscriber TEXT NOT NULL,
            paper_id TEXT NOT NULL,
            vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
            at TEXT NOT NULL,
            PRIMARY KEY (subscriber, paper_id)
        )""",
    ),
    # 5: configured sources: validators for conditional requests, and how the last fetch went
    (
        """CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            etag TEXT,
            last_modified TEXT,
            last_attempt TEXT,
            last_ok TEXT,
            status TEXT,
            detail TEXT
        )""",
    ),
    # 6: the embedding cache gets a bound: each vector remembers when it was last written, so
    # the oldest go first; rows from before keep the migration's time
    (
        "ALTER TABLE embeddings ADD COLUMN added_at TEXT",
        "UPDATE embeddings SET added_at = strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')",
        "CREATE INDEX embeddings_by_age ON embeddings(added_at)",
    ),
    # 7: keyphrases are cached under "model/extractor version"; the old extractor's glued
    # phrases ("phones quantize") are dropped rather than shown again
    ("DELETE FROM keyphrases WHERE model NOT LIKE '%/%'",),
]


def _store_error(path: Path, exc: BaseException, busy_timeout: float) -> StoreError:
    """One line that says what is wrong with the database and what to do."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StoreError(
            f"{path} is locked by another digest process (waited {busy_timeout:g} s); let it finish "
            "and run again"
        )
    if (
        "readonly" in text
        or "read-only" in text
        or getattr(exc, "errno", None) in (errno.EROFS, errno.EACCES)
    ):
        return StoreError(
            f"{path} is read-only for this user; make the file and its folder writable, or set DIGEST_DB "
            "to a writable place"
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreError(
            f"{path} is not a SQLite database or is damaged; move it aside (a new one is created) or "
            "restore a backup"
        )
    if "full" in text or "disk i/o" in text or getattr(exc, "errno", None) == errno.ENOSPC:
        return StoreError(f"the disk holding {path} is full or failing; free some space and run again")
    if "unable to open" in text:
        return StoreError(
            f"{path} cannot be opened; check that its folder exists and is writable, or set DIGEST_DB"
        )
    return StoreError(f"{path}: database error ({exc}); check the file, or set DIGEST_DB elsewhere")


class _Connection:
    """sqlite3.Connection with every error turned into StoreError at one place."""

    def __init__(self, conn: sqlite3.Connection, path: Path, busy_timeout: float):
        self._conn = conn
        self._path = path
        self._busy_timeout = busy_timeout

    @contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _store_error(self._path, exc, self._busy_timeout) from exc

    def execute(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self.errors():
            return self._conn.execute(sql, tuple(args))

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> sqlite3.Cursor:
        with self.errors():
            return self._conn.executemany(sql, rows)

    def rows(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """All rows of a query, read inside the error mapping (a locked or damaged page can
        surface while rows are fetched, not only when the query starts)."""
        with self.errors():
            return self._conn.execute(sql, tuple(args)).fetchall()

    def close(self) -> None:
        self._conn.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _iso(day: date) -> str:
    """Days are stored as ISO text: it sorts and compares as the dates do."""
    return day.isoformat()


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


class SQLiteStore:
    """One SQLite database file. Open with `SQLiteStore.open(path)`; use as a context manager."""

    def __init__(self, conn: _Connection, path: Path):
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, *, busy_timeout: float = 30.0) -> SQLiteStore:
        """Open (creating if need be) and upgrade the database; StoreError saying what to do if
        it cannot be used: a folder that cannot be made, a damaged, locked, read-only or newer one."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{path}: its folder {path.parent} cannot be created ({exc.strerror or exc}); "
                "create it, or set DIGEST_DB to a place that can hold it"
            ) from exc
        try:
            raw = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise _store_error(path, exc, busy_timeout) from exc
        raw.row_factory = sqlite3.Row
        store = cls(_Connection(raw, path, busy_timeout), path)
        try:
            store._check_writable()
            store._migrate()
            store._use_wal(busy_timeout)
        except BaseException:
            raw.close()
            raise
        return store

    def _use_wal(self, busy_timeout: float) -> None:
        """Switch the file to WAL (once per file; a no-op after). sqlite takes the write lock for
        it from inside a read and, to avoid a deadlock, fails at once instead of waiting when
        another process holds that lock (two first runs at once): so the waiting is done here."""
        deadline = time.monotonic() + busy_timeout
        pause = 0.005
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode=WAL")
                return
            except StoreError as exc:
                locked = "locked" in str(exc.__cause__)  # anything else is not worth waiting for
                if not locked or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _check_writable(self) -> None:
        """Refuse a database this user cannot change, before any write is tried: sqlite only
        notices at the first write, which can be mid-run."""
        for target in (self.path, self.path.parent):
            if target.exists() and not os.access(target, os.W_OK):
                raise _store_error(self.path, PermissionError(errno.EACCES, "read-only"), 0)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, immediate: bool = False) -> Iterator[_Connection]:
        """All or nothing; IMMEDIATE takes the write lock up front (used to claim deliveries)."""
        self.conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        """Bring the schema up to date under the write lock, re-reading the version there: of
        two first runs at once, the second finds the work done."""
        if self._version() == len(MIGRATIONS):
            return
        with self.transaction(immediate=True) as conn:
            version = self._version()
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path} was written by a newer digest (schema {version}; this one knows "
                    f"{len(MIGRATIONS)}); upgrade digest, or point DIGEST_DB at another file"
                )
            for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in statements:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")

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
                "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?)",
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

    def _cached(self, table: str, column: str, model: str, hashes: list[str]) -> Iterator[sqlite3.Row]:
        """Rows of a cache table for `hashes`, asked 500 at a time (SQLite's variable limit)."""
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
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
                "INSERT OR REPLACE INTO embeddings (model, text_hash, vector, added_at) VALUES (?,?,?,?)",
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
                "INSERT OR REPLACE INTO keyphrases VALUES (?,?,?)",
                [(model, h, json.dumps(p)) for h, p in phrases.items()],
            )

    # --- the delivery ledger --------------------------------------------------------

    def claim_delivery(self, subscriber: str, day: date, *, retry_unknown: bool = False) -> bool:
        """Mark (subscriber, day) `sending`; true if this caller won it. Free to claim: no row, or
        `pending` (a temporary failure), or with `retry_unknown` a `sending` row that a killed run
        left behind. Taken under the write lock, so two runs at once never both claim it."""
        claimable = ("pending", "sending") if retry_unknown else ("pending",)
        with self.transaction(immediate=True) as conn:
            row = conn.execute(
                "SELECT status FROM deliveries WHERE subscriber = ? AND day = ?", (subscriber, _iso(day))
            ).fetchone()
            if row is not None and row["status"] not in claimable:
                return False
            conn.execute(
                "INSERT INTO deliveries (subscriber, day, status, updated_at) VALUES (?,?,'sending',?)"
                " ON CONFLICT (subscriber, day)"
                " DO UPDATE SET status = 'sending', updated_at = excluded.updated_at",
                (subscriber, _iso(day), _now()),
            )
            return True

    def note_message_id(self, subscriber: str, day: date, message_id: str) -> None:
        """Record the Message-ID before the SMTP call, so an unknown outcome can be looked up."""
        self.conn.execute(
            "UPDATE deliveries SET message_id = ?, updated_at = ? WHERE subscriber = ? AND day = ?",
            (message_id, _now(), subscriber, _iso(day)),
        )

    def release_delivery(self, subscriber: str, day: date) -> None:
        """Undo a claim that sent nothing (for example, the digest could not be rendered)."""
        self.conn.execute(
            "DELETE FROM deliveries WHERE subscriber = ? AND day = ? AND status = 'sending'",
            (subscriber, _iso(day)),
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
                    "INSERT OR IGNORE INTO sent_papers VALUES (?,?,?)",
                    [(subscriber, pid, _iso(day)) for pid in ids],
                )

    def sent_paper_ids(self, subscriber: str, before: date | None = None) -> set[str]:
        """Papers already mailed to `subscriber` (in digests of days before `before`, if given)."""
        sql, args = "SELECT paper_id FROM sent_papers WHERE subscriber = ?", [subscriber]
        if before is not None:
            sql, args = sql + " AND day < ?", [*args, _iso(before)]
        return {r[0] for r in self.conn.rows(sql, args)}

    def deliveries(self, day: date | None = None) -> list[Delivery]:
        """Ledger rows, of one day or all, by day and subscriber."""
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
                "INSERT OR IGNORE INTO unsubscribes VALUES (?,?,?)", (subscriber, _now(), how)
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
                    "INSERT INTO votes VALUES (?,?,?,?) ON CONFLICT (subscriber, paper_id)"
                    " DO UPDATE SET vote = excluded.vote, at = excluded.at",
                    (subscriber, paper_id, vote, _now()),
                )

    def votes(self, subscriber: str | None = None) -> list[Vote]:
        """Votes, of one subscriber or all, oldest first."""
        where, args = ("WHERE subscriber = ?", (subscriber,)) if subscriber else ("", ())
        rows = self.conn.rows(f"SELECT * FROM votes {where} ORDER BY at, rowid", args)
        return [Vote(r["subscriber"], r["paper_id"], r["vote"], r["at"]) for r in rows]

    # --- configured sources ----------------------------------------------------------

    def source_states(self) -> dict[str, SourceState]:
        return {r["name"]: SourceState(**dict(r)) for r in self.conn.rows("SELECT * FROM sources")}

    def save_source_state(self, state: SourceState) -> None:
        with self.transaction(immediate=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sources VALUES (?,?,?,?,?,?,?,?)",
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


def _paper(row: sqlite3.Row) -> Paper:
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


def _add_papers(conn: _Connection, papers: Iterable[Paper]) -> AddResult:
    """Insert new papers; update known ones (see Store.add_papers). Caller holds a transaction."""
    new = updated = 0
    now = _now()
    for p in papers:
        row = conn.execute("SELECT * FROM papers WHERE id = ?", (p.id,)).fetchone()
        if row is None and p.announce_type == "replace":
            continue  # a new version of a paper we never had: not news for this digest
        if row is None:
            conn.execute(
                "INSERT INTO papers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
