"""Bounces and complaints keep the list clean (digest.delivery.bounces): hard bounces and
complaints stop a reader's mail at once, soft ones after enough of them, nothing else does;
reports are tied to readers, recorded once, and only the ones acted on leave the mailbox."""

from __future__ import annotations

import mailbox
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, SAMPLES, Scripted, opened, serving, smtp_env

from digest.cli import cli
from digest.delivery import bounces, links
from digest.delivery.reports import Report
from digest.models import Subscriber
from digest.settings import BounceSettings

BOUNCES = FIXTURES / "bounces"
DAY = "2026-11-20"
# readers whose addresses the fixture reports name: carol's address is gone (Postfix, 5.1.1),
# bob's mailbox is full for now (Postfix, delayed 4.4.1), grace marked a digest as spam (ARF);
# alice's out-of-office reply quotes a 550 and must change nothing
ROSTER = """\
subscribers:
  - id: alice
    email: alice@example.org
    keywords: [diffusion models, speech]
  - id: bob
    email: bob@example.org
    keywords: [diffusion models, speech]
  - id: carol
    email: carol@example.net
    keywords: [diffusion models, speech]
  - id: grace
    email: grace@mail.example.net
    keywords: [diffusion models, speech]
"""
ACTED = ("postfix_hard_user_unknown.eml", "postfix_delayed.eml", "arf_abuse.eml")
LEFT = ("out_of_office_quoting_550.eml", "human_reply.eml")


def _env(tmp_path: Path, database: str, **extra: str) -> dict[str, str]:
    (tmp_path / "subscribers.yaml").write_text(ROSTER)
    return {
        "DIGEST_SUBSCRIBERS": str(tmp_path / "subscribers.yaml"),
        "DIGEST_DB": database,
        "DIGEST_STATE": str(tmp_path / "state"),
        "DIGEST_INBOX": str(SAMPLES),
        "DIGEST_OUTBOX": str(tmp_path / "outbox"),
        "DIGEST_MODEL": "hashing",
        "DIGEST_SMTP_HOST": "",
        **extra,
    }


def _maildir(tmp_path: Path, names: tuple[str, ...]) -> tuple[Path, dict[str, Path]]:
    """A Maildir holding the fixture reports `names`, each in new/ under a file name of its own."""
    folder = tmp_path / "bounces"
    box = mailbox.Maildir(folder, create=True)
    keys = {name: box.add((BOUNCES / name).read_bytes()) for name in names}
    return folder, {name: folder / "new" / key for name, key in keys.items()}


def _digest(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def _report(kind: str = "hard", status: str | None = "5.1.1", **kw) -> Report:
    fields = dict(recipient="bob@example.org", diagnostic="550 5.1.1 no such user", message_id=None)
    fields |= dict(original_to=None, verp_token=None, source="dsn") | kw
    return Report(kind=kind, status=status, **fields)  # type: ignore[arg-type]


BOB = Subscriber(id="bob", email="bob@example.org", keywords=("x",))


# --- the rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "effect"),
    [
        ("hard", "5.1.1", "hard"),  # no such user
        ("hard", "5.1.10", "hard"),  # Exchange: recipient not found
        ("hard", "5.2.1", "hard"),  # mailbox disabled
        ("hard", "5.4.4", "hard"),  # no route to the domain
        ("hard", "5.0.0", "hard"),  # a bounce that says no more
        ("hard", None, "hard"),
        ("hard", "5.7.1", "soft"),  # policy: a spam filter, our own DKIM or DMARC
        ("hard", "5.7.26", "soft"),
        ("hard", "5.6.0", "soft"),  # content
        ("hard", "5.3.4", "soft"),  # too big for their system
        ("hard", "5.5.2", "soft"),  # protocol
        ("soft", "4.2.2", "soft"),
        ("complaint", None, "complaint"),
    ],
)
def test_only_failures_of_the_address_itself_are_hard(kind: str, status: str | None, effect: str):
    assert bounces.effective_kind(_report(kind, status)) == effect


def test_a_hard_bounce_and_a_complaint_suppress_at_once_and_a_report_counts_once(store):
    settings = BounceSettings()
    first = bounces.absorb(store, BOB, _report(), "mail:1", settings)
    again = bounces.absorb(store, BOB, _report(), "mail:1", settings)
    assert first.new and first.suppression is not None and first.suppression.kind == "hard"
    assert not again.new and again.suppression is None and len(store.bounces()) == 1
    alice = Subscriber(id="alice", email="alice@example.org", keywords=("x",))
    complained = bounces.absorb(store, alice, _report("complaint", None, recipient=None), "ses:m:a", settings)
    assert complained.suppression is not None and store.suppressed()["alice"].kind == "complaint"
    assert store.suppressed()["alice"].email == "alice@example.org"  # the reader's address, from them


