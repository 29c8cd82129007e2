"""SQLite, the embedded store: papers, ingested files, the embedding and keyphrase caches,
and the delivery ledger (who got which day's digest, and which papers were in it).

Only this module speaks SQL. Schema changes are numbered migrations keyed on
``PRAGMA user_version``, so an old database is upgraded in place and never rebuilt.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .models import Delivery, Paper

MIGRATIONS: list[str] = [
    """
    CREATE TABLE papers (
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
    );
    CREATE INDEX papers_by_day ON papers(day);
    CREATE TABLE files (
        sha256 TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        day TEXT,
        papers INTEGER NOT NULL,
        ingested_at TEXT NOT NULL
    );
    CREATE TABLE embeddings (
        model TEXT NOT NULL,
        text_hash TEXT NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (model, text_hash)
    );
    CREATE TABLE keyphrases (
        model TEXT NOT NULL,
        text_hash TEXT NOT NULL,
        phrases TEXT NOT NULL,
        PRIMARY KEY (model, text_hash)
    );
    CREATE TABLE deliveries (
        subscriber TEXT NOT NULL,
        day TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
        message_id TEXT,
        paper_ids TEXT NOT NULL DEFAULT '[]',
        location TEXT,
        reply TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (subscriber, day)
    );
    CREATE TABLE sent_papers (
        subscriber TEXT NOT NULL,
        paper_id TEXT NOT NULL,
        day TEXT NOT NULL,
        PRIMARY KEY (subscriber, paper_id)
    );
    """,
    # 2: deliveries gain 'pending' (a temporary failure, retried by the next run) and attempts
    """
    CREATE TABLE deliveries_v2 (
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
    );
    INSERT INTO deliveries_v2 (subscriber, day, status, message_id, paper_ids, location, reply, updated_at)
        SELECT subscriber, day, status, message_id, paper_ids, location, reply, updated_at FROM deliveries;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_v2 RENAME TO deliveries;
    """,
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class AddResult:
    new: int
    updated: int


class Store:
    """One SQLite database file. Open with `Store.open(path)`; use as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        store = cls(conn, path)
        store._migrate()
        return store

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """All or nothing; IMMEDIATE takes the write lock up front (used to claim deliveries)."""
        self.conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction(immediate=True) as conn:
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")

    # --- papers ---------------------------------------------------------------------

    def add_papers(self, papers: Iterable[Paper]) -> AddResult:
        """Insert new papers; for known ones keep the first day and text, add missing metadata
        and take newer upvotes. One transaction: a failure stores nothing."""
        with self.transaction(immediate=True) as conn:
            return _add_papers(conn, papers)

    def papers(self, day: str | None = None, *, since: str | None = None) -> list[Paper]:
        """Papers of one day, or of every day from `since` up to `day`, in arrival order."""
        if day is None:
            rows = self.conn.execute("SELECT * FROM papers ORDER BY day, rowid")
        elif since is None:
            rows = self.conn.execute("SELECT * FROM papers WHERE day = ? ORDER BY rowid", (day,))
        else:
            rows = self.conn.execute(
                "SELECT * FROM papers WHERE day BETWEEN ? AND ? ORDER BY day, rowid", (since, day)
            )
        return [_paper(row) for row in rows]

    def papers_by_id(self, ids: Iterable[str]) -> dict[str, Paper]:
        ids = list(dict.fromkeys(ids))
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(f"SELECT * FROM papers WHERE id IN ({marks})", ids) if ids else []
        return {row["id"]: _paper(row) for row in rows}

    def days(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT day FROM papers ORDER BY day")]

    # --- ingested files -------------------------------------------------------------

    def file_seen(self, sha256: str) -> bool:
        return self.conn.execute("SELECT 1 FROM files WHERE sha256 = ?", (sha256,)).fetchone() is not None

    def ingest_file(self, sha256: str, path: str, day: str | None, papers: list[Paper]) -> AddResult:
        """Store a file's papers and remember the file, in one transaction."""
        with self.transaction(immediate=True) as conn:
            result = _add_papers(conn, papers)
            conn.execute(
                "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?)", (sha256, path, day, len(papers), _now())
            )
        return result

    def recent_files(self, limit: int = 10) -> list[sqlite3.Row]:
        return list(
            self.conn.execute(
                "SELECT path, day, papers, ingested_at FROM files"
                " ORDER BY ingested_at DESC, rowid DESC LIMIT ?",
                (limit,),
            )
        )

    # --- caches ---------------------------------------------------------------------

    def cached_vectors(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(
                f"SELECT text_hash, vector FROM embeddings WHERE model = ? AND text_hash IN ({marks})",
                (model, *chunk),
            ):
                found[row[0]] = np.frombuffer(row[1], dtype=np.float32)
        return found

    def cache_vectors(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        with self.transaction() as conn:
            conn.executemany(  # a generator: rows are serialized one at a time, not all at once
                "INSERT OR REPLACE INTO embeddings VALUES (?,?,?)",
                ((model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in vectors.items()),
            )

    def cached_keyphrases(self, model: str, hashes: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(
                f"SELECT text_hash, phrases FROM keyphrases WHERE model = ? AND text_hash IN ({marks})",
                (model, *chunk),
            ):
                found[row[0]] = json.loads(row[1])
        return found

    def cache_keyphrases(self, model: str, phrases: dict[str, list[str]]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO keyphrases VALUES (?,?,?)",
                [(model, h, json.dumps(p)) for h, p in phrases.items()],
            )

    # --- the delivery ledger --------------------------------------------------------

    def claim_delivery(self, subscriber: str, day: str, *, retry_unknown: bool = False) -> bool:
        """Mark (subscriber, day) `sending`; true if this caller won it. Free to claim: no row, or
        `pending` (a temporary failure), or with `retry_unknown` a `sending` row that a killed run
        left behind. Taken under the write lock, so two runs at once never both claim it."""
        claimable = ("pending", "sending") if retry_unknown else ("pending",)
        with self.transaction(immediate=True) as conn:
            row = conn.execute(
                "SELECT status FROM deliveries WHERE subscriber = ? AND day = ?", (subscriber, day)
            ).fetchone()
            if row is not None and row["status"] not in claimable:
                return False
            conn.execute(
                "INSERT INTO deliveries (subscriber, day, status, updated_at) VALUES (?,?,'sending',?)"
                " ON CONFLICT (subscriber, day)"
                " DO UPDATE SET status = 'sending', updated_at = excluded.updated_at",
                (subscriber, day, _now()),
            )
            return True

    def note_message_id(self, subscriber: str, day: str, message_id: str) -> None:
        """Record the Message-ID before the SMTP call, so an unknown outcome can be looked up."""
        self.conn.execute(
            "UPDATE deliveries SET message_id = ?, updated_at = ? WHERE subscriber = ? AND day = ?",
            (message_id, _now(), subscriber, day),
        )

    def release_delivery(self, subscriber: str, day: str) -> None:
        """Undo a claim that sent nothing (for example, the digest could not be rendered)."""
        self.conn.execute(
            "DELETE FROM deliveries WHERE subscriber = ? AND day = ? AND status = 'sending'",
            (subscriber, day),
        )

    def finish_delivery(
        self,
        subscriber: str,
        day: str,
        *,
        status: str,
        message_id: str | None = None,
        paper_ids: Iterable[str] = (),
        location: str | None = None,
        reply: str | None = None,
        attempts: int = 1,
    ) -> None:
        """sent | failed (for good) | pending (the next run tries again)."""
        ids = list(paper_ids)
        with self.transaction(immediate=True) as conn:
            conn.execute(
                "UPDATE deliveries SET status = ?, message_id = COALESCE(?, message_id), paper_ids = ?,"
                " location = ?, reply = ?, updated_at = ?, attempts = attempts + ?"
                " WHERE subscriber = ? AND day = ?",
                (status, message_id, json.dumps(ids), location, reply, _now(), attempts, subscriber, day),
            )
            if status == "sent":
                conn.executemany(
                    "INSERT OR IGNORE INTO sent_papers VALUES (?,?,?)",
                    [(subscriber, pid, day) for pid in ids],
                )

    def sent_paper_ids(self, subscriber: str, before: str | None = None) -> set[str]:
        """Papers already mailed to `subscriber` (in digests of days before `before`, if given)."""
        sql, args = "SELECT paper_id FROM sent_papers WHERE subscriber = ?", [subscriber]
        if before is not None:
            sql, args = sql + " AND day < ?", [*args, before]
        return {r[0] for r in self.conn.execute(sql, args)}

    def deliveries(self, day: str | None = None, status: str | None = None) -> list[Delivery]:
        sql, args = "SELECT * FROM deliveries WHERE 1=1", []
        if day is not None:
            sql, args = sql + " AND day = ?", [*args, day]
        if status is not None:
            sql, args = sql + " AND status = ?", [*args, status]
        return [
            Delivery(
                subscriber_id=r["subscriber"],
                day=r["day"],
                status=r["status"],
                message_id=r["message_id"],
                paper_ids=tuple(json.loads(r["paper_ids"])),
                location=r["location"],
                reply=r["reply"],
                updated_at=r["updated_at"],
                attempts=r["attempts"],
            )
            for r in self.conn.execute(sql + " ORDER BY day, subscriber", args)
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
        day=row["day"],
        source=row["source"],
        categories=tuple(json.loads(row["categories"])),
    )


def _add_papers(conn: sqlite3.Connection, papers: Iterable[Paper]) -> AddResult:
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
                    p.day,
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
