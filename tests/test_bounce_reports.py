"""Bounce and complaint reports (digest.delivery.reports) and the mailboxes they arrive in
(digest.delivery.mailbox). The fixtures in tests/fixtures/bounces are written for these tests in
the shapes Postfix, Exim, qmail, Gmail, Exchange Online and a feedback loop use; each returns
one of our digests (Message-ID <...2026-11-20.SUBSCRIBER@digest.example.org>)."""

from __future__ import annotations

import imaplib
import re
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.delivery.mailbox import IMAPMailbox, _quoted, open_mailbox
from digest.delivery.reports import DIAGNOSTIC_CHARS, Report, Skip, parse
from digest.errors import ConfigError

BOUNCES = Path(__file__).resolve().parent / "fixtures" / "bounces"
DOMAIN = "digest.example.org"


def fixture(name: str) -> bytes:
    return (BOUNCES / name).read_bytes()


def msgid(serial: str, subscriber: str) -> str:
    return f"<1795154403{serial}.2026-11-20.{subscriber}@digest.example.org>"


def report(raw: bytes, **kwargs: str | None) -> Report:
    verdict = parse(raw, **kwargs)
    assert isinstance(verdict, Report), verdict
    return verdict


def skip(raw: bytes) -> Skip:
    verdict = parse(raw)
    assert isinstance(verdict, Skip), verdict
    return verdict


def with_header(raw: bytes, line: str) -> bytes:
    """`raw` with one header line added at the top."""
    return line.encode() + b"\n" + raw


def set_header(raw: bytes, name: str, value: str | None) -> bytes:
    """`raw` with its top-level header `name` replaced (or removed, for None)."""
    head, body = raw.split(b"\n\n", 1)
    pattern = re.compile(rb"^" + name.encode() + rb":.*\n(?:[ \t].*\n)*", re.IGNORECASE | re.MULTILINE)
    head = pattern.sub(b"", head + b"\n")
    if value is not None:
        head += f"{name}: {value}\n".encode()
    return head.rstrip(b"\n") + b"\n\n" + body


# --- every fixture -----------------------------------------------------------------------------

# file: (kind, recipient, status, message id, the digest's To, VERP token) or the Skip reason
EXPECTED: dict[str, tuple[str, str | None, str | None, str | None, str | None, str | None] | str] = {
    "postfix_hard_user_unknown.eml": (
        "hard", "carol@example.net", "5.1.1",
        msgid("00.48213.11735502187714520693", "carol"), "carol@example.net", None,
    ),
    "postfix_delayed.eml": (
        "soft", "bob@example.org", "4.4.1",
        msgid("01.48213.4409917723615440218", "bob"), "bob@example.org", None,
    ),
    "exim_plain_failed.eml": (
        "hard", "erin@example.com", "5.0.0",
        msgid("02.48213.1907724536619048876", "erin"), "erin@example.com", None,
    ),
    "gmail_dsn.eml": (
        "hard", "dana@lab.example.edu", "5.1.1",
        msgid("03.48213.16670913527405591820", "dana"), "dana@lab.example.edu", None,
    ),
    "exchange_ndr.eml": (
        "hard", "frank@fabrikam.example", "5.1.10",
        msgid("05.48213.7761290041723358812", "frank"), "frank@fabrikam.example", None,
    ),
    "arf_abuse.eml": (
        "complaint", "grace@mail.example.net", None,
        msgid("06.48213.2230149987345016624", "grace"), "grace@mail.example.net", None,
    ),
    "postfix_auto_submitted_headers_only.eml": (
        "hard", "dave@example.org", "5.2.1",
        msgid("07.48213.5562093381102874412", "dave"), "dave@example.org", None,
    ),
    "qmail_verp_failure.eml": (
        "hard", "ivan@example.org", "5.1.1",
        msgid("09.48213.13209871165004421367", "ivan"), "ivan@example.org", "ivan.2026-11-20.Zk3q9V",
    ),
    "out_of_office_quoting_550.eml": "auto-reply",
    "human_reply.eml": "not-a-report",
}  # fmt: skip


