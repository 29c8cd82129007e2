"""The common ground of the store's SQL (sql.py, ledger.py): what a backend's connection must
offer, and how values are written (days as ISO text, times in UTC, long IN lists in chunks)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol


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


def chunks(values: Sequence[str], size: int = 500) -> Iterator[tuple[Sequence[str], str]]:
    """`values` `size` at a time, each with its `?,?,...` for an IN list: a query asks for at
    most 500 at once (SQLite's limit on variables in one statement)."""
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield chunk, ",".join("?" * len(chunk))


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def iso(day: date) -> str:
    """Days are stored as ISO text: it sorts and compares as the dates do."""
    return day.isoformat()


def day_of(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None
