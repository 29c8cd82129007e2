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
from digest.store import Store
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
        ("published", '"20261120"'),  # fromisoformat takes these in 3.11; they are not YYYY-MM-DD
        ("published", '"2026-W47-5"'),
        ("published", '"2026-W47"'),
        ("published", '"2026-324"'),
        ("published", '"2026-02-30"'),
        ("published", '"2026-11-201"'),
        ("published", '"26-11-20"'),
        ("published", '"２０２６-11-20"'),
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


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("2026-11-19", "2026-11-19"),
        ("2026-11-19T08:00:00Z", "2026-11-19"),
        (" 2026-11-19 08:00", "2026-11-19"),
    ],
)
def test_a_date_is_kept_from_a_string_that_starts_with_yyyy_mm_dd(raw: str, kept: str):
    (paper,) = sources.parse_text(json.dumps({**GOOD, "published": raw}), day=DAY, source="in.jsonl")[1]
    assert paper.published == kept


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
        text = text.replace("<arxiv:announce_type>new", "<arxiv:announce_type>new&#x202E;&#x9b;")
    _, papers, _ = sources.parse_text(text, day=DAY, source="x")
    assert papers
    for p in papers:
        texts = (p.title, p.abstract, *p.authors, *p.categories, p.organization or "", p.id)
        for value in (*texts, p.announce_type or "", p.published or "", p.url or ""):
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


# --- JSON that Python's json module cannot take as it is ----------------------------------------

HUGE = "9" * 5000  # int() refuses more than 4300 digits (CVE-2020-10735): a ValueError, not JSON's error
DEEP = "[" * 100_000 + "]" * 100_000  # the C decoder recurses: a RecursionError


@pytest.mark.parametrize("position", ["first", "middle"])
@pytest.mark.parametrize(("field", "raw"), [("upvotes", HUGE), ("upvotes", "-" + HUGE), ("id", HUGE)])
def test_a_number_too_long_for_int_is_a_note_naming_the_field_wherever_the_line_is(
    position: str, field: str, raw: str
):
    bad = json.dumps({**GOOD, "title": "Bad"})[:-1] + f', "{field}": {raw}}}'
    text = f"{bad}\n{json.dumps(GOOD)}\n" if position == "first" else _jsonl(bad)
    _, papers, notes = sources.parse_text(text, day=DAY, source="in.jsonl")
    assert "Bad" not in [p.title for p in papers] and papers
    (note,) = notes
    assert note.startswith(f"in.jsonl:{1 if position == 'first' else 2}: field '{field}'"), note
    assert len(note) < 200 and "set_int_max_str_digits" not in note


def test_an_hf_item_with_a_number_too_long_for_int_is_a_note_and_the_rest_goes_in():
    good = (FIXTURES / "hf_daily_papers.json").read_text().strip()[1:-1]
    bad = json.dumps({"paper": {"id": "2611.00002", "title": "Bad", "summary": "s", "upvotes": 0}})
    text = f"[{bad.replace(': 0}', ': ' + HUGE + '}')}, {good}]"
    _, papers, notes = sources.parse_text(text, day=DAY, source="hf.json")
    assert [p.id for p in papers] == ["2611.00031"]
    (note,) = notes
    assert note.startswith("hf.json: item 1: field 'paper.upvotes'"), note


@pytest.mark.parametrize("position", ["first", "middle"])
def test_a_line_nested_too_deeply_is_a_note_and_the_rest_goes_in(position: str):
    bad = '{"title": ' + DEEP + "}"
    text = f"{bad}\n{json.dumps(GOOD)}\n" if position == "first" else _jsonl(bad)
    _, papers, notes = sources.parse_text(text, day=DAY, source="in.jsonl")
    line = 1 if position == "first" else 2
    assert papers and notes == [
        f"in.jsonl:{line}: JSON nested too deeply to be a paper record; fix or remove this line"
    ]