def test_every_fixture_has_an_expected_verdict() -> None:
    assert sorted(p.name for p in BOUNCES.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_reads_as_the_mail_system_that_wrote_it_meant(name: str) -> None:
    verdict = parse(fixture(name), bounce_domain=DOMAIN)
    expected = EXPECTED[name]
    if isinstance(expected, str):
        assert isinstance(verdict, Skip) and verdict.reason == expected, verdict
        return
    assert isinstance(verdict, Report), verdict
    got = (verdict.kind, verdict.recipient, verdict.status, verdict.message_id, verdict.original_to)
    assert (*got, verdict.verp_token) == expected
    assert verdict.diagnostic and "\n" not in verdict.diagnostic
    assert len(verdict.diagnostic) <= DIAGNOSTIC_CHARS
    assert verdict.arrived is not None and verdict.arrived.tzinfo is not None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_crlf_line_ends_as_on_the_wire_give_the_same_verdict(name: str) -> None:
    raw = fixture(name)
    assert parse(raw.replace(b"\n", b"\r\n"), bounce_domain=DOMAIN) == parse(raw, bounce_domain=DOMAIN)


def test_the_diagnostic_is_the_servers_reply_unfolded_without_its_type() -> None:
    assert report(fixture("postfix_hard_user_unknown.eml")).diagnostic == (
        "550 5.1.1 <carol@example.net>: Recipient address rejected: User unknown in virtual mailbox table"
    )
    assert report(fixture("postfix_delayed.eml")).diagnostic == (
        "connect to mx.example.org[198.51.100.7]:25: Connection timed out"  # "X-Postfix;" gone
    )
    assert report(fixture("exim_plain_failed.eml")).diagnostic == "550 No such user here (erin)"
    assert report(fixture("qmail_verp_failure.eml")).diagnostic == (
        "<ivan@example.org>: Sorry, no mailbox here by that name. (#5.1.1)"
    )


def test_a_long_diagnostic_is_cut_to_300_characters() -> None:
    raw = fixture("postfix_hard_user_unknown.eml").replace(
        b"mailbox table\n\n--4Ykq", b"mailbox table" + b" and more" * 60 + b"\n\n--4Ykq"
    )
    diagnostic = report(raw).diagnostic
    assert len(diagnostic) == DIAGNOSTIC_CHARS and diagnostic.endswith("...")


def test_plain_text_bounces_are_marked_as_read_from_their_words() -> None:
    assert report(fixture("exim_plain_failed.eml")).source == "bounce"
    assert report(fixture("postfix_hard_user_unknown.eml")).source == "dsn"
    assert report(fixture("arf_abuse.eml")).source == "arf"


# --- auto-replies ------------------------------------------------------------------------------


def test_an_out_of_office_reply_quoting_a_550_is_never_a_bounce() -> None:
    raw = fixture("out_of_office_quoting_550.eml")
    assert skip(raw).reason == "auto-reply"
    # with its subject made plain, its Auto-Submitted header alone still says so
    plain = set_header(raw, "Subject", "Re: Your papers for Friday, 20 November")
    assert skip(plain).reason == "auto-reply"
    # even sent from a postmaster with a null return path (both already in the fixture's Return-Path)
    assert skip(set_header(raw, "From", "postmaster@example.com")).reason == "auto-reply"


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Your papers for Friday",
        "Automatic reply: Your papers for Friday",
        "AW: Abwesenheitsnotiz: Your papers for Friday",
        "=?utf-8?q?R=C3=A9ponse_automatique_=3A_Your_papers?=",
        "Autoreply: Your papers for Friday",
        "I am out of the office until 4 December",
        "Heidi Berg is out of the office.",
    ],
)
def test_an_out_of_office_subject_alone_makes_an_auto_reply(subject: str) -> None:
    raw = set_header(fixture("out_of_office_quoting_550.eml"), "Auto-Submitted", None)
    assert skip(set_header(raw, "Subject", subject)).reason == "auto-reply"


@pytest.mark.parametrize("header", ["X-Autoreply: yes", "X-Autorespond: vacation", "Precedence: auto_reply"])
def test_an_auto_responders_own_header_makes_an_auto_reply(header: str) -> None:
    raw = set_header(fixture("human_reply.eml"), "Subject", "Re: Your papers")
    assert skip(with_header(raw, header)).reason == "auto-reply"
    # it wins over a daemon sender and a bounce subject: no MTA writes these headers
    raw = set_header(fixture("qmail_verp_failure.eml"), "Subject", "failure notice")
    assert skip(with_header(raw, header)).reason == "auto-reply"


def test_a_dsn_marked_auto_replied_as_postfix_marks_every_dsn_is_still_a_report() -> None:
    raw = fixture("postfix_auto_submitted_headers_only.eml")
    assert b"Auto-Submitted: auto-replied" in raw and b"Precedence: bulk" in raw
    assert report(raw).kind == "hard"
    # the report's structure outranks even an auto-responder's headers and subject
    raw = with_header(set_header(raw, "Subject", "Out of Office: Undelivered Mail"), "X-Autoreply: yes")
    assert report(raw).kind == "hard"


