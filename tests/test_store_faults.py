"""A database that cannot be used is one line that says what to do (exit 2), never a sqlite3
traceback; migrations run once, under the write lock, even when two first runs race."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SUBSCRIBERS

from digest.cli import cli
from digest.errors import StoreError
from digest.models import Paper
from digest.store import MIGRATIONS, SQLiteStore


def _cli(db: Path | str, *args: str):
    env = {
        "DIGEST_DB": str(db),
        "DIGEST_SUBSCRIBERS": str(SUBSCRIBERS),
        "DIGEST_MODEL": "hashing",
    }
    return CliRunner().invoke(cli, list(args), env=env)


def _one_line_exit_2(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], lines[0]


def test_a_file_that_is_not_a_database_is_refused_with_what_to_do(tmp_path: Path):
    db = tmp_path / "digest.db"
    db.write_bytes(b"this is not sqlite at all\n" * 100)
    with pytest.raises(StoreError, match="not a SQLite database or is damaged; move it aside"):
        SQLiteStore.open(db)
    _one_line_exit_2(_cli(db, "status"), str(db), "damaged")


def test_a_damaged_database_is_refused(tmp_path: Path):
    db = tmp_path / "digest.db"
    SQLiteStore.open(db).close()
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page
    db.write_bytes(bytes(data))
    _one_line_exit_2(_cli(db, "papers"), "damaged")


def test_a_folder_that_cannot_be_made_is_named(tmp_path: Path):
    blocker = tmp_path / "var"
    blocker.write_text("a file where the folder should be")
    _one_line_exit_2(_cli(blocker / "digest.db", "status"), "cannot be created")


def test_a_database_locked_past_the_busy_timeout_is_one_line(tmp_path: Path):
    db = tmp_path / "digest.db"
    SQLiteStore.open(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another digest process in the middle of a write
    try:
        with SQLiteStore.open(db, busy_timeout=0.2) as store:  # reading still works in WAL mode
            started = time.monotonic()
            with pytest.raises(StoreError, match="locked by another digest process"):
                store.add_papers([Paper(id="p", title="T", abstract="A.", day=date(2026, 11, 20))])
            assert time.monotonic() - started < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_database_of_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path):
    db = tmp_path / "digest.db"
    SQLiteStore.open(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 5}")
    before = db.read_bytes()
    with pytest.raises(StoreError, match=r"newer digest \(schema \d+; this one knows \d+\); upgrade"):
        SQLiteStore.open(db)
    assert db.read_bytes() == before
    _one_line_exit_2(_cli(db, "status"), "newer digest")


def test_an_old_database_is_upgraded_in_place(tmp_path: Path):
    db = tmp_path / "digest.db"
    with sqlite3.connect(db) as conn:  # a version-1 database, as the first release made it
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO deliveries VALUES"
            " ('alice', '2026-11-19', 'sent', '<m@x>', '[\"p1\"]', NULL, NULL, 'now')"
        )
        conn.execute("PRAGMA user_version=1")
    with SQLiteStore.open(db) as store:
        (row,) = store.deliveries()
        assert (row.subscriber_id, row.status, row.paper_ids, row.attempts) == ("alice", "sent", ("p1",), 0)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_migrations_are_single_statements_not_split_on_semicolons():
    for migration in MIGRATIONS:
        assert isinstance(migration, tuple)
        for statement in migration:
            assert sqlite3.complete_statement(statement + ";")
            assert not sqlite3.complete_statement(statement.rsplit(";", 1)[0] + ";") or ";" not in statement


OPEN_AT = """
import sys, time
from pathlib import Path
from digest.store import SQLiteStore
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
with SQLiteStore.open(Path(sys.argv[1])) as store:
    print(len(store.days()))
"""


@pytest.mark.parametrize("attempt", range(3))
def test_two_first_runs_at_once_migrate_once(tmp_path: Path, attempt: int):
    db = tmp_path / f"race-{attempt}.db"
    start = f"{time.time() + 1.5:.3f}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT, str(db), start], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err.decode() for _, err in results]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_switching_a_new_database_to_wal_waits_for_a_writer_instead_of_failing(tmp_path: Path):
    # A first run turns the file to WAL after its migrations. sqlite asks for the write lock
    # from inside a read there and, to avoid a deadlock, fails at once (no busy handler) when
    # another process holds it: the moment two first runs raced into in CI.
    db = tmp_path / "new.db"
    with SQLiteStore.open(db):
        pass
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")  # as a file is before its first switch
    writer = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: writer.execute("COMMIT"))
    release.start()
    try:
        with SQLiteStore.open(db, busy_timeout=10) as store:
            assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        release.join()
        writer.close()


def test_a_writer_that_never_lets_go_still_ends_in_the_locked_line(tmp_path: Path):
    db = tmp_path / "held.db"
    with SQLiteStore.open(db):
        pass
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="is locked by another digest process"):
            SQLiteStore.open(db, busy_timeout=0.3)
    finally:
        writer.close()


def _read_only(folder: Path) -> bool:
    """Make `folder` read-only even for root (who ignores file modes): a read-only bind mount."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return True
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bind.returncode != 0:
        return False
    ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True)
    if ro.returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], check=False)  # lazy: even if a file is open
        return False
    return True


