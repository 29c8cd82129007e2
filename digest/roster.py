"""subscribers.yaml as a long-running process holds it (`digest schedule`, `digest serve`): read
once, kept as the last good version, and read again when the file changes.

    refresh()   one stat of the file (and, every RECHECK seconds, its bytes' hash): unchanged,
                nothing more is done; changed, it is parsed (subscribers and sources together);
                a broken edit, a syntax error or a half-saved file included, is logged once and
                the last good version stays in use until the file is fixed
    roster      the version in use; `subscriber(id)` looks one up in an index built once per
                version, so a request costs a dictionary lookup, not a parse of the file

A one-shot command (`digest run`, `digest send`) reads the file once through config.load_roster
and refuses a broken one instead: nothing is sent from a half-read file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path

from .config import parse_roster, read_config_text
from .errors import ConfigError
from .models import Roster, Subscriber

log = logging.getLogger("digest")

RECHECK = 5.0  # seconds after which the bytes are hashed again even if the stat looks the same


class SubscriberFile:
    """The last good version of one subscribers.yaml; safe to share between threads."""

    def __init__(self, path: Path, *, required: bool = True):
        """Read the file now. `required`: a file that cannot be used raises ConfigError (the
        scheduler refuses to start on it); otherwise the problem is logged and the roster is
        empty until the file is fixed (`digest serve` still answers, and says a link does not
        work)."""
        self.path = path
        self.problem: str | None = None  # why the file on disk is not the version in use
        self._roster = Roster(())
        self._index: dict[str, Subscriber] = {}
        self._stat: tuple[int, int, int] | None = None
        self._hash: str | None = None
        self._said: tuple[str | None, str] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        if required:
            stat, text = self._look(), read_config_text(path)
            self._take(parse_roster(text, str(path)), _sha(text))
            self._stat, self._checked = stat, time.monotonic()
        else:
            self.refresh()

    @property
    def roster(self) -> Roster:
        return self._roster

    @property
    def subscribers(self) -> list[Subscriber]:
        return list(self._roster.subscribers)

    def subscriber(self, subscriber_id: str) -> Subscriber | None:
        return self._index.get(subscriber_id)

    def refresh(self) -> bool:
        """Take the file's new version if it changed and is good; True if one was taken."""
        stat = self._look()
        if stat == self._stat and time.monotonic() - self._checked < RECHECK:
            return False
        with self._lock:  # one thread parses; the others go on with the version in use
            self._stat, self._checked = stat, time.monotonic()
            try:
                text = read_config_text(self.path)
            except ConfigError as exc:
                return self._refused(exc, None)
            digest = _sha(text)
            if digest == self._hash:
                return False
            try:
                roster = parse_roster(text, str(self.path))
            except ConfigError as exc:
                return self._refused(exc, digest)
            self._take(roster, digest)
            log.info(
                "reloaded %s: %d subscribers, %d sources",
                self.path,
                len(roster.subscribers),
                len(roster.sources),
            )
            return True

    def _take(self, roster: Roster, digest: str) -> None:
        self._index = roster.by_id()
        self._roster = roster
        self._hash = digest
        self.problem = self._said = None

    def _refused(self, exc: ConfigError, digest: str | None) -> bool:
        """Keep the version in use; say why once per broken version, not at every look."""
        first, *more = str(exc).splitlines()
        self.problem = first + (f" (and {len(more)} more problems)" if more else "")
        if (digest, self.problem) != self._said:
            log.error("not reloaded, still using the last good version: %s", self.problem)
            self._said = (digest, self.problem)
        if digest is not None:
            self._hash = digest  # the same broken bytes are not parsed again
        return False

    def _look(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


__all__ = ["SubscriberFile"]
