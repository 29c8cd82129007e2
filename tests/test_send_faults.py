"""Faults on the way out: bad text, bad links, unexpected errors, slow or limited SMTP servers,
a full disk. Each digest fails alone; nothing is left stuck, sent twice or shown raw."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import subprocess
import time
from datetime import date
from email import message_from_bytes, message_from_string, policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLES, SUBSCRIBERS, opened, smtp_env
from test_delivery import Scripted, serving

from digest.app import Digest
from digest.cli import cli
from digest.delivery import links, render
from digest.delivery.mail import build_message, serialize
from digest.delivery.send import Mailroom
from digest.models import Links, Paper, Ranked, Subscriber
from digest.settings import Settings

DAY = "2026-11-20"
SECRET = "a-test-secret-of-enough-length"
ESC_TITLE = "Diffusion models \x1b[31mred\x1b[0m for image generation \u202eevil\u202c \x01ok"


@pytest.fixture
def env(tmp_path: Path, database: str) -> dict[str, str]:
    base = {
        "DIGEST_SUBSCRIBERS": str(SUBSCRIBERS),
        "DIGEST_DB": database,
        "DIGEST_STATE": str(tmp_path / "var"),
        "DIGEST_INBOX": str(SAMPLES),
        "DIGEST_OUTBOX": str(tmp_path / "var" / "outbox"),
        "DIGEST_MODEL": "hashing",
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_SMTP_BACKOFF": "0.01",
        "DIGEST_SECRET": SECRET,
    }
    assert CliRunner().invoke(cli, ["ingest"], env=base).exit_code == 0
    return base


def invoke(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, list(args), env=env)


def smtp(env: dict[str, str], controller, **extra: str) -> dict[str, str]:  # noqa: ANN001
    return smtp_env(env, controller.port, **extra)


def ledger(env: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    with opened(env["DIGEST_DB"]) as store:
        return {d.subscriber_id: (d.status, d.reply) for d in store.deliveries()}


def add_stored_paper(env: dict[str, str], **fields: object) -> Paper:
    """A row as an older version of digest may have stored it: the parsers are not asked."""
    paper = Paper(
        **{
            "id": "2611.99999",
            "title": ESC_TITLE,
            "abstract": "We study diffusion models for image generation with a new sampler. It is fast.",
            "day": date.fromisoformat(DAY),
            **fields,
        }
    )
    with opened(env["DIGEST_DB"]) as store:
        store.add_papers([paper])
    return paper


def write_subscribers(tmp_path: Path, extra: str) -> str:
    path = tmp_path / "subscribers.yaml"
    path.write_text((SUBSCRIBERS).read_text() + extra, encoding="utf-8")
    return str(path)


IDN_SUBSCRIBER = """
  - id: jon
    email: jöhn@exämple.org
    keywords: [diffusion models]
