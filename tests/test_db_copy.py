"""`digest db copy`: moving the store between SQLite and PostgreSQL keeps what readers said and
what they were sent. Real databases on both sides, in every direction; the CLI through CliRunner."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import SAMPLES, SUBSCRIBERS, opened
from pgserver import fresh_schema

from digest.cli import cli
from digest.errors import StoreError
from digest.store import SourceState, copy_store
from digest.store.bounces import Bounce, Suppression
from digest.store.copy import TABLES

DAY = "2026-11-20"  # the newest sample day: the old machine sent alice and bob its digest
DIRECTIONS = [("sqlite", "postgresql"), ("postgresql", "sqlite"), ("sqlite", "sqlite")]
CACHES = {t.name for t in TABLES if t.cache}


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def table_rows(database: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (without the rowid), in arrival order where it is kept, else by key."""
    with opened(database) as store:
        conn = store.conn  # type: ignore[attr-defined]
        return {
            t.name: [
                tuple(r)
                for r in conn.rows(
                    f"SELECT {', '.join(t.columns)} FROM {t.name}"
                    f" ORDER BY {'rowid' if t.rowid else ', '.join(t.key)}"
                )
            ]
            for t in TABLES
        }


def mails(env: dict[str, str]) -> list[str]:
    """Whom the machine's outbox holds a mail for."""
    return sorted(p.stem for p in Path(env["DIGEST_OUTBOX"]).rglob("*.eml"))


def alice_ranked(env: dict[str, str]) -> list[dict[str, Any]]:
    result = invoke(env, "rank", "--user", "alice", "--day", DAY, "--json", "--limit", "0")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["alice"]


@pytest.fixture
def database_of(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str, str], str]:
    """DIGEST_DB of a backend: a new SQLite file in folder `name`, or a fresh PostgreSQL schema."""

    def make(kind: str, name: str) -> str:
        if kind == "postgresql":
            return fresh_schema(request.getfixturevalue("postgres_server"))
        return str(tmp_path / name / "digest.db")

    return make


def machine(tmp_path: Path, name: str, database: str) -> dict[str, str]:
    """The settings of one machine: its database, inbox, outbox and state; the tests' subscribers."""
    inbox = tmp_path / name / "inbox"
    shutil.copytree(SAMPLES, inbox)
    return {
        "DIGEST_SUBSCRIBERS": str(SUBSCRIBERS),
        "DIGEST_DB": database,
        "DIGEST_STATE": str(tmp_path / name / "state"),
        "DIGEST_INBOX": str(inbox),
        "DIGEST_OUTBOX": str(tmp_path / name / "outbox"),
        "DIGEST_MODEL": "hashing",
        "DIGEST_SMTP_HOST": "",
        "DIGEST_SECRET": "a-test-secret-of-enough-length",
        # noon UTC on the newest sample day: past every sample subscriber's local send time
        "DIGEST_NOW": f"{DAY}T12:00:00Z",
    }


@dataclass
class Move:
    old: dict[str, str]  # the machine whose store was copied
    new: dict[str, str]  # the machine whose empty database received the copy
    copy: Result | None  # `digest db copy`'s result, once run
    unvoted: list[dict[str, Any]]  # alice's ranking of DAY before her votes


def lived_in(env: dict[str, str]) -> list[dict[str, Any]]:
    """Give env's store a history: carol unsubscribed, alice voted, alice and bob were sent the
    day's digest, a source was fetched and a plan saved. Alice's ranking before her votes."""
    assert invoke(env, "ingest").exit_code == 0
    unvoted = alice_ranked(env)
    with opened(env["DIGEST_DB"]) as store:
        store.unsubscribe("carol", "one-click")
        # her address bounced too, before she unsubscribed: the report and its suppression move along
        gone = ("carol", "carol@example.org", "hard", "5.1.1", "gone", "dsn", "x")
        store.record_bounce(Bounce("<dsn-1@mx.example.org>", *gone))
        store.suppress(Suppression("carol", "carol@example.org", "hard", "x", "5.1.1", "gone", "dsn"))
        store.save_source_state(SourceState("arxiv", "https://example.org/rss", etag='"e1"', status="new"))
        store.save_plans(date(2026, 11, 21), {"bob": {"picks": []}})
    # what she would have read last is what she wants more of; her top paper, less of
    for pick, vote in ((unvoted[-1], "up"), (unvoted[-2], "up"), (unvoted[0], "down")):
        assert invoke(env, "feedback", "alice", pick["paper_id"], vote).exit_code == 0
    result = invoke(env, "run")
    assert result.exit_code == 0, result.output
    assert mails(env) == ["alice", "bob"]
    return unvoted


def prepare(tmp_path: Path, database_of: Callable[[str, str], str], source: str, target: str) -> Move:
    old = machine(tmp_path, "old", database_of(source, "old"))
    new = machine(tmp_path, "new", database_of(target, "new"))
    return Move(old, new, None, lived_in(old))


