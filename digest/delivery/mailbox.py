"""Bounce mailboxes: a Maildir folder or an IMAP folder, read without touching what is not ours.

::

    box = open_mailbox(os.environ[ENV], password=os.environ.get(PASSWORD_ENV))
    with box:
        for key, raw in box.messages():       # bytes as stored; nothing marked \\Seen or moved
            verdict = reports.parse(raw)
            if the caller acted on it:
                box.processed(key)            # moved to the "processed" folder beside it

A message not handed to processed() stays exactly as it was: in Maildir in the same file (new/
stays new/, the ":2,FLAGS" info unchanged; the stdlib reads it with get_bytes, which renames
nothing, and Maildir(create=False), so a mistyped path is an error, not an empty new mailbox);
over IMAP with the same flags (BODY.PEEK[] sets no \\Seen) and never expunged (no CLOSE, which
would expunge what other clients flagged \\Deleted; UNSELECT or LOGOUT instead).

The "processed" folder: Maildir's Maildir++ subfolder `<folder>/.processed`, which for a
mailbox's root is the IMAP folder "processed" in Dovecot's layout; over IMAP the folder named
"processed" beside the bounce folder (a sibling under the same parent), created when missing.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import mailbox
import os
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError, InputError

ENV = "DIGEST_BOUNCE_MAILBOX"
PASSWORD_ENV = "DIGEST_BOUNCE_PASSWORD"
PROCESSED = "processed"


class Mailbox(Protocol):
    """Where bounces arrive. Keys are Maildir file keys or IMAP UIDs, valid until close()."""

    def messages(self) -> Iterator[tuple[str, bytes]]: ...

    def processed(self, key: str) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


def open_mailbox(spec: str, *, password: str | None = None, timeout: float = 30.0) -> Mailbox:
    """The mailbox `spec` names: a Maildir folder's path (or maildir:///path), or
    imap[s]://user@host[:port]/FOLDER with the password given apart (from PASSWORD_ENV), so that
    it is never in a URL a log or an error message may show. Raises ConfigError in one line."""
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme in ("imap", "imaps"):
        return IMAPMailbox.connect(spec, password=password, timeout=timeout)
    if scheme in ("maildir", "file"):
        return MaildirMailbox.open(Path(unquote(urlsplit(spec).path)))
    if scheme:
        raise ConfigError(
            f"{ENV}={_shown(spec)}: unknown scheme {scheme}://; give a Maildir folder's path, "
            "imap://user@host/FOLDER or imaps://user@host/FOLDER"
        )
    if not spec.strip():
        raise ConfigError(f"{ENV} is empty; give a Maildir folder's path or an imaps:// URL")
    return MaildirMailbox.open(Path(spec).expanduser())


class _Closing:
    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --- Maildir -----------------------------------------------------------------------------------


class MaildirMailbox(_Closing):
    """A Maildir folder on this machine (the one holding new/ and cur/)."""

    def __init__(self, path: Path):
        self.path = path
        self._box = mailbox.Maildir(path, create=False)

    @classmethod
    def open(cls, path: Path) -> MaildirMailbox:
        missing = [d for d in ("new", "cur") if not (path / d).is_dir()]
        if missing:
            raise ConfigError(
                f"{ENV}={path}: not a Maildir folder (no {' or '.join(d + '/' for d in missing)} in it); "
                "give the folder that holds new/ and cur/, or an imaps:// URL"
            )
        return cls(path)

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for key in list(self._box.iterkeys()):
            try:
                data = self._box.get_bytes(key)
            except (KeyError, FileNotFoundError):  # another client moved it since the listing
                continue
            except OSError as exc:
                raise InputError(f"cannot read message {key} ({exc.strerror})", path=str(self.path)) from exc
            yield key, data

    def processed(self, key: str) -> None:
        """Renamed into .processed/, same new/ or cur/, same file name and flags: one atomic
        step, so a crash leaves the message in one place, never two or none."""
        source = self._find(key)
        if source is None:  # gone already: another reader moved it
            return
        target = self._processed_folder() / source.parent.name / source.name
        try:
            os.rename(source, target)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ConfigError(
                f"{ENV}={self.path}: cannot move {source.name} into {target.parent} ({exc.strerror}); "
                "make the folder writable"
            ) from exc

    def _find(self, key: str) -> Path | None:
        if (self.path / "new" / key).is_file():
            return self.path / "new" / key
        prefix = key + self._box.colon
        for sub in ("cur", "new"):
            with contextlib.suppress(FileNotFoundError), os.scandir(self.path / sub) as entries:
                for entry in entries:
                    if entry.name == key or entry.name.startswith(prefix):
                        return Path(entry.path)
        return None

    def _processed_folder(self) -> Path:
        """Created when missing, owned as the mailbox itself is: digest run as root on the mail
        user's Maildir must not leave a folder the IMAP server (running as that user) cannot
        write into."""
        folder = self.path / f".{PROCESSED}"
        owner = self.path.stat()
        try:
            for path in (folder, *(folder / sub for sub in ("tmp", "new", "cur")), folder / "maildirfolder"):
                if path.exists():
                    continue
                if path.name == "maildirfolder":
                    path.touch()  # Maildir++: a subfolder, not a root
                else:
                    path.mkdir(mode=0o700)
                if os.geteuid() == 0 and (owner.st_uid, owner.st_gid) != (0, 0):
                    os.chown(path, owner.st_uid, owner.st_gid)
        except OSError as exc:
            raise ConfigError(
                f"{ENV}={self.path}: cannot create {folder} ({exc.strerror}); make the folder writable"
            ) from exc
        return folder


# --- IMAP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IMAPAddress:
    """What an imap[s]:// URL names (RFC 5092, without its search parts)."""

    secure: bool
    host: str
    port: int
    user: str
    folder: str

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def imap_address(spec: str) -> IMAPAddress:
    url = urlsplit(spec)
    if url.password is not None:
        raise ConfigError(f"{ENV}: put the IMAP password in {PASSWORD_ENV}, not in the URL")
    try:
        port = url.port
    except ValueError as exc:
        raise ConfigError(f"{ENV}={_shown(spec)}: the port is not a number from 1 to 65535") from exc
    user = unquote(url.username or "").split(";", 1)[0]  # drop an RFC 5092 ";AUTH=..."
    if not url.hostname or not user:
        raise ConfigError(f"{ENV}={_shown(spec)}: name the user and host, as in imaps://user@host/INBOX")
    secure = url.scheme.lower() == "imaps"
    folder = unquote(url.path.strip("/")) or "INBOX"
    return IMAPAddress(secure, url.hostname, port or (993 if secure else 143), user, folder)


