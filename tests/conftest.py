from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from pgserver import PostgresServer, fresh_schema

from digest.ranking.embed import HashingEmbedder
from digest.roster import parse_subscribers
from digest.settings import Settings
from digest.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = ROOT.parent / "shared"
# The tests' own subscriber list. The checkout's subscribers.yaml is the operator's to edit (the
# README says so): loopback sources or a relative profile_papers path there must not break a test.
SUBSCRIBERS = FIXTURES / "subscribers.yaml"
# the bounce tests' private Postfix and Dovecot (tests/mailservers.py): session fixtures
# postfix_server and imap_server, each skipping with its reason where it cannot run
pytest_plugins = ["mailservers"]


# --- what an operator edits is never read by a test -------------------------------------------
# The README tells a user to edit subscribers.yaml, drop files into ./inbox, keep profile papers
# beside the list and export DIGEST_* settings. A test that read any of them would pass or fail
# by what this machine's operator did: the settings are cleared for the session, and opening
# those files from the test process fails at once, naming the file.

OPERATOR_FILES = (ROOT / "subscribers.yaml", ROOT / "inbox", ROOT / "papers")
_guard: dict[str, Any] = {"on": False, "record": None}


def _refuse_operator_files(event: str, args: tuple) -> None:
    if event != "open" or not _guard["on"] or not isinstance(args[0], str | Path):
        return
    path = os.path.abspath(args[0])
    if _guard["record"] is not None:
        _guard["record"].append(path)
    for edited in OPERATOR_FILES:
        if path == str(edited) or path.startswith(f"{edited}{os.sep}"):
            raise PermissionError(
                f"a test opened {path}, which the README tells the operator to edit; use the "
                "tests' own files (conftest.SUBSCRIBERS, a tmp_path) instead"
            )


sys.addaudithook(_refuse_operator_files)


@contextmanager
def files_opened() -> Iterator[list[str]]:
    """Every file this process opens in the block, by absolute path."""
    _guard["record"] = record = []
    try:
        yield record
    finally:
        _guard["record"] = None


def pytest_configure(config: pytest.Config) -> None:
    for name in [n for n in os.environ if n.startswith("DIGEST_")]:
        del os.environ[name]
    _guard["on"] = True


def pytest_unconfigure(config: pytest.Config) -> None:
    _guard["on"] = False


# --- the store's two backends --------------------------------------------------------------
# Tests that take `database` (or `store`, or `settings`) run once on each backend: a SQLite file
# in the test's folder, and a schema of its own in a real PostgreSQL server that the session
# starts from Debian's package in a temporary folder (`make test` installs it when missing).

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server on loopback for the session; yields the URL of its database."""
    server = PostgresServer.start()
    if isinstance(server, str):
        pytest.skip(server)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A schema of the test's own in the session's server: DIGEST_DB for this test."""
    return fresh_schema(postgres_server)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """DIGEST_DB for this test: a SQLite file, or a postgresql:// URL."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return str(tmp_path / "var" / "digest.db")


def opened(database: str) -> Store:
    """The store DIGEST_DB=`database` names, opened (and migrated)."""
    return open_store(Settings.load(env={}, db=database))


def mail_env(tmp_path: Path, database: str, **extra: str) -> dict[str, str]:
    """The environment of the sending tests: the sample subscribers and their papers (ingested)
    in `database`, state in `tmp_path`, the hashing model, quick SMTP retries."""
    from click.testing import CliRunner

    from digest.cli import cli

    env = {
        "DIGEST_SUBSCRIBERS": str(SUBSCRIBERS),
        "DIGEST_DB": database,
        "DIGEST_STATE": str(tmp_path),
        "DIGEST_INBOX": str(SAMPLES),
        "DIGEST_MODEL": "hashing",
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_SMTP_BACKOFF": "0.01",
        "DIGEST_SECRET": "a-test-secret-of-enough-length",
        **extra,
    }
    assert CliRunner().invoke(cli, ["ingest"], env=env).exit_code == 0
    return env


def smtp_env(env: dict[str, str], port: int, **extra: str) -> dict[str, str]:
    """`env` sending to the SMTP server on 127.0.0.1:`port`, in plain text (a test server)."""
    return {
        **env,
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(port),
        "DIGEST_SMTP_SECURITY": "none",
        **extra,
    }


def ledger(env: dict[str, str]) -> dict[str, str]:
    """Each subscriber's delivery status in the store DIGEST_DB names."""
    with opened(env["DIGEST_DB"]) as store:
        return {d.subscriber_id: d.status for d in store.deliveries()}


