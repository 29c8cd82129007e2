"""Sending past one machine: `digest run --enqueue` ranks and queues, `digest worker`s send, on
a real PostgreSQL and a real SMTP server. The ledger's claim keeps every reader to one copy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from conftest import (
    SAMPLES,
    SUBSCRIBERS,
    Scripted,
    digest_process,
    kill_mid_send,
    ledger,
    mail_env,
    opened,
    serving,
    smtp_env,
)
from pgserver import PostgresServer, fresh_schema

from digest.cli import cli
from digest.delivery.queue import run_worker, send_batch
from digest.settings import Settings

DAY = "2026-11-20"
ADDRESSES = ("alice@example.org", "bob@example.org", "carol@example.org")


@pytest.fixture
def env(tmp_path, postgres_url: str) -> dict[str, str]:
    return mail_env(tmp_path, postgres_url, DIGEST_NOW="2026-11-20T12:00:00Z")


smtp = smtp_env


def digest(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_run_enqueue_queues_and_two_workers_send_each_reader_one_copy(env):
    handler = Scripted()
    with serving(handler) as controller:
        queued = digest(smtp(env, controller.port), "run", "--enqueue", "--day", DAY)
        assert queued.exit_code == 0, queued.output
        assert all(f"{who:<14} queued" in queued.output for who in ("alice", "bob", "carol"))
        assert handler.received == [] and ledger(env) == {}  # nothing is sent by the run itself
        workers = [digest_process(smtp(env, controller.port), "worker", "--until-done") for _ in range(2)]
        outputs = [w.communicate(timeout=120)[0] for w in workers]
        assert all(w.returncode == 0 for w in workers), outputs
        assert [handler.copies(a) for a in ADDRESSES] == [1, 1, 1]
        assert set(ledger(env).values()) == {"sent"}
        again = digest(smtp(env, controller.port), "run", "--enqueue", "--day", DAY)
    assert all(f"{who:<14} already" in again.output for who in ("alice", "bob", "carol"))


def test_status_shows_the_send_queue_until_the_workers_empty_it(env):
    handler = Scripted()
    with serving(handler) as controller:
        assert digest(smtp(env, controller.port), "run", "--enqueue", "--day", DAY).exit_code == 0
        assert "send queue: 1 todo" in digest(env, "status").output  # three readers: one batch
        worker = digest_process(smtp(env, controller.port), "worker", "--until-done")
        worker.communicate(timeout=120)
    assert "send queue: empty" in digest(env, "status").output  # done jobs are deleted


def test_a_job_the_engine_runs_twice_sends_once_and_needs_no_subscribers_file(env, tmp_path):
    handler = Scripted()
    with serving(handler) as controller:
        # a worker's machine has the database and the mail server, not subscribers.yaml
        settings = Settings.load(
            env={**smtp(env, controller.port), "DIGEST_SUBSCRIBERS": str(tmp_path / "none")}
        )
        assert digest(smtp(env, controller.port), "run", "--enqueue", "--day", DAY).exit_code == 0
        first = send_batch(settings, date(2026, 11, 20), ["alice", "bob", "carol"])
        second = send_batch(settings, date(2026, 11, 20), ["alice", "bob", "carol"])
    assert {o.status for o in first.outcomes} == {"sent"}
    assert {o.status for o in second.outcomes} == {"already"}
    assert [handler.copies(a) for a in ADDRESSES] == [1, 1, 1]


def test_a_reader_who_unsubscribes_after_the_run_is_not_sent_the_queued_digest(env):
    handler = Scripted()
    with serving(handler) as controller:
        assert digest(smtp(env, controller.port), "run", "--enqueue", "--day", DAY).exit_code == 0
        with opened(env["DIGEST_DB"]) as store:
            store.unsubscribe("bob", "one-click")
        report = send_batch(
            Settings.load(env=smtp(env, controller.port)), date(2026, 11, 20), ["alice", "bob"]
        )
    assert {o.subscriber: o.status for o in report.outcomes} == {"alice": "sent", "bob": "unsubscribed"}
    assert handler.copies("bob@example.org") == 0


def test_a_worker_sends_the_papers_that_run_ranked_as_a_direct_send_would(env, tmp_path):
    direct = {**env, "DIGEST_DB": str(tmp_path / "direct.db"), "DIGEST_OUTBOX": str(tmp_path / "outbox")}
    assert digest(direct, "ingest").exit_code == 0
    assert digest(direct, "send", "--day", DAY).exit_code == 0
    handler = Scripted()
    with serving(handler) as controller:
        assert digest(smtp(env, controller.port), "run", "--enqueue", "--day", DAY).exit_code == 0
        send_batch(Settings.load(env=smtp(env, controller.port)), date(2026, 11, 20), ["alice", "bob"])
    with opened(direct["DIGEST_DB"]) as sqlite, opened(env["DIGEST_DB"]) as postgres:
        sent_directly = {d.subscriber_id: d.paper_ids for d in sqlite.deliveries()}
        sent_by_worker = {d.subscriber_id: d.paper_ids for d in postgres.deliveries()}
    assert sent_by_worker["alice"] and sent_by_worker["bob"]
    assert sent_by_worker == {k: sent_directly[k] for k in ("alice", "bob")}
    assert handler.copies("alice@example.org") == 1 and handler.copies("carol@example.org") == 0


def test_a_worker_killed_mid_send_leaves_one_unknown_and_the_next_run_hands_out_the_rest(env):
    handler = Scripted(data_delay=1.0)
    with serving(handler) as controller:
        assert digest(smtp(env, controller.port), "run", "--enqueue", "--day", DAY).exit_code == 0
        kill_mid_send(digest_process(smtp(env, controller.port), "worker", "--until-done"), handler)
        states = ledger(env)
        unknown = [w for w, s in states.items() if s == "sending"]
        assert len(unknown) == 1, states  # the one in flight; the rest were never claimed
        rerun = digest(smtp(env, controller.port), "run", "--enqueue", "--day", DAY)
        assert f"{unknown[0]:<14} unknown" in rerun.output
        finisher = digest_process(smtp(env, controller.port), "worker", "--until-done")
        finisher.communicate(timeout=120)
    copies = {a.split("@")[0]: handler.copies(a) for a in ADDRESSES}
    assert all(n <= 1 for n in copies.values()), copies
    assert all(copies[w] == 1 for w, s in ledger(env).items() if s == "sent")
    assert sorted(ledger(env).values()) == sorted(["sending"] + ["sent"] * 2)


def test_the_job_of_a_dead_worker_is_put_back_and_its_unclaimed_readers_are_sent(env):
    handler = Scripted(data_delay=1.0)
    with serving(handler) as controller:
        mail = smtp(env, controller.port)
        assert digest(mail, "run", "--enqueue", "--day", DAY).exit_code == 0  # one job of three readers
        # then the server finishes what it accepted, and the dead worker's heartbeat ages
        kill_mid_send(digest_process(mail, "worker", "--until-done"), handler, settle=1.5)
        assert "send queue: 1 doing" in digest(env, "status").output
        before = ledger(env)
        assert len(before) < 3  # a reader of the job was never claimed
        run_worker(Settings.load(env=mail), until_done=True, stalled_after=1.0)
        after = ledger(env)
    assert "send queue: empty" in digest(env, "status").output
    assert len(after) == 3 and set(after.values()) <= {"sent", "sending"}  # every reader handled
    assert {w for w, s in before.items() if s == "sending"} == {w for w, s in after.items() if s == "sending"}
    copies = [handler.copies(a) for a in ADDRESSES]
    assert all(n <= 1 for n in copies) and sum(copies) >= list(after.values()).count("sent")


def test_the_send_rate_is_one_for_all_workers(postgres_url: str):
    with opened(postgres_url) as first, opened(postgres_url) as second:
        started = time.monotonic()
        slots = []  # when each slot starts, in seconds from `started` (as asked, plus the wait)
        for s in (first, second) * 3:
            asked = time.monotonic() - started
            slots.append(asked + s.take_send_slot(0.2))
    # six slots, taken in turn from two connections, follow one another 0.2 s apart
    gaps = [b - a for a, b in zip(slots, slots[1:], strict=False)]
    assert slots[0] < 0.1 and all(0.15 < g < 0.25 for g in gaps), slots


def test_enqueue_on_sqlite_is_refused_before_anything_runs(tmp_path):
    env = {
        "DIGEST_SUBSCRIBERS": str(SUBSCRIBERS),
        "DIGEST_DB": str(tmp_path / "d.db"),
        "DIGEST_INBOX": str(SAMPLES),
        "DIGEST_MODEL": "hashing",
    }
    result = CliRunner().invoke(cli, ["run", "--enqueue", "--day", DAY], env=env)
    assert result.exit_code == 2 and "needs DIGEST_DB=postgresql://" in result.output
    assert not (tmp_path / "d.db").exists()
    worker = CliRunner().invoke(cli, ["worker", "--until-done"], env=env)
    assert worker.exit_code == 2 and "needs DIGEST_DB=postgresql://" in worker.output


# --- a database restart under sending workers ---------------------------------------------


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, to restart without disturbing the others."""
    server = PostgresServer.start()
    if isinstance(server, str):
        pytest.skip(server)
    try:
        yield server
    finally:
        server.stop()