class IMAPMailbox(_Closing):
    """One folder of an IMAP account, addressed by UID throughout (sequence numbers shift when
    another client expunges). imap:// is plain text, for a server on this machine or a trusted
    network; imaps:// is TLS from the first byte, checked against the system's CAs."""

    def __init__(self, conn: imaplib.IMAP4, address: IMAPAddress, capabilities: frozenset[str]):
        self._conn = conn
        self.address = address
        self.capabilities = capabilities
        self._processed: str | None = None

    @classmethod
    def connect(cls, spec: str, *, password: str | None, timeout: float = 30.0) -> IMAPMailbox:
        address = imap_address(spec)
        if password is None:
            raise ConfigError(f"{ENV} is an IMAP URL but {PASSWORD_ENV} is not set; set it to the password")
        where = address.where
        try:
            if address.secure:
                context = ssl.create_default_context()
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    address.host, address.port, ssl_context=context, timeout=timeout
                )
            else:
                conn = imaplib.IMAP4(address.host, address.port, timeout=timeout)
        except ssl.SSLCertVerificationError as exc:
            raise ConfigError(
                f"{ENV}: the certificate of {where} is not trusted ({exc.verify_message})"
            ) from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigError(
                f"{ENV}: cannot connect to IMAP {where} ({reason}); check the host and port in the URL "
                "and that the server is running"
            ) from exc
        try:
            box = cls._login(conn, address, password)
            box._select()
        except BaseException:
            _logout(conn)
            raise
        return box

    @classmethod
    def _login(cls, conn: imaplib.IMAP4, address: IMAPAddress, password: str) -> IMAPMailbox:
        where = address.where
        try:
            if "LOGINDISABLED" in _capabilities(conn):
                raise ConfigError(f"{ENV}: {where} refuses a password over plain imap://; use imaps://")
            conn.login(address.user, password)
            return cls(conn, address, _capabilities(conn))  # a server announces more after login
        except imaplib.IMAP4.abort as exc:  # the connection broke: not a verdict on the password
            raise ConfigError(f"{ENV}: IMAP {where} closed the connection during login ({exc})") from exc
        except imaplib.IMAP4.error as exc:
            reply = _text(exc).replace(password, "***") if password else _text(exc)
            raise ConfigError(
                f"{ENV}: IMAP login as {address.user} at {where} refused ({reply}); check the user in "
                f"{ENV} and the password in {PASSWORD_ENV}"
            ) from exc
        except UnicodeEncodeError as exc:  # LOGIN takes ASCII only
            raise ConfigError(f"{ENV}: IMAP LOGIN cannot send a user or password that is not ASCII") from exc
        except OSError as exc:
            raise ConfigError(f"{ENV}: IMAP {where} failed during login ({exc})") from exc

    def _select(self) -> None:
        folder = self.address.folder
        try:
            typ, data = self._conn.select(_quoted(folder))
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ConfigError(
                f"{ENV}: IMAP {self.address.where} failed selecting {folder!r} ({exc})"
            ) from exc
        if typ != "OK":
            raise ConfigError(
                f"{ENV}: no IMAP folder {folder!r} at {self.address.where} ({_reply(data)}); "
                "create it or name an existing folder in the URL's path (INBOX when none is given)"
            )

    def messages(self) -> Iterator[tuple[str, bytes]]:
        # UNDELETED: a message flagged \Deleted (by another client, or by processed() on a
        # server without UIDPLUS) is on its way out, not ours to read again
        data = self._uid("SEARCH", "UNDELETED")
        for uid in (data[0] or b"").split():
            raw = self._fetch(uid.decode("ascii"))
            if raw is not None:
                yield uid.decode("ascii"), raw

    def _fetch(self, uid: str) -> bytes | None:
        data = self._uid("FETCH", uid, "(BODY.PEEK[])")
        for item in data:  # [(b'7 (UID 12 BODY[] {1234}', b'...'), b')'], with FLAGS perhaps
            if isinstance(item, tuple) and b"BODY[]" in item[0]:
                return item[1]
        return None  # expunged by another client since the search

    def processed(self, key: str) -> None:
        """MOVE when the server has it; else COPY, flag \\Deleted and UID EXPUNGE that one UID.
        Without UIDPLUS there is no expunging one message alone (a plain EXPUNGE removes what
        other clients flagged too): it stays flagged, and messages() passes it by."""
        target = _quoted(self._processed_folder())
        if "MOVE" in self.capabilities:
            self._uid("MOVE", key, target)
            return
        self._uid("COPY", key, target)
        self._uid("STORE", key, "+FLAGS.SILENT", r"(\Deleted)")
        if "UIDPLUS" in self.capabilities:
            self._uid("EXPUNGE", key)

    def _processed_folder(self) -> str:
        if self._processed is not None:
            return self._processed
        folder = self.address.folder
        delimiter = self._delimiter(folder)
        parent = folder.rpartition(delimiter)[0] if delimiter else ""
        candidates = [f"{parent}{delimiter}{PROCESSED}" if parent else PROCESSED]
        if delimiter:  # servers whose folders all live under INBOX (Courier, Cyrus): INBOX.processed
            candidates.append(f"{folder}{delimiter}{PROCESSED}")
        reply: list = []
        for name in candidates:
            if any(self._ok("LIST", self._conn.list, '""', _quoted(name))):
                break
            typ, reply = self._try("CREATE", self._conn.create, _quoted(name))
            if typ == "OK":
                break
        else:
            raise ConfigError(
                f"{ENV}: cannot create the IMAP folder {candidates[0]!r} for processed reports at "
                f"{self.address.where} ({_reply(reply)}); create it by hand"
            )
        self._processed = name
        return name

    def _delimiter(self, folder: str) -> str:
        for line in self._ok("LIST", self._conn.list, '""', _quoted(folder)):
            found = (
                re.match(rb'\(.*?\) (?:"((?:\\.|[^"])*)"|NIL) ', line) if isinstance(line, bytes) else None
            )
            if found and found.group(1):
                return found.group(1).decode("ascii", "replace").replace("\\\\", "\\")
        return ""

    def _uid(self, command: str, *args: str) -> list:
        return self._ok(f"UID {command}", self._conn.uid, command, *args)

    def _ok(self, what: str, call: Callable[..., tuple[str, list]], *args: str) -> list:
        typ, data = self._try(what, call, *args)
        if typ != "OK":
            raise InputError(f"IMAP {self.address.where}: {what} refused ({_reply(data)})")
        return data

    def _try(self, what: str, call: Callable[..., tuple[str, list]], *args: str) -> tuple[str, list]:
        """`call`'s reply; a broken connection (or a BAD, which imaplib raises) as InputError:
        nothing was lost, the next run reads the mailbox again."""
        try:
            return call(*args)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise InputError(f"IMAP {self.address.where}: {what} failed ({exc}); try again") from exc

    def close(self) -> None:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            if "UNSELECT" in self.capabilities:
                self._conn.unselect()
        _logout(self._conn)


def _capabilities(conn: imaplib.IMAP4) -> frozenset[str]:
    typ, data = conn.capability()
    words = data[0].decode("ascii", "replace").upper().split() if typ == "OK" and data and data[0] else []
    return frozenset(words) | frozenset(c.upper() for c in conn.capabilities)


def _logout(conn: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error):
        conn.logout()


def _quoted(name: str) -> str:
    """A folder name as an IMAP quoted string, in modified UTF-7 (RFC 3501 5.1.3)."""
    encoded = re.sub(r"[^\x20-\x7e]+|&", lambda m: _utf7_run(m.group()), name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _utf7_run(run: str) -> str:
    if run == "&":
        return "&-"
    return "&" + base64.b64encode(run.encode("utf-16-be")).decode("ascii").rstrip("=").replace("/", ",") + "-"


def _reply(data: list) -> str:
    return " ".join(_text(d) for d in data if d is not None)[:200] or "no reason given"


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _shown(spec: str) -> str:
    """`spec` as an error message may show it: a password in it replaced by ***."""
    url = urlsplit(spec)
    if url.password is None:
        return spec
    return spec.replace(f":{url.password}@", ":***@", 1)
