"""`digest serve` through httpx against a real uvicorn on 127.0.0.1: every link a sent digest
carries works, and nothing else does."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from conftest import BACKENDS, ROOT, SAMPLES, SUBSCRIBERS, free_port, opened
from pgserver import fresh_schema

from digest.cli import cli
from digest.delivery import links
from digest.models import Subscriber
from digest.settings import Settings
from digest.store import Store
from digest.web import server_config

SECRET = "a-serve-test-secret-of-enough-length"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = ROOT / "screenshots"


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[dict]:
    """Digests of 2026-11-20 sent into the outbox with links to a live `digest serve`, once on
    each of the store's backends."""
    tmp = tmp_path_factory.mktemp("serve")
    if request.param == "postgresql":
        database = fresh_schema(request.getfixturevalue("postgres_server"))
    else:
        database = str(tmp / "var" / "digest.db")
    port = free_port()
    subscribers = tmp / "subscribers.yaml"
    shutil.copy(SUBSCRIBERS, subscribers)
    env = {
        "DIGEST_SUBSCRIBERS": str(subscribers),
        "DIGEST_DB": database,
        "DIGEST_STATE": str(tmp / "var"),
        "DIGEST_INBOX": str(SAMPLES),
        "DIGEST_OUTBOX": str(tmp / "var" / "outbox"),
        "DIGEST_MODEL": "hashing",
        "DIGEST_SMTP_HOST": "",
        "DIGEST_SECRET": SECRET,
        "DIGEST_BASE_URL": f"http://127.0.0.1:{port}",
        "DIGEST_NOW": "2026-11-20T12:00:00Z",
    }
    sent = CliRunner().invoke(cli, ["run", "--day", "2026-11-20"], env=env)
    assert sent.exit_code == 0, sent.output
    with serving(Settings.load(env=env), port):
        yield {"env": env, "base": env["DIGEST_BASE_URL"], "outbox": tmp / "var" / "outbox" / "2026-11-20"}