@pytest.fixture(params=DIRECTIONS, ids=["-to-".join(d) for d in DIRECTIONS])
def moved(request: pytest.FixtureRequest, tmp_path: Path, database_of: Callable[[str, str], str]) -> Move:
    """A lived-in store copied with `digest db copy` into a new machine's database."""
    move = prepare(tmp_path, database_of, *request.param)
    move.copy = invoke(move.old, "db", "copy", move.new["DIGEST_DB"])
    assert move.copy.exit_code == 0, move.copy.output
    return move


# --- what the move must keep ----------------------------------------------------------------


def test_every_table_arrives_whole_and_in_arrival_order(moved: Move):
    copied = table_rows(moved.new["DIGEST_DB"])
    assert copied == table_rows(moved.old["DIGEST_DB"])
    assert all(copied[t.name] for t in TABLES)  # the history touched every table: none was missed


def test_nothing_already_sent_goes_out_again_after_the_move(moved: Move):
    again = invoke(moved.new, "send", "--day", DAY)
    assert again.exit_code == 0, again.output
    statuses = {line.split()[0]: line.split()[1] for line in again.output.splitlines()[2:]}
    assert statuses == {"alice": "already", "bob": "already", "carol": "unsubscribed"}
    assert invoke(moved.new, "run").exit_code == 0  # the hourly cron on the new machine
    assert mails(moved.new) == []
    with opened(moved.new["DIGEST_DB"]) as store:
        assert {d.subscriber_id: d.status for d in store.deliveries()} == {"alice": "sent", "bob": "sent"}


def test_the_next_day_brings_only_papers_not_sent_before_the_move(moved: Move):
    with opened(moved.old["DIGEST_DB"]) as store:
        sent_before = {d.subscriber_id: set(d.paper_ids) for d in store.deliveries()}
    result = invoke(moved.new, "run", "--day", "2026-11-21")
    assert result.exit_code == 0, result.output
    with opened(moved.new["DIGEST_DB"]) as store:
        next_day = {d.subscriber_id: set(d.paper_ids) for d in store.deliveries(date(2026, 11, 21))}
    assert next_day["alice"]  # she still had unread papers of the last days (bob had none)
    assert all(not papers & sent_before[sid] for sid, papers in next_day.items())


def test_an_unsubscribed_reader_stays_unsubscribed_and_is_not_due(moved: Move):
    status = invoke(moved.new, "status")
    assert status.exit_code == 0, status.output
    carol = next(line for line in status.output.splitlines() if line.split()[:1] == ["carol"])
    assert "unsubscribed" in carol and "one-click" in carol
    alice = next(line for line in status.output.splitlines() if line.split()[:1] == ["alice"])
    assert DAY in alice  # her last digest, not "never"
    assert invoke(moved.new, "run", "--day", "2026-11-21").exit_code == 0
    assert "carol" not in mails(moved.new)


def test_votes_still_rank_as_before_the_move(moved: Move):
    ranked = alice_ranked(moved.new)
    assert ranked == alice_ranked(moved.old)
    assert [r["paper_id"] for r in ranked] != [r["paper_id"] for r in moved.unvoted]  # the votes count


def test_the_printed_counts_are_the_source_rows_and_name_both_stores(moved: Move):
    assert moved.copy is not None
    lines = moved.copy.output.splitlines()
    printed = {line.split()[0]: int(line.split()[1]) for line in lines[:-1]}
    assert printed == {name: len(rows) for name, rows in table_rows(moved.old["DIGEST_DB"]).items()}
    assert lines[-1].startswith("copied ") and " to " in lines[-1]
    for env in (moved.old, moved.new):  # a PostgreSQL URL is shown as `status` shows it
        shown = invoke(env, "status").output.splitlines()[0].removeprefix("database: ").split(" (")[0]
        assert shown in lines[-1]


# --- what it refuses ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["sqlite", "postgresql"])
def test_a_target_holding_data_is_refused_and_left_unchanged(
    tmp_path: Path, database_of: Callable[[str, str], str], target: str
):
    move = prepare(tmp_path, database_of, "sqlite", target)
    with opened(move.new["DIGEST_DB"]) as store:
        store.unsubscribe("dave", "cli")  # one row anywhere makes it a store in use
    before = table_rows(move.new["DIGEST_DB"])
    result = invoke(move.old, "db", "copy", move.new["DIGEST_DB"])
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "already holds data (unsubscribes 1)" in line and "empty" in line
    assert table_rows(move.new["DIGEST_DB"]) == before


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_store_is_not_copied_onto_itself_however_it_is_named(
    tmp_path: Path, database_of: Callable[[str, str], str], kind: str
):
    database = database_of(kind, "old")
    env = machine(tmp_path, "old", database)
    assert invoke(env, "ingest").exit_code == 0
    if kind == "sqlite":
        (tmp_path / "alias").symlink_to(Path(database).parent)
        same = str(tmp_path / "alias" / "digest.db")
    else:  # a password the trusting test server ignores: another URL, the same schema
        same = database.replace("postgresql://digest@", "postgresql://digest:secret@")
    before = table_rows(database)
    result = invoke(env, "db", "copy", same)
    assert result.exit_code == 2
    assert "is the store being copied" in result.stderr
    assert "secret" not in result.output
    assert table_rows(database) == before


