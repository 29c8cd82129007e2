"""The morning job fetches its own papers, against a real http.server on 127.0.0.1: conditional
requests, 429 with Retry-After, 503 then 200, a slow source, an empty feed, an HTML error page;
never silent, and never an empty digest when every source failed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, SHARED, SUBSCRIBERS, drip, http_server, opened, scripted

from digest.cli import cli
from digest.ingest.fetch import fetch_sources, retry_after
from digest.models import Source
from digest.settings import Settings
from digest.store import open_store

DAY = date(2026, 11, 20)
RSS = (FIXTURES / "arxiv_rss2.xml").read_bytes()
EMPTY_RSS = b"""<?xml version='1.0' encoding='UTF-8'?>
<rss version="2.0"><channel><title>cs.LG updates on arXiv.org</title>
<link>http://rss.arxiv.org/rss/cs.LG</link><description>cs.LG updates</description>
<skipDays><day>Saturday</day><day>Sunday</day></skipDays></channel></rss>"""
HF_SAME_PAPER = json.dumps(
    [
        {
            "paper": {
                "id": "2611.00011",
                "title": "Sparse Adapters for Continual Learning",
                "summary": "S.",
                "upvotes": 41,
            }
        }
    ]
).encode()
SAMPLES = SHARED / "data" / "ingestion_samples"


Server = scripted()  # its script and record of requests are made afresh by `base`


@pytest.fixture
def base() -> Iterator[str]:
    Server.script, Server.seen = {}, []
    with http_server(Server) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database: str) -> Settings:
    return Settings.load(
        env={
            "DIGEST_INGEST_ALLOW_PRIVATE": "1",
            "DIGEST_FETCH_BACKOFF": "0.05",
            "DIGEST_FETCH_INTERVAL": "0",
            "DIGEST_FROM": "Paper Digest <ops@example.org>",
        },
        db=database,
        subscribers=SUBSCRIBERS,
        model="hashing",
    )


def run_fetch(settings: Settings, sources: list[Source], **kw):
    with open_store(settings) as store:
        outcomes = fetch_sources(store, settings, sources, day=DAY, **kw)
        return outcomes, store.source_states(), store.papers()


def test_a_second_fetch_sends_the_validators_and_a_304_is_not_modified(base: str, settings: Settings):
    Server.script["/rss"] = [(200, {"ETag": '"v1"', "Last-Modified": "Fri, 20 Nov 2026 05:00:00 GMT"}, RSS)]
    source = Source("arxiv", f"{base}/rss")
    (first,), states, papers = run_fetch(settings, [source])
    assert (first.status, first.new) == ("new", 2) and len(papers) == 2
    (second,), states, _ = run_fetch(settings, [source])
    assert second.status == "not-modified"
    headers = Server.seen[-1][1]
    assert (
        headers["If-None-Match"] == '"v1"' and headers["If-Modified-Since"] == "Fri, 20 Nov 2026 05:00:00 GMT"
    )
    assert "mailto:ops@example.org" in headers["User-Agent"]
    assert states["arxiv"].last_ok and states["arxiv"].status == "not-modified"


def test_429_with_retry_after_is_honoured_then_the_feed_is_read(base: str, settings: Settings):
    Server.script["/rss"] = [(429, {"Retry-After": "2"}, b"slow down"), (200, {}, RSS)]
    waits: list[float] = []
    (outcome,), _, _ = run_fetch(settings, [Source("arxiv", f"{base}/rss")], sleep=waits.append)
    assert outcome.status == "new"
    assert 2.0 in waits


def test_503_then_200_is_retried_with_backoff(base: str, settings: Settings):
    Server.script["/rss"] = [(503, {}, b"busy"), (503, {}, b"busy"), (200, {}, RSS)]
    waits: list[float] = []
    (outcome,), _, _ = run_fetch(settings, [Source("arxiv", f"{base}/rss")], sleep=waits.append)
    assert outcome.status == "new" and len([w for w in waits if w > 0]) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 451])
def test_a_4xx_that_means_no_is_asked_once(base: str, settings: Settings, status: int):
    Server.script["/gone"] = [(status, {}, b"no")]
    waits: list[float] = []
    (outcome,), _, _ = run_fetch(settings, [Source("gone", f"{base}/gone")], sleep=waits.append)
    assert outcome.status == "failed" and f"answered {status}" in outcome.detail
    assert [path for path, _ in Server.seen] == ["/gone"] and waits == []


def test_408_then_200_is_retried_as_429_and_5xx_are(base: str, settings: Settings):
    Server.script["/rss"] = [(408, {}, b"timeout"), (200, {}, RSS)]
    (outcome,), _, _ = run_fetch(settings, [Source("arxiv", f"{base}/rss")], sleep=lambda s: None)
    assert outcome.status == "new" and len(Server.seen) == 2


def test_a_refused_address_or_an_oversized_body_is_not_fetched_again(
    base: str, settings: Settings, monkeypatch
):
    """Asking again would be refused again, or download the same too-large body again."""
    from dataclasses import replace

    from digest import sources

    waits: list[float] = []
    refused = replace(settings, fetch=replace(settings.fetch, allow_private=False))
    (loopback,), _, _ = run_fetch(refused, [Source("local", f"{base}/rss")], sleep=waits.append)
    assert loopback.status == "failed" and "DIGEST_INGEST_ALLOW_PRIVATE" in loopback.detail
    assert Server.seen == [] and waits == []
    monkeypatch.setattr(sources, "MAX_BYTES", 1000)
    Server.script["/big"] = [(200, {}, b"x" * 5000)]
    (big,), _, _ = run_fetch(settings, [Source("big", f"{base}/big")], sleep=waits.append)
    assert big.status == "failed" and "limit" in big.detail
    assert len(Server.seen) == 1 and waits == []


def test_a_slow_source_fails_at_its_deadline_and_the_next_one_is_still_fetched(base: str, settings: Settings):
    Server.script["/slow"] = [drip(20, 0.2, length=100)]
    Server.script["/rss"] = [(200, {}, RSS)]
    from dataclasses import replace

    quick = replace(settings, fetch=replace(settings.fetch, deadline=1.0, timeout=1.0, retries=0))
    started = time.monotonic()
    slow, fine = run_fetch(quick, [Source("slow", f"{base}/slow"), Source("arxiv", f"{base}/rss")])[0]
    assert time.monotonic() - started < 6
    assert slow.status == "failed" and "within" in slow.detail
    assert fine.status == "new"


def test_an_empty_arxiv_feed_is_nothing_published_not_an_error(base: str, settings: Settings):
    Server.script["/rss"] = [(200, {}, EMPTY_RSS)]
    Server.script["/hf"] = [(200, {}, b"[]")]
    outcomes, states, _ = run_fetch(settings, [Source("arxiv", f"{base}/rss"), Source("hf", f"{base}/hf")])
    assert [o.status for o in outcomes] == ["nothing-published", "nothing-published"]
    assert all(o.ok for o in outcomes) and states["arxiv"].last_ok


def test_an_html_error_page_is_a_failure_that_says_why(base: str, settings: Settings):
    Server.script["/rss"] = [
        (200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><html><body>Oops</body></html>")
    ]
    Server.script["/gone"] = [(404, {}, b"no")]
    outcomes, states, _ = run_fetch(
        settings, [Source("arxiv", f"{base}/rss"), Source("gone", f"{base}/gone")]
    )
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert "HTML page" in outcomes[0].detail and "404" in outcomes[1].detail
    assert states["gone"].status == "failed" and states["gone"].last_ok is None
    assert len([p for p, _ in Server.seen if p == "/gone"]) == 1  # a 404 is not retried


def test_a_paper_in_two_sources_is_stored_once_with_the_richest_metadata(base: str, settings: Settings):
    Server.script["/rss"] = [(200, {}, RSS)]
    Server.script["/hf/2026-11-20"] = [(200, {}, HF_SAME_PAPER)]
    outcomes, _, papers = run_fetch(
        settings, [Source("arxiv", f"{base}/rss"), Source("hf", f"{base}/hf/{{date}}")]
    )
    assert [o.status for o in outcomes] == ["new", "new"]
    (paper,) = [p for p in papers if p.id == "2611.00011"]
    assert paper.upvotes == 41 and paper.categories == ("cs.LG", "cs.AI")


def test_requests_to_one_host_are_spaced_by_the_interval(base: str, settings: Settings):
    from dataclasses import replace

    Server.script["/a"] = [(200, {}, RSS)]
    Server.script["/b"] = [(200, {}, EMPTY_RSS)]
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    run_fetch(
        replace(settings, fetch=replace(settings.fetch, interval=3.0)),
        [Source("a", f"{base}/a"), Source("b", f"{base}/b")],
        sleep=sleep,
        clock=lambda: now[0],
    )
    assert waits and waits[0] == pytest.approx(3.0)


def test_retry_after_reads_seconds_and_http_dates():
    from datetime import UTC, datetime

    now = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
    assert retry_after("7", now) == 7
    assert retry_after("Fri, 20 Nov 2026 05:00:30 GMT", now) == 30
    assert retry_after("soon", now) is None and retry_after(None, now) is None


def _env(tmp_path: Path, base: str, sources: list[str], database: str) -> dict[str, str]:
    subscribers = tmp_path / "subscribers.yaml"
    text = (
        (SUBSCRIBERS)
        .read_text()
        .replace("trending_weight: 0.1", "trending_weight: 0.1\n    send_empty: true")
    )
    subscribers.write_text(
        text + "\nsources:\n" + "".join(f"  - {{name: {n}, url: '{base}/{n}'}}\n" for n in sources)
    )
    return {
        "DIGEST_SUBSCRIBERS": str(subscribers),
        "DIGEST_DB": database,
        "DIGEST_STATE": str(tmp_path / "var"),
        "DIGEST_INBOX": str(tmp_path / "inbox"),
        "DIGEST_OUTBOX": str(tmp_path / "var" / "outbox"),
        "DIGEST_MODEL": "hashing",
        "DIGEST_SMTP_HOST": "",
        "DIGEST_INGEST_ALLOW_PRIVATE": "1",
        "DIGEST_FETCH_BACKOFF": "0.01",
        "DIGEST_FETCH_RETRIES": "1",
        "DIGEST_FETCH_INTERVAL": "0",
        "DIGEST_NOW": "2026-11-20T12:00:00Z",
    }


def test_when_every_source_fails_nobody_gets_an_empty_digest_and_the_run_says_which(
    base: str, tmp_path: Path, database: str
):
    Server.script["/down"] = [(503, {}, b"busy")]
    Server.script["/html"] = [(200, {}, b"<html><body>maintenance</body></html>")]
    env = _env(tmp_path, base, ["down", "html"], database)
    result = CliRunner().invoke(cli, ["run", "--day", "2026-11-20"], env=env)
    assert result.exit_code == 1
    assert "source down: failed" in result.output and "source html: failed" in result.output
    assert "nobody was sent an empty digest" in result.output
    assert not list((tmp_path / "var" / "outbox").rglob("*.eml"))  # carol asked for empty days, got none
    status = CliRunner().invoke(cli, ["status"], env=env).output
    assert "source down: failed" in status and "last good never" in status


def test_a_failing_source_does_not_stop_the_digest_and_status_shows_its_last_good_fetch(
    base: str, tmp_path: Path, database: str
):
    Server.script["/arxiv"] = [(200, {}, RSS)]
    Server.script["/hf"] = [(500, {}, b"oops")]
    env = _env(tmp_path, base, ["arxiv", "hf"], database)
    fetched = CliRunner().invoke(cli, ["fetch", "--day", "2026-11-20"], env=env)
    assert fetched.exit_code == 1 and "source arxiv: 3 papers" in fetched.output
    assert "source hf: failed" in fetched.output
    status = CliRunner().invoke(cli, ["status"], env=env).output
    assert "source arxiv: new at" in status and "source hf: failed" in status


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/data/ingestion_samples not present")
def test_every_real_sample_is_fetched_and_read(settings: Settings, tmp_path: Path):
    from functools import partial
    from http.server import SimpleHTTPRequestHandler

    with http_server(partial(SimpleHTTPRequestHandler, directory=str(SAMPLES))) as url:
        names = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in (".xml", ".json"))
        outcomes, _, papers = run_fetch(settings, [Source(n, f"{url}/{n}") for n in names])
    assert all(o.status == "new" and o.papers > 0 for o in outcomes), outcomes
    assert len(papers) > 50


def test_the_scheduler_fetches_the_sources_before_it_sends(base: str, tmp_path: Path, database: str):
    from digest.daemon import Daemon

    Server.script["/arxiv"] = [(200, {}, RSS)]
    env = _env(tmp_path, base, ["arxiv"], database)
    Daemon(Settings.load(env=env)).send_due()
    with opened(env["DIGEST_DB"]) as store:
        assert store.source_states()["arxiv"].status == "new"
        assert len(store.papers()) == 2