"""


# --- text and links ------------------------------------------------------------------------


def test_control_characters_in_a_stored_title_are_dropped_and_the_digest_still_goes_out(env, tmp_path):
    add_stored_paper(env)
    result = invoke(env, "send", "--user", "alice", "--day", DAY)
    assert result.exit_code == 0, result.output
    eml = Path(env["DIGEST_OUTBOX"]) / DAY / "alice.eml"
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    for part in (html, text, str(message["Subject"])):
        assert not any(ch in part for ch in "\x1b\x01\u202e\u202c")
    assert "red for image generation" in html and "red for image generation" in text
    assert ledger(env)["alice"][0] == "sent"


def test_papers_and_rank_never_print_terminal_escapes(env):
    add_stored_paper(env)
    for args in (["papers", "--day", DAY], ["papers", "--day", DAY, "--json"], ["rank", "--day", DAY]):
        output = invoke(env, *args).output
        assert "\x1b" not in output and "\u202e" not in output and "\x01" not in output, args
    assert "red for image generation" in invoke(env, "papers", "--day", DAY).output


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<script>x</script>", "//evil.org/x"])
def test_only_http_links_reach_the_mail_and_the_archive(env, url: str):
    add_stored_paper(env, url=url)
    result = invoke(env, "send", "--user", "alice", "--day", DAY)
    assert result.exit_code == 0, result.output
    eml = (Path(env["DIGEST_OUTBOX"]) / DAY / "alice.eml").read_bytes()
    archive = (Path(env["DIGEST_STATE"]) / "archive" / DAY / "alice.html").read_text()
    message = message_from_bytes(eml, policy=policy.default)
    for part in (
        message.get_body(("html",)).get_content(),
        message.get_body(("plain",)).get_content(),
        archive,
    ):
        assert url not in part and "javascript:" not in part
    assert "https://arxiv.org/abs/2611.99999" in archive  # the arXiv id still gives a safe link


def test_a_blank_display_name_greets_by_id():
    sub = Subscriber(id="alice", email="alice@example.org", name="  ", keywords=("x",))
    digest = render.render(sub, date(2026, 11, 20), [], Links("mailto:d@localhost"))
    assert "Good morning, alice" in digest.text


def test_list_unsubscribe_headers_are_written_verbatim_on_the_wire(tmp_path: Path):
    settings = Settings.load(
        env={
            "DIGEST_BASE_URL": "https://digest.example.org/a/rather/long/public/path",
            "DIGEST_SECRET": SECRET,
        },
        db=tmp_path / "digest.db",
    )
    sub = Subscriber(id="alice-with-a-long-id", email="alice@example.org", keywords=("x",))
    paper = Paper(id="2611.00001", title="T", abstract="A.")
    digest = Mailroom.for_settings(settings).render(sub, date(2026, 11, 20), [Ranked(paper, 0.5)])
    data = serialize(build_message(digest, settings.smtp), settings.smtp, key="k").data
    head = data.split(b"\r\n\r\n", 1)[0]
    (line,) = [h for h in head.split(b"\r\n") if h.startswith(b"List-Unsubscribe:")]
    assert line.startswith(
        b"List-Unsubscribe: <https://digest.example.org/a/rather/long/public/path/unsubscribe?"
    )
    assert line.endswith(b">, <mailto:digest@localhost?subject=unsubscribe%20alice-with-a-long-id>")
    assert b"=?" not in line
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in head + b"\r\n"


# --- settings checked at start ------------------------------------------------------------


@pytest.mark.parametrize("address", ["x@example.org\r\nBcc: victim@example.org", "not an address", "a@b@c"])
def test_send_to_an_invalid_address_is_one_line_and_exit_2(env, address: str):
    result = invoke(env, "send", "--user", "alice", "--to", address)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "--to" in result.output


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DIGEST_FROM", "Digest <digest@example.org>\r\nBcc: victim@example.org"),
        ("DIGEST_BASE_URL", "javascript:alert(1)"),
        ("DIGEST_SECRET", ""),
    ],
)
def test_unsafe_settings_stop_the_run_before_anything_is_sent(env, name: str, value: str):
    result = invoke({**env, name: value}, "send")
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and name in result.output
    assert not (Path(env["DIGEST_OUTBOX"])).exists()


# --- the send loop isolates each digest ----------------------------------------------------


def test_an_unexpected_error_rendering_one_digest_is_its_failure_and_the_others_go_out(env, monkeypatch):
    real = render.render

    def flaky(subscriber, *args, **kwargs):
        if subscriber.id == "bob":
            raise RuntimeError("template exploded")
        return real(subscriber, *args, **kwargs)

    monkeypatch.setattr(render, "render", flaky)
    handler = Scripted()
    with serving(handler) as controller:
        result = invoke(smtp(env, controller), "send")
        states = ledger(env)
        assert result.exit_code == 1
        assert "template exploded" in result.output
        assert states["alice"][0] == states["carol"][0] == "sent"
        assert states["bob"][0] == "pending" and "template exploded" in (states["bob"][1] or "")
        assert [handler.copies(f"{w}@example.org") for w in ("alice", "bob", "carol")] == [1, 0, 1]
        monkeypatch.setattr(render, "render", real)
        again = invoke(smtp(env, controller), "send")
    assert again.exit_code == 0, again.output
    assert handler.copies("bob@example.org") == 1 and ledger(env)["bob"][0] == "sent"


def test_an_unexpected_error_inside_the_mailer_leaves_that_digest_unknown_and_drops_the_connection(
    env, monkeypatch
):
    import smtplib

    real = smtplib.SMTP.sendmail
    broken: list[int] = []

    def sendmail(self, from_addr, to_addrs, msg, *args, **kwargs):
        if "bob@example.org" in to_addrs:
            self.mail(from_addr)  # the session is now mid-transaction
            broken.append(id(self))
            raise UnicodeError("something nobody expected")
        return real(self, from_addr, to_addrs, msg, *args, **kwargs)

    monkeypatch.setattr(smtplib.SMTP, "sendmail", sendmail)
    handler = Scripted()
    with serving(handler) as controller:
        result = invoke(smtp(env, controller), "send")
    states = ledger(env)
    assert result.exit_code == 1
    assert states["bob"][0] == "sending" and "something nobody expected" in (states["bob"][1] or "")
    assert states["alice"][0] == states["carol"][0] == "sent"  # no "503 nested MAIL" on a reused link
    assert [handler.copies(f"{w}@example.org") for w in ("alice", "carol")] == [1, 1]


def test_an_internationalized_address_fails_alone_when_the_server_lacks_smtputf8(env, tmp_path):
    env = {**env, "DIGEST_SUBSCRIBERS": write_subscribers(tmp_path, IDN_SUBSCRIBER)}
    handler = Scripted()
    with serving(handler, enable_SMTPUTF8=False) as controller:
        result = invoke(smtp(env, controller, DIGEST_SMTP_CONCURRENCY="4"), "send")
    states = ledger(env)
    assert result.exit_code == 1
    assert states["jon"][0] == "failed" and "SMTPUTF8" in (states["jon"][1] or "")
    assert {states[w][0] for w in ("alice", "bob", "carol")} == {"sent"}
    assert [handler.copies(f"{w}@example.org") for w in ("alice", "bob", "carol")] == [1, 1, 1]


def test_an_internationalized_address_is_delivered_with_smtputf8_where_offered(env, tmp_path):
    env = {**env, "DIGEST_SUBSCRIBERS": write_subscribers(tmp_path, IDN_SUBSCRIBER)}
    handler = Scripted()
    with serving(handler, enable_SMTPUTF8=True) as controller:  # aiosmtpd's default, said out loud
        result = invoke(smtp(env, controller, DIGEST_SMTP_CONCURRENCY="4"), "send")
    assert result.exit_code == 0, result.output
    assert handler.copies("jöhn@exämple.org") == 1
    ((_, data),) = [r for r in handler.received if "jöhn@exämple.org" in r[0]]
    received = message_from_string(data.decode("utf-8"), policy=policy.default)  # 8-bit headers
    assert received["To"].addresses[0].addr_spec == "jöhn@exämple.org"
    assert {s for s, _ in ledger(env).values()} == {"sent"}


class SlowToAnswer(Scripted):
    """Keeps each message at once, then takes its time to say so."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.received.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        await asyncio.sleep(self.data_delay)
        return "250 OK"


