"""Settings and subscribers.yaml at the boundary: what a hand-edited file or an environment
variable can hold is checked once, at start, with one line naming it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from digest.addresses import check_address
from digest.errors import ConfigError
from digest.roster import MAX_SUBSCRIBERS_BYTES, load_subscribers, parse_subscribers
from digest.settings import Settings, redacted

ONE = """\
subscribers:
  - id: alice
    email: alice@example.org
    keywords: [diffusion models]
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_subscribers(text, "subs.yaml")
    return str(info.value).splitlines()


# --- subscribers.yaml ----------------------------------------------------------------------


def test_a_key_given_twice_in_one_subscriber_is_refused_with_both_lines():
    text = ONE + "    email: mallory@example.org\n"
    (problem,) = _problems(text)
    assert "duplicate key 'email'" in problem and "line 3" in problem and "line 5" in problem


@pytest.mark.parametrize(
    "text",
    [
        "defaults:\n  max_papers: 3\n  max_papers: 4\n" + ONE,
        ONE + "subscribers: []\n",
    ],
    ids=["in defaults", "at the top level"],
)
def test_a_duplicate_key_anywhere_is_refused(text: str):
    assert any("duplicate key" in p for p in _problems(text))


def _alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return (
        "\n".join(lines)
        + f"\nsubscribers:\n  - id: x\n    email: x@example.org\n    keywords: *a{levels - 1}\n"
    )


def test_an_alias_bomb_is_refused_quickly_with_a_short_message():
    started = time.monotonic()
    problems = _problems(_alias_bomb())
    assert time.monotonic() - started < 5
    assert sum(map(len, problems)) < 2_000
    assert any("alias" in p for p in problems)


def test_quoted_values_are_cut_short_in_messages():
    text = ONE.replace(
        "keywords: [diffusion models]", "keywords: [diffusion models]\n    timezone: " + "X" * 5000
    )
    (problem,) = _problems(text)
    assert len(problem) < 300 and "timezone" in problem


@pytest.mark.parametrize(
    "zone", ["Europe", "America", "Europe/", "../../etc/passwd", "Mars/Olympus", "X" * 300]
)
def test_a_timezone_that_is_a_folder_a_path_or_too_long_is_named_not_a_crash(zone: str):
    text = ONE.replace(
        "keywords: [diffusion models]", f"keywords: [diffusion models]\n    timezone: '{zone}'"
    )
    (problem,) = _problems(text)
    assert "timezone" in problem and "is not an IANA time zone" in problem


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path):
    path = tmp_path / "subscribers.yaml"
    path.write_text(ONE + "# " + "x" * MAX_SUBSCRIBERS_BYTES + "\n")
    with pytest.raises(ConfigError, match="MB"):
        load_subscribers(path)


@pytest.mark.parametrize("name", ['" "', '""', '"\\t"'])
def test_a_blank_name_is_refused(name: str):
    text = ONE + f"    name: {name}\n"
    assert any("field 'name'" in p for p in _problems(text))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", '"Alice\\u001b[2J"'),
        ("name", '"Alice\\u202eecilA"'),
        ("keywords", '["diffusion\\u0085models"]'),
        ("exclude", '["x\\u0007"]'),
        ("keywords", '["  "]'),
        ("keywords", "[" + '"' + "k" * 300 + '"' + "]"),
    ],
)
def test_control_characters_blank_or_huge_entries_in_text_fields_are_refused(field: str, value: str):
    text = ONE.replace("    keywords: [diffusion models]\n", "") + f"    {field}: {value}\n"
    if field != "keywords":
        text += "    keywords: [diffusion models]\n"
    problems = _problems(text)
    assert any(f"field '{field}'" in p for p in problems), problems
    assert not any("\x1b" in p or "\u202e" in p or "\x07" in p for p in problems)


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender",
    [
        "Digest <digest@example.org>\r\nBcc: victim@example.org",
        "Digest <digest@example.org>\nX: y",
        "a@example.org, b@example.org",
        "Digest <digest>",
        "no address at all",
        "Digest\x00 <digest@example.org>",
    ],
)
def test_an_unsafe_or_unusable_from_address_is_refused_at_start(sender: str):
    with pytest.raises(ConfigError, match="DIGEST_FROM") as info:
        Settings.load(env={"DIGEST_FROM": sender})
    assert len(str(info.value).splitlines()) == 1


