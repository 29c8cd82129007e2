from __future__ import annotations

from pathlib import Path

import pytest

from digest.errors import ConfigError
from digest.roster import load_subscribers, parse_subscribers
from digest.settings import Settings

GOOD = """\
defaults:
  timezone: Europe/Berlin
  max_papers: 5
subscribers:
  - id: alice
    email: alice@example.org
    keywords: [diffusion models]
  - id: bob
    email: bob@example.org
    keywords: [rlhf]
    max_papers: 3
"""


def test_defaults_fill_fields_a_subscriber_leaves_out():
    alice, bob = parse_subscribers(GOOD)
    assert alice.timezone == bob.timezone == "Europe/Berlin"
    assert (alice.max_papers, bob.max_papers) == (5, 3)
    assert alice.keywords == ("diffusion models",)


def test_bundled_subscribers_file_is_valid_and_has_alice(subscribers):
    assert [s.id for s in subscribers] == ["alice", "bob", "carol"]


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_subscribers(text, "subs.yaml")
    return str(info.value).splitlines()


def test_every_problem_is_reported_at_once_with_subscriber_field_and_line():
    text = GOOD.replace("email: bob@example.org", "emial: bob@example.org").replace(
        "timezone: Europe/Berlin", "timezone: Mars/Olympus"
    )
    problems = _problems(text)
    assert any("defaults, field 'timezone' (line 2)" in p and "Mars/Olympus" in p for p in problems)
    assert any(
        "subscriber 'bob': unknown field 'emial'" in p and "did you mean 'email'" in p and "(line 9)" in p
        for p in problems
    )
    assert any("subscriber 'bob', field 'email'" in p and "required" in p for p in problems)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("id: bob", "id: alice"), "field 'id' (line 8): duplicate"),
        (("bob@example.org", "alice@example.org"), "already used by 'alice'"),
        (("keywords: [rlhf]", "keywords: []"), "field 'keywords' (line 10): required"),
        (("max_papers: 3", "max_papers: 0"), "field 'max_papers' (line 11)"),
        (("max_papers: 3", "send_time: '7:5'"), "not a 24-hour HH:MM"),
        (("bob@example.org", "bob-at-example"), "field 'email' (line 9)"),
    ],
)
def test_invalid_field_is_refused_with_its_line(edit: tuple[str, str], expected: str):
    assert any(expected in p for p in _problems(GOOD.replace(*edit)))


def test_broken_yaml_names_the_line():
    (problem,) = _problems(GOOD + "  - id: [unclosed\n")
    assert problem.startswith("subs.yaml: line")


def test_missing_file_says_what_to_do(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found; create it"):
        load_subscribers(tmp_path / "nope.yaml")


def test_flags_win_over_environment_and_environment_over_defaults():
    env = {"DIGEST_DB": "/env/digest.db", "DIGEST_INBOX": "/env/inbox", "DIGEST_SMTP_PORT": "2525"}
    settings = Settings.load(env=env, db=Path("/flag/digest.db"))
    assert settings.store.db == Path("/flag/digest.db")
    assert settings.inbox == Path("/env/inbox")
    assert settings.outbox == Path("var/outbox")
    assert settings.smtp.port == 2525
    assert settings.smtp.security == "starttls"


def test_bad_security_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="DIGEST_SMTP_SECURITY"):
        Settings.load(env={"DIGEST_SMTP_SECURITY": "tls1"})
