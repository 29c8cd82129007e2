from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from conftest import FIXTURES, SHARED

from digest import sources
from digest.errors import InputError
from digest.sources.clean import clean
from digest.store import SQLiteStore

DAY = date(2026, 11, 20)


def test_arxiv_rss_gives_ids_without_version_clean_abstracts_authors_and_categories():
    parsed = sources.read_file(FIXTURES / "arxiv_rss2.xml", day=DAY)
    assert parsed.kind == "feed"
    first = parsed.papers[0]
    assert first.id == "2611.00011"
    assert first.title == "Sparse Adapters for Continual Learning"
    assert first.abstract == (
        "We attach sparse adapters to a frozen backbone & train one per task. "
        "Forgetting drops to near zero on Schrödinger-bridge benchmarks."
    )
    assert first.authors == ("Ada One", "Bo Two", "Cy Three") and first.authors_count == 3
    assert first.categories == ("cs.LG", "cs.AI")
    assert first.url == "https://arxiv.org/abs/2611.00011"
    assert first.published == "2026-11-20"
    assert [p.announce_type for p in parsed.papers] == ["new", "cross", "replace"]


def test_replace_announcement_updates_a_known_paper_and_never_adds_one(store: SQLiteStore):
    parsed = sources.read_file(FIXTURES / "arxiv_rss2.xml", day=DAY)
    assert store.add_papers(parsed.papers).new == 2  # new + cross; the replace is not news
    assert "2401.00099" not in {p.id for p in store.papers()}

    from dataclasses import replace

    old = replace(parsed.papers[2], abstract="The first abstract.", announce_type=None, day=date(2026, 1, 2))
    store.add_papers([old])
    assert store.add_papers([parsed.papers[2]]).updated == 1
    (paper,) = [p for p in store.papers() if p.id == "2401.00099"]
    assert (paper.abstract, paper.day) == ("The revised abstract of an older paper.", date(2026, 1, 2))


def test_arxiv_api_response_unwraps_hard_wrapped_titles_and_summaries():
    (paper,) = sources.read_file(FIXTURES / "arxiv_api.xml", day=DAY).papers
    assert paper.id == "2611.00021"
    assert paper.title == "Legged Robots That Learn to Climb Stairs"
    assert paper.abstract.startswith("We train a quadruped to climb stairs from depth images alone.")
    assert paper.authors == ("Fay Six", "Gus Seven")
    assert paper.categories == ("cs.RO", "cs.LG")


def test_hf_daily_papers_json_keeps_upvotes_organization_and_full_summary():
    parsed = sources.read_file(FIXTURES / "hf_daily_papers.json", day=DAY)
    (paper,) = parsed.papers
    assert parsed.kind == "hf-json"
    assert (paper.id, paper.upvotes, paper.organization) == ("2611.00031", 42, "Tiny Lab")
    assert paper.abstract.endswith("constant compute per token.")
    assert paper.authors == ("Hal Eight", "Ivy Nine") and paper.published == "2026-11-18"
    assert paper.url == "https://huggingface.co/papers/2611.00031"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (r"{\it Schr\"odinger} equations", "Schrödinger equations"),
        (r"Poincar\'e and Erd\H{o}s", "Poincaré and Erdős"),
        (r"\emph{fast} \textbf{and} 50\% better", "fast and 50% better"),
        ("line one\n  line two", "line one line two"),
        ("a &lt; b &amp; c", "a < b & c"),
        ("arXiv:2611.1v1 Announce Type: new \nAbstract: The text.", "The text."),
        (r"keeps math $x^{2}$ as written", r"keeps math $x^{2}$ as written"),
    ],
)
def test_clean_text_undoes_latex_entities_wraps_and_announce_prefix(raw: str, expected: str):
    assert clean(raw) == expected


def test_feed_that_is_not_xml_is_refused_with_the_file_name(tmp_path: Path):
    path = tmp_path / "feed.xml"
    path.write_text("<?xml version='1.0'?><rss><channel><item><title>x</title></item")
    with pytest.raises(InputError, match=rf"^{path}:1: not a readable RSS/Atom feed"):
        sources.read_file(path)


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path, monkeypatch):
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 2048)
    monkeypatch.setattr(sources, "MAX_BYTES", 1024)
    with pytest.raises(InputError, match="over the 0 MB limit; split the file"):
        sources.read_file(path)


SAMPLES_DIR = SHARED / "data" / "ingestion_samples"


@pytest.mark.skipif(not SAMPLES_DIR.is_dir(), reason="../shared/data not present")
@pytest.mark.parametrize(
    ("pattern", "count"),
    [
        ("hf_daily_papers_api_2026-07-13.json", 25),
        ("hf_daily_papers_api_2026-06-12.json", 30),
        ("arxiv_api_atom_cs.AI-OR-cs.LG_*.xml", 50),
        ("arxiv_api_atom_transformer*.xml", 5),
        ("arxiv_api_atom_legacyformat*.xml", 2),
        ("arxiv_api_atom_all-nicotine*.xml", 10),
        ("arxiv_rss2_*.xml", 4),
        ("arxiv_rss_atom_*.xml", 3),
    ],
)
def test_real_ingestion_samples_parse_completely(pattern: str, count: int):
    (path,) = SAMPLES_DIR.glob(pattern)
    papers = sources.read_file(path, day=DAY).papers
    assert len(papers) == count
    for p in papers:
        assert p.title and p.abstract and "Announce Type" not in p.abstract and "\n" not in p.abstract
        assert not p.id.startswith("t:") and not p.id[-2:].startswith("v")


@pytest.mark.skipif(not (SHARED / "data" / "arxiv_daily").is_dir(), reason="../shared/data not present")
def test_real_arxiv_listing_jsonl_parses_every_record():
    path = SHARED / "data" / "arxiv_daily" / "raw_daily_listings" / "2025-10-08.jsonl"
    papers = sources.read_file(path).papers
    assert len(papers) == 296 and all(p.day == date(2025, 10, 8) for p in papers)
    assert all(p.authors and p.categories for p in papers)