def test_soft_bounces_suppress_only_after_the_limit_within_the_window(store):
    settings = BounceSettings(soft_limit=3, soft_days=7)
    now = datetime(2026, 11, 20, 8, tzinfo=UTC)
    old = _report("soft", "4.2.2", arrived=now - timedelta(days=9))
    assert bounces.absorb(store, BOB, old, "mail:old", settings, now).suppression is None
    for n in (1, 2):
        recent = _report("soft", "4.2.2", arrived=now - timedelta(days=n))
        assert bounces.absorb(store, BOB, recent, f"mail:{n}", settings, now).suppression is None
    third = bounces.absorb(store, BOB, _report("soft", "4.2.2", arrived=now), "mail:3", settings, now)
    assert third.suppression is not None and third.suppression.kind == "soft"  # 3 in 7 days; the old one not


def test_a_suppression_holds_for_the_address_that_bounced_only(store):
    bounces.absorb(store, BOB, _report(), "mail:1", BounceSettings())
    held = store.suppressed()["bob"]
    assert held.holds_for("Bob@Example.org") and not held.holds_for("bob@new.example.org")


@pytest.mark.parametrize(
    ("reply", "status"),
    [("550 5.1.1 <bob@example.org>: Recipient address rejected", "5.1.1"), ("550 mailbox unavailable", None)],
)
def test_a_5xx_during_our_send_is_a_hard_report_and_a_4xx_is_none(reply: str, status: str | None):
    report = bounces.smtp_report(reply, "bob@example.org", "<m@x>")
    assert report is not None and (report.kind, report.status, report.source) == ("hard", status, "smtp")
    assert bounces.smtp_report("451 4.3.0 try again later", "bob@example.org", "<m@x>") is None


# --- VERP -----------------------------------------------------------------------------------


def test_a_verp_return_path_names_its_reader_and_cannot_be_aimed_at_another():
    path = links.return_path("bounces@example.org", "k" * 32, BOB)
    local, _, domain = path.partition("@")
    assert domain == "example.org" and local.startswith("bounces+bob=") and len(local) <= 64
    token = local.removeprefix("bounces+")
    assert links.verp_subscriber("k" * 32, token, [BOB]) == BOB
    carol = Subscriber(id="carol", email="carol@example.org", keywords=("x",))
    assert links.verp_subscriber("k" * 32, token.replace("bob=", "carol="), [BOB, carol]) is None
    assert links.verp_subscriber("another secret", token, [BOB]) is None
    moved = Subscriber(id="bob", email="bob@new.example.org", keywords=("x",))
    assert links.verp_subscriber("k" * 32, token, [moved]) is None  # a token for the old address
    long_id = Subscriber(id="a" * 60, email="a@example.org", keywords=("x",))
    assert links.return_path("bounces@example.org", "k" * 32, long_id) == "bounces@example.org"


def test_the_envelope_sender_is_the_readers_verp_address_when_a_bounce_address_is_set(
    tmp_path: Path, database: str
):
    handler = Scripted()
    env = _env(tmp_path, database, DIGEST_BOUNCE_ADDRESS="bounces@example.org", DIGEST_SECRET="s" * 32)
    with serving(handler) as controller:
        result = _digest(smtp_env(env, controller.port), "run", "--day", DAY)
    assert result.exit_code == 0, result.output
    assert sorted(handler.senders) == sorted(
        links.return_path("bounces@example.org", "s" * 32, Subscriber(id=sid, email=email, keywords=("x",)))
        for sid, email in (
            ("alice", "alice@example.org"),
            ("bob", "bob@example.org"),
            ("carol", "carol@example.net"),
            ("grace", "grace@mail.example.net"),
        )
    )


# --- the mailbox, end to end ----------------------------------------------------------------