def test_a_reply_that_times_out_after_the_data_is_unknown_and_never_resent(env):
    handler = SlowToAnswer(data_delay=1.5)
    with serving(handler) as controller:
        slow = smtp(env, controller, DIGEST_SMTP_TIMEOUT="0.4")
        first = invoke(slow, "send", "--user", "alice")
        again = invoke(slow, "send", "--user", "alice")
    assert first.exit_code == 1 and "unknown" in first.output
    assert handler.copies("alice@example.org") == 1
    assert ledger(env)["alice"][0] == "sending"
    assert again.exit_code == 1 and "unknown" in again.output


# --- the outbox and the state folder -------------------------------------------------------


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


def test_a_full_disk_leaves_no_complete_eml_beside_a_pending_row_and_no_temporary_files(env, tmp_path):
    outbox = tmp_path / "small"
    if not _mount_tmpfs(outbox, "48k"):
        pytest.skip("a small tmpfs cannot be mounted here (needs root)")
    try:
        result = invoke({**env, "DIGEST_OUTBOX": str(outbox)}, "send", "--day", DAY)
        states = ledger(env)
        files = sorted(p.relative_to(outbox) for p in outbox.rglob("*") if p.is_file())
        assert result.exit_code == 1 and "No space left" in result.output
        pending = [w for w, (s, _) in states.items() if s == "pending"]
        assert pending  # 48 KB holds one digest at most
        for who in pending:
            assert Path(DAY, f"{who}.eml") not in files
        assert not [f for f in files if ".tmp" in f.name]
        for who, (status, _) in states.items():
            assert status in ("sent", "pending"), who
            if status == "sent":
                assert {Path(DAY, f"{who}.eml"), Path(DAY, f"{who}.html")} <= set(files)
    finally:
        subprocess.run(["umount", "-l", str(outbox)], check=False)


