"""`digest db copy`: the whole store into another, empty one, either backend to either.

    copy_store(source, target) -> {table: rows}

What a move from SQLite to PostgreSQL (or back) must not lose is the store's memory of readers:
unsubscribes (a legal duty), votes, and the delivery ledger that keeps a digest from going out
twice. So every table is copied, the caches too unless left behind (they are only rebuilt work).

How, and what it promises:
- The target is refused unless every table is empty, and a store is never copied onto itself.
- The source is read in one snapshot (a read transaction; REPEATABLE READ on PostgreSQL), so a
  process writing to it meanwhile cannot make the copy half old, half new.
- The target is written in ONE transaction for the whole copy, row counts checked before it
  commits: a failure anywhere (or counts that differ) leaves the target empty.
- Tables are read in pages of `batch` rows by key (keyset pagination, never OFFSET), so memory
  stays bounded however large the embedding cache is.
- Rows go in in the source's arrival order (rowid) wherever the source keeps one: papers and
  votes are read back `ORDER BY rowid`, so arrival order is data. The rowid values themselves
  are not copied; the target numbers the rows as they arrive.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import StoreError
from ..settings import redacted
from .base import Store
from .common import Connection
from .sql import SQLStore
from .sqlite import SQLiteStore


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]  # the primary key: the page order where the source has no rowid
    rowid: bool = False  # PostgreSQL keeps a rowid column too (arrival order is read back)
    cache: bool = False  # only rebuilt work: `--no-cache` leaves it behind


def _table(name: str, columns: str, key: str, *, rowid: bool = False, cache: bool = False) -> Table:
    return Table(name, tuple(columns.split()), tuple(key.split()), rowid, cache)


# Every table of the store and its columns, in one place (both backends' schemas agree on them).
# Not here: PostgreSQL's send_pace (the next send slot, meaningless on another database) and
# digest_schema (the target's own migrations write it), nor procrastinate's job tables.
TABLES: tuple[Table, ...] = (
    _table(
        "papers",
        "id title abstract authors authors_count published upvotes organization url day source"
        " categories added_at updated_at",
        key="id",
        rowid=True,
    ),
    _table("files", "sha256 path day papers ingested_at", key="sha256", rowid=True),
    _table(
        "deliveries",
        "subscriber day status message_id paper_ids location reply updated_at attempts",
        key="subscriber day",
    ),
    _table("sent_papers", "subscriber paper_id day", key="subscriber paper_id"),
    _table("unsubscribes", "subscriber at how", key="subscriber"),
    _table("votes", "subscriber paper_id vote at", key="subscriber paper_id", rowid=True),
    _table("sources", "name url etag last_modified last_attempt last_ok status detail", key="name"),
    _table("plans", "subscriber day picks made_at", key="subscriber day"),
    _table("bounces", "key subscriber email kind status diagnostic source at", key="key"),
    _table("suppressions", "subscriber email kind at status diagnostic source", key="subscriber"),
    _table("embeddings", "model text_hash vector added_at", key="model text_hash", rowid=True, cache=True),
    _table("keyphrases", "model text_hash phrases", key="model text_hash", cache=True),
)

# Rows copied so far and rows to copy in all, after each page; `table` is the one being copied.
Progress = Callable[[str, int, int], None]


def copy_store(
    source: Store,
    target: Store,
    *,
    cache: bool = True,
    batch: int = 1000,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Copy every table of `source` (the caches only if `cache`) into the empty `target`; the
    rows copied per table, checked equal to the source's. StoreError, with the target left as it
    was, if it holds data, is the source itself, or the copy fails."""
    src, dst = _sql(source), _sql(target)
    if _identity(src) == _identity(dst):
        raise StoreError(f"{describe(src)} is the store being copied; name another database as the target")
    tables = [t for t in TABLES if cache or not t.cache]
    with _snapshot(src):
        wanted = {t.name: _count(src.conn, t.name) for t in tables}
        with dst.transaction(immediate=True) as conn:  # the target's write lock: nobody writes meanwhile
            if held := {t.name: n for t in TABLES if (n := _count(conn, t.name))}:
                rows = ", ".join(f"{name} {n}" for name, n in held.items())
                raise StoreError(
                    f"{describe(dst)} already holds data ({rows}); copy into a new SQLite file or an "
                    "empty PostgreSQL database or schema"
                )
            try:
                copied = _copy_tables(src, conn, tables, sum(wanted.values()), batch, progress)
                if copied != wanted:
                    differ = ", ".join(
                        f"{name} {copied[name]} of {n}" for name, n in wanted.items() if copied[name] != n
                    )
                    raise StoreError(f"the copy's row counts differ from the source's ({differ})")
            except StoreError as exc:  # raised inside the transaction: rolled back as it leaves
                raise StoreError(f"{exc}; nothing was copied, {describe(dst)} is left empty") from exc
    return copied