def test_an_exim_bounce_marked_auto_replied_is_still_a_bounce() -> None:
    raw = fixture("exim_plain_failed.eml")
    assert b"Auto-Submitted: auto-replied" in raw
    assert report(raw).kind == "hard"


def test_precedence_bulk_alone_neither_makes_nor_breaks_a_bounce() -> None:
    bounce = with_header(fixture("qmail_verp_failure.eml"), "Precedence: junk")
    assert report(bounce).kind == "hard"
    human = with_header(fixture("human_reply.eml"), "Precedence: bulk")
    assert skip(human).reason == "auto-reply"  # a machine wrote it: not a person, not a bounce
    listed = with_header(fixture("human_reply.eml"), "Precedence: list")
    assert skip(listed).reason == "not-a-report"


def test_a_bounce_quoting_a_digest_titled_automatic_reply_is_still_a_bounce() -> None:
    raw = set_header(
        fixture("qmail_verp_failure.eml"), "Subject", "Undeliverable: Automatic Reply Generation leads"
    )
    assert report(raw).kind == "hard"


def test_a_human_writing_about_a_failed_delivery_is_not_a_bounce() -> None:
    raw = set_header(fixture("human_reply.eml"), "Subject", "Mail delivery failed for my colleague")
    assert skip(raw).reason == "not-a-report"


# --- DSN rules ---------------------------------------------------------------------------------


def test_a_dsn_that_says_delivered_is_not_a_report() -> None:
    raw = fixture("postfix_hard_user_unknown.eml").replace(b"Action: failed", b"Action: relayed")
    raw = raw.replace(b"Status: 5.1.1", b"Status: 2.0.0")
    assert skip(raw).reason == "delivered"


def test_a_message_given_up_on_after_4xx_timeouts_is_soft() -> None:
    raw = fixture("postfix_delayed.eml").replace(b"Action: delayed", b"Action: failed")
    got = report(raw)
    assert (got.kind, got.status) == ("soft", "4.4.1")


def test_a_status_missing_from_a_dsn_is_read_from_its_diagnostic_code() -> None:
    raw = fixture("postfix_hard_user_unknown.eml").replace(b"Status: 5.1.1\n", b"")
    assert report(raw).status == "5.1.1"


def test_the_address_we_sent_to_names_the_reader_when_an_alias_forwarded_it() -> None:
    raw = fixture("postfix_hard_user_unknown.eml").replace(
        b"Final-Recipient: rfc822; carol@example.net", b"Final-Recipient: rfc822; c.nguyen@mail.example.net"
    )
    assert report(raw).recipient == "carol@example.net"
    without_original = raw.replace(b"Original-Recipient: rfc822;carol@example.net\n", b"")
    assert report(without_original).recipient == "c.nguyen@mail.example.net"


def test_the_hardest_failure_among_several_recipient_blocks_wins() -> None:
    delayed_block = b"Final-Recipient: rfc822; carol@old.example.net\nAction: delayed\nStatus: 4.4.1\n\n"
    raw = fixture("postfix_hard_user_unknown.eml").replace(
        b"Final-Recipient: rfc822; carol@example.net",
        delayed_block + b"Final-Recipient: rfc822; carol@example.net",
    )
    got = report(raw)
    assert (got.kind, got.status) == ("hard", "5.1.1")


def test_a_dsn_without_the_returned_message_names_it_by_in_reply_to() -> None:
    raw = fixture("gmail_dsn.eml")
    cut = raw[: raw.index(b"--000000000000b71f3c0629a4e8d5\nContent-Type: message/rfc822")]
    got = report(cut + b"--000000000000b71f3c0629a4e8d5--\n")
    assert got.message_id == msgid("03.48213.16670913527405591820", "dana")
    assert got.original_to is None


def test_a_delivery_status_report_without_its_status_part_is_malformed() -> None:
    raw = fixture("postfix_hard_user_unknown.eml")
    cut = raw[
        : raw.index(b"--4Ykq2W0sTBz1wM8.1795154409/mail.digest.example.org\nContent-Description: Delivery")
    ]
    assert skip(cut).reason == "malformed"