def test_a_good_from_address_is_kept():
    assert Settings.load(env={"DIGEST_FROM": "Paper Digest <digest@example.org>"}).smtp.sender == (
        "Paper Digest <digest@example.org>"
    )


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "ftp://x.org",
        "digest.example.org",
        "https://",
        "https://x.org/?a=1",
        "https://x.org/#f",
    ],
)
def test_a_base_url_that_is_not_a_plain_https_origin_is_refused(url: str):
    with pytest.raises(ConfigError, match="DIGEST_BASE_URL"):
        Settings.load(env={"DIGEST_BASE_URL": url})


def test_the_base_url_is_kept_without_its_trailing_slash():
    assert (
        Settings.load(env={"DIGEST_BASE_URL": "https://d.example.org/x/"}).web.base_url
        == "https://d.example.org/x"
    )


@pytest.mark.parametrize("secret", ["", "   ", "abc123"])
def test_an_empty_or_short_secret_is_refused_and_never_printed(secret: str):
    with pytest.raises(ConfigError, match="DIGEST_SECRET") as info:
        Settings.load(env={"DIGEST_SECRET": secret})
    assert "secrets.token_hex" in str(info.value)
    if secret.strip():
        assert secret not in str(info.value)


def test_a_long_secret_is_used_and_an_unset_one_is_none():
    assert Settings.load(env={"DIGEST_SECRET": "s" * 32}).web.secret == "s" * 32
    assert Settings.load(env={}).web.secret is None


@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("yes", True), ("0", False), ("", False), ("off", False)]
)
def test_allow_private_ingest_is_a_yes_or_no(raw: str, value: bool):
    assert Settings.load(env={"DIGEST_INGEST_ALLOW_PRIVATE": raw}).fetch.allow_private is value


def test_allow_private_ingest_refuses_other_words():
    with pytest.raises(ConfigError, match="DIGEST_INGEST_ALLOW_PRIVATE"):
        Settings.load(env={"DIGEST_INGEST_ALLOW_PRIVATE": "maybe"})


def test_smtp_timeout_is_a_positive_number():
    assert Settings.load(env={"DIGEST_SMTP_TIMEOUT": "2.5"}).smtp.timeout == 2.5
    with pytest.raises(ConfigError, match="DIGEST_SMTP_TIMEOUT"):
        Settings.load(env={"DIGEST_SMTP_TIMEOUT": "0"})


@pytest.mark.parametrize(
    "address", ["x@example.org\r\nBcc: y@example.org", "nope", "a@b@c", "x@exa mple.org"]
)
def test_a_bad_test_address_is_refused_naming_the_flag(address: str):
    with pytest.raises(ConfigError, match="--to"):
        check_address(address, "--to")


def test_a_good_test_address_is_normalized():
    assert check_address("Alice@Example.ORG", "--to") == "Alice@example.org"


