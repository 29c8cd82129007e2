"""Fetching an input over http(s), with the limits a URL from a config file or a feed needs:

    one overall deadline (connect, redirects and every read), not only a per-read timeout
    redirects followed to http(s) only, at most MAX_REDIRECTS of them
    never to loopback, private, link-local or reserved addresses unless allowed, checked on
        the address actually connected to (so a DNS name pointing inside is refused too)
    the body read in chunks and refused as soon as it passes max_bytes

Every failure is an InputError naming the URL, its query string masked."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from ..errors import InputError
from ..text import mask_query

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
USER_AGENT = "digest/0.1 (research paper newsletter)"


class _Deadline:
    def __init__(self, seconds: float, timeout: float):
        self.end = time.monotonic() + seconds
        self.timeout = timeout

    def remaining(self) -> float:
        """Seconds for the next network wait: the per-read timeout, cut to what the deadline leaves."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline")
        return min(self.timeout, left)


def is_public(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


class _Refused(Exception):
    pass


def _connector(allow_private: bool):  # noqa: ANN202 - the signature of socket.create_connection
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
    conn._create_connection = _connector(allow_private)  # type: ignore[attr-defined]  # noqa: SLF001
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
    shown = mask_query(url)
    if urlsplit(url).scheme not in ("http", "https"):
        raise InputError("only http:// and https:// URLs can be fetched", path=shown)
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
                        raise InputError(f"the server redirected ({response.status}) to nowhere", path=shown)
                    current = urljoin(current, location)
                    continue
                found = {k.lower(): v for k, v in response.getheaders()}
                body = _read(response, sock, clock, max_bytes, shown) if response.status < 300 else b""
                return Response(response.status, response.reason, found, body)
            finally:
                conn.close()
        raise InputError(f"more than {MAX_REDIRECTS} redirects; check the URL", path=shown)
    except _Refused as exc:
        raise InputError(f"refused: {exc}", path=shown) from exc
    except TimeoutError as exc:
        raise InputError(
            f"no complete answer within {deadline:g} s; the server is too slow or stalled, try later",
            path=shown,
        ) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise InputError(f"cannot fetch ({exc}); check the URL and the network", path=shown) from exc


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
    shown: str,
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
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise InputError(f"larger than the {max_bytes:,}-byte limit; not a daily feed?", path=shown)
        chunks.append(chunk)
