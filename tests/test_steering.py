"""Readers steer their digest: followed authors first, then always-phrases, the rest from their
arXiv categories; each says so in rank --json and the mail."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.delivery import render
from digest.errors import ConfigError
from digest.models import Paper, Subscriber, paper_identity
from digest.ranking import rank
from digest.ranking.embed import HashingEmbedder
from digest.ranking.features import featurize
from digest.ranking.signals import History
from digest.roster import parse_roster


def _paper(title: str, abstract: str, **kw) -> Paper:
    return Paper(id=paper_identity(None, title), title=title, abstract=abstract, day=date(2026, 11, 20), **kw)


PAPERS = [
    _paper("Faster diffusion models", "We distill diffusion models into two steps.", categories=("cs.CV",)),
    _paper("Diffusion for robots", "Diffusion models plan robot motion.", categories=("cs.RO", "cs.LG")),
    _paper(
        "Soil moisture sensors in the field",
        "Capacitive probes measure soil moisture across a season.",
        authors=("Léon Bottou", "Ada Lovelace"),
        categories=("physics.ao-ph",),
    ),
    _paper(
        "Crop yields from satellites",
        "We map crop yields; our Soil Moisture Index helps.",
        categories=("q-bio.QM",),
    ),
    _paper("Diffusion in the Daily Papers", "Diffusion models, a dump without categories."),
]
READER = Subscriber(id="ann", email="ann@example.org", keywords=("diffusion models",), max_papers=3)


@pytest.fixture(scope="module")
def features():
    return featurize(PAPERS, HashingEmbedder())[0]


def _titles(sub: Subscriber, features, **kw) -> list[str]:
    ranked = rank.rank_subscribers([sub], features, HashingEmbedder(), history={sub.id: History()}, **kw)
    return [r.paper.title for r in ranked[sub.id]]


def _picks(sub: Subscriber, features):
    return rank.rank_subscribers([sub], features, HashingEmbedder(), history={sub.id: History()})[sub.id]


def test_a_followed_authors_paper_comes_first_whatever_the_keywords(features):
    picks = _picks(replace(READER, authors=("Leon Bottou",)), features)
    assert picks[0].paper.title == "Soil moisture sensors in the field"
    assert picks[0].followed == "Leon Bottou"  # as the reader wrote it
    assert "is by Leon Bottou, whom you follow" in render.why_line(picks[0])
    assert all(p.followed is None for p in picks[1:])


def test_an_always_phrase_comes_right_after_followed_authors_whole_words_any_case_either_number(features):
    reader = replace(READER, authors=("L. Bottou",), always=("CROP YIELD",))
    picks = _picks(reader, features)
    titles = [p.paper.title for p in picks[:2]]
    assert titles == ["Soil moisture sensors in the field", "Crop yields from satellites"]
    assert picks[1].always == "CROP YIELD" and picks[1].followed is None
    assert "says “CROP YIELD”, which you always want" in render.why_line(picks[1])
    assert "Crop yields from satellites" not in _titles(replace(READER, always=("crop yi",)), features)


def test_pinned_papers_count_toward_max_papers_and_a_veto_still_holds(features):
    reader = replace(READER, authors=("Ada Lovelace",), always=("crop yields",), max_papers=1)
    assert _titles(reader, features) == ["Soil moisture sensors in the field"]
    sent = rank.rank_subscribers(
        [reader], features, HashingEmbedder(), history={"ann": History(sent_ids={PAPERS[2].id})}
    )["ann"]
    assert [r.paper.title for r in sent] == ["Crop yields from satellites"]  # never sent twice


def test_categories_keep_the_other_picks_to_them_and_a_paper_without_any_is_judged_by_content(features):
    everything = _titles(replace(READER, max_papers=10), features)
    assert {"Faster diffusion models", "Diffusion for robots", "Diffusion in the Daily Papers"} <= set(
        everything
    )
    robots = _titles(replace(READER, max_papers=10, categories=("cs.RO",)), features)
    assert "Faster diffusion models" not in robots
    assert {"Diffusion for robots", "Diffusion in the Daily Papers"} <= set(robots)
    group = _titles(replace(READER, max_papers=10, categories=("cs.*",)), features)
    assert {"Faster diffusion models", "Diffusion for robots"} <= set(group)
    followed = _titles(replace(READER, categories=("cs.RO",), authors=("Ada Lovelace",)), features)
    assert followed[0] == "Soil moisture sensors in the field"  # followed authors pass regardless


def test_a_reader_may_follow_authors_alone(features):
    assert _titles(Subscriber(id="bo", email="bo@example.org", authors=("Bottou, Léon",)), features) == [
        "Soil moisture sensors in the field"
    ]


YAML = """subscribers:
  - id: ann
    email: ann@example.org
    keywords: [diffusion models]
    authors: [Léon Bottou, A. Søgaard]
    always: [soil moisture]
    categories: [cs.RO, cs.*, hep-th]
