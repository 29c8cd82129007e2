"""The bounce tests' mail servers are real: Postfix makes its own DSNs and Dovecot serves them."""

from __future__ import annotations

import imaplib
import smtplib
import uuid
from email.message import EmailMessage
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported at run time by pytest_plugins alone, so that pytest can rewrite it
    from mailservers import DovecotServer, PostfixServer

# The session's `postfix_server` and `imap_server`, registered once for the whole run however many
# modules (or the conftest) name the plugin.
pytest_plugins = ["mailservers"]


def _mail(to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "digest <digest@digest-test.localdomain>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@digest-test.localdomain>"
    message.set_content("Today's papers.\n")
    return message


def _send(server: PostfixServer, sender: str, to: str, subject: str, port: int | None = None) -> None:
    with smtplib.SMTP(server.host, port or server.port, timeout=10) as smtp:
        smtp.send_message(_mail(to, subject), from_addr=sender, to_addrs=[to])


def test_postfix_returns_one_rfc3464_dsn_to_a_verp_sender_for_an_unknown_local_user(
    postfix_server: PostfixServer,
) -> None:
    subject = f"dsn {uuid.uuid4().hex}"
    sender = postfix_server.verp_address("abc")
    _send(postfix_server, sender, f"nosuchuser@{postfix_server.domain}", subject)

    dsns = postfix_server.wait_for_mail(subject, seconds=20)

    assert len(dsns) >= 1, postfix_server.log()[-2000:]
    assert "Mail queue is empty" in postfix_server.queue()  # nothing more is on its way
    dsns = postfix_server.wait_for_mail(subject, seconds=0)
    assert len(dsns) == 1
    dsn = dsns[0]
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    assert dsn["Return-Path"] == "<>"  # a DSN is sent with a null envelope sender
    assert dsn["Delivered-To"] == sender  # the VERP token survives to the bounce mailbox
    status = next(p for p in dsn.walk() if p.get_content_type() == "message/delivery-status")
    # message/delivery-status: the per-message fields, then one block per recipient
    blocks = status.get_payload()
    recipient = blocks[1]
    assert recipient["Final-Recipient"] == f"rfc822; nosuchuser@{postfix_server.domain}"
    assert recipient["Action"] == "failed"
    assert recipient["Status"].startswith("5.")
    returned = [p for p in dsn.walk() if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")]
    assert returned and subject in returned[0].as_string()


def test_postfix_delivers_every_bounces_address_into_the_one_maildir(postfix_server: PostfixServer) -> None:
    subject = f"plain {uuid.uuid4().hex}"
    _send(postfix_server, "digest@digest-test.localdomain", postfix_server.verp_address("x-1"), subject)
    _send(postfix_server, "digest@digest-test.localdomain", "bounces@localhost", subject)

    arrived = postfix_server.wait_for_mail(subject, count=2)

    assert sorted(m["Delivered-To"] for m in arrived) == sorted(
        [postfix_server.verp_address("x-1"), "bounces@localhost"]
    )


def test_postfix_strict_port_refuses_an_unknown_local_user_at_rcpt_and_sends_no_dsn(
    postfix_server: PostfixServer,
) -> None:
    subject = f"strict {uuid.uuid4().hex}"
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _send(
            postfix_server,
            postfix_server.verp_address("strict"),
            f"nosuchuser@{postfix_server.domain}",
            subject,
            port=postfix_server.strict_port,
        )

    code, reply = refused.value.recipients[f"nosuchuser@{postfix_server.domain}"]
    assert code == 550 and b"5.1.1" in reply
    # a mail sent after it arrives, and the refused one never made a DSN before it
    _send(postfix_server, "digest@digest-test.localdomain", postfix_server.bounce_address, subject)
    arrived = postfix_server.wait_for_mail(subject)
    assert len(arrived) == 1 and arrived[0]["Delivered-To"] == postfix_server.bounce_address


def test_dovecot_serves_a_message_in_its_maildir_and_peeking_leaves_it_unseen(
    imap_server: DovecotServer,
) -> None:
    subject = f"imap {uuid.uuid4().hex}"
    message = _mail("bounces@digest-test.localdomain", subject)
    imap_server.deliver(bytes(message))

    with imaplib.IMAP4(imap_server.host, imap_server.port, timeout=10) as imap:
        imap.login(imap_server.user, imap_server.password)
        imap.select("INBOX")
        typ, found = imap.search(None, "SUBJECT", f'"{subject}"')
        assert typ == "OK" and len(found[0].split()) == 1
        number = found[0].split()[0]
        typ, fetched = imap.fetch(number, "(BODY.PEEK[] FLAGS)")
        assert typ == "OK" and subject.encode() in fetched[0][1]
        typ, flags = imap.fetch(number, "(FLAGS)")
        assert b"\\Seen" not in flags[0]
        imap.fetch(number, "(BODY[])")
        typ, flags = imap.fetch(number, "(FLAGS)")
        assert b"\\Seen" in flags[0]
        imap.logout()


def test_a_dsn_from_postfix_is_read_over_imap_unseen(
    postfix_server: PostfixServer, imap_server: DovecotServer
) -> None:
    subject = f"both {uuid.uuid4().hex}"
    token = uuid.uuid4().hex
    missing = f"nobody-here@{postfix_server.domain}"
    _send(postfix_server, postfix_server.verp_address(token), missing, subject)
    assert postfix_server.wait_for_mail(token)

    with imaplib.IMAP4(imap_server.host, imap_server.port, timeout=10) as imap:
        imap.login(imap_server.user, imap_server.password)
        imap.select("INBOX", readonly=True)
        # the VERP token that the DSN was addressed to names the mail it reports on
        typ, found = imap.search(None, "UNSEEN", "HEADER", "Delivered-To", postfix_server.verp_address(token))
        assert typ == "OK" and len(found[0].split()) == 1
        typ, fetched = imap.fetch(found[0].split()[0], "(BODY.PEEK[HEADER.FIELDS (CONTENT-TYPE)])")
        assert b"multipart/report" in fetched[0][1] and b"delivery-status" in fetched[0][1]
        imap.logout()


def test_imap_url_names_the_user_loopback_port_and_inbox(imap_server: DovecotServer) -> None:
    assert imap_server.url == f"imap://{imap_server.user}@127.0.0.1:{imap_server.port}/INBOX"


def test_a_missing_server_program_gives_a_one_line_reason_to_skip() -> None:
    from mailservers import _why_not

    reason = _why_not("/nonexistent/sbin/postfix", "postfix")
    assert reason and "\n" not in reason and "make test" in reason