def _writable_again(folder: Path) -> None:
    if os.geteuid() != 0:
        folder.chmod(0o755)
    else:
        subprocess.run(["umount", "-l", str(folder)], check=False)  # lazy: even if a file is open


def test_a_read_only_database_is_refused_before_any_write(tmp_path: Path):
    folder = tmp_path / "state"
    folder.mkdir()
    db = folder / "digest.db"
    SQLiteStore.open(db).close()
    if not _read_only(folder):
        pytest.skip("cannot make a read-only folder here (a bind mount needs root)")
    try:
        with pytest.raises(
            StoreError, match="is read-only for this user; make the file and its folder writable"
        ):
            SQLiteStore.open(db)
        _one_line_exit_2(_cli(db, "status"), "read-only")
    finally:
        _writable_again(folder)


# --- PostgreSQL: the same promise, one line that says what to do --------------------------------


def test_an_unreachable_postgresql_is_one_line_naming_it_without_its_password():
    from conftest import free_port

    url = f"postgresql://digest:hunter2@127.0.0.1:{free_port()}/digest"
    result = _cli(url, "status")
    _one_line_exit_2(result, f"cannot reach PostgreSQL at postgresql://digest@127.0.0.1:{url.split(':')[3]}")
    assert "hunter2" not in result.output and "check DIGEST_DB" in result.output


def test_a_missing_postgresql_database_says_to_create_it(postgres_server: str):
    missing = postgres_server.rsplit("/", 1)[0] + "/no_such_db"
    _one_line_exit_2(_cli(missing, "papers"), "no_such_db does not exist", "createdb")


def test_a_postgresql_schema_from_a_newer_digest_is_refused(postgres_url: str):
    from digest.store.postgres import PostgresStore

    PostgresStore.open(postgres_url).close()
    with PostgresStore.open(postgres_url) as store:
        store.conn.execute("UPDATE digest_schema SET version = 99")
    with pytest.raises(StoreError, match="written by a newer digest .schema 99"):
        PostgresStore.open(postgres_url)
    _one_line_exit_2(_cli(postgres_url, "status"), "newer digest")


def test_a_lost_postgresql_connection_is_a_store_error_and_loses_nothing(postgres_url: str):
    import psycopg

    from digest.store.postgres import PostgresStore

    with PostgresStore.open(postgres_url) as store:
        store.add_papers([Paper(id="arxiv:1", title="Kept", abstract="a", day=date(2026, 11, 20))])
        pid = store.conn.rows("SELECT pg_backend_pid()")[0][0]
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreError, match="cannot reach PostgreSQL at .*check DIGEST_DB"):
            store.papers()
    with PostgresStore.open(postgres_url) as again:
        assert [p.title for p in again.papers()] == ["Kept"]


def test_status_names_the_postgresql_database_without_its_password(postgres_url: str):
    with_password = postgres_url.replace("postgresql://digest@", "postgresql://digest:hunter2@")
    result = _cli(with_password, "status")
    assert result.exit_code == 0, result.output
    assert "database: postgresql://digest@127.0.0.1:" in result.output and "hunter2" not in result.output


def test_a_write_lock_wait_that_times_out_is_one_line_and_the_connection_stays_usable(postgres_url: str):
    import psycopg

    from digest.store.postgres import WRITE_LOCK, PostgresStore

    with PostgresStore.open(postgres_url) as store, psycopg.connect(postgres_url) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))  # held until other commits
        store.conn.execute("SET lock_timeout = '200ms'")
        paper = Paper(id="arxiv:1", title="Waited", abstract="a", day=date(2026, 11, 20))
        with pytest.raises(StoreError, match="too busy .*run again"):
            store.add_papers([paper])
        other.commit()
        assert store.add_papers([paper]).new == 1  # not stuck in an aborted transaction
        assert [p.title for p in store.papers()] == ["Waited"]


def test_an_up_to_date_postgresql_schema_opens_without_the_write_lock(postgres_url: str):
    import psycopg

    from digest.store.postgres import WRITE_LOCK, PostgresStore

    PostgresStore.open(postgres_url).close()
    impatient = postgres_url + "%20-clock_timeout%3D200"  # any wait for a lock fails at once
    with psycopg.connect(postgres_url) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))  # an ingest in progress
        with PostgresStore.open(impatient) as store:  # web requests and workers open like this
            assert store.papers() == []


def test_a_full_sqlite_disk_is_named_not_hidden_by_a_failed_rollback(tmp_path: Path):
    with SQLiteStore.open(tmp_path / "digest.db") as store:
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        papers = [
            Paper(id=f"p{i}", title=f"T{i}", abstract="x" * 2000, day=date(2026, 11, 20)) for i in range(50)
        ]
        with pytest.raises(StoreError, match="full") as caught:
            store.add_papers(papers)
    assert "rollback" not in str(caught.value)