def test_a_run_reads_the_mailbox_first_and_only_hard_bounces_and_complaints_stop_the_mail(
    tmp_path: Path, database: str
):
    folder, files = _maildir(tmp_path, ACTED + LEFT)
    left_before = {name: files[name].read_bytes() for name in LEFT}
    env = _env(tmp_path, database, DIGEST_BOUNCE_MAILBOX=str(folder), DIGEST_NOW="2026-11-21T07:00:00Z")
    result = _digest(env, "run", "--day", DAY)
    assert result.exit_code == 0, result.output
    assert "bounce mailbox: 5 messages, 3 reports acted on" in result.output
    assert "carol suppressed: hard bounce 5.1.1 (dsn)" in result.output
    assert "grace suppressed: complaint (arf)" in result.output
    sent = sorted(p.stem for p in (tmp_path / "outbox" / DAY).glob("*.eml"))
    assert sent == ["alice", "bob"]  # bob's full mailbox is one soft bounce: he is still mailed
    # the reports acted on moved to "processed", the rest left exactly as they were
    assert all(not files[name].exists() for name in ACTED)
    assert len(list((folder / ".processed" / "new").iterdir())) == 3
    assert {name: files[name].read_bytes() for name in LEFT} == left_before
    again = _digest(env, "bounces")  # read again: nothing new, nothing counted twice
    assert "bounce mailbox: 2 messages, 0 reports acted on" in again.output
    status = _digest(env, "status").output
    assert "suppressed: 2 (1 complaint, 1 hard bounce)" in status
    assert "carol" in status and "suppressed 20" in status
    assert "soft bounces counting toward suppression: bob 1" in status
    check = _digest(env, "subscribers", "check").output
    assert "hard bounce 5.1.1 on" in check and "User unknown" in check
    assert "complaint on" in check and "resubscribe grace" in check
    assert "1 soft bounce(s) in 7 days (3 stop the mail); last 2026-11-20 4.4.1 (dsn)" in check
    with opened(database) as store:
        assert sorted((b.subscriber_id, b.kind) for b in store.bounces()) == [
            ("bob", "soft"),
            ("carol", "hard"),
            ("grace", "complaint"),
        ]


def test_every_sending_path_skips_a_suppressed_reader_but_a_test_mail_goes(tmp_path: Path, database: str):
    folder, _ = _maildir(tmp_path, ("postfix_hard_user_unknown.eml",))
    env = _env(tmp_path, database, DIGEST_BOUNCE_MAILBOX=str(folder))
    assert _digest(env, "ingest").exit_code == 0
    assert _digest(env, "bounces").exit_code == 0
    sent = _digest(env, "send", "--day", DAY)
    assert sent.exit_code == 0 and "carol" in sent.output and "suppressed" in sent.output
    assert not (tmp_path / "outbox" / DAY / "carol.eml").exists()
    assert "suppressed" in _digest(env, "schedule", "--list").output
    test_mail = _digest(env, "send", "--day", DAY, "--user", "carol", "--to", "me@example.org")
    assert test_mail.exit_code == 0, test_mail.output
    assert list((tmp_path / "outbox" / DAY).glob("test-carol*")), test_mail.output


def test_resubscribe_or_a_new_address_lifts_a_suppression(tmp_path: Path, database: str):
    folder, _ = _maildir(tmp_path, ("postfix_hard_user_unknown.eml", "arf_abuse.eml"))
    env = _env(tmp_path, database, DIGEST_BOUNCE_MAILBOX=str(folder))
    assert _digest(env, "ingest").exit_code == 0
    assert _digest(env, "bounces").exit_code == 0
    lifted = _digest(env, "subscribers", "resubscribe", "carol")
    assert "carol: suppression lifted" in lifted.output
    (tmp_path / "subscribers.yaml").write_text(
        ROSTER.replace("grace@mail.example.net", "grace@new.example.net")
    )
    sent = _digest(env, "send", "--day", DAY)
    assert sent.exit_code == 0, sent.output
    assert {p.stem for p in (tmp_path / "outbox" / DAY).glob("*.eml")} >= {"carol", "grace"}


def test_a_mailbox_that_cannot_be_read_is_said_and_the_mail_still_goes(tmp_path: Path, database: str):
    env = _env(tmp_path, database, DIGEST_BOUNCE_MAILBOX=str(tmp_path / "no-such-folder"))
    result = _digest(env, "run", "--day", DAY)
    assert "bounce mailbox not read" in result.output and "DIGEST_BOUNCE_MAILBOX" in result.output
    assert result.exit_code == 1  # said, and the exit status tells cron
    assert len(list((tmp_path / "outbox" / DAY).glob("*.eml"))) == 4


def test_digest_bounces_without_a_mailbox_says_what_to_set(tmp_path: Path, database: str):
    result = _digest(_env(tmp_path, database), "bounces")
    assert result.exit_code == 2 and "DIGEST_BOUNCE_MAILBOX is not set" in result.output