@contextmanager
def serving(settings: Settings, port: int, **config: Any) -> Iterator[str]:
    """`digest serve`'s uvicorn (digest.web.server_config) on 127.0.0.1:`port` in a thread;
    `config`: server_config's (timeouts, and the SES webhook's fetchers)."""
    quiet = replace(settings, log_level="WARNING")
    server = uvicorn.Server(server_config(quiet, "127.0.0.1", port, **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def mail(site: dict, who: str):
    return message_from_bytes((site["outbox"] / f"{who}.eml").read_bytes(), policy=policy.default)


def one_click_url(site: dict, who: str) -> str:
    header = str(mail(site, who)["List-Unsubscribe"])
    return re.search(r"<(http[^>]+)>", header).group(1)


def feedback_urls(site: dict, who: str) -> list[str]:
    text = mail(site, who).get_body(("plain",)).get_content()
    return re.findall(r"(http://\S+/feedback\?t=\S+)", text)


def archive_url(site: dict, who: str) -> str:
    text = mail(site, who).get_body(("plain",)).get_content()
    return re.search(r"Archive: (\S+)", text).group(1)


def store(site: dict) -> Store:
    return opened(site["env"]["DIGEST_DB"])


def cli_run(site: dict, *args: str):
    return CliRunner().invoke(cli, list(args), env=site["env"])


@pytest.fixture(autouse=True)
def everyone_subscribed(site: dict) -> Iterator[None]:
    yield
    with store(site) as s:
        for who in ("alice", "bob", "carol"):
            s.resubscribe(who)


def test_healthz_answers_ok(site: dict):
    response = httpx.get(f"{site['base']}/healthz")
    assert (response.status_code, response.text) == (200, "ok\n")


def test_the_one_click_post_exactly_as_a_mailbox_provider_sends_it_unsubscribes_at_once(site: dict):
    url = one_click_url(site, "alice")
    assert str(mail(site, "alice")["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    response = httpx.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # no cookie, no login, no second step
    assert response.status_code == 200
    with store(site) as s:
        assert s.unsubscribed()["alice"].how == "one-click"
    assert "unsubscribed" in cli_run(site, "subscribers", "check").output
    assert "unsubscribed" in cli_run(site, "status").output


def test_the_one_click_post_as_multipart_form_data_works_too(site: dict):
    response = httpx.post(one_click_url(site, "bob"), files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    with store(site) as s:
        assert "bob" in s.unsubscribed()


def test_a_get_of_the_unsubscribe_url_changes_nothing_and_shows_one_button(site: dict):
    response = httpx.get(one_click_url(site, "alice"))
    assert response.status_code == 200
    assert len(re.findall(r'<form method="post"', response.text)) == 1
    assert response.text.count("<button") == 1
    with store(site) as s:
        assert s.unsubscribed() == {}


def test_the_page_button_unsubscribes_and_the_undo_page_brings_them_back(site: dict):
    url = one_click_url(site, "carol")
    done = httpx.post(url, data={"List-Unsubscribe": "One-Click", "via": "page"})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    undo = re.search(r'<form method="post" action="([^"]+)"', done.text).group(1).replace("&amp;", "&")
    with store(site) as s:
        assert s.unsubscribed()["carol"].how == "page"
    back = httpx.post(httpx.URL(url).join(undo))
    assert back.status_code == 200 and "Welcome back" in back.text
    with store(site) as s:
        assert "carol" not in s.unsubscribed()


def test_a_post_without_the_one_click_field_changes_nothing(site: dict):
    response = httpx.post(one_click_url(site, "alice"), data={"something": "else"})
    assert response.status_code == 400
    with store(site) as s:
        assert s.unsubscribed() == {}


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def test_a_token_for_another_purpose_or_person_or_a_forged_one_is_refused_and_reveals_nothing(site: dict):
    base = site["base"]
    feedback_token = _token(feedback_urls(site, "alice")[0])
    bob = Subscriber(id="bob", email="bob@example.org", keywords=("x",))
    forged = links.make_token("not-our-secret-at-all-0123456789", "unsubscribe", bob)
    alice_for_bob_address = links.make_token(
        SECRET, "unsubscribe", Subscriber(id="alice", email="bob@example.org")
    )
    for token in (feedback_token, forged, alice_for_bob_address, "garbage", ""):
        for method in ("GET", "POST"):
            response = httpx.request(
                method, f"{base}/unsubscribe", params={"t": token}, data={"List-Unsubscribe": "One-Click"}
            )
            assert response.status_code == 400, (token, method)
            shown = response.text.split("<main>")[-1]
            assert "alice" not in shown and "bob" not in shown and "@" not in shown
    with store(site) as s:
        assert s.unsubscribed() == {}


def test_an_unsubscribed_reader_gets_nothing_however_the_list_is_edited(site: dict):
    httpx.post(one_click_url(site, "alice"), data={"List-Unsubscribe": "One-Click"})
    subscribers = Path(site["env"]["DIGEST_SUBSCRIBERS"])
    subscribers.write_text(subscribers.read_text() + "\n")  # an edit must not undo the unsubscribe
    result = cli_run(site, "run", "--day", "2026-11-19")
    assert result.exit_code == 0, result.output
    outbox = site["outbox"].parent / "2026-11-19"
    assert not (outbox / "alice.eml").exists()
    assert (outbox / "bob.eml").exists() and (outbox / "carol.eml").exists()
    assert re.search(r"alice\s+unsubscribed", result.output)
    lifted = cli_run(site, "subscribers", "resubscribe", "alice")
    assert lifted.exit_code == 0 and "subscribed again" in lifted.output
    again = cli_run(site, "run", "--day", "2026-11-19")
    assert (outbox / "alice.eml").exists(), again.output


def test_the_archive_serves_the_sent_digest_with_no_live_links_and_lists_past_digests(site: dict):
    url = archive_url(site, "alice")
    assert urlsplit(url).path == "/archive/2026-11-20/alice"
    page = httpx.get(url)
    assert page.status_code == 200 and "<!doctype html>" in page.text.lower()
    assert "unsubscribe?t=" not in page.text and "feedback?t=" not in page.text
    every = re.search(r'<a href="([^"]+)">All your digests</a>', page.text).group(1).replace("&amp;", "&")
    listing = httpx.get(every)
    assert listing.status_code == 200 and "2026-11-20" in listing.text


def test_the_archive_without_a_valid_token_is_not_found(site: dict):
    url = archive_url(site, "alice")
    bob_token = _token(archive_url(site, "bob"))
    for target in (
        url.split("?")[0],
        url.split("?")[0] + "?t=" + bob_token,
        url.replace("/alice?", "/bob?"),
        url.replace("2026-11-20", "2026-11-19"),
        f"{site['base']}/archive/..%2f..%2fsecret/alice?t={_token(url)}",
    ):
        assert httpx.get(target).status_code == 404, target


def test_feedback_get_only_asks_and_the_post_records_a_vote_that_a_later_one_replaces(site: dict):
    more, less = feedback_urls(site, "alice")[:2]
    paper_id = links.read_token(_token(more)).extra.split(" ")[0]
    assert links.read_token(_token(less)).extra == f"{paper_id} down"
    asked = httpx.get(more)
    assert asked.status_code == 200 and '<form method="post"' in asked.text
    with store(site) as s:
        assert s.votes("alice") == []  # a mail scanner's prefetch records nothing
    assert httpx.post(more, data={"vote": "confirm"}).status_code == 200
    with store(site) as s:
        assert [(v.paper_id, v.vote) for v in s.votes("alice")] == [(paper_id, 1)]
    httpx.post(less, data={"vote": "confirm"})
    with store(site) as s:
        assert [(v.paper_id, v.vote) for v in s.votes("alice")] == [(paper_id, -1)]
    cleared = cli_run(site, "feedback", "alice", paper_id, "clear")
    assert cleared.exit_code == 0
    with store(site) as s:
        assert s.votes("alice") == []
    assert cli_run(site, "feedback", "alice", paper_id, "up").exit_code == 0
    with store(site) as s:
        assert [(v.paper_id, v.vote) for v in s.votes("alice")] == [(paper_id, 1)]
        s.record_vote("alice", paper_id, 0)


def test_each_paper_in_the_mail_has_more_and_less_links_in_html_and_text(site: dict):
    message = mail(site, "bob")
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert html.count("More like this</a>") == text.count("More like this: ") >= 1
    assert html.count("Less like this</a>") == text.count("Less like this: ")


def test_bodies_are_capped_methods_limited_and_nothing_redirects(site: dict):
    url = one_click_url(site, "alice")
    big = httpx.post(url, content=b"List-Unsubscribe=One-Click&" + b"x" * 50_000)
    assert big.status_code == 413
    for method in ("PUT", "DELETE", "PATCH"):
        assert httpx.request(method, url).status_code == 405
    assert httpx.get(f"{site['base']}/resubscribe").status_code == 405
    for response in (
        httpx.get(url),
        big,
        httpx.get(f"{site['base']}/nowhere"),
        httpx.get(archive_url(site, "bob")),
    ):
        assert not response.is_redirect
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
    with store(site) as s:
        assert s.unsubscribed() == {}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")
@pytest.mark.parametrize("which", ["unsubscribe", "feedback", "archive"])
def test_pages_at_375_px_fit_the_screen_and_are_screenshotted(site: dict, which: str):
    url = {
        "unsubscribe": lambda: one_click_url(site, "alice"),
        "feedback": lambda: feedback_urls(site, "alice")[0],
        "archive": lambda: archive_url(site, "alice"),
    }[which]()
    SHOTS.mkdir(exist_ok=True)
    shot = SHOTS / f"serve-{which}-375.png"
    shot.unlink(missing_ok=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"]
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                CHROMIUM,
                *flags,
                f"--user-data-dir={profile}",
                "--window-size=375,900",
                f"--screenshot={shot}",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 5_000
    with store(site) as s:
        assert s.unsubscribed() == {} and s.votes("alice") == []  # the browser's GET changed nothing


def test_one_click_still_works_while_an_edit_has_broken_subscribers_yaml(site: dict):
    url = one_click_url(site, "alice")
    assert httpx.get(url).status_code == 200  # the server has read the good file
    subscribers = Path(site["env"]["DIGEST_SUBSCRIBERS"])
    good = subscribers.read_text()
    subscribers.write_text(good + "\n  - id: [broken\n")
    try:
        response = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        with store(site) as s:
            assert "alice" in s.unsubscribed()
    finally:
        subscribers.write_text(good)


# --- only a POST with its expected form changes anything --------------------------------------

ONE_CLICK = {
    "content": b"List-Unsubscribe=One-Click",
    "headers": {"Content-Type": "application/x-www-form-urlencoded"},
}


def _routes(site: dict) -> dict[str, str]:
    """Every route, with a valid link of alice's where it takes one."""
    unsubscribe = one_click_url(site, "alice")
    archive = archive_url(site, "alice")
    return {
        "healthz": f"{site['base']}/healthz",
        "unsubscribe": unsubscribe,
        "resubscribe": unsubscribe.replace("/unsubscribe?", "/resubscribe?"),
        "feedback-up": feedback_urls(site, "alice")[0],
        "feedback-down": feedback_urls(site, "alice")[1],
        "archive-day": archive,
        "archive-list": archive.replace("/archive/2026-11-20/alice?", "/archive/alice?"),
    }


def _state(site: dict) -> tuple:
    with store(site) as s:
        return sorted(s.unsubscribed()), [(v.subscriber_id, v.paper_id, v.vote) for v in s.votes()]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    "route",
    ["healthz", "unsubscribe", "resubscribe", "feedback-up", "feedback-down", "archive-day", "archive-list"],
)
def test_get_and_head_change_nothing_on_any_route_whatever_they_carry(site: dict, route: str, method: str):
    """A mail scanner fetches every link, with GET or HEAD, sometimes with the one-click body:
    no route may take that for a click."""
    url = _routes(site)[route]
    with store(site) as s:
        s.unsubscribe("bob", "cli")  # so that a resubscribe, too, would show
    before = _state(site)
    for body in ({}, ONE_CLICK, {"data": {"vote": "confirm", "List-Unsubscribe": "One-Click"}}):
        response = httpx.request(method, url, **body)
        assert response.status_code in (200, 404, 405), (route, method, response.status_code)
    assert _state(site) == before
    with store(site) as s:
        s.resubscribe("bob")


def test_a_vote_post_without_its_confirm_field_records_nothing(site: dict):
    more = feedback_urls(site, "alice")[0]
    for body in ({}, {"data": {"vote": "yes"}}, ONE_CLICK):
        response = httpx.post(more, **body)
        assert response.status_code == 400 and "Nothing was changed" in response.text
    assert _state(site) == ([], [])
    assert httpx.post(more, data={"vote": "confirm"}).status_code == 200
    with store(site) as s:
        assert len(s.votes("alice")) == 1
        s.record_vote("alice", s.votes("alice")[0].paper_id, 0)