READERS = 150


def _readers_file(path: Path) -> list[str]:
    lines = ["subscribers:\n"]
    for i in range(READERS):
        reader = f"id: r{i:03d}, email: r{i:03d}@example.org"
        lines.append(f"  - {{{reader}, keywords: [diffusion models], send_empty: true}}\n")
    path.write_text("".join(lines))
    return [f"r{i:03d}@example.org" for i in range(READERS)]


def _settled(database: str, day: str) -> dict[str, str] | None:
    """Every reader's ledger status for `day` once no send job is left, else None (also while
    the database is restarting)."""
    try:
        with psycopg.connect(database, connect_timeout=2) as conn:
            left = conn.execute(
                "SELECT COUNT(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
                " AND queue_name = 'digest-send'"
            ).fetchone()[0]
            rows = dict(conn.execute("SELECT subscriber, status FROM deliveries WHERE day = %s", (day,)))
    except psycopg.Error:
        return None
    return rows if not left and len(rows) == READERS else None


def _until(condition, seconds: float, what: str, logs: list[Path]):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.2)
    told = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs)
    raise AssertionError(f"{what}: not within {seconds} s\n{told}")


def test_two_workers_ride_out_a_postgresql_restart_and_every_reader_gets_one_copy(own_postgres, tmp_path):
    """`pg_ctl restart -m fast` mid-send: both workers reconnect and go on; each reader gets
    exactly one copy, or is reported unknown (the message in flight when the link was cut); and
    the workers still send the next day's digests."""
    addresses = _readers_file(tmp_path / "subscribers.yaml")
    env = mail_env(
        tmp_path,
        fresh_schema(own_postgres.url),
        DIGEST_SUBSCRIBERS=str(tmp_path / "subscribers.yaml"),
        DIGEST_LOG_LEVEL="INFO",
    )
    handler = Scripted(data_delay=0.04)
    with serving(handler) as controller:
        mail = smtp(env, controller.port)
        assert digest(mail, "run", "--enqueue", "--day", DAY).exit_code == 0
        logs = [tmp_path / f"worker{i}.log" for i in (1, 2)]
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "digest", "worker"],
                env={**os.environ, **mail},
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        try:
            _until(lambda: len(handler.received) >= 15, 120, "the first messages", logs)
            own_postgres.restart()
            restarted = time.monotonic()
            first = _until(lambda: _settled(env["DIGEST_DB"], DAY), 240, "the first day sent", logs)
            time.sleep(max(0.0, restarted + 20 - time.monotonic()))  # past procrastinate's heartbeat
            assert [w.poll() for w in workers] == [None, None], [p.read_text()[-2000:] for p in logs]
            before = len(handler.received)
            assert digest(mail, "run", "--enqueue", "--day", "2026-11-19").exit_code == 0
            second = _until(lambda: _settled(env["DIGEST_DB"], "2026-11-19"), 240, "the next day sent", logs)
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            codes = [w.wait(timeout=60) for w in workers]
    assert codes == [0, 0], [p.read_text()[-2000:] for p in logs]
    assert any("connecting again" in p.read_text() for p in logs)  # they did lose the database
    assert set(second.values()) == {"sent"} and len(handler.received) - before == READERS
    copies = {a: sum(a in rcpts for rcpts, _ in handler.received[:before]) for a in addresses}
    assert set(first.values()) <= {"sent", "sending"}  # nothing left unsent without a word
    assert all(copies[f"{r}@example.org"] == 1 for r, s in first.items() if s == "sent"), first
    assert all(n <= 1 for n in copies.values())