# --- real servers: Postfix returns its own DSN, Dovecot serves the mailbox over IMAP -----------


def test_postfix_returns_a_dsn_for_a_missing_user_and_digest_bounces_suppresses_them(
    tmp_path: Path, database: str, postfix_server
):
    domain = postfix_server.domain
    env = _env(
        tmp_path,
        database,
        DIGEST_FROM=f"Paper Digest <digest@{domain}>",
        DIGEST_BOUNCE_ADDRESS=f"bounces@{domain}",
        DIGEST_BOUNCE_MAILBOX=str(postfix_server.maildir.path),
        DIGEST_SECRET="p" * 32,
    )
    roster = (
        f"subscribers:\n  - id: ghost\n    email: no-such-user@{domain}\n    keywords: [diffusion models]\n"
    )
    (tmp_path / "subscribers.yaml").write_text(roster)
    assert _digest(env, "ingest").exit_code == 0
    sent = _digest(smtp_env(env, postfix_server.port), "send", "--day", DAY)
    assert sent.exit_code == 0, sent.output  # accepted: the failure comes later, as a DSN
    ghost = Subscriber(id="ghost", email=f"no-such-user@{domain}", keywords=("x",))
    verp = links.return_path(f"bounces@{domain}", "p" * 32, ghost)
    (dsn,) = postfix_server.wait_for_mail(verp.partition("@")[0])
    assert dsn.get_content_type() == "multipart/report"
    read = _digest(env, "bounces")
    assert "ghost suppressed: hard bounce 5.1.1 (dsn)" in read.output, read.output
    again = _digest(smtp_env(env, postfix_server.port), "send", "--day", "2026-11-21")
    assert "suppressed" in again.output
    # digest (root here) made the processed folder as the mailbox's owner, whom Dovecot runs as
    processed = postfix_server.maildir.path / ".processed"
    mailbox_owner = postfix_server.maildir.path.stat().st_uid
    assert {p.stat().st_uid for p in (processed, processed / "new", processed / "cur")} == {mailbox_owner}


def test_the_imap_mailbox_is_read_and_only_the_report_moves(tmp_path: Path, database: str, imap_server):
    names = ("postfix_hard_user_unknown.eml", "out_of_office_quoting_550.eml")
    placed = {name: imap_server.deliver((BOUNCES / name).read_bytes()) for name in names}
    env = _env(
        tmp_path, database, DIGEST_BOUNCE_MAILBOX=imap_server.url, DIGEST_BOUNCE_PASSWORD=imap_server.password
    )
    read = _digest(env, "bounces")
    assert read.exit_code == 0, read.output
    assert "carol suppressed: hard bounce 5.1.1 (dsn)" in read.output
    # the auto-reply stays in the folder, unread (Dovecot itself files a selected message under
    # cur/, keeping its name); the report is gone from it
    inbox = [p for sub in ("new", "cur") for p in (imap_server.maildir / sub).iterdir()]
    names = {p.name.split(":")[0]: p.name.partition(":2,")[2] for p in inbox}
    assert placed["postfix_hard_user_unknown.eml"].name not in names
    assert "S" not in names[placed["out_of_office_quoting_550.eml"].name]
    processed = imap_server.maildir / ".processed"
    assert any(
        p.read_bytes() == (BOUNCES / "postfix_hard_user_unknown.eml").read_bytes()
        for sub in ("new", "cur")
        for p in (processed / sub).iterdir()
    )
    shutil.rmtree(processed)  # the session's shared mailbox, as other tests expect it


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"DIGEST_BOUNCE_ADDRESS": "bounces+x@example.org"}, "holds a '+'"),
        ({"DIGEST_BOUNCE_ADDRESS": "not an address"}, "DIGEST_BOUNCE_ADDRESS 'not an address' is not"),
        ({"DIGEST_SOFT_BOUNCES": "0"}, "DIGEST_SOFT_BOUNCES='0' must be at least 1"),
        ({"DIGEST_SOFT_BOUNCE_DAYS": "a week"}, "DIGEST_SOFT_BOUNCE_DAYS='a week' is not a whole number"),
        ({"DIGEST_SES_AUTO_CONFIRM": "maybe"}, "DIGEST_SES_AUTO_CONFIRM='maybe' must be yes or no"),
    ],
)
def test_bounce_settings_are_checked_with_one_line_errors(env: dict[str, str], said: str):
    from digest.errors import ConfigError
    from digest.settings import Settings

    with pytest.raises(ConfigError) as info:
        Settings.load(env=env)
    assert said in str(info.value) and len(str(info.value).splitlines()) == 1


