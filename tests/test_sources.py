from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from conftest import SAMPLES, SHARED

from digest import sources
from digest.errors import InputError
from digest.sources import jsonl, pagedump

LAYOUT_WITH_META = """new

Get trending papers in your email inbox!

Subscribe

Daily Papers

byAK and the research community

Mar 12

A Paper With Authors

This abstract is long enough to be an abstract and says what the paper does in one line.

  • 3 authors
·
Mar 11 7

A Paper From An Organization

Another abstract, again one long line of text that describes what the work is about.

acme Acme Research
·
Dec 30, 2025

A Paper Without Meta

The third abstract has no author line and no date line below it at all, as happens.
"""


def test_layout_with_meta_keeps_authors_organization_date_and_upvotes():
    papers = pagedump.parse(LAYOUT_WITH_META, day=date(2026, 3, 12))
    assert [p.title for p in papers] == [
        "A Paper With Authors",
        "A Paper From An Organization",
        "A Paper Without Meta",
    ]
    first, second, third = papers
    assert (first.authors_count, first.published, first.upvotes) == (3, "2026-03-11", 7)
    assert (second.organization, second.published, second.upvotes) == ("Acme Research", "2025-12-30", None)
    assert (third.authors_count, third.published) == (None, None)
    assert all(p.day == date(2026, 3, 12) for p in papers)


def test_year_of_a_date_without_year_comes_from_the_page_date():
    text = LAYOUT_WITH_META.replace("Mar 12\n", "Jan 3\n").replace("Mar 11 7", "Dec 30 7")
    papers = pagedump.parse(text, day=date(2026, 1, 3))
    assert papers[0].published == "2025-12-30"  # late December seen in January: last year


@pytest.mark.parametrize(
    ("name", "count"), [("2026-11-18.txt", 8), ("2026-11-19.txt", 8), ("2026-11-20.txt", 9)]
)
def test_each_bundled_layout_yields_every_paper(name: str, count: int):
    papers = sources.read_file(SAMPLES / name).papers
    assert len(papers) == count
    assert all(len(p.abstract) > 200 and len(p.title) < 150 for p in papers)
    assert all(p.day == date.fromisoformat(name[:10]) for p in papers)


def test_glued_subscribe_is_stripped_from_the_first_title():
    papers = sources.read_file(SAMPLES / "2026-11-20.txt").papers
    assert papers[0].title == "Video Diffusion Models as World Simulators for Robot Planning"


def test_same_title_in_two_dumps_has_one_identity():
    day19 = sources.read_file(SAMPLES / "2026-11-19.txt").papers
    day20 = sources.read_file(SAMPLES / "2026-11-20.txt").papers
    assert len({p.id for p in day19} & {p.id for p in day20}) == 1


def test_crlf_and_bom_read_the_same_as_plain_utf8(tmp_path: Path):
    plain = SAMPLES / "2026-11-19.txt"
    windows = tmp_path / "2026-11-19.txt"
    windows.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes().replace(b"\n", b"\r\n"))
    expected = [(p.id, p.title, p.abstract, p.upvotes) for p in sources.read_file(plain).papers]
    assert [(p.id, p.title, p.abstract, p.upvotes) for p in sources.read_file(windows).papers] == expected


def test_windows_1252_file_is_decoded_not_refused(tmp_path: Path):
    path = tmp_path / "2026-11-19.txt"
    path.write_bytes(LAYOUT_WITH_META.replace("A Paper With Authors", "Schrödinger Bridges").encode("cp1252"))
    assert sources.read_file(path).papers[0].title == "Schrödinger Bridges"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\x00\x01\x02binary", "binary file"),
        (b"<!DOCTYPE html><html><body>Daily Papers</body></html>", "HTML page"),
        (b"just one line of nothing", "no paper blocks"),
    ],
)
def test_bad_input_names_the_file_and_what_to_do(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        sources.read_file(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_jsonl_reads_arxiv_listing_records_with_ids_without_version():
    line = (
        '{"id": "2505.01234", "title": "T", "summary": "An abstract\\nwith a wrap.", '
        '"authors": ["A. One", "B. Two"], "abs": "https://arxiv.org/abs/2505.01234v2", '
        '"categories": ["cs.LG"]}'
    )
    (paper,) = jsonl.parse(line, day=date(2025, 5, 28))
    assert paper.id == "2505.01234"
    assert paper.abstract == "An abstract with a wrap."
    assert paper.authors == ("A. One", "B. Two") and paper.authors_count == 2
    assert paper.categories == ("cs.LG",)


def test_jsonl_bad_record_is_a_note_naming_the_line_and_the_good_ones_go_in():
    text = '{"title": "ok", "abstract": "fine"}\n{"title": "no abstract"}\n'
    notes: list[str] = []
    (paper,) = jsonl.parse(text, source="x.jsonl", notes=notes)
    assert paper.title == "ok"
    assert len(notes) == 1 and notes[0].startswith("x.jsonl:2: field 'abstract'")


def test_jsonl_with_no_good_record_is_refused_naming_the_first_bad_line():
    with pytest.raises(InputError, match=r"^x.jsonl:1: field 'abstract'"):
        jsonl.parse('{"title": "no abstract"}\n', source="x.jsonl")


DUMP_COUNTS = {"000": 60, "001": 65, "002": 61, "003": 85, "004": 218}


@pytest.mark.skipif(not (SHARED / "dumps").is_dir(), reason="../shared/dumps not present")
def test_real_dumps_yield_the_known_paper_counts():
    ids: set[str] = set()
    for prefix, expected in DUMP_COUNTS.items():
        (path,) = (SHARED / "dumps").glob(f"{prefix}_*.txt")
        papers = sources.read_file(path, day=date(2026, 11, 20)).papers
        assert len(papers) == expected, path.name
        ids |= {p.id for p in papers}
    assert len(ids) == 429
