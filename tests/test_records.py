"""Every input record is checked at the parser boundary: a field of the wrong type is one note
naming file, line (or item) and field, and the rest of the file goes in."""

from __future__ import annotations

import json
import os
import threading
from datetime import date
from pathlib import Path

import pytest
from conftest import FIXTURES

from digest import sources
from digest.errors import InputError
from digest.text import has_controls

DAY = date(2026, 11, 20)
GOOD = {"title": "A good paper", "abstract": "It does a good thing well.", "url": "https://x.org/a"}


def _jsonl(bad: str) -> str:
    good2 = {**GOOD, "title": "Another good paper"}
    return f"{json.dumps(GOOD)}\n{bad}\n{json.dumps(good2)}\n"


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("upvotes", "Infinity"),
        ("upvotes", "-Infinity"),
        ("upvotes", "NaN"),
        ("upvotes", "1e30"),
        ("upvotes", "-3"),
        ("upvotes", "2.5"),
        ("upvotes", "true"),
        ("upvotes", '"12"'),
        ("upvotes", "[1]"),
        ("published", "{}"),
        ("published", '"yesterday"'),
        ("published", "20261120"),
        ("authors", "[1]"),
        ("authors", "[null]"),
        ("authors", "{}"),
        ("authors", "42"),
        ("url", "42"),
        ("url", '"javascript:alert(1)"'),
        ("url", '"data:text/html,x"'),
        ("url", '"/relative/path"'),
        ("categories", "[1, 2]"),
        ("categories", "{}"),
        ("id", "2505.0123"),
        ("id", "[]"),
        ("title", "5"),
        ("title", "[]"),
        ("title", '"   "'),
        ("abstract", "{}"),
        ("abstract", "false"),
    ],
)
def test_a_wrong_typed_field_is_one_note_and_the_rest_of_the_file_goes_in(field: str, raw: str):
    record = json.dumps({k: v for k, v in GOOD.items() if k != field})[:-1] + f', "{field}": {raw}}}'
    kind, papers, notes = sources.parse_text(_jsonl(record), day=DAY, source="in.jsonl")
    assert kind == "jsonl"
    assert [p.title for p in papers] == ["A good paper", "Another good paper"]
    (note,) = notes
    assert note.startswith(f"in.jsonl:2: field '{field}'"), note
    assert "fix or remove this line" in note and len(note) < 300


def test_a_line_that_is_not_json_is_a_note_too():
    _, papers, notes = sources.parse_text(_jsonl('{"title": "cut off'), day=DAY, source="in.jsonl")
    assert len(papers) == 2 and notes[0].startswith("in.jsonl:2: not valid JSON")


def test_whole_numbers_written_as_floats_are_taken():
    record = json.dumps({**GOOD, "upvotes": 12.0, "published": "2026-11-19T08:00:00Z"})
    (paper,), notes = sources.parse_text(record, day=DAY, source="in.jsonl")[1:]
    assert (paper.upvotes, paper.published, notes) == (12, "2026-11-19", [])


def test_a_file_of_nothing_but_bad_records_is_refused_naming_the_first():
    text = '{"title": 1, "abstract": "x"}\n{"title": "t", "abstract": []}\n'
    with pytest.raises(InputError, match=r"^in.jsonl:1: field 'title'.*\(and 1 more bad lines\)"):
        sources.parse_text(text, day=DAY, source="in.jsonl")


def _hf(items: list[object]) -> str:
    return json.dumps(items)


def test_an_hf_item_whose_title_is_a_number_is_a_note_naming_the_item():
    good = json.loads((FIXTURES / "hf_daily_papers.json").read_text())[0]
    bad = json.loads(json.dumps(good))
    bad["paper"]["title"] = 42
    bad["title"] = 42
    _, papers, notes = sources.parse_text(_hf([good, bad, good]), day=DAY, source="hf.json")
    assert len(papers) == 2
    (note,) = notes
    assert note.startswith("hf.json: item 2: field 'title'"), note


@pytest.mark.parametrize(
    ("where", "value"),
    [("upvotes", float("inf")), ("upvotes", 1e30), ("authors", [1]), ("publishedAt", {}), ("id", 5)],
)
def test_hf_items_with_wrong_typed_fields_are_notes(where: str, value: object):
    good = json.loads((FIXTURES / "hf_daily_papers.json").read_text())[0]
    bad = json.loads(json.dumps(good))
    bad["paper"][where] = value
    _, papers, notes = sources.parse_text(_hf([bad, good]), day=DAY, source="hf.json")
    assert len(papers) == 1 and len(notes) == 1 and notes[0].startswith("hf.json: item 1: field")


# --- control characters, in every format --------------------------------------------------------

EVIL = "Evil \x1b[2J\x01title \u202eon\u202c one\u0085line"


def _feed(title: str) -> str:
    return (FIXTURES / "arxiv_rss2.xml").read_text().replace("<title>", f"<title>{title} ", 2)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({**GOOD, "title": EVIL, "authors": [EVIL], "categories": [EVIL]}),
        json.dumps([{"paper": {"title": EVIL, "summary": EVIL, "authors": [{"name": EVIL}]}}]),
        f"{EVIL}\nAn abstract about {EVIL} that ends.\n",
        "__FEED__",
    ],
    ids=["jsonl", "hf-json", "page-dump", "feed"],
)
def test_no_control_or_bidi_character_leaves_a_parser(text: str):
    if text == "__FEED__":
        text = _feed("Evil &#x9b;2J &#x202E;title&#x85;")  # XML allows C1 and bidi, not C0
    _, papers, _ = sources.parse_text(text, day=DAY, source="x")
    assert papers
    for p in papers:
        for value in (p.title, p.abstract, *p.authors, *p.categories, p.organization or "", p.id):
            assert not has_controls(value) and "\x1b" not in value, repr(value)


# --- files that are not files ------------------------------------------------------------------


def test_a_device_is_refused_by_its_type_before_it_is_read():
    with pytest.raises(InputError, match="^/dev/zero: a device, pipe or socket"):
        sources.read_limited(Path("/dev/zero"))


def test_a_fifo_is_refused_without_blocking(tmp_path: Path):
    fifo = tmp_path / "inbox.fifo"
    os.mkfifo(fifo)
    outcome: list[BaseException | bytes] = []
    thread = threading.Thread(target=lambda: outcome.append(_try_read(fifo)), daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive(), "reading a FIFO blocked"
    assert isinstance(outcome[0], InputError) and "device, pipe or socket" in str(outcome[0])


def _try_read(path: Path) -> BaseException | bytes:
    try:
        return sources.read_limited(path)
    except InputError as exc:
        return exc


def test_a_folder_is_refused_as_a_folder(tmp_path: Path):
    with pytest.raises(InputError, match="a folder"):
        sources.read_limited(tmp_path)


def test_a_file_over_the_limit_is_refused_by_its_size(tmp_path: Path):
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(InputError, match="limit"):
        sources.read_limited(big, max_bytes=1024)
