"""Delivery faults, each against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import time
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from conftest import Scripted, digest_process, kill_mid_send, ledger, mail_env, opened, serving, smtp_env

from digest.cli import cli

ADDRESSES = ("alice@example.org", "bob@example.org", "carol@example.org")


@pytest.fixture
def env(tmp_path: Path, database: str) -> dict[str, str]:
    return mail_env(tmp_path, database)


def smtp(env: dict[str, str], controller: Controller, **extra: str) -> dict[str, str]:
    return smtp_env(env, controller.port, **extra)


def send(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, ["send", *args], env=env)


def test_a_normal_run_sends_each_subscriber_one_copy_over_one_connection(env):
    handler = Scripted()
    with serving(handler) as controller:
        result = send(smtp(env, controller))
    assert result.exit_code == 0, result.output
    assert [handler.copies(a) for a in ADDRESSES] == [1, 1, 1]
    assert set(ledger(env).values()) == {"sent"}
    from email import policy

    for _, data in handler.received:  # what the server got is a complete, correct digest
        message = message_from_bytes(data, policy=policy.default)
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe"):
            assert message[header], header
        assert message["Auto-Submitted"] == "auto-generated"
        assert "— Fri 20 Nov" in message["Subject"]


def test_451_twice_then_250_delivers_exactly_one_copy(env):
    handler = Scripted({"alice@example.org": ["451 4.3.0 try again later", "451 4.3.0 try again later"]})
    with serving(handler) as controller:
        result = send(smtp(env, controller))
    assert result.exit_code == 0, result.output
    assert handler.copies("alice@example.org") == 1
    with opened(env["DIGEST_DB"]) as store:
        (alice,) = [d for d in store.deliveries() if d.subscriber_id == "alice"]
    assert (alice.status, alice.attempts) == ("sent", 3)


def test_451_beyond_the_retries_is_left_pending_and_the_next_run_sends_it(env):
    handler = Scripted({"bob@example.org": ["451 busy"] * 3})
    with serving(handler) as controller:
        first = send(smtp(env, controller, DIGEST_SMTP_RETRIES="2"))
        assert first.exit_code == 1 and "pending" in first.output
        assert ledger(env)["bob"] == "pending" and handler.copies("bob@example.org") == 0
        second = send(smtp(env, controller, DIGEST_SMTP_RETRIES="2"))
    assert second.exit_code == 0, second.output
    assert [handler.copies(a) for a in ADDRESSES] == [1, 1, 1]


def test_550_for_one_recipient_is_recorded_suppresses_them_and_the_others_still_arrive(env):
    handler = Scripted({"bob@example.org": ["550 5.1.1 no such user"]})
    with serving(handler) as controller:
        result = send(smtp(env, controller))
        again = send(smtp(env, controller))
    assert result.exit_code == 1
    assert "550 5.1.1 no such user" in result.output
    assert [handler.copies(a) for a in ADDRESSES] == [1, 0, 1]
    assert ledger(env) == {"alice": "sent", "bob": "failed", "carol": "sent"}
    # a hard bounce at RCPT stops bob's mail: not retried, and the next runs skip him, saying so
    assert again.exit_code == 0 and handler.copies("bob@example.org") == 0
    assert "bob" in again.output and "suppressed" in again.output
    status = CliRunner().invoke(cli, ["status"], env=env).output
    assert "bob: failed, 1 attempt(s) — 550 5.1.1 no such user" in status
    assert "suppressed: 1 (1 hard bounce)" in status


def test_a_policy_refusal_is_not_the_readers_fault_and_stops_nobody(env):
    # 5.7.x (a spam filter, our own DKIM): counted as soft, a run of them never empties the list
    handler = Scripted({"bob@example.org": ["554 5.7.1 message refused by policy"]})
    with serving(handler) as controller:
        send(smtp(env, controller))
    with opened(env["DIGEST_DB"]) as store:
        assert store.suppressed() == {}
        assert [(b.subscriber_id, b.kind, b.status) for b in store.bounces()] == [("bob", "soft", "5.7.1")]


def test_a_dropped_connection_is_reopened_and_nobody_is_lost_or_doubled(env):
    handler = Scripted({"bob@example.org": ["DROP"]})
    with serving(handler) as controller:
        result = send(smtp(env, controller))
    assert result.exit_code == 0, result.output
    assert [handler.copies(a) for a in ADDRESSES] == [1, 1, 1]


def test_many_failures_in_a_row_stop_the_run_and_say_why(env):
    handler = Scripted({a: ["550 5.7.1 blocked"] for a in ADDRESSES})
    with serving(handler) as controller:
        result = send(smtp(env, controller, DIGEST_SMTP_MAX_FAILURES="2"))
    assert result.exit_code == 1
    assert "stopped after 2 failed deliveries in a row" in result.output
    assert "not-tried" in result.output
    assert "carol" not in ledger(env)  # never claimed, so the next run will try it


def test_concurrency_and_rate_limit_still_send_one_copy_each(env):
    handler = Scripted()
    with serving(handler) as controller:
        started = time.monotonic()
        result = send(smtp(env, controller, DIGEST_SMTP_CONCURRENCY="3", DIGEST_SMTP_RATE="10"))
        elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert [handler.copies(a) for a in ADDRESSES] == [1, 1, 1]
    assert elapsed >= 0.2  # three messages at ten a second take two intervals at least


def test_two_sends_started_at_once_deliver_one_copy_each(env):
    handler = Scripted(data_delay=0.2)
    with serving(handler) as controller:
        procs = [digest_process(smtp(env, controller), "send") for _ in range(2)]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert [handler.copies(a) for a in ADDRESSES] == [1, 1, 1]


def test_a_send_killed_mid_run_leaves_unknowns_that_are_reported_not_resent(env):
    handler = Scripted(data_delay=1.0)
    with serving(handler) as controller:
        kill_mid_send(digest_process(smtp(env, controller), "send"), handler)
        rerun = send(smtp(env, controller))
        states = ledger(env)
        copies = {a.split("@")[0]: handler.copies(a) for a in ADDRESSES}
        for who in ("alice", "bob", "carol"):
            assert copies[who] == 1 or states.get(who) == "sending", (copies, states)
            assert copies[who] <= 1
        unknown = [w for w, s in states.items() if s == "sending"]
        assert unknown and all(f"{w:<14} unknown" in rerun.output for w in unknown)
        assert rerun.exit_code == 1
        retried = send(smtp(env, controller), "--retry-unknown")
    assert retried.exit_code == 0, retried.output
    assert set(ledger(env).values()) == {"sent"}
    assert all(handler.copies(a) >= 1 for a in ADDRESSES)


# --- TLS and DKIM -------------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def test_starttls_with_a_self_signed_certificate_is_refused_unless_its_ca_is_configured(env, tmp_path: Path):
    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    handler = Scripted()
    with serving(handler, tls_context=context, require_starttls=True) as controller:
        tls = {
            "DIGEST_SMTP_HOST": "localhost",
            "DIGEST_SMTP_PORT": str(controller.port),
            "DIGEST_SMTP_SECURITY": "starttls",
        }
        refused = send({**env, **tls})
        assert refused.exit_code == 1
        assert "is not trusted" in refused.output and "DIGEST_SMTP_CA_FILE" in refused.output
        assert handler.received == []
        assert set(ledger(env).values()) <= {"pending"}  # nothing lost: the next run sends them
        trusted = send({**env, **tls, "DIGEST_SMTP_CA_FILE": str(cert_file)})
    assert trusted.exit_code == 0, trusted.output
    assert [handler.copies(a) for a in ADDRESSES] == [1, 1, 1]


def test_dkim_signature_covers_the_list_headers_and_verifies(env, tmp_path: Path):
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    handler = Scripted()
    with serving(handler) as controller:
        result = send(
            smtp(
                env,
                controller,
                DIGEST_DKIM_SELECTOR="mail",
                DIGEST_DKIM_DOMAIN="example.org",
                DIGEST_DKIM_KEY_FILE=str(key_file),
                DIGEST_FROM="Digest <digest@example.org>",
                DIGEST_BASE_URL="https://digest.example.org",
            ),
            "--user",
            "alice",
        )
    assert result.exit_code == 0, result.output
    ((_, data),) = handler.received
    signature = message_from_bytes(data)["DKIM-Signature"]
    signed = {
        h.strip().lower() for h in signature.split("h=")[1].split(";")[0].replace("\r\n", "").split(":")
    }
    assert {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    } <= signed
    assert dkim.verify(
        data, dnsfunc=lambda name, timeout=5: record if name == b"mail._domainkey.example.org." else None
    )


def test_starttls_against_a_server_without_it_stops_the_run_and_names_the_setting(env):
    handler = Scripted()
    with serving(handler) as controller:  # plain SMTP: no STARTTLS offered
        result = send(smtp(env, controller, DIGEST_SMTP_SECURITY="starttls"))
    assert result.exit_code == 1
    assert "does not offer STARTTLS" in result.output
    assert "DIGEST_SMTP_SECURITY=starttls" in result.output and "DIGEST_SMTP_SECURITY=ssl" in result.output
    assert handler.received == []
    assert set(ledger(env).values()) <= {"pending"}  # nothing lost: the next run sends them


def test_a_server_that_drops_the_tls_handshake_is_tried_again_not_blamed_on_the_setting(env):
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drop() -> None:  # read the ClientHello, then hang up: the server went away
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(4096)

    thread = threading.Thread(target=drop, daemon=True)
    thread.start()
    try:
        port = str(listener.getsockname()[1])
        dropped = {"DIGEST_SMTP_HOST": "127.0.0.1", "DIGEST_SMTP_PORT": port, "DIGEST_SMTP_SECURITY": "ssl"}
        result = send({**env, **dropped})
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert result.exit_code == 1
    assert "TLS handshake" not in result.output and "cannot connect" in result.output
    assert set(ledger(env).values()) == {"pending"}  # the next run tries again


def test_a_failed_tls_handshake_names_the_security_setting_and_what_would_work(env):
    handler = Scripted()
    with serving(handler) as controller:  # plain SMTP, spoken to as if it were TLS from the first byte
        result = send(smtp(env, controller, DIGEST_SMTP_SECURITY="ssl"))
    assert result.exit_code == 1
    assert "TLS handshake" in result.output
    assert "DIGEST_SMTP_SECURITY=ssl" in result.output and "DIGEST_SMTP_SECURITY=starttls" in result.output
    assert handler.received == []
    assert set(ledger(env).values()) <= {"pending"}
