"""One error root for everything digest raises on purpose.

::

    DigestError                  anything the user can act on; the CLI prints it in one line
    ├── InputError               a dump, feed or JSONL file we could not read (names file/line)
    ├── ConfigError              settings or subscribers.yaml are wrong (names field/line)
    ├── NotFoundError            a subscriber, day or paper that does not exist
    ├── StoreError               the database cannot be used (corrupt, locked, read-only, newer)
    └── SendError                a delivery failed (carries the server's reply)

Third-party exceptions are re-raised as one of these ``from exc`` at the boundary
where they happen (sources, config, mail), never deeper.
"""

from __future__ import annotations


class DigestError(Exception):
    """Root of every error digest raises on purpose."""

    exit_code = 1


class InputError(DigestError):
    """An input file could not be read; the message names the file and line. ``permanent``: a
    fetch that asking again cannot mend (an address refused by policy, a body over the limit, a
    URL that is not http(s)); the others (a dropped connection, a timeout) may pass."""

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, permanent: bool = False
    ):
        self.path = path
        self.line = line
        self.permanent = permanent
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class ConfigError(DigestError):
    """Settings or subscribers.yaml are invalid; nothing is sent from a half-read file."""

    exit_code = 2


class NotFoundError(DigestError):
    """Something the user named (a subscriber id, a day) does not exist."""

    exit_code = 2


class StoreError(DigestError):
    """The database cannot be used as it is; the message says what to do. Nothing was changed.
    ``lasting``: trying again cannot help until someone acts (a refused login, a database that
    does not exist, one written by a newer digest); otherwise it may pass (a restart, a lock)."""

    exit_code = 2

    def __init__(self, message: str, *, lasting: bool = False):
        self.lasting = lasting
        super().__init__(message)


class SendError(DigestError):
    """A delivery failed. ``permanent``: the server refused this message for good (5xx).
    ``fatal``: no message can go out until the configuration is fixed (untrusted certificate,
    refused login); the run stops and the deliveries stay pending. ``unknown``: the server
    may hold the message (the link broke after the end of DATA): never resent by itself."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        fatal: bool = False,
        unknown: bool = False,
        reply: str | None = None,
    ):
        self.permanent = permanent
        self.fatal = fatal
        self.unknown = unknown
        self.reply = reply
        super().__init__(message)