@pytest.mark.parametrize("name", ["Digest, Inc.", 'The "Daily" Digest', "Lab (bots)", "Lab; papers"])
def test_a_from_name_with_special_characters_stays_one_quoted_name(name: str):
    quoted_name = '"' + name.replace('"', '\\"') + '"'
    smtp = Settings.load(env={"DIGEST_FROM": f"{quoted_name} <digest@example.org>"}).smtp
    assert smtp.from_address.display_name == name
    assert smtp.from_address.addr_spec == "digest@example.org"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://digest:pw@db.example.org:5433/papers", "postgresql://digest@db.example.org:5433/papers"),
        ("postgresql://digest:pw@h1:5432,h2:5433/papers", "postgresql://digest@h1,h2:5432,5433/papers"),
        ("postgresql:///papers?host=/run/postgresql&password=pw", "postgresql:///run/postgresql/papers"),
        ("postgresql://digest:p%40ss@[::1]/papers", "postgresql://digest@::1/papers"),
    ],
)
def test_a_redacted_database_url_names_hosts_as_libpq_reads_them_and_never_the_password(url: str, shown: str):
    assert redacted(url) == shown
    assert "pw" not in redacted(url) and "p@ss" not in redacted(url)


@pytest.mark.parametrize("url", ["postgresql://a:secret@host/x?nosuchparam=1", "postgres://[bad", "postgresql://%zz@h/x"])
def test_an_unreadable_database_url_is_redacted_to_a_placeholder(url: str):
    assert redacted(url) == "postgresql://(an invalid URL)"


# --- addresses at a host without a dot: this machine's mailboxes -----------------------------

LOCAL_HOSTS = [None, "localhost", "127.0.0.1", "::1"]
LOCAL_ONLY = "has no domain with a dot; allowed only when DIGEST_SMTP_HOST is this machine"


@pytest.mark.parametrize("host", LOCAL_HOSTS)
@pytest.mark.parametrize("address", ["root@localhost", "me@myhost"])
def test_an_address_at_a_local_host_is_accepted_when_mail_stays_on_this_machine(host, address: str):
    env = {"DIGEST_FROM": f"Digest <{address}>", **({"DIGEST_SMTP_HOST": host} if host else {})}
    assert Settings.load(env=env).smtp.from_address.addr_spec == address
    assert check_address(address, "--to", host) == address
    text = ONE.replace("alice@example.org", address)
    assert parse_subscribers(text, "subs.yaml", smtp_host=host)[0].email == address


@pytest.mark.parametrize("address", ["root@localhost", "me@myhost"])
def test_an_address_at_a_local_host_is_refused_with_the_reason_when_mail_leaves_the_machine(address: str):
    env = {"DIGEST_FROM": address, "DIGEST_SMTP_HOST": "smtp.example.org"}
    with pytest.raises(ConfigError, match="DIGEST_FROM") as info:
        Settings.load(env=env)
    assert LOCAL_ONLY in str(info.value) and "smtp.example.org" in str(info.value)
    with pytest.raises(ConfigError, match="--to") as info:
        check_address(address, "--to", "smtp.example.org")
    assert LOCAL_ONLY in str(info.value)
    text = ONE.replace("alice@example.org", address)
    with pytest.raises(ConfigError) as info:
        parse_subscribers(text, "subs.yaml", smtp_host="smtp.example.org")
    assert str(info.value) == (
        f"subs.yaml: subscriber 'alice', field 'email' (line 3): {address} {LOCAL_ONLY} "
        "(localhost, 127.0.0.1, ::1, or unset for the outbox; it is smtp.example.org)"
    )


def test_a_local_host_address_still_needs_a_good_local_part_and_host_name():
    for bad in ["a b@localhost", "x@my_host", "@localhost", "x@-host"]:
        with pytest.raises(ConfigError, match="--to"):
            check_address(bad, "--to", None)


def test_the_default_from_address_is_refused_when_mail_leaves_the_machine():
    assert Settings.load(env={}).smtp.from_address.addr_spec == "digest@localhost"  # the outbox
    assert Settings.load(env={"DIGEST_SMTP_HOST": "127.0.0.1"}).smtp.sender.endswith("<digest@localhost>")
    with pytest.raises(ConfigError, match="DIGEST_FROM is not set") as info:
        Settings.load(env={"DIGEST_SMTP_HOST": "smtp.example.org"})
    assert "smtp.example.org" in str(info.value) and len(str(info.value).splitlines()) == 1