def test_stale_temporary_files_in_the_outbox_are_cleaned(env):
    day_folder = Path(env["DIGEST_OUTBOX"]) / DAY
    day_folder.mkdir(parents=True)
    stale = day_folder / ".alice.eml.12345.tmp"
    stale.write_bytes(b"half a message")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert invoke(env, "send", "--day", DAY).exit_code == 0
    assert not stale.exists()
    assert not [p for p in day_folder.iterdir() if ".tmp" in p.name]


def test_the_secret_file_is_private_from_the_moment_it_exists(tmp_path, monkeypatch):
    chmods: list[object] = []
    monkeypatch.setattr(Path, "chmod", lambda self, mode: chmods.append(mode))
    monkeypatch.setattr(os, "chmod", lambda *a, **k: chmods.append(a))
    old_umask = os.umask(0)
    try:
        settings = Settings.load(env={}, db=tmp_path / "state" / "digest.db")
        value = links.secret(settings)
    finally:
        os.umask(old_umask)
    path = tmp_path / "state" / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(value) >= 32 and links.secret(settings) == value


# --- the daemon keeps going ------------------------------------------------------------------


def test_the_scheduler_logs_an_unexpected_error_and_keeps_running(env, monkeypatch, caplog):
    from digest.daemon import Daemon

    def boom(*args, **kwargs):
        raise RuntimeError("a bug in a send")

    daemon = Daemon(Settings.load(env=env))
    caplog.set_level(logging.ERROR, logger="digest")
    monkeypatch.setattr(Digest, "run", boom)
    monkeypatch.setattr(Digest, "ingest_inbox", boom)
    logger = logging.getLogger("digest")
    logger.addHandler(caplog.handler)  # the CLI's logging setup stops propagation to the root
    try:
        daemon.send_due()  # raised out of the daemon before, so systemd restarted it in a loop
        daemon.poll()
    finally:
        logger.removeHandler(caplog.handler)
    assert [r.getMessage().count("a bug in a send") for r in caplog.records] == [1, 1]


# --- the links' secret: read when a digest needs it ----------------------------------------------


def _without_secret(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "DIGEST_SECRET"} | {"DIGEST_BASE_URL": "https://d.example.org"}


def test_commands_that_make_no_links_never_create_the_secret(env):
    env = _without_secret(env)
    nothing_sent = (
        ["status"],
        ["rank", "--user", "alice", "--day", DAY],
        ["schedule", "--list"],
        ["send", "--day", DAY, "--dry-run"],
    )
    for command in nothing_sent:
        assert invoke(env, *command).exit_code == 0, command
    assert not (Path(env["DIGEST_STATE"]) / "secret").exists()
    assert invoke(env, "send", "--day", DAY).exit_code == 0
    assert (Path(env["DIGEST_STATE"]) / "secret").is_file()  # a digest's links needed it


def test_an_unreadable_secret_fails_each_digest_with_its_reason_and_the_run_reports_the_rest(env):
    env = _without_secret(env)
    (Path(env["DIGEST_STATE"]) / "secret").mkdir(parents=True)  # not a file: unreadable
    result = invoke(env, "run", "--day", DAY)
    assert result.exit_code == 1
    assert result.output.count("secret") >= 2  # each digest says why
    recorded = ledger(env)
    assert recorded and all(s == "pending" and "secret" in (why or "") for s, why in recorded.values())
    assert invoke(env, "status").exit_code == 0


def test_a_run_tells_each_stage_as_it_ends_so_a_failure_in_sending_keeps_what_came_before(
    env, monkeypatch
):
    from digest.errors import DigestError
    from digest.roster import load_roster

    settings = Settings.load(env=env)
    roster = load_roster(settings.subscribers)
    told: list[str] = []
    with Digest(settings).opened() as digest:
        digest.run(roster, day=date(2026, 11, 20), stage=lambda report, name: told.append(name))
        assert told == ["fetched", "ingested", "delivered"]

        def stopped(*args, **kwargs):
            raise DigestError("the store went away")

        monkeypatch.setattr(Digest, "deliver", stopped)
        told.clear()
        with pytest.raises(DigestError):
            digest.run(roster, day=date(2026, 11, 20), stage=lambda report, name: told.append(name))
        assert told == ["fetched", "ingested"]
