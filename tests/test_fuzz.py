from __future__ import annotations

import json
from datetime import date
from xml.sax.saxutils import escape

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
        text = sources.decode(data, "fuzz.txt")
    except InputError as exc:
        assert str(exc).startswith("fuzz.txt")
        return
    _check_papers(text, "fuzz.txt")


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
# Characters XML 1.0 cannot hold at all (a feed with them is refused whole, rightly).
_XML_ILLEGAL = {
    c: None for c in [*range(0x20), 0xFFFE, 0xFFFF, *range(0xD800, 0xE000)] if c not in (9, 10, 13)
}


def _check_papers(text: str, source: str, *, good: str | None = None) -> None:
    """Parsing `text` raises nothing but InputError naming `source`, and every paper it returns
    is clean. With `good` (the title of a good record in `text`), it must not raise at all and
    that paper must be among them: one bad record never keeps the rest of a file out."""
    try:
        _, papers, notes = sources.parse_text(text, day=date(2026, 11, 20), source=source)
    except InputError as exc:
        assert good is None, f"a file with a good record was refused: {exc}"
        assert str(exc).startswith(source)
        return
    if good is not None:
        assert good in [p.title for p in papers]
    for note in notes:
        assert note.startswith(source) and "\n" not in note and len(note) < 400
    for p in papers:
        assert isinstance(p.title, str) and p.title and not has_controls(p.title)
        assert isinstance(p.abstract, str) and p.abstract and not has_controls(p.abstract)
        assert isinstance(p.authors, tuple) and all(
            isinstance(a, str) and a and not has_controls(a) for a in p.authors
        )
        assert p.upvotes is None or (type(p.upvotes) is int and 0 <= p.upvotes <= 10_000_000)
        assert p.url is None or http_url(p.url) == p.url
        assert p.published is None or date.fromisoformat(p.published).isoformat() == p.published
        assert isinstance(p.categories, tuple) and all(
            isinstance(c, str) and c and not has_controls(c) for c in p.categories
        )
        for value in (p.id, p.organization, p.announce_type):
            assert value is None or (isinstance(value, str) and not has_controls(value))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(JSONL_FIELDS), JSON_VALUES, max_size=8), st.booleans())
def test_json_lines_records_with_wrong_typed_values_never_keep_the_good_record_out(
    record: dict, bad_first: bool
):
    good = {"title": "A good paper", "abstract": "It is good."}
    bad = {**good, "title": "The other paper", **record}
    lines = [json.dumps(r, allow_nan=True, ensure_ascii=False) for r in (good, bad)]
    _check_papers("\n".join(lines[::-1] if bad_first else lines), "fuzz.jsonl", good="A good paper")


HF_PAPER_FIELDS = ["id", "title", "summary", "authors", "upvotes", "publishedAt", "organization"]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(HF_PAPER_FIELDS), JSON_VALUES, max_size=6),
    st.dictionaries(
        st.sampled_from(["title", "summary", "publishedAt", "organization", "paper"]), JSON_VALUES
    ),
    st.booleans(),
    st.lists(JSON_VALUES, max_size=1),
)
def test_daily_papers_items_with_wrong_typed_values_never_keep_the_good_item_out(
    paper: dict, item: dict, bad_first: bool, junk: list
):
    good = {"paper": {"id": "2611.00001", "title": "A good paper", "summary": "It is good."}}
    other = {"id": "2611.00002", "title": "The other paper", "summary": "It is other."}
    bad = {**item, "paper": {**other, **paper}} if "paper" not in item else item
    if junk:  # not even an object with a "paper"
        bad = junk[0]
    items = [bad, good] if bad_first else [good, bad]
    _check_papers(json.dumps(items, allow_nan=True, ensure_ascii=False), "fuzz.json", good="A good paper")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["title", "summary", "published", "link", "author", "category"])), st.data())
def test_feed_entries_with_odd_values_raise_nothing_but_our_input_error(
    fields: list[str], data: st.DataObject
):
    def value() -> str:
        raw = data.draw(st.text(max_size=20) | st.sampled_from(["0000-01-01", "javascript:x", "&#x202e;"]))
        return escape(raw.translate(_XML_ILLEGAL), {"'": "&apos;"})  # values sit in '...' too

    tags = {
        "category": "<category term='{}'/>",
        "link": "<link href='{}'/>",
        "author": "<author><name>{}</name></author>",
    }
    entry = "".join(tags.get(f, f"<{f}>{{}}</{f}>").format(value()) for f in fields)
    good = "<id>http://arxiv.org/abs/2611.00001</id><title>A good paper</title><summary>It is good.</summary>"
    text = (
        "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'>"
        f"<entry>{entry}</entry><entry>{good}</entry></feed>"
    )
    _check_papers(text, "fuzz.xml", good="A good paper")