# --- complaints --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feedback_type", "complaint"),
    [("abuse", True), ("fraud", True), ("not-spam", False), ("virus", False), ("other", False)],
)
def test_abuse_and_fraud_are_complaints_and_other_feedback_is_not(
    feedback_type: str, complaint: bool
) -> None:
    raw = fixture("arf_abuse.eml").replace(
        b"Feedback-Type: abuse", f"Feedback-Type: {feedback_type}".encode()
    )
    verdict = parse(raw)
    if complaint:
        assert isinstance(verdict, Report) and verdict.kind == "complaint"
    else:
        assert isinstance(verdict, Skip) and verdict.reason == "not-a-complaint"


def test_a_complaint_without_original_rcpt_to_names_the_enclosed_digests_to() -> None:
    raw = fixture("arf_abuse.eml").replace(b"Original-Rcpt-To: <grace@mail.example.net>\n", b"")
    assert report(raw).recipient == "grace@mail.example.net"


def test_a_complaint_about_a_redacted_digest_names_the_envelope_recipient() -> None:
    raw = fixture("arf_abuse.eml").replace(b"To: Grace Liu <grace@mail.example.net>", b"To: redacted")
    got = report(raw)
    assert (got.recipient, got.original_to) == ("grace@mail.example.net", None)


# --- VERP and Date -----------------------------------------------------------------------------


def test_the_verp_token_comes_from_the_envelope_recipient() -> None:
    raw = fixture("qmail_verp_failure.eml")
    assert report(raw).verp_token == "ivan.2026-11-20.Zk3q9V"
    only_envelope_to = set_header(
        set_header(set_header(raw, "Delivered-To", None), "X-Original-To", None), "To", None
    )
    assert (
        report(with_header(only_envelope_to, "Envelope-To: bounces+t0k3n@digest.example.org")).verp_token
        == "t0k3n"
    )


def test_bounce_domain_restricts_whose_verp_address_counts() -> None:
    raw = fixture("qmail_verp_failure.eml")
    assert report(raw, bounce_domain="DIGEST.example.org").verp_token == "ivan.2026-11-20.Zk3q9V"
    assert report(raw, bounce_domain="other.example").verp_token is None


def test_a_verp_address_inside_the_returned_message_is_not_the_envelope() -> None:
    raw = fixture("arf_abuse.eml")
    assert b"bounces+grace" in raw
    assert report(raw).verp_token is None


def test_arrived_is_timezone_aware_and_minus_zero_means_utc() -> None:
    assert report(fixture("qmail_verp_failure.eml")).arrived == datetime(2026, 11, 20, 6, 0, 14, tzinfo=UTC)
    assert report(set_header(fixture("qmail_verp_failure.eml"), "Date", "the day after")).arrived is None


# --- malformed input ---------------------------------------------------------------------------


NESTED_3000_DEEP = (
    b"From: MAILER-DAEMON@x\nSubject: failure notice\nContent-Type: multipart/mixed; boundary=b0\n\n"
    + (b"".join(b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (i, i + 1) for i in range(3000)))
)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\n",
        b"Content-Type: multipart/report; report-type=feedback-report\n\nno parts",
        b"Content-Type: multipart/report; boundary=x\n\n--x\nContent-Type: message/delivery-status\n\n\x80",
        NESTED_3000_DEEP,
        b"From: MAILER-DAEMON@x\nSubject: =?x-unknown?b?////?=\nX-Failed-Recipients: \xff\n\n550",
    ],
)
def test_malformed_input_never_raises(raw: bytes) -> None:
    assert isinstance(parse(raw), Report | Skip)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(parse(raw), Report | Skip)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(EXPECTED)), st.data())