def _copy_tables(
    src: SQLStore,
    conn: Connection,
    tables: Sequence[Table],
    total: int,
    batch: int,
    progress: Progress | None,
) -> dict[str, int]:
    """Each table's rows from `src` into `conn` (inside the caller's transaction), page by page;
    the rows the target then holds per table."""
    done = 0
    for table in tables:
        insert = (
            f"INSERT INTO {table.name} ({', '.join(table.columns)})"
            f" VALUES ({', '.join('?' * len(table.columns))})"
        )
        for page in _pages(src, table, batch):
            conn.executemany(insert, page)
            done += len(page)
            if progress is not None:
                progress(table.name, done, total)
    return {t.name: _count(conn, t.name) for t in tables}


def describe(store: Store) -> str:
    """The store in words: its SQLite file, or its PostgreSQL URL without the password."""
    if isinstance(store, SQLiteStore):
        return str(store.path)

    return redacted(store.url)  # type: ignore[attr-defined]


@contextmanager
def terminal_progress(min_rows: int = 5000) -> Iterator[Progress | None]:
    """A progress bar on stderr for a copy of at least `min_rows` rows, when stderr is a
    terminal; None (quiet) under cron or in a pipe."""
    if not sys.stderr.isatty():
        yield None
        return
    bars: list[Any] = []

    def show(table: str, done: int, total: int) -> None:
        if total < min_rows:
            return
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(total=total, desc=table, unit="row", unit_scale=True, file=sys.stderr))
        bars[0].set_description(table, refresh=False)
        bars[0].update(done - bars[0].n)

    try:
        yield show
    finally:
        for bar in bars:
            bar.close()


def _sql(store: Store) -> SQLStore:
    if not isinstance(store, SQLStore):  # every backend is one; a test double would not be
        raise TypeError(f"cannot copy {type(store).__name__}: only SQL stores can be copied")
    return store


def _identity(store: SQLStore) -> tuple[Any, ...]:
    """What makes two opened stores the same database, however their names were spelled: a
    SQLite file's device and inode (a symlink, a relative path), a PostgreSQL server's port and
    start time with the database and schema (localhost or a socket, with or without password)."""
    if isinstance(store, SQLiteStore):
        stat = os.stat(store.path)
        return ("sqlite", stat.st_dev, stat.st_ino)
    row = store.conn.rows(
        "SELECT current_database(), current_schema(), current_setting('port'),"
        " pg_postmaster_start_time()::text"
    )[0]
    return ("postgresql", *tuple(row))


def _count(conn: Connection, table: str) -> int:
    return int(conn.rows(f"SELECT COUNT(*) FROM {table}")[0][0])


@contextmanager
def _snapshot(store: SQLStore) -> Iterator[None]:
    """One read transaction over the whole copy: every page and count sees the same moment.
    SQLite in WAL mode holds a snapshot from a deferred BEGIN's first read to its end;
    PostgreSQL's default, READ COMMITTED, would take a new one for each statement."""
    with store.transaction():
        if not isinstance(store, SQLiteStore):
            store.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def _pages(store: SQLStore, table: Table, size: int) -> Iterator[Sequence[tuple[Any, ...]]]:
    """The table's rows, `size` at a time, in arrival order where the source keeps one: every
    SQLite table has a rowid; in PostgreSQL the tables whose order is read back do. Each page
    starts after the last one's key, so a page costs the same at the end as at the start."""
    order = ("rowid",) if table.rowid or isinstance(store, SQLiteStore) else table.key
    keys, marks = ", ".join(order), ", ".join("?" * len(order))
    select = f"SELECT {keys}, {', '.join(table.columns)} FROM {table.name}"
    after: tuple[Any, ...] = ()
    while True:
        where = f" WHERE ({keys}) > ({marks})" if after else ""
        rows = store.conn.rows(f"{select}{where} ORDER BY {keys} LIMIT ?", (*after, size))
        if not rows:
            return
        values = [tuple(row) for row in rows]
        yield [v[len(order) :] for v in values]
        if len(rows) < size:
            return
        after = values[-1][: len(order)]