"""


def test_the_new_fields_are_read_from_subscribers_yaml():
    (ann,) = parse_roster(YAML).subscribers
    assert ann.authors == ("Léon Bottou", "A. Søgaard") and ann.always == ("soil moisture",)
    assert ann.categories == ("cs.RO", "cs.*", "hep-th")


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        (
            "categories",
            "[cs.RO, robotics]",
            "field 'categories' (line 4): 'robotics' is not an arXiv category",
        ),
        ("categories", "cs.RO", None),
        ("always", "[soil moisture, 3]", "field 'always' (line 4): must be a list of strings"),
        ("authors", "['  ']", "field 'authors'"),
        ("authors", "Léon Bottou", None),
    ],
)
def test_the_new_fields_get_the_same_one_line_errors(field: str, value: str, said: str | None):
    text = f"subscribers:\n  - id: ann\n    email: ann@example.org\n    {field}: {value}\n    keywords: [x]\n"
    if said is None:
        assert parse_roster(text).subscribers[0].id == "ann"
        return
    with pytest.raises(ConfigError) as info:
        parse_roster(text)
    assert said in str(info.value) and len(str(info.value).splitlines()) == 1


def test_rank_json_and_subscribers_check_show_followed_always_and_categories(tmp_path, database: str):
    from conftest import SAMPLES

    subs = tmp_path / "subscribers.yaml"
    subs.write_text(YAML)
    env = {
        "DIGEST_SUBSCRIBERS": str(subs),
        "DIGEST_DB": database,
        "DIGEST_STATE": str(tmp_path),
        "DIGEST_INBOX": str(SAMPLES),
        "DIGEST_MODEL": "hashing",
    }
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest"], env=env).exit_code == 0
    ranked = runner.invoke(cli, ["rank", "--day", "2026-11-20", "--json"], env=env)
    assert ranked.exit_code == 0, ranked.output
    assert all({"followed", "always"} <= set(p) for p in json.loads(ranked.output)["ann"])
    check = runner.invoke(cli, ["subscribers", "check"], env=env)
    assert check.exit_code == 0, check.output
    assert "follows Léon Bottou; A. Søgaard (an initial: may match several people)" in check.output
    assert "always: soil moisture" in check.output and "categories: cs.RO, cs.*, hep-th" in check.output


def test_the_followed_author_is_named_in_the_author_line_even_past_the_first_three(features):
    paper = _paper("A paper", "We study it.", authors=("A One", "B Two", "C Three", "D Four", "Léon Bottou"))
    from digest.models import Ranked

    line = render.author_line(Ranked(paper, 0.5, followed="Leon Bottou"))
    assert line == "A One, B Two, C Three and 2 more, including Leon Bottou"
    assert render.author_line(Ranked(paper, 0.5)) == "A One, B Two, C Three and 2 more"
    first = replace(paper, authors=("Léon Bottou", "B Two", "C Three", "D Four"))
    assert "including" not in render.author_line(Ranked(first, 0.5, followed="Leon Bottou"))


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("authors", "[Bottou]", "'Bottou' has no given name: add one, or its initial"),
        ("always", "['++']", "'++' has no word of two or more letters or digits"),
        ("always", "[C]", "'C' has no word of two or more letters or digits"),
    ],
)
def test_a_steering_value_that_could_never_match_is_refused_with_what_to_do(
    field: str, value: str, said: str
):
    text = f"subscribers:\n  - id: ann\n    email: ann@example.org\n    {field}: {value}\n    keywords: [x]\n"
    with pytest.raises(ConfigError) as info:
        parse_roster(text)
    assert said in str(info.value) and "(line 4)" in str(info.value)


def test_categories_match_in_any_case_and_by_archive(features):
    lower = _titles(replace(READER, max_papers=10, categories=("cs.ro",)), features)
    assert "Diffusion for robots" in lower and "Faster diffusion models" not in lower
    archive = _titles(replace(READER, max_papers=10, categories=("cs",)), features)
    assert {"Faster diffusion models", "Diffusion for robots"} <= set(archive)


def test_a_pinned_paper_about_an_exclude_phrase_or_voted_on_stays_out(features):
    from digest.ranking.learn import Votes

    reader = replace(READER, authors=("Ada Lovelace",), exclude=("soil moisture",))
    assert "Soil moisture sensors in the field" not in _titles(reader, features)
    voted = Votes((PAPERS[2].id,), (PAPERS[2].title,), np.array([-1.0]), features.vectors[[2]])
    history = {"ann": History(votes=voted)}
    picks = rank.rank_subscribers(
        [replace(READER, authors=("Ada Lovelace",))], features, HashingEmbedder(), history=history
    )
    assert "Soil moisture sensors in the field" not in [r.paper.title for r in picks["ann"]]


def test_every_paper_with_limit_zero_starts_with_the_pins(features):
    reader = replace(READER, authors=("Ada Lovelace",), always=("crop yield",))
    ranked = rank.rank_subscribers([reader], features, HashingEmbedder(), history={"ann": History()}, limit=0)
    titles = [r.paper.title for r in ranked["ann"]]
    assert titles[:2] == ["Soil moisture sensors in the field", "Crop yields from satellites"]
    assert len(titles) == len(PAPERS)
