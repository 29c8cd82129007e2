from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from conftest import SAMPLES, Inbox, free_port, http_server, scripted, smtp_env

from digest.daemon import Daemon
from digest.settings import Settings

ALICE = (
    "subscribers:\n  - {id: alice, email: alice@example.org, keywords: [diffusion models], send_time: '%s'}\n"
)
BOB = "  - {id: bob, email: bob@example.org, keywords: [preference optimization], send_time: '%s'}\n"


@pytest.fixture
def settings(tmp_path: Path, database: str) -> Settings:
    (tmp_path / "subscribers.yaml").write_text(ALICE % "07:00")
    return Settings.load(
        env={},
        subscribers=tmp_path / "subscribers.yaml",
        db=database,
        state=tmp_path,
        inbox=tmp_path / "inbox",
        outbox=tmp_path / "outbox",
        model="hashing",
    )


def test_an_edited_subscribers_file_is_reloaded(settings: Settings):
    daemon = Daemon(settings)
    assert daemon.reload() is False  # unchanged
    settings.subscribers.write_text(ALICE % "07:00" + BOB % "08:00")
    assert daemon.reload() is True
    assert [s.id for s in daemon.subscribers] == ["alice", "bob"]


def test_a_broken_edit_keeps_the_last_good_version_and_says_why(settings: Settings, caplog):
    daemon = Daemon(settings)
    settings.subscribers.write_text(ALICE % "07:00" + BOB % "25:99")
    with caplog.at_level(logging.ERROR, logger="digest"):
        assert daemon.reload() is False
    assert [s.id for s in daemon.subscribers] == ["alice"]
    assert "not reloaded, still using the last good version" in caplog.text
    assert "subscriber 'bob', field 'send_time'" in caplog.text


@pytest.mark.parametrize(("host", "taken"), [("smtp.example.org", False), ("127.0.0.1", True)])
def test_a_reloaded_address_at_a_local_host_is_checked_against_where_the_mail_goes(
    settings: Settings, host: str, taken: bool
):
    daemon = Daemon(replace(settings, smtp=replace(settings.smtp, host=host)))
    root = "  - {id: root, email: root@localhost, keywords: [graphs]}\n"
    settings.subscribers.write_text(ALICE % "07:00" + root)
    assert daemon.reload() is taken
    assert ("root" in [s.id for s in daemon.subscribers]) is taken


def test_a_syntax_error_saved_between_two_sends_stops_neither_the_send_nor_the_sources(
    settings: Settings, caplog
):
    """The last good version carries on whole, its `sources:` too: alice's send at 07:00 and
    bob's at 08:00 both go out, with a half-saved file on disk in between."""
    body = (SAMPLES / "2026-11-20.txt").read_bytes()

    with http_server(scripted({"/today.txt": [(200, {}, body)]})) as url:
        good = f"sources:\n  - {{name: feed, url: '{url}/today.txt'}}\n" + ALICE % "07:00" + BOB % "08:00"
        settings.subscribers.write_text(good)
        fetch = replace(settings.fetch, allow_private=True, retries=0)
        daemon = Daemon(replace(settings, fetch=fetch, now=_at("07:30")))
        daemon.send_due("alice")
        assert _outbox(settings) == ["alice"]

        settings.subscribers.write_text(good[: good.index("keywords: [pref") + 14])  # half-saved
        with caplog.at_level(logging.INFO, logger="digest"):
            assert daemon.reload() is False
            daemon.settings = replace(daemon.settings, now=_at("08:30"))
            daemon.send_due("bob")
    assert "not reloaded, still using the last good version" in caplog.text
    assert "is not valid YAML" in caplog.text
    assert "source feed: unchanged" in caplog.text  # fetched again, from the last good sources
    assert _outbox(settings) == ["alice", "bob"]


def _at(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-20T{hhmm}:00+00:00")


def _outbox(settings: Settings) -> list[str]:
    return sorted(p.stem for p in settings.outbox.glob("*/*.eml"))


def _hhmm(when: datetime) -> str:
    return f"{when:%H:%M}"


def test_scheduler_process_sends_a_newly_added_subscriber_at_their_time_and_stops_on_sigterm(tmp_path: Path):
    inbox_dir = tmp_path / "inbox"
    inbox_dir.mkdir()
    today = datetime.now(UTC)
    shutil.copy(SAMPLES / "2026-11-20.txt", inbox_dir / f"{today:%Y-%m-%d}.txt")
    subs = tmp_path / "subscribers.yaml"
    subs.write_text(ALICE % _hhmm(today + timedelta(hours=6)))
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    env = smtp_env(
        {
            **os.environ,
            "DIGEST_SUBSCRIBERS": str(subs),
            "DIGEST_DB": str(tmp_path / "digest.db"),
            "DIGEST_INBOX": str(inbox_dir),
            "DIGEST_MODEL": "hashing",
            "DIGEST_POLL_SECONDS": "0.5",
            "DIGEST_LOG_LEVEL": "INFO",
        },
        controller.port,
    )
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "schedule"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_for(lambda: "ingested" in log.read_text(), 60, log)
        subs.write_text(ALICE % "07:00" + BOB % "99:00")  # a broken edit
        _wait_for(lambda: "not reloaded" in log.read_text(), 30, log)
        now = datetime.now(UTC)
        send_at = (now + timedelta(minutes=1 if now.second < 45 else 2)).replace(second=0, microsecond=0)
        subs.write_text(ALICE % _hhmm(today + timedelta(hours=6)) + BOB % _hhmm(send_at))
        _wait_for(lambda: "reloaded" in log.read_text().split("not reloaded")[-1], 30, log)
        _wait_for(lambda: inbox.to("bob@example.org"), 150, log)
        assert datetime.now(UTC) >= send_at
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        controller.stop()
    assert len(inbox.to("bob@example.org")) == 1
    assert "scheduler stopped" in log.read_text()


def _wait_for(condition, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out; daemon log:\n{log.read_text()[-3000:]}")


def test_the_scheduler_reads_the_bounce_mailbox_before_it_sends(settings: Settings, caplog, tmp_path: Path):
    """A hard bounce waiting in the mailbox at alice's send time stops that very send."""
    import mailbox

    settings.inbox.mkdir()
    shutil.copy(SAMPLES / "2026-11-20.txt", settings.inbox)
    report = (Path(__file__).parent / "fixtures" / "bounces" / "postfix_hard_user_unknown.eml").read_bytes()
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(report.replace(b"carol@example.net", b"alice@example.org"))
    bounces = replace(settings.bounces, mailbox=str(tmp_path / "bounces"))
    daemon = Daemon(replace(settings, bounces=bounces, now=_at("07:30")))
    daemon.poll()  # the inbox, as the scheduler's poll reads it
    with caplog.at_level(logging.INFO, logger="digest"):
        daemon.send_due("alice")
    assert "alice suppressed: hard bounce 5.1.1 (dsn)" in caplog.text
    assert _outbox(settings) == []
