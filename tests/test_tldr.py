"""A paper's TL;DR: the sentence that says what it does, shortened, in the JSON and the mail."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner
from conftest import mail_env

from digest import tldr
from digest.cli import cli
from digest.delivery import render
from digest.models import Links, Paper, Ranked, Subscriber

BACKGROUND = (
    "Large language models have achieved remarkable progress on many tasks. However, they remain"
    " costly to query at scale, and existing routing methods ignore the cost of a wrong answer."
)
CLAIM = (
    "In this work, we propose decision-aware query routing, which sends each query to the cheapest"
    " model expected to answer it correctly."
)
RESULT = "On five benchmarks it cuts the cost by 40% at equal accuracy."


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("We use e.g. graphs. It works.", ["We use e.g. graphs.", "It works."]),
        ("Smith et al. showed it. We extend it.", ["Smith et al. showed it.", "We extend it."]),
        ("As in Smith et al. We extend it.", ["As in Smith et al.", "We extend it."]),
        ("Accuracy rose to 93.5 percent. Then it fell.", ["Accuracy rose to 93.5 percent.", "Then it fell."]),
        ("Work by J. Smith is cited. We go on.", ["Work by J. Smith is cited.", "We go on."]),
        ("We study method A. We propose B.", ["We study method A.", "We propose B."]),
        ("See part A. In it we go on.", ["See part A.", "In it we go on."]),
        ("It (see Fig. 2. for details) holds. Next.", ["It (see Fig. 2. for details) holds.", "Next."]),
        ("The U.S. Census helps. We use it.", ["The U.S. Census helps.", "We use it."]),
        ("Is it? Yes! Indeed.", ["Is it?", "Yes!", "Indeed."]),
        ("  spaced \n  out   text.  ", ["spaced out text."]),
        ("", []),
    ],
)
def test_an_abstract_is_split_into_sentences_where_a_reader_would(text: str, sentences: list[str]):
    assert tldr.split(text) == sentences


def test_the_tldr_is_the_sentence_that_says_what_the_paper_does_not_its_background():
    said = tldr.tldr("Decision-Aware Query Routing for LLMs", " ".join([BACKGROUND, CLAIM, RESULT]))
    assert said == (
        "We propose decision-aware query routing, which sends each query to the cheapest"
        " model expected to answer it correctly."
    )


@pytest.mark.parametrize(
    ("sentence", "short"),
    [
        ("In this paper, we study graphs.", "We study graphs."),
        ("Here, we show that it holds.", "We show that it holds."),
        ("To address this issue, we add a cache.", "We add a cache."),
        ("Specifically, the method runs fast.", "The method runs fast."),
        ("We study graphs.", "We study graphs."),
    ],
)
def test_a_lead_in_is_dropped_and_the_sentence_starts_with_a_capital(sentence: str, short: str):
    assert tldr.compress(sentence) == short


def test_a_long_sentence_loses_its_parentheses_then_a_trailing_clause_then_is_cut_with_an_ellipsis():
    words = " ".join(f"w{i}" for i in range(30))
    with_aside = f"We propose {words} (an aside of several more words here to pass the limit of forty words)."
    assert tldr.compress(with_aside) == f"We propose {words}."
    clause = f"We propose {words}, which is followed by a clause long enough to pass forty words in all."
    assert tldr.compress(clause) == f"We propose {words}."
    endless = "We " + " ".join(f"x{i}" for i in range(60)) + "."
    cut = tldr.compress(endless)
    assert len(cut.split()) == tldr.MAX_WORDS and cut.endswith("…")


def test_math_counts_as_one_word_and_is_never_cut_into_or_stripped_of_its_parentheses():
    words = " ".join(f"w{i}" for i in range(36))
    bound = r"$\mathcal{O}(n \log n + m \log m + k \log k)$"
    assert tldr.compress(f"We prove {words} {bound} time.") == f"We prove {words} {bound} time."
    inline = r"\(O(\sqrt{n})\)"
    some = " ".join(f"w{i}" for i in range(30))
    long = f"We give a bound {inline} on {some} (an aside that goes on and on)."
    assert tldr.compress(long) == f"We give a bound {inline} on {some}."
    endless = "We " + " ".join(f"x{i}" for i in range(38)) + " $a + b + c + d + e + f$ and more words."
    cut = tldr.compress(endless)
    assert cut.count("$") in (0, 2) and cut.endswith("…")


def test_a_text_without_spaces_gives_a_tldr_of_bounded_length():
    said = tldr.tldr("日本語の題", "本研究では新しい手法を提案する" * 60 + "。")
    assert 0 < len(said) <= tldr.MAX_CHARS + 1 and said.endswith("…")


def test_no_abstract_no_tldr_and_one_sentence_is_its_own():
    assert tldr.tldr("A title", "") == ""
    assert tldr.tldr("A title", "   ") == ""
    assert tldr.tldr("A title", "We study graphs") == "We study graphs"


def test_every_tldr_of_a_real_day_is_one_line_of_at_most_forty_words(tmp_path, database: str):
    env = mail_env(tmp_path, database)
    result = CliRunner().invoke(cli, ["papers", "--day", "2026-11-20", "--json"], env=env)
    assert result.exit_code == 0, result.output
    papers = json.loads(result.output)
    assert papers and all(p["tldr"] for p in papers)  # right after `digest ingest`: no ranking needed
    for p in papers:
        assert "\n" not in p["tldr"] and len(p["tldr"].split()) <= tldr.MAX_WORDS
        assert p["tldr"].rstrip("….").split()[-1] in p["abstract"]  # taken from the abstract


def test_rank_json_gives_each_pick_its_tldr(tmp_path, database: str):
    env = mail_env(tmp_path, database)
    result = CliRunner().invoke(cli, ["rank", "--day", "2026-11-20", "--json"], env=env)
    assert result.exit_code == 0, result.output
    picks = [pick for rows in json.loads(result.output).values() for pick in rows]
    assert picks and all(isinstance(p["tldr"], str) and p["tldr"] for p in picks)


def test_the_mail_shows_the_tldr_under_each_title_in_place_of_the_abstract():
    paper = Paper(
        id="2611.00002",
        title="Decision-Aware Query Routing for LLMs",
        abstract=" ".join([BACKGROUND, CLAIM, RESULT]),
        day=date(2026, 11, 20),
    )
    sub = Subscriber(id="ann", email="ann@example.org", keywords=("query routing",))
    picks = [Ranked(paper, 0.7, ("query routing",))]
    digest = render.render(sub, date(2026, 11, 20), picks, Links("mailto:digest@example.org"))
    claim = "We propose decision-aware query routing"
    for part in (digest.text, digest.html):
        assert claim in part
        assert "remarkable progress" not in part  # the background stays behind the link
        assert part.index(paper.title) < part.index(claim)
