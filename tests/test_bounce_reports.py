"""Bounce and complaint reports (digest.delivery.reports) and the mailboxes they arrive in
(digest.delivery.mailbox). The fixtures in tests/fixtures/bounces are written for these tests in
the shapes Postfix, Exim, qmail, Gmail, Exchange Online and a feedback loop use; each returns
one of our digests (Message-ID <...2026-11-20.SUBSCRIBER@digest.example.org>)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.delivery.reports import DIAGNOSTIC_CHARS, Report, Skip, parse

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