def test_a_broken_first_line_is_a_note_not_a_refusal_of_the_file():
    text = '{"title": "cut off\n' + json.dumps(GOOD) + "\n"
    kind, papers, notes = sources.parse_text(text, day=DAY, source="in.jsonl")
    assert (kind, [p.title for p in papers]) == ("jsonl", ["A good paper"])
    assert notes[0].startswith("in.jsonl:1: not valid JSON")


@pytest.mark.parametrize("text", [json.dumps(GOOD, indent=2), '{\n  "title": "cut off'])
def test_one_json_object_over_several_lines_is_still_refused_as_not_json_lines(text: str):
    with pytest.raises(InputError, match="^in.json: a JSON object; expected JSON Lines"):
        sources.parse_text(text, day=DAY, source="in.json")


def test_one_record_on_one_line_is_json_lines():
    (paper,) = sources.parse_text(json.dumps(GOOD), day=DAY, source="in.jsonl")[1]
    assert paper.title == "A good paper"


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
@pytest.mark.parametrize("position", ["first", "middle"])
def test_a_line_separator_inside_a_json_string_does_not_split_the_record(separator: str, position: str):
    # Valid JSON (only U+0000-U+001F must be escaped) that str.splitlines() would cut in two.
    odd = json.dumps({**GOOD, "title": f"Split{separator}title"}, ensure_ascii=False)
    text = f"{odd}\n{json.dumps(GOOD)}\n" if position == "first" else _jsonl(odd)
    _, papers, notes = sources.parse_text(text, day=DAY, source="in.jsonl")
    assert "Splittitle" in [p.title for p in papers] and notes == []


@pytest.mark.parametrize("first", [5, None, [], {"title": "no paper key"}, {"paper": "not an object"}])
def test_a_bad_first_hf_item_is_a_note_and_the_rest_goes_in(first: object):
    good = json.loads((FIXTURES / "hf_daily_papers.json").read_text())[0]
    kind, papers, notes = sources.parse_text(json.dumps([first, good]), day=DAY, source="hf.json")
    assert (kind, [p.id for p in papers]) == ("hf-json", ["2611.00031"])
    assert notes == ["hf.json: item 1: field 'paper': is missing or not an object; fix or remove this item"]


@pytest.mark.parametrize("items", [[1, 2, 3], [{"title": "x"}], [[{"paper": {}}]]])
def test_a_json_list_with_no_daily_papers_item_is_refused_as_another_format(items: list[object]):
    with pytest.raises(InputError, match="not the Hugging Face daily_papers format"):
        sources.parse_text(json.dumps(items), day=DAY, source="hf.json")


def test_a_page_dump_line_of_nothing_but_control_characters_is_no_title():
    text = "\x1b[2J\x01\u202e\nA real title\nIts abstract, which ends here.\n"
    _, papers, _ = sources.parse_text(text, day=DAY, source="dump.txt")
    assert [(p.title, p.abstract) for p in papers] == [("A real title", "Its abstract, which ends here.")]


@pytest.mark.parametrize("blank", ["\x1b[0m", "\u202e\u202c", "\x85"])
def test_a_page_dump_abstract_of_nothing_but_control_characters_is_no_abstract(blank: str):
    text = f"First title\n{blank}\nIts abstract, which ends here.\nSecond title\nSecond abstract ends.\n"
    _, papers, _ = sources.parse_text(text, day=DAY, source="dump.txt")
    assert all(p.title and p.abstract for p in papers)
    assert [p.title for p in papers] == ["First title", "Second title"]


# --- feeds -------------------------------------------------------------------------------------


def _atom(*entries: str) -> str:
    return (
        "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'>"
        + "".join(f"<entry>{e}</entry>" for e in entries)
        + "</feed>"
    )


ENTRY = "<id>http://arxiv.org/abs/2611.0000{n}v1</id><title>Title {n}</title><summary>Summary {n}.</summary>"


