"""The store: papers, caches and the delivery ledger behind one interface (`Store`).

    open_store(settings) -> Store        the backend DIGEST_DB names: a SQLite file (the
                                         default), or a postgresql:// URL
    copy_store(source, target)           the whole store into an empty one, either backend
                                         to either (digest.store.copy; `digest db copy`)

Callers are typed against `Store` (digest.store.base); backends live beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import (
    AddResult,
    DeliveryStore,
    IngestedFile,
    IngestStore,
    PaperStore,
    RankingStore,
    SourceState,
    Store,
    Unsubscribe,
    Vote,
)
from .copy import copy_store
from .sqlite import MIGRATIONS, SQLiteStore

if TYPE_CHECKING:
    from ..settings import Settings


def open_store(settings: Settings, *, wait: float | None = None) -> Store:
    """The store the settings name, opened and migrated; StoreError if it cannot be used.
    `wait`: the most seconds any step may wait for the database (to connect, for a lock, for a
    statement) before it is a StoreError; by default the backends' own, which suit a batch job
    better than a reader waiting for a page."""
    if settings.store.url:
        from .postgres import PostgresStore  # psycopg is imported only by those who use it

        return PostgresStore.open(settings.store.url, wait=wait)
    return SQLiteStore.open(settings.store.db, busy_timeout=30.0 if wait is None else wait)


__all__ = [
    "MIGRATIONS",
    "AddResult",
    "DeliveryStore",
    "IngestStore",
    "PaperStore",
    "RankingStore",
    "IngestedFile",
    "SQLiteStore",
    "SourceState",
    "Store",
    "Unsubscribe",
    "Vote",
    "copy_store",
    "open_store",
]
