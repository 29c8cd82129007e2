from __future__ import annotations

import json
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from digest import sources
from digest.errors import InputError
from digest.text import has_controls, http_url

# Pieces real inputs are made of, so the fuzzer reaches deep into each parser.
FRAGMENTS = st.sampled_from(
    [
        "\n",
        "\n\n",
        "Subscribe",
        "·",
        "  • 3 authors",
        "Mar 11 4",
        "Dec 30, 2025",
        "new",
        "{",
        "}",
        "[",
        '{"title": "t", "abstract": "a"}',
        '[{"paper": {}}]',
        "<?xml version='1.0'?>",
        "<rss>",
        "<feed>",
        "<entry><title>x</title>",
        "<html>",
        "A title",
        "An abstract sentence that ends.",
        "\\'e",
        "{\\it x}",
        "\x00",
        "\ufeff",
        "\r\n",
        "arXiv:2611.1v1 Announce Type: new Abstract:",
    ]
)


def _parse(data: bytes) -> None:
    try:
        sources.parse_text(sources.decode(data, "fuzz.txt"), day=date(2026, 11, 20), source="fuzz.txt")
    except InputError as exc:
        assert str(exc).startswith("fuzz.txt")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_nothing_but_our_input_error(data: bytes):
    _parse(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(FRAGMENTS, st.text(max_size=40)), max_size=40))
def test_arbitrary_mixes_of_real_fragments_raise_nothing_but_our_input_error(parts: list[str]):
    _parse("".join(parts).encode("utf-8", errors="surrogatepass"))


# Well-formed JSON whose values have the wrong types: every field of a record gets any JSON value.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["2026-11-20", "https://x.org/p", "javascript:x", "\x1b[2J", "\u202e", "A, B and C"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
JSONL_FIELDS = [
    "id",
    "arxiv_id",
    "title",
    "abstract",
    "summary",
    "authors",
    "url",
    "abs",
    "published",
    "upvotes",
]
JSONL_FIELDS += ["categories"]


def _check_papers(text: str, source: str) -> None:
    try:
        _, papers, notes = sources.parse_text(text, day=date(2026, 11, 20), source=source)
    except InputError as exc:
        assert str(exc).startswith(source)
        return
    for note in notes:
        assert note.startswith(source) and "\n" not in note
    for p in papers:
        assert isinstance(p.title, str) and p.title and not has_controls(p.title)
        assert isinstance(p.abstract, str) and p.abstract and not has_controls(p.abstract)
        assert isinstance(p.authors, tuple) and all(
            isinstance(a, str) and not has_controls(a) for a in p.authors
        )
        assert p.upvotes is None or (isinstance(p.upvotes, int) and 0 <= p.upvotes <= 10_000_000)
        assert p.url is None or http_url(p.url) == p.url
        assert p.published is None or date.fromisoformat(p.published)
        assert all(isinstance(c, str) for c in p.categories)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(JSONL_FIELDS), JSON_VALUES, max_size=8))
def test_json_lines_records_with_wrong_typed_values_raise_nothing_but_our_input_error(record: dict):
    good = {"title": "A good paper", "abstract": "It is good."}
    text = "\n".join(json.dumps(r, allow_nan=True) for r in (good, {**good, **record}))
    _check_papers(text, "fuzz.jsonl")


HF_PAPER_FIELDS = ["id", "title", "summary", "authors", "upvotes", "publishedAt", "organization"]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(HF_PAPER_FIELDS), JSON_VALUES, max_size=6),
    st.dictionaries(
        st.sampled_from(["title", "summary", "publishedAt", "organization", "paper"]), JSON_VALUES
    ),
)
def test_daily_papers_items_with_wrong_typed_values_raise_nothing_but_our_input_error(
    paper: dict, item: dict
):
    good = {"paper": {"id": "2611.00001", "title": "A good paper", "summary": "It is good."}}
    bad = {**item, "paper": {**good["paper"], **paper}} if "paper" not in item else item
    _check_papers(json.dumps([good, bad], allow_nan=True), "fuzz.json")