def test_a_worker_that_can_never_reach_its_database_exits_2_saying_why(postgres_server: str):
    missing = postgres_server.rsplit("/", 1)[0] + "/no_such_database"
    result = CliRunner().invoke(cli, ["worker"], env={"DIGEST_DB": missing})
    assert result.exit_code == 2
    assert "does not exist" in result.output and "create it" in result.output


def _plans(env: dict[str, str]) -> list[tuple[str, str]]:
    with opened(env["DIGEST_DB"]) as store:
        rows = store.conn.rows("SELECT subscriber, day FROM plans ORDER BY day, subscriber")  # type: ignore[attr-defined]
        return [(r[0], r[1]) for r in rows]


def test_plans_are_deleted_once_their_digests_have_settled_and_old_ones_at_the_next_run(env):
    """A plan is about 2.7 KB a reader a day: kept while its digest may still be sent, no longer."""
    handler = Scripted({"carol@example.org": ["550 5.1.1 no such user"]})
    with serving(handler) as controller:
        mail = smtp(env, controller.port)
        assert digest(mail, "run", "--enqueue", "--day", DAY).exit_code == 0
        assert len(_plans(env)) == 3
        with opened(env["DIGEST_DB"]) as store:
            store.save_plans(date(2026, 11, 1), {"alice": {"old": True}})  # a day no run sends again
            store.save_plans(date(2026, 11, 19), {"bob": {"unknown": True}})
            store.claim_delivery("bob", date(2026, 11, 19))  # left `sending`: not settled
        report = send_batch(Settings.load(env=mail), date(2026, 11, 20), ["alice", "bob", "carol"])
        assert {o.subscriber: o.status for o in report.outcomes} == {
            "alice": "sent",
            "bob": "sent",
            "carol": "failed",
        }
        assert _plans(env) == [("alice", "2026-11-01"), ("bob", "2026-11-19")]  # sent and failed: gone
        again = digest(mail, "run", "--enqueue", "--day", DAY)
        # a 550 at RCPT suppressed her: the next run says so and does not try her again
        assert f"{'carol':<14} suppressed" in again.output and "hard bounce 5.1.1" in again.output
    assert _plans(env) == [("bob", "2026-11-19")]  # the old day's went; the unknown one stays a week


def test_a_plan_round_trips_every_field_and_one_from_another_version_still_reads(store):
    import json

    from digest.delivery.queue import from_plan, plan_of
    from digest.models import Paper, Ranked, Subscriber

    paper = Paper(
        id="2611.00001", title="A paper", abstract="It does a thing.", day=date(2026, 11, 20)
    )
    store.add_papers([paper])
    sub = Subscriber(id="ann", email="ann@example.org", keywords=("graphs",), profile_papers=("a.bib",))
    ranked = Ranked(
        paper, 0.5, ("graphs",), ("a thing",), from_papers=("graph learning",), close_to="Mine"
    )
    saved = json.loads(json.dumps(plan_of(sub, [ranked])))  # as the store keeps it
    assert from_plan(saved, store) == (sub, [ranked])
    older = {**saved, "picks": [{k: v for k, v in saved["picks"][0].items() if k != "from_papers"}]}
    older["picks"][0]["a_field_since_removed"] = 1
    assert from_plan(older, store)[1] == [replace(ranked, from_papers=())]
