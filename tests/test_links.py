"""Signed links: made and verified in one place, bound to purpose, person and address."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest

from digest.delivery import links
from digest.models import Subscriber
from digest.settings import Settings

KEY = "k" * 32
ALICE = Subscriber(id="alice", email="alice@example.org", keywords=("x",))
BOB = Subscriber(id="bob", email="bob@example.org", keywords=("x",))


def test_a_token_verifies_for_its_purpose_and_person():
    token = links.make_token(KEY, "unsubscribe", ALICE)
    claim = links.verify_token(KEY, token, "unsubscribe", ALICE)
    assert claim is not None and claim.subscriber_id == "alice"


@pytest.mark.parametrize(
    ("purpose", "person", "key"),
    [("archive", ALICE, KEY), ("unsubscribe", BOB, KEY), ("unsubscribe", ALICE, "other" * 8)],
    ids=["another purpose", "another person", "another secret"],
)
def test_a_token_is_refused_for_anything_else(purpose: str, person: Subscriber, key: str):
    token = links.make_token(KEY, "unsubscribe", ALICE)
    assert links.verify_token(key, token, purpose, person) is None


def test_a_token_stops_working_when_the_address_changes():
    token = links.make_token(KEY, "unsubscribe", ALICE)
    assert links.verify_token(KEY, token, "unsubscribe", replace(ALICE, email="new@example.org")) is None


def test_a_token_carries_no_address():
    token = links.make_token(KEY, "feedback", ALICE, "2611.00001:up")
    assert "alice@example.org" not in str(links.read_token(token)) and "example" not in token


@pytest.mark.parametrize("token", ["", "x", "a.b", "!!!.???", "e30.AAAA", "eyJwIjoxfQ.AAAA"])
def test_garbage_is_refused_without_an_error(token: str):
    assert links.verify_token(KEY, token, "unsubscribe", ALICE) is None


def test_a_tampered_extra_is_refused():
    token = links.make_token(KEY, "feedback", ALICE, "2611.00001:up")
    forged = links.make_token("attacker" * 4, "feedback", ALICE, "2611.00001:down")
    mixed = forged.split(".")[0] + "." + token.split(".")[1]
    assert links.verify_token(KEY, mixed, "feedback", ALICE) is None


def test_digest_links_are_signed_when_a_base_url_is_set(tmp_path):
    settings = Settings.load(
        env={
            "DIGEST_BASE_URL": "https://d.example.org",
            "DIGEST_SECRET": KEY,
            "DIGEST_FROM": "digest@example.org",
        },
        db=tmp_path / "d.db",
    )
    made = links.LinkMaker.for_settings(settings).for_digest(ALICE, date(2026, 11, 20))
    token = parse_qs(urlsplit(made.unsubscribe_https).query)["t"][0]
    assert links.verify_token(KEY, token, "unsubscribe", ALICE)
    archive = urlsplit(made.archive)
    assert archive.path == "/archive/2026-11-20/alice"
    claim = links.verify_token(KEY, parse_qs(archive.query)["t"][0], "archive", ALICE)
    assert claim is not None and claim.extra == "2026-11-20"
    assert made.unsubscribe == made.unsubscribe_https


def test_without_a_base_url_only_the_mailto_remains(tmp_path):
    settings = Settings.load(env={"DIGEST_FROM": "digest@example.org"}, db=tmp_path / "d.db")
    made = links.LinkMaker.for_settings(settings).for_digest(ALICE, date(2026, 11, 20))
    assert (made.unsubscribe_https, made.archive) == (None, None)
    assert made.unsubscribe == "mailto:digest@example.org?subject=unsubscribe%20alice"
