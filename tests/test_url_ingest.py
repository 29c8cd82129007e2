"""URL ingest against a real http.server on 127.0.0.1: a deadline for the whole fetch, redirects
to http(s) only, no loopback or private addresses unless allowed, a size cap while streaming."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from conftest import http_server

from digest import sources
from digest.errors import InputError

BODY = (json.dumps({"title": "A paper", "abstract": "It says something."}) + "\n").encode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
        route = self.path.split("?", 1)[0]
        if route == "/ok":
            self._send(200, BODY)
        elif route == "/drip":  # a byte every 0.3 s, for ever (bounded: stops after 60 bytes)
            self.send_response(200)
            self.send_header("Content-Length", "60")
            self.end_headers()
            for _ in range(60):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.3)
        elif route == "/drip-headers":  # the same drip, before the headers are even done
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(60):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.3)
        elif route == "/short":  # promises 100 bytes, sends 10 and hangs up
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.close_connection = True
        elif route == "/big":
            self._send(200, b"x" * 10_000)
        elif route.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", self.path[len("/redirect/") :].replace("__", "://", 1))
            self.end_headers()
        else:
            self._send(404, b"no")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def base() -> Iterator[str]:
    with http_server(Handler) as url:
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