def test_a_missing_source_file_is_refused_rather_than_created_empty(tmp_path: Path):
    env = machine(tmp_path, "old", str(tmp_path / "typo.db"))
    result = invoke(env, "db", "copy", str(tmp_path / "new.db"))
    assert result.exit_code == 2
    assert "typo.db does not exist" in result.stderr
    assert not (tmp_path / "typo.db").exists() and not (tmp_path / "new.db").exists()


# --- how it copies -------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS[:2], ids=["-to-".join(d) for d in DIRECTIONS[:2]])
def test_no_cache_leaves_the_caches_behind_and_copies_everything_else(
    tmp_path: Path, database_of: Callable[[str, str], str], direction: tuple[str, str]
):
    move = prepare(tmp_path, database_of, *direction)
    result = invoke(move.old, "db", "copy", "--no-cache", move.new["DIGEST_DB"])
    assert result.exit_code == 0, result.output
    source, copied = table_rows(move.old["DIGEST_DB"]), table_rows(move.new["DIGEST_DB"])
    assert all(source[name] for name in CACHES) and not any(copied[name] for name in CACHES)
    assert {k: v for k, v in copied.items() if k not in CACHES} == {
        k: v for k, v in source.items() if k not in CACHES
    }
    assert all("--no-cache" in line for line in result.output.splitlines() if line.split()[0] in CACHES)
    assert alice_ranked(move.new) == alice_ranked(move.old)  # the caches are only rebuilt work


@pytest.mark.parametrize("target", ["sqlite", "postgresql"])
def test_a_copy_that_fails_midway_leaves_the_target_empty(
    tmp_path: Path, database_of: Callable[[str, str], str], target: str
):
    move = prepare(tmp_path, database_of, "sqlite", target)
    seen: list[tuple[str, int, int]] = []

    def fail_in_sent_papers(table: str, done: int, total: int) -> None:
        seen.append((table, done, total))
        if table == "sent_papers":
            raise StoreError("the disk filled up")

    with (
        opened(move.old["DIGEST_DB"]) as source,
        opened(move.new["DIGEST_DB"]) as into,
        pytest.raises(StoreError, match="nothing was copied"),
    ):
        copy_store(source, into, batch=5, progress=fail_in_sent_papers)
    assert [table for table, *_ in seen][:2] == ["papers", "papers"]  # pages of 5, papers first
    assert not any(table_rows(move.new["DIGEST_DB"]).values())
    # and, being empty still, it takes the copy when asked again
    assert invoke(move.old, "db", "copy", move.new["DIGEST_DB"]).exit_code == 0


def test_progress_counts_every_row_page_by_page(tmp_path: Path, database_of: Callable[[str, str], str]):
    move = prepare(tmp_path, database_of, "sqlite", "sqlite")
    seen: list[tuple[str, int, int]] = []
    with opened(move.old["DIGEST_DB"]) as source, opened(move.new["DIGEST_DB"]) as into:
        copied = copy_store(source, into, batch=7, progress=lambda *step: seen.append(step))
    total = sum(copied.values())
    assert seen[-1][1:] == (total, total)
    assert [done for _, done, _ in seen] == sorted({done for _, done, _ in seen})  # always forward
    assert max(b - a for (_, a, _), (_, b, _) in zip(seen, seen[1:], strict=False)) <= 7


def test_the_copy_knows_every_table_and_column_of_both_schemas(postgres_url: str, tmp_path: Path):
    """A migration that adds a table or a column must add it to the copy too."""
    expected = {t.name: set(t.columns) for t in TABLES}
    with opened(str(tmp_path / "digest.db")) as store:
        conn = store.conn  # type: ignore[attr-defined]
        names = [r[0] for r in conn.rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
        sqlite = {n: {r[1] for r in conn.rows(f"PRAGMA table_info({n})")} for n in names}
    assert sqlite == expected
    with opened(postgres_url) as store:
        conn = store.conn  # type: ignore[attr-defined]
        postgres: dict[str, set[str]] = {}
        for table, column in conn.rows(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
        ):
            postgres.setdefault(table, set()).add(column)
    not_copied = {"digest_schema", "send_pace"}  # the target's own migrations; a send slot
    assert {t: c - {"rowid"} for t, c in postgres.items() if t not in not_copied} == expected
    assert {t for t, c in postgres.items() if "rowid" in c} == {t.name for t in TABLES if t.rowid}


@pytest.mark.parametrize("command", [["db"], ["db", "copy"]], ids=" ".join)
def test_db_commands_have_help_text(command: list[str]):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert len(result.output.split("\n\n")[1].strip()) > 10
