"""Fetching an input over http(s), with the limits a URL from a config file or a feed needs:

    one overall deadline (connect, redirects and every read), not only a per-read timeout
    redirects followed to http(s) only, at most MAX_REDIRECTS of them
    never to loopback, private, link-local or reserved addresses unless allowed, checked on
        the address actually connected to (so a DNS name pointing inside is refused too)
    the body read in chunks and refused as soon as it passes max_bytes

Every failure is an InputError naming the URL, its query string masked; `permanent` when asking
again cannot change the answer (a refused address or scheme, too many redirects, a body over
the limit)."""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from ..errors import InputError
from ..text import mask_query

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
USER_AGENT = "digest/0.1 (research paper newsletter)"


class _Deadline:
    """The fetch's one deadline. A socket timeout bounds each wait, not their sum: a server that
    drips its status line or headers a byte at a time is never a timeout to http.client. So each
    socket is watched, and shut down when the deadline passes, whatever is reading it."""

    def __init__(self, seconds: float, timeout: float):
        self.end = time.monotonic() + seconds
        self.timeout = timeout
        self._watched: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        """Seconds for the next network wait: the per-read timeout, cut to what the deadline leaves."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline")
        return min(self.timeout, left)

    def passed(self) -> bool:
        return time.monotonic() >= self.end

    def watch(self, sock: socket.socket) -> None:
        # A duplicate of the socket: TLS takes the original over, and shutting the duplicate
        # down ends the connection under both.
        self._watched.append(sock.dup())
        if self.passed():
            self._cut()

    def _cut(self) -> None:
        for sock in self._watched:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)  # a blocked recv() returns at once

    def close(self) -> None:
        self._timer.cancel()
        for sock in self._watched:
            sock.close()


def is_public(address: str) -> bool:
    """True only for global unicast addresses: not loopback, private, shared (100.64/10, where
    some clouds keep their metadata service), link-local, multicast, reserved or unspecified.
    An IPv4 address carried in IPv6 (mapped, 6to4, NAT64) is judged as that IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        else:
            ip = ip.ipv4_mapped or ip.sixtofour or ip
    return ip.is_global and not ip.is_multicast


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class _Refused(Exception):
    pass


def _connector(allow_private: bool, clock: _Deadline):  # noqa: ANN202 - socket.create_connection's
    def create_connection(address, timeout=None, source_address=None, **_):  # noqa: ANN001, ANN202
        host, port = address
        last: Exception | None = None
        for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            if not allow_private and not is_public(sockaddr[0]):
                last = _Refused(
                    f"{host} is a loopback, private or link-local address ({sockaddr[0]}); "
                    "set DIGEST_INGEST_ALLOW_PRIVATE=1 to allow it"
                )
                continue
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                if not allow_private and not is_public(sock.getpeername()[0]):
                    raise _Refused(f"{host} connected to a private address; refused")
                clock.watch(sock)
                return sock
            except BaseException as exc:
                sock.close()
                if isinstance(exc, _Refused | OSError):
                    last = exc
                    continue
                raise
        raise last or OSError(f"cannot resolve {host}")

    return create_connection


def _open(url: str, allow_private: bool, clock: _Deadline) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Refused(f"redirected to {mask_query(url)}, which is not an http(s) URL")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname, parts.port, timeout=clock.remaining())
    conn._create_connection = _connector(allow_private, clock)  # type: ignore[attr-defined]  # noqa: SLF001
    return conn


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes


def get(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    allow_private: bool = False,
    timeout: float = 30,
    deadline: float = 120,
    max_bytes: int,
    user_agent: str = USER_AGENT,
) -> Response:
    """One GET of an http(s) URL, redirects followed, within `deadline` seconds in all: the
    final status (2xx, 304, 4xx or 5xx alike), its headers and at most `max_bytes` of body.
    Network faults, refusals and the deadline are InputError naming the URL."""
    masked = mask_query(url)
    if urlsplit(url).scheme not in ("http", "https"):
        raise InputError("only http:// and https:// URLs can be fetched", path=masked, permanent=True)
    clock = _Deadline(deadline, timeout)
    current = url
    sent = {"User-Agent": user_agent, "Accept-Encoding": "identity", **(headers or {})}
    try:
        for _ in range(MAX_REDIRECTS + 1):
            conn = _open(current, allow_private, clock)
            try:
                parts = urlsplit(current)
                target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                conn.request("GET", target, headers=sent)
                sock = conn.sock  # getresponse() lets go of it when the server will close
                response = conn.getresponse()
                if response.status in (301, 302, 303, 307, 308):
                    location = response.getheader("Location")
                    if not location:
                        why = f"the server redirected ({response.status}) to nowhere"
                        raise InputError(why, path=masked, permanent=True)
                    current = urljoin(current, location)
                    continue
                found = {k.lower(): v for k, v in response.getheaders()}
                body = _read(response, sock, clock, max_bytes, masked) if response.status < 300 else b""
                return Response(response.status, response.reason, found, body)
            finally:
                conn.close()
        raise InputError(f"more than {MAX_REDIRECTS} redirects; check the URL", path=masked, permanent=True)
    except _Refused as exc:
        raise InputError(f"refused: {exc}", path=masked, permanent=True) from exc
    except (OSError, http.client.HTTPException) as exc:  # TimeoutError is an OSError
        if isinstance(exc, TimeoutError) or clock.passed():  # or the watch cut the connection
            raise InputError(
                f"no complete answer within {deadline:g} s; the server is too slow or stalled, try later",
                path=masked,
            ) from exc
        raise InputError(f"cannot fetch ({exc}); check the URL and the network", path=masked) from exc
    finally:
        clock.close()


def fetch(
    url: str,
    *,
    allow_private: bool = False,
    timeout: float = 30,
    deadline: float = 120,
    max_bytes: int,
) -> bytes:
    """The body of an http(s) URL, at most `max_bytes`, within `deadline` seconds in all; an
    error status is an InputError."""
    response = get(url, allow_private=allow_private, timeout=timeout, deadline=deadline, max_bytes=max_bytes)
    if response.status >= 300:
        raise InputError(
            f"the server answered {response.status} {response.reason}; check the URL", path=mask_query(url)
        )
    return response.body


def _read(
    response: http.client.HTTPResponse,
    sock: socket.socket | None,
    clock: _Deadline,
    max_bytes: int,
    masked: str,
) -> bytes:
    """The body chunk by chunk, each wait bounded by what the deadline leaves."""
    chunks: list[bytes] = []
    size = 0
    while True:
        timeout = clock.remaining()
        if sock is not None:
            sock.settimeout(timeout)
        chunk = response.read1(CHUNK)
        if not chunk:
            if clock.passed():  # the watch shut the socket: an end, but not the body's
                raise TimeoutError("deadline")
            if response.length:  # read1() takes a close before Content-Length for the end
                raise http.client.IncompleteRead(b"".join(chunks), response.length)
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise InputError(
                f"larger than the {max_bytes:,}-byte limit; not a daily feed?", path=masked, permanent=True
            )
        chunks.append(chunk)
