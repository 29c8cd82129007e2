from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from digest import sources
from digest.errors import InputError

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