def stored_text(database: str) -> list[str]:
    """All the store holds, as text: a SQLite file's bytes (freed pages too), or every row of
    every table of the PostgreSQL schema."""
    if not database.startswith("postgresql://"):
        path = Path(database)
        return [p.read_bytes().decode("latin-1") for p in path.parent.glob(f"{path.name}*")]
    with psycopg.connect(database) as conn:
        tables = [
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ]
        return [repr(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables]


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    with opened(database) as s:
        yield s


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def settings(tmp_path: Path, database: str) -> Settings:
    return Settings.load(
        env={},
        subscribers=SUBSCRIBERS,
        db=database,
        state=tmp_path / "var",
        inbox=tmp_path / "inbox",
        outbox=tmp_path / "var" / "outbox",
        model="hashing",
    )


@pytest.fixture
def subscribers():
    return parse_subscribers((SUBSCRIBERS).read_text())


@contextmanager
def http_server(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real http.server on 127.0.0.1 in a thread for the length of the block; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


# A step of a scripted HTTP answer: (status, headers, body), or a function that writes the answer
# itself to the handler (a body dripped a byte at a time, a connection cut short).
Step = tuple[int, dict[str, str], bytes] | Callable[[BaseHTTPRequestHandler], None]


class ScriptedHTTP(BaseHTTPRequestHandler):
    """The tests' HTTP server: per path (the query left out), a list of steps answered in turn,
    the last one repeated; a path with no script gets `fallback` (a step), else 404. A 200 step
    with an ETag answers 304 to a request that holds it (If-None-Match). Every request is kept in
    `seen`, as (path, headers). Make one class per test with `scripted()`."""

    script: dict[str, list[Step]] = {}
    seen: list[tuple[str, dict[str, str]]] = []
    fallback: Step | None = None
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
        with self.lock:
            self.seen.append((self.path, dict(self.headers)))
            steps = self.script.get(self.path.split("?")[0])
            step = steps.pop(0) if steps and len(steps) > 1 else (steps[0] if steps else None)
        step = step or self.fallback or (404, {}, b"not here")
        if callable(step):
            step(self)
            return
        status, headers, body = step
        if status == 200 and "ETag" in headers and self.headers.get("If-None-Match") == headers["ETag"]:
            self.answer(304, {}, b"")
            return
        self.answer(status, headers, body)

    def answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def scripted(script: dict[str, list[Step]] | None = None, fallback: Step | None = None) -> type[ScriptedHTTP]:
    """A ScriptedHTTP of its own: its script (changed as the test goes) and its record of requests."""
    extra = {"fallback": staticmethod(fallback)} if callable(fallback) else {"fallback": fallback}
    return type("Scripted", (ScriptedHTTP,), {"script": dict(script or {}), "seen": [], **extra})


def drip(count: int, every: float, *, length: int | None = None, head: bytes | None = None) -> Step:
    """A step that sends `count` bytes, one every `every` seconds: a body of `length` (a 200),
    or, with `head`, the raw start of an answer whose headers never end."""

    def write(handler: BaseHTTPRequestHandler) -> None:
        if head is not None:
            handler.wfile.write(head)
        else:
            handler.send_response(200)
            handler.send_header("Content-Length", str(length or count))
            handler.end_headers()
        for _ in range(count):
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(every)

    return write


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Inbox:
    """What a real SMTP server on 127.0.0.1 received."""

    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for rcpts, m in self.messages if address in rcpts]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


# --- SMTP servers that misbehave on purpose, and digest as a process of its own -------------


class Scripted:
    """An SMTP server whose RCPT replies follow a script per address: '451 …', '550 …',
    'DROP' (close the connection), then normal service. DATA may be slowed down."""

    def __init__(self, script: dict[str, list[str]] | None = None, data_delay: float = 0.0):
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.data_delay = data_delay
        self.received: list[tuple[list[str], bytes]] = []
        self.senders: list[str] = []  # each message's envelope sender (MAIL FROM), in order

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        steps = self.script.get(address)
        if steps:
            step = steps.pop(0)
            if step == "DROP":
                server.transport.close()
                return "421 closing"
            return step
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        self.received.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        self.senders.append(envelope.mail_from)
        return "250 OK"

    def copies(self, address: str) -> int:
        return sum(address in rcpts for rcpts, _ in self.received)


@contextmanager
def serving(handler, **kwargs) -> Iterator[Controller]:
    """A real SMTP server on 127.0.0.1 for the length of the block."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def digest_process(env: dict[str, str], *args: str) -> subprocess.Popen:
    """`python -m digest ARGS` as a separate process (to be killed, or run beside another)."""
    return subprocess.Popen(
        [sys.executable, "-m", "digest", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_mid_send(proc: subprocess.Popen, handler: Scripted, *, settle: float = 1.2) -> None:
    """SIGKILL `proc` while a slow server (data_delay) holds its second message in DATA, then
    give the server `settle` seconds to finish what it had accepted."""
    deadline = time.monotonic() + 120
    while not handler.received and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the next message is now in the server's slow DATA
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(settle)
