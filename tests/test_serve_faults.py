"""`digest serve` when things go wrong around it, through a real uvicorn on 127.0.0.1: a database
that is locked, busy or down, many readers at once, clients that send too slowly."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from conftest import SUBSCRIBERS, free_port, opened
from test_serve import serving

from digest import roster, web
from digest.delivery import links
from digest.models import Subscriber
from digest.settings import Settings
from digest.store.postgres import WRITE_LOCK

SECRET = "a-serve-faults-secret-of-enough-length"
ALICE = Subscriber(id="alice", email="alice@example.org")


@pytest.fixture
def settings(tmp_path: Path, database: str) -> Settings:
    subscribers = tmp_path / "subscribers.yaml"
    subscribers.write_text(SUBSCRIBERS.read_text())
    return Settings.load(
        env={"DIGEST_SECRET": SECRET},
        subscribers=subscribers,
        db=database,
        state=tmp_path / "var",
        model="hashing",
    )


@pytest.fixture
def said(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """What digest logs (the CLI's logging may have stopped it from reaching the root logger)."""
    logger = logging.getLogger("digest")
    kept = logger.propagate, logger.level
    logger.propagate = False  # each line once, through caplog's handler alone
    logger.setLevel(logging.INFO)
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.propagate, logger.level = kept


def one_click(base: str, who: Subscriber = ALICE) -> httpx.Response:
    token = links.make_token(SECRET, "unsubscribe", who)
    return httpx.post(
        f"{base}/unsubscribe",
        params={"t": token},
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )


class WriteLock:
    """Another process's write lock on the store, held for the length of the block: SQLite's
    (BEGIN IMMEDIATE) or PostgreSQL's (the store's advisory lock)."""

    def __init__(self, database: str):
        self.database = database

    def __enter__(self) -> WriteLock:
        with opened(self.database):
            pass  # created and migrated first
        if self.database.startswith("postgresql://"):
            self.conn = psycopg.connect(self.database, autocommit=True)
            self.conn.execute("BEGIN")
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        else:
            import sqlite3

            self.conn = sqlite3.connect(self.database, isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def test_a_locked_store_gets_a_short_503_page_with_retry_after_and_one_log_line(
    settings: Settings, database: str, said, monkeypatch
):
    monkeypatch.setattr(web, "STORE_WAIT", 1.0)
    with serving(settings, free_port()) as base, WriteLock(database):
        response = one_click(base)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "60"
    assert "try again in a minute" in response.text.lower() and "nothing was changed" in response.text
    assert "Internal Server Error" not in response.text
    lines = [r.getMessage() for r in said.records if r.getMessage().startswith("serve: POST /unsubscribe")]
    assert len(lines) == 1 and ("locked" in lines[0] or "too busy" in lines[0]), said.text
    with opened(database) as store:
        assert store.unsubscribed() == {}  # and the click after it works
    with serving(settings, free_port()) as base:
        assert one_click(base).status_code == 200


@pytest.mark.parametrize("where", ["postgresql", "sqlite"])
def test_a_store_that_is_down_gets_a_503_page_and_healthz_says_so(tmp_path: Path, where: str, said):
    if where == "postgresql":
        down = f"postgresql://digest@127.0.0.1:{free_port()}/digest"  # nothing listens there
    else:
        (tmp_path / "not-a-folder").write_text("")
        down = str(tmp_path / "not-a-folder" / "digest.db")
    (tmp_path / "subscribers.yaml").write_text(SUBSCRIBERS.read_text())
    settings = Settings.load(
        env={"DIGEST_SECRET": SECRET}, subscribers=tmp_path / "subscribers.yaml", db=down, state=tmp_path
    )
    with serving(settings, free_port()) as base:
        click = one_click(base)
        health = httpx.get(f"{base}/healthz")
    assert (click.status_code, click.headers["retry-after"]) == (503, "60")
    assert (health.status_code, health.headers["retry-after"]) == (503, "60")
    assert "try again in a minute" in click.text.lower()
    causes = [r.getMessage() for r in said.records if r.getMessage().startswith("serve: ")]
    assert any("PostgreSQL" in c or "cannot be" in c for c in causes), causes


def test_healthz_and_other_readers_are_answered_while_a_click_waits_for_a_locked_store(
    settings: Settings, database: str, monkeypatch
):
    """The waiting click holds a worker thread, not the event loop."""
    monkeypatch.setattr(web, "STORE_WAIT", 4.0)
    order: list[str] = []
    with serving(settings, free_port()) as base, WriteLock(database):
        waiting = threading.Thread(target=lambda: order.append(f"click {one_click(base).status_code}"))
        waiting.start()
        time.sleep(0.5)  # the click is now waiting for the lock
        order.append(f"healthz {httpx.get(f'{base}/healthz', timeout=30).status_code}")
        page = httpx.get(f"{base}/unsubscribe", params={"t": links.make_token(SECRET, "unsubscribe", ALICE)})
        order.append(f"page {page.status_code}")
        waiting.join(timeout=60)
    assert order == ["healthz 200", "page 200", "click 503"]


def test_subscribers_are_looked_up_in_an_index_read_once_and_again_only_after_an_edit(
    settings: Settings, monkeypatch
):
    parses: list[str] = []
    real = roster.parse_roster
    def counted(text: str, path: str, **options: object):  # noqa: ANN202 - parse_roster's own
        parses.append(path)
        return real(text, path, **options)

    monkeypatch.setattr(roster, "parse_roster", counted)
    token = links.make_token(SECRET, "unsubscribe", ALICE)
    with serving(settings, free_port()) as base:
        for _ in range(5):
            assert httpx.get(f"{base}/unsubscribe", params={"t": token}).status_code == 200
        assert len(parses) == 1
        settings.subscribers.write_text(settings.subscribers.read_text().replace("alice@", "alice.new@"))
        moved = httpx.get(f"{base}/unsubscribe", params={"t": token})
        assert moved.status_code == 400  # the token was for her old address: the edit is seen
        assert len(parses) == 2


def _silent_until_closed(sock: socket.socket, within: float) -> bytes:
    """What the server sends before it closes the connection (b"" if it just closes)."""
    sock.settimeout(within)
    got = b""
    while chunk := sock.recv(4096):
        got += chunk
    return got


def test_a_client_that_drips_its_headers_or_sends_nothing_is_cut_off(settings: Settings):
    with serving(settings, free_port(), header_timeout=0.5) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as idle:
            assert _silent_until_closed(idle, within=10) == b""
        with socket.create_connection(("127.0.0.1", port)) as drip:
            drip.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            time.sleep(0.2)
            drip.sendall(b"X-Slow: 1\r\n")  # headers still not finished
            assert _silent_until_closed(drip, within=10) == b""
        assert httpx.get(f"{base}/healthz").status_code == 200  # others are served as before


def test_a_body_that_arrives_too_slowly_gets_408(settings: Settings):
    token = links.make_token(SECRET, "unsubscribe", ALICE)
    with serving(settings, free_port(), body_timeout=0.5) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(
                f"POST /unsubscribe?t={token} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                "application/x-www-form-urlencoded\r\nContent-Length: 26\r\n\r\nList-".encode()
            )
            answer = _silent_until_closed(slow, within=10)
    assert re.match(rb"HTTP/1.1 408 ", answer), answer[:200]