def test_a_fixture_cut_short_or_with_bytes_flipped_never_raises(name: str, data: st.DataObject) -> None:
    raw = bytearray(fixture(name))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    for _ in range(data.draw(st.integers(0, 5))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    assert isinstance(parse(bytes(raw)), Report | Skip)


# --- Maildir -----------------------------------------------------------------------------------

# A Maildir as a mail client leaves it: one message just delivered (new/, no info), one read
# (cur/, ":2,S"), one read and flagged; plus the bounces. Names follow the Maildir convention.
HUMAN_NEW = "1795154401.M103P2211.mail.digest.example.org"
OOO_SEEN = "1795154402.M204P2211.mail.digest.example.org:2,S"
BOUNCE_FLAGGED = "1795154403.M305P2211.mail.digest.example.org:2,FS"
BOUNCE_NEW = "1795154404.M406P2211.mail.digest.example.org"


def make_maildir(root: Path) -> Path:
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True)
    (root / "new" / HUMAN_NEW).write_bytes(fixture("human_reply.eml"))
    (root / "cur" / OOO_SEEN).write_bytes(fixture("out_of_office_quoting_550.eml"))
    (root / "cur" / BOUNCE_FLAGGED).write_bytes(fixture("postfix_hard_user_unknown.eml"))
    (root / "new" / BOUNCE_NEW).write_bytes(fixture("exim_plain_failed.eml"))
    return root


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` by its path: where it is, under which name (flags included)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_reading_a_maildir_moves_renames_and_flags_nothing(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    before = tree(root)
    with open_mailbox(str(root)) as box:
        read = dict(box.messages())
    assert tree(root) == before  # new/ stays new/, ":2,S" stays ":2,S", nothing added
    assert sorted(read) == sorted(
        name.split(":")[0] for name in (HUMAN_NEW, OOO_SEEN, BOUNCE_FLAGGED, BOUNCE_NEW)
    )
    assert read[BOUNCE_FLAGGED.split(":")[0]] == fixture("postfix_hard_user_unknown.eml")


def test_processed_moves_that_message_alone_into_the_processed_folder(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    with open_mailbox(str(root)) as box:
        for key, raw in box.messages():
            if isinstance(parse(raw), Report):
                box.processed(key)
        left = [key for key, _ in box.messages()]
    after = tree(root)
    # the two bounces: same subfolder, same name, same flags, inside Maildir++'s .processed
    assert f".processed/cur/{BOUNCE_FLAGGED}" in after and f".processed/new/{BOUNCE_NEW}" in after
    assert ".processed/maildirfolder" in after
    # the rest exactly where and as they were
    assert after[f"new/{HUMAN_NEW}"] == fixture("human_reply.eml")
    assert after[f"cur/{OOO_SEEN}"] == fixture("out_of_office_quoting_550.eml")
    assert {p for p in after if not p.startswith(".processed/")} == {f"new/{HUMAN_NEW}", f"cur/{OOO_SEEN}"}
    assert sorted(left) == sorted([HUMAN_NEW, OOO_SEEN.split(":")[0]])


def test_a_message_another_client_moved_or_flagged_meanwhile_is_still_found_or_let_be(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    box = open_mailbox(str(root))
    keys = [key for key, _ in box.messages()]
    # a mail client reads the new bounce meanwhile: new/NAME becomes cur/NAME:2,S
    (root / "new" / BOUNCE_NEW).rename(root / "cur" / f"{BOUNCE_NEW}:2,S")
    box.processed(BOUNCE_NEW)
    assert (root / ".processed" / "cur" / f"{BOUNCE_NEW}:2,S").is_file()
    box.processed(BOUNCE_NEW)  # again: already gone, nothing to do
    (root / "new" / HUMAN_NEW).unlink()  # another client deleted it
    box.processed(HUMAN_NEW)
    assert len(keys) == 4 and tree(root).keys() == {
        f"cur/{OOO_SEEN}",
        f"cur/{BOUNCE_FLAGGED}",
        ".processed/maildirfolder",
        f".processed/cur/{BOUNCE_NEW}:2,S",
    }


def test_maildir_urls_name_the_same_folder(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Mail dir")
    with open_mailbox(f"maildir://{quote(str(root))}") as box:
        assert len(list(box.messages())) == 4


@pytest.mark.parametrize("made", ["missing", "plain folder"])
def test_a_folder_that_is_not_a_maildir_is_refused_and_not_created(tmp_path: Path, made: str) -> None:
    path = tmp_path / "bounces"
    if made == "plain folder":
        path.mkdir()
    with pytest.raises(
        ConfigError, match=r"^DIGEST_BOUNCE_MAILBOX=.*bounces: not a Maildir folder .*new/"
    ) as err:
        open_mailbox(str(path))
    assert "\n" not in str(err.value)
    assert path.exists() == (made == "plain folder") and not (path / "new").exists()


# --- opening by URL ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "password", "message"),
    [
        ("pop3://bounces@mail.example.org/", "pw", "unknown scheme pop3://; give a Maildir folder's path"),
        ("imaps://mail.example.org/INBOX", "pw", "name the user and host"),
        ("imaps://bounces@mail.example.org:99999/", "pw", "the port is not a number"),
        ("imaps://bounces@mail.example.org/INBOX", None, "DIGEST_BOUNCE_PASSWORD is not set"),
        (
            "imaps://bounces:hunter2@mail.example.org/",
            "pw",
            "put the IMAP password in DIGEST_BOUNCE_PASSWORD",
        ),
        ("pop3://bounces:hunter2@mail.example.org/", "pw", "unknown scheme"),
    ],
)
def test_a_mailbox_setting_that_cannot_work_is_refused_in_one_line(
    spec: str, password: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        open_mailbox(spec, password=password)
    text = str(err.value)
    assert "DIGEST_BOUNCE_MAILBOX" in text and "\n" not in text and "hunter2" not in text


def test_an_imap_server_that_refuses_the_connection_is_named_with_what_to_check() -> None:
    port = free_port()  # bound, then closed: nobody listens there
    with pytest.raises(
        ConfigError, match=rf"cannot connect to IMAP 127.0.0.1:{port} .*check the host and port"
    ):
        open_mailbox(f"imap://bounces@127.0.0.1:{port}/INBOX", password="pw", timeout=5)


def test_folder_names_are_sent_in_modified_utf7() -> None:
    assert _quoted("~peter/mail/台北/日本語") == '"~peter/mail/&U,BTFw-/&ZeVnLIqe-"'  # RFC 3501 5.1.3
    assert _quoted('Bounces & "odd"') == '"Bounces &- \\"odd\\""'


# --- IMAP, against a real server ---------------------------------------------------------------


@pytest.fixture
def imap(request: pytest.FixtureRequest) -> Any:
    """The `imap_server` fixture (host, port, user, password, maildir, url: imap://user@host:port/INBOX)
    of a real Dovecot, when the checkout has one; skipped otherwise."""
    try:
        return request.getfixturevalue("imap_server")
    except pytest.FixtureLookupError:
        pytest.skip("no imap_server fixture (a Dovecot) in this checkout")


def imap_client(server: Any) -> imaplib.IMAP4:
    client = imaplib.IMAP4(server.host, server.port, timeout=10)
    client.login(server.user, server.password)
    return client


def flags_by_message_id(client: imaplib.IMAP4, folder: str) -> dict[str, set[str]]:
    """{Message-ID: flags} of every message in `folder`, read with EXAMINE (changes nothing)."""
    assert client.select(f'"{folder}"', readonly=True)[0] == "OK"
    _, data = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    found = {}
    for item in data:
        if isinstance(item, tuple):
            flags = set(re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split())
            found[item[1].decode().split(":", 1)[1].strip()] = flags - {"\\Recent"}
    return found


@pytest.mark.parametrize("move", [True, False], ids=["MOVE", "COPY-STORE-EXPUNGE"])
def test_imap_reads_without_setting_seen_and_moves_only_what_is_processed(imap: Any, move: bool) -> None:
    client = imap_client(imap)
    stored = {
        "human_reply.eml": r"(\Flagged)",
        "out_of_office_quoting_550.eml": "()",
        "postfix_hard_user_unknown.eml": r"(\Seen)",
        "exim_plain_failed.eml": "()",
    }
    for name, flags in stored.items():
        assert client.append("INBOX", flags, None, fixture(name).replace(b"\n", b"\r\n"))[0] == "OK"
    before = flags_by_message_id(client, "INBOX")

    with open_mailbox(imap.url, password=imap.password) as box:
        assert isinstance(box, IMAPMailbox)
        if not move:  # the path for servers without MOVE, against the same real server
            box.capabilities = box.capabilities - {"MOVE"}
        reports = {}
        for key, raw in box.messages():
            verdict = parse(raw)
            if isinstance(verdict, Report):
                reports[message_from_bytes(raw)["Message-ID"]] = key  # the report's own id
                box.processed(key)
    assert len(reports) == 2

    after = flags_by_message_id(client, "INBOX")
    assert after == {mid: flags for mid, flags in before.items() if mid not in reports}  # no \Seen added
    moved = flags_by_message_id(client, "processed")
    assert {mid: moved[mid] for mid in reports} == {mid: before[mid] for mid in reports}
    client.logout()


def test_imap_login_refused_and_missing_folder_are_config_errors(imap: Any) -> None:
    with pytest.raises(ConfigError, match="login as .* refused .*DIGEST_BOUNCE_PASSWORD") as err:
        open_mailbox(imap.url, password="not-the-password-4711")
    assert "not-the-password-4711" not in str(err.value)
    missing = imap.url.rsplit("/", 1)[0] + "/NoSuchFolder"
    with pytest.raises(ConfigError, match="no IMAP folder 'NoSuchFolder'"):
        open_mailbox(missing, password=imap.password)