@pytest.mark.parametrize("stamp", ["0000-01-01T00:00:00Z", "0000-12-31"])
def test_a_feed_date_before_year_one_is_left_out_and_the_paper_goes_in(stamp: str):
    text = _atom(ENTRY.format(n=1) + f"<published>{stamp}</published>", ENTRY.format(n=2))
    _, papers, _ = sources.parse_text(text, day=DAY, source="feed.xml")
    assert [(p.id, p.published) for p in papers] == [("2611.00001", None), ("2611.00002", None)]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("<id>x</id><summary>Only a summary.</summary>", "title"),
        ("<id>x</id><title>Only a title</title>", "summary"),
        ("<id>x</id><title>&#x202E;&#x202C;</title><summary>Invisible title.</summary>", "title"),
    ],
)
def test_a_feed_entry_without_title_or_summary_is_a_note_naming_the_entry(entry: str, field: str):
    _, papers, notes = sources.parse_text(
        _atom(ENTRY.format(n=1), entry, ENTRY.format(n=3)), day=DAY, source="feed.xml"
    )
    assert [p.id for p in papers] == ["2611.00001", "2611.00003"]
    (note,) = notes
    assert note.startswith(f"feed.xml: entry 2: field '{field}'"), note


# --- notes are whole lines that name their file --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("A title\nAn abstract that ends.\nA cut-off title\n", "dump.txt"),
        ("A title\nAn abstract that ends.\nA title\nAn abstract that stops mid", "dump.txt"),
        (_jsonl("{"), "in.jsonl"),
        (json.dumps([5, {"paper": {"title": "t", "summary": "s"}}]), "hf.json"),
        (_atom(ENTRY.format(n=1), "<title>t</title>"), "feed.xml"),
    ],
)
def test_every_note_is_one_line_that_starts_with_the_source(text: str, source: str):
    notes = sources.parse_text(text, day=DAY, source=source)[2]
    assert notes
    for note in notes:
        assert note.startswith(f"{source}: ") or note.startswith(f"{source}:"), note
        assert "\n" not in note and len(note) < 300


# --- formats are told apart by how a file starts, not by words inside a record -------------------


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({**GOOD, "abstract": "Agents that read the <body> of a page, not its <html> head."}),
        json.dumps([{"paper": {"title": "Parsing <body> tags", "summary": "It does <html> well."}}]),
        "Web agents that read <body> tags\nThey parse the <html> of a page, which ends here.\n",
    ],
    ids=["jsonl", "hf-json", "page-dump"],
)
def test_a_paper_about_html_tags_is_not_taken_for_a_saved_web_page(text: str):
    _, papers, _ = sources.parse_text(text, day=DAY, source="in")
    assert len(papers) == 1


@pytest.mark.parametrize(
    "text",
    [
        "<!DOCTYPE html><html><body>Daily Papers</body></html>",
        "\n  <html lang='en'><head></head><body>x</body></html>",
        "<!-- saved from url=(0040)https://huggingface.co/papers -->\n<html><body>x</body></html>",
        "<div><body>Daily Papers</body></div>",
    ],
)
def test_a_saved_web_page_is_still_refused_as_one(text: str):
    with pytest.raises(InputError, match="an HTML page, not the page's text"):
        sources.parse_text(text, day=DAY, source="in")


@pytest.mark.parametrize(
    ("name", "text", "note"),
    [
        ("papers.jsonl", _jsonl('{"title": "t", "abstract": "a", "upvotes": 1e30}'), ":2: field 'upvotes'"),
        ("2026-11-20.txt", "A title\nAn abstract that ends.\nA cut-off title\n", ": the last title"),
    ],
)
def test_the_operator_sees_each_note_once_naming_its_file_once(
    tmp_path: Path, store: Store, name: str, text: str, note: str
):
    from digest.ingest.files import ingest

    path = tmp_path / name
    path.write_text(text)
    (outcome,) = ingest(store, [path], today=DAY)
    (line,) = outcome.notes
    assert line.startswith(f"{path}{note}") and line.count(str(path)) == 1, line