def test_bounce_settings_have_documented_defaults():
    from digest.settings import Settings

    bounces = Settings.load(
        env={"DIGEST_SES_TOPIC_ARNS": "arn:aws:sns:eu-west-1:1:a, arn:aws:sns:eu-west-1:1:b"}
    ).bounces
    assert (bounces.mailbox, bounces.address, bounces.soft_limit, bounces.soft_days) == (None, None, 3, 7)
    assert bounces.ses_topics == ("arn:aws:sns:eu-west-1:1:a", "arn:aws:sns:eu-west-1:1:b")
    assert bounces.ses_auto_confirm is True


def test_a_bounce_through_a_forward_stops_the_readers_own_address(store):
    forwarded = _report(recipient="bob@forward.example.net", original_to="bob@example.org")
    bounces.absorb(store, BOB, forwarded, "mail:fw", BounceSettings())
    assert store.suppressed()["bob"].holds_for(BOB.email)
    by_verp = _report(recipient="bob@forward.example.net", verp_token="bob=abc")
    carol = Subscriber(id="bob", email="bob@example.org", keywords=("x",))
    store.lift_suppression("bob")
    bounces.absorb(store, carol, by_verp, "mail:verp", BounceSettings())
    assert store.suppressed()["bob"].holds_for(BOB.email)


def test_a_stray_report_about_another_address_never_lifts_a_suppression_that_holds(store):
    bounces.absorb(store, BOB, _report(), "mail:1", BounceSettings())
    stray = _report("complaint", None, recipient="someone@else.example", original_to="someone@else.example")
    bounces.absorb(store, BOB, stray, "mail:2", BounceSettings())
    assert store.suppressed()["bob"].holds_for(BOB.email) and store.suppressed()["bob"].kind == "hard"


def test_a_bounce_of_an_address_the_reader_left_stops_nothing(store):
    moved = Subscriber(id="bob", email="bob@new.example.org", keywords=("x",))
    old = _report(recipient="bob@example.org", original_to="bob@example.org")
    bounces.absorb(store, moved, old, "mail:old", BounceSettings())
    assert not store.suppressed()["bob"].holds_for(moved.email)


def test_a_mailbox_that_breaks_in_an_unforeseen_way_still_lets_the_mail_go(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch
):
    folder, _ = _maildir(tmp_path, ("postfix_hard_user_unknown.eml",))

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ConnectionResetError("the server went away mid-read")

    monkeypatch.setattr(bounces, "open_mailbox", broken)
    result = _digest(_env(tmp_path, database, DIGEST_BOUNCE_MAILBOX=str(folder)), "run", "--day", DAY)
    assert "bounce mailbox not read (ConnectionResetError: the server went away mid-read)" in result.output
    assert len(list((tmp_path / "outbox" / DAY).glob("*.eml"))) == 4


def test_a_report_naming_only_a_forward_is_tied_by_the_message_id_in_the_ledger(
    tmp_path: Path, database: str
):
    """A DSN from a forward names an address nobody on the list has; the Message-ID of our digest
    it quotes (kept in the ledger when it was sent) names the reader, and stops their mail."""
    from email import message_from_bytes

    env = _env(tmp_path, database)
    assert _digest(env, "run", "--day", DAY).exit_code == 0
    sent = message_from_bytes((tmp_path / "outbox" / DAY / "carol.eml").read_bytes())
    raw = (BOUNCES / "postfix_hard_user_unknown.eml").read_bytes()
    quoted_id = b"<179515440300.48213.11735502187714520693.2026-11-20.carol@digest.example.org>"
    raw = raw.replace(quoted_id, str(sent["Message-ID"]).encode())
    # the forward's DSN names only the forward, and quotes our digest without its To
    raw = raw.replace(b"To: Carol Nguyen <carol@example.net>\n", b"").replace(
        b"carol@example.net", b"c@fwd.example"
    )
    folder = tmp_path / "bounces"
    mailbox.Maildir(folder, create=True).add(raw)
    read = _digest({**env, "DIGEST_BOUNCE_MAILBOX": str(folder)}, "bounces")
    assert "carol suppressed: hard bounce 5.1.1 (dsn)" in read.output, read.output
    with opened(database) as store:
        assert store.suppressed()["carol"].holds_for("carol@example.net")  # not the forward: the reader
