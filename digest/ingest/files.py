"""The ingest wing: files and URLs -> papers in the store.

    ingest(store, inputs)      each file or http(s) URL read by content (any format digest reads,
                               digest.sources) and stored in one transaction; a bad one is
                               reported and stores nothing, the rest go on; a file seen before
                               (same bytes) is skipped
    inbox_files(folder)        the inbox's new files, for `ingest` (what every run starts with)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .. import sources
from ..errors import InputError, StoreError
from ..store import IngestStore
from ..text import mask_query

log = logging.getLogger("digest")


@dataclass(frozen=True)
class FileOutcome:
    path: str
    papers: int = 0
    new: int = 0
    updated: int = 0
    skipped: bool = False  # already ingested (same content)
    error: str | None = None
    notes: tuple[str, ...] = ()  # what was left out of an otherwise good file


def ingest(
    store: IngestStore,
    inputs: Iterable[Path | str],
    *,
    day: date | None = None,
    today: date,
    force: bool = False,
    allow_private: bool = False,
) -> list[FileOutcome]:
    """Read each file or http(s) URL and store its papers; one input's failure never stops the
    others, and a failed input stores nothing. Inputs seen before (same bytes) are skipped.
    `allow_private` lets URLs reach loopback and private addresses (DIGEST_INGEST_ALLOW_PRIVATE)."""
    outcomes = []
    for item in inputs:
        name = str(item)
        try:
            if isinstance(item, str) and "://" in item:
                name = mask_query(item)
                data, name_day = sources.fetch(item, allow_private=allow_private), None
            else:
                data, name_day = sources.read_limited(Path(item)), sources.day_from_name(Path(item))
            sha = hashlib.sha256(data).hexdigest()
            if store.file_seen(sha) and not force:
                outcomes.append(FileOutcome(name, skipped=True))
                continue
            file_day = day or name_day or today
            parsed = sources.parse_bytes(data, day=file_day, source=name)
            result = store.ingest_file(sha, name, file_day, parsed.papers)
            notes = tuple(parsed.notes)  # each already a whole line that names the input
            outcomes.append(FileOutcome(name, len(parsed.papers), result.new, result.updated, notes=notes))
        except InputError as exc:
            outcomes.append(FileOutcome(name, error=str(exc)))
        except OSError as exc:
            outcomes.append(FileOutcome(name, error=f"{name}: cannot read ({exc.strerror or exc})"))
        except StoreError:
            raise  # the database, not this file: nothing else can be stored either
        except Exception as exc:  # noqa: BLE001 - a parser bug on one file must not stop the batch
            log.error("ingesting %s failed", name, exc_info=True)
            outcomes.append(
                FileOutcome(
                    name,
                    error=f"{name}: could not be read ({type(exc).__name__}: {exc}); "
                    "nothing from it was stored; please report this with the file",
                )
            )
    return outcomes


def inbox_files(inbox: Path) -> list[Path]:
    """Regular files in the inbox, oldest name first; hidden and partial files are ignored."""
    if not inbox.is_dir():
        return []
    return sorted(
        p
        for p in inbox.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith((".part", ".tmp", "~"))
    )
