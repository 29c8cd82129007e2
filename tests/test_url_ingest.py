"""URL ingest against a real http.server on 127.0.0.1: a deadline for the whole fetch, redirects
to http(s) only, no loopback or private addresses unless allowed, a size cap while streaming."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from conftest import drip, http_server, scripted

from digest import sources
from digest.errors import InputError

BODY = (json.dumps({"title": "A paper", "abstract": "It says something."}) + "\n").encode()


def _cut_short(handler: BaseHTTPRequestHandler) -> None:
    """Promises 100 bytes, sends 10 and hangs up."""
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    handler.wfile.write(b"x" * 10)
    handler.close_connection = True


def _redirect(handler: BaseHTTPRequestHandler) -> None:
    """/redirect/http__host/path: a 302 to http://host/path."""
    if not handler.path.startswith("/redirect/"):
        handler.answer(404, {}, b"no")  # type: ignore[attr-defined]
        return
    handler.send_response(302)
    handler.send_header("Location", handler.path[len("/redirect/") :].replace("__", "://", 1))
    handler.end_headers()


ROUTES = {
    "/ok": [(200, {}, BODY)],
    "/drip": [drip(60, 0.3)],  # a byte every 0.3 s, for ever (bounded: stops after 60 bytes)
    "/drip-headers": [drip(60, 0.3, head=b"HTTP/1.1 200 OK\r\nX-Slow: ")],  # before the headers end
    "/short": [_cut_short],
    "/big": [(200, {}, b"x" * 10_000)],
}


@pytest.fixture
def base() -> Iterator[str]:
    with http_server(scripted(ROUTES, fallback=_redirect)) as url:
        yield url


def test_a_plain_body_is_fetched(base: str):
    assert sources.fetch(f"{base}/ok", allow_private=True) == BODY


@pytest.mark.parametrize("route", ["/drip", "/drip-headers"])
def test_a_slow_drip_is_cut_off_at_the_overall_deadline(base: str, route: str):
    started = time.monotonic()
    with pytest.raises(InputError, match="within 1.5 s"):
        sources.fetch(f"{base}{route}", allow_private=True, timeout=1, deadline=1.5)
    assert time.monotonic() - started < 4  # each byte arrived well within the per-read timeout


def test_a_body_cut_short_of_its_content_length_is_refused_not_taken(base: str):
    with pytest.raises(InputError, match="cannot fetch"):
        sources.fetch(f"{base}/short", allow_private=True)


def test_a_body_over_the_cap_is_refused_while_streaming(base: str):
    with pytest.raises(InputError, match="limit"):
        sources.fetch(f"{base}/big", allow_private=True, max_bytes=4096)


@pytest.mark.parametrize("target", ["ftp__example.org/x", "file__/etc/passwd", "javascript:alert(1)"])
def test_a_redirect_to_anything_but_http_is_refused(base: str, target: str):
    with pytest.raises(InputError, match="not an http"):
        sources.fetch(f"{base}/redirect/{target}", allow_private=True)


def test_loopback_is_refused_unless_allowed_directly_and_through_a_redirect(base: str):
    with pytest.raises(InputError, match="DIGEST_INGEST_ALLOW_PRIVATE"):
        sources.fetch(f"{base}/ok")
    with pytest.raises(InputError, match="DIGEST_INGEST_ALLOW_PRIVATE"):
        sources.fetch(f"http://localhost:{base.rsplit(':', 1)[1]}/ok")  # a name that points inside
    assert sources.fetch(f"{base}/redirect/{base.replace('://', '__')}/ok", allow_private=True) == BODY


@pytest.mark.parametrize(
    "address",
    [
        *[
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "0.0.0.0",
        ],
        "100.100.100.200",  # shared address space (100.64/10): a cloud metadata service lives here
        "100.64.0.1",
        "224.0.0.1",
        "ff02::1",
        "::ffff:10.0.0.1",  # IPv4 written inside IPv6 is the IPv4 address it reaches
        "2002:7f00:1::",  # 6to4 for 127.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 for 169.254.169.254
        "64:ff9b::7f00:1",  # NAT64 for 127.0.0.1
    ],
)
def test_inside_addresses_are_not_public(address: str):
    from digest.sources.http import is_public

    assert not is_public(address)
    assert is_public("93.184.216.34") and is_public("2606:2800:220:1:248:1893:25c8:1946")


def test_an_error_names_the_url_without_its_query_values(base: str):
    with pytest.raises(InputError) as info:
        sources.fetch(f"{base}/missing?api_key=SECRET123", allow_private=True)
    assert "SECRET123" not in str(info.value) and "answered 404" in str(info.value)
