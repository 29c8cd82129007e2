"""SQLite, the embedded store: a file opened, migrated and switched to WAL; the queries
themselves are sql.SQLStore's, shared with PostgreSQL.

Schema changes are numbered migrations keyed on
``PRAGMA user_version``, each a tuple of single statements run in one transaction under the
write lock, so an old database is upgraded in place, never rebuilt, and two first runs at once
never both migrate. Every sqlite3 error becomes one StoreError that says what to do.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .sql import SQLStore

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
    # 8: each reader's plan for a day (settings and ranked picks), left by `digest run --enqueue`
    (
        """CREATE TABLE plans (
            subscriber TEXT NOT NULL,
            day TEXT NOT NULL,
            picks TEXT NOT NULL,
            made_at TEXT NOT NULL,
            PRIMARY KEY (subscriber, day)
        )""",
    ),
    # 9: bounces and complaints, each report once, and the readers they stopped
    (
        """CREATE TABLE bounces (
            key TEXT PRIMARY KEY,
            subscriber TEXT NOT NULL,
            email TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
            status TEXT,
            diagnostic TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL,
            at TEXT NOT NULL
        )""",
        "CREATE INDEX bounces_by_reader ON bounces(subscriber, email, kind, at)",
        """CREATE TABLE suppressions (
            subscriber TEXT PRIMARY KEY,
            email TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
            at TEXT NOT NULL,
            status TEXT,
            diagnostic TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL
        )""",
    ),
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

    def begin(self, immediate: bool) -> None:
        """IMMEDIATE takes the write lock up front, waiting up to the busy timeout for it."""
        self.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def close(self) -> None:
        self._conn.close()


class SQLiteStore(SQLStore):
    """One SQLite database file. Open with `SQLiteStore.open(path)`; use as a context manager."""

    def __init__(self, conn: _Connection, path: Path):
        super().__init__(conn)
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
