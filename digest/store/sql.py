"""The store's SQL, written once for every backend: papers, ingested files, the embedding and
keyphrase caches, the delivery ledger, readers' unsubscribes and votes, and source states.

`SQLStore` holds every query (its ledger side in ledger.py); a backend (sqlite.py, postgres.py)
opens the connection, keeps its own migrations and turns its driver's errors into StoreError.
The SQL is the common ground of SQLite 3.35+ and PostgreSQL: `?` placeholders (a backend may
rewrite them), upserts as ``INSERT ... ON CONFLICT``, ``RETURNING``, and a ``rowid`` that orders
rows by arrival (SQLite's own; a column of PostgreSQL's tables).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import date

import numpy as np

from ..errors import StoreError
from ..models import Paper
from .base import AddResult, IngestedFile, SourceState
from .bounces import BounceQueries
from .common import Connection, Row, chunks, day_of, iso, utc_now
from .ledger import LedgerQueries

_PAPER_COLUMNS = (
    "id, title, abstract, authors, authors_count, published, upvotes, organization, url, day, source,"
    " categories, added_at, updated_at"
)
_SOURCE_COLUMNS = "name, url, etag, last_modified, last_attempt, last_ok, status, detail"


class SQLStore(LedgerQueries, BounceQueries):
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
            rows = self.conn.rows("SELECT * FROM papers WHERE day = ? ORDER BY rowid", (iso(day),))
        else:
            rows = self.conn.rows(
                "SELECT * FROM papers WHERE day BETWEEN ? AND ? ORDER BY day, rowid", (iso(since), iso(day))
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
                (sha256, path, day and iso(day), len(papers), utc_now()),
            )
        return result

    def recent_files(self, limit: int = 10) -> list[IngestedFile]:
        rows = self.conn.rows(
            "SELECT path, day, papers, ingested_at FROM files ORDER BY ingested_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [IngestedFile(r["path"], day_of(r["day"]), r["papers"], r["ingested_at"]) for r in rows]

    # --- caches ---------------------------------------------------------------------

    def _cached(self, table: str, column: str, model: str, hashes: list[str]) -> Iterator[Row]:
        """Rows of a cache table for `hashes`."""
        for chunk, marks in chunks(hashes):
            yield from self.conn.rows(
                f"SELECT text_hash, {column} FROM {table} WHERE model = ? AND text_hash IN ({marks})",
                (model, *chunk),
            )

    def cached_vectors(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        rows = self._cached("embeddings", "vector", model, hashes)
        return {row[0]: np.frombuffer(row[1], dtype=np.float32) for row in rows}

    def cache_vectors(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        now = utc_now()
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
        day=day_of(row["day"]),
        source=row["source"],
        categories=tuple(json.loads(row["categories"])),
    )


def _add_papers(conn: Connection, papers: Iterable[Paper]) -> AddResult:
    """Insert new papers; update known ones (see Store.add_papers). Caller holds a transaction."""
    new = updated = 0
    now = utc_now()
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
                    p.day and iso(p.day),
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
