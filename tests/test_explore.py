"""Votes that speak clearly are followed, and one slot a digest asks about something different
(digest.ranking.learn.judge, digest.ranking.explore)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from digest.delivery import render
from digest.errors import ConfigError
from digest.models import Links, Paper, Subscriber, paper_identity
from digest.ranking import explore, learn, rank
from digest.ranking.embed import HashingEmbedder, normalize
from digest.ranking.features import featurize
from digest.ranking.signals import History
from digest.roster import parse_roster

DAY = date(2026, 11, 20)
TOPICS = {
    "graphs": "graph neural networks message passing over molecules and citation graphs",
    "speech": "speech recognition acoustic models transcribe spoken audio to text",
    "robots": "robot grasping manipulation policies for arms in a warehouse",
    "proteins": "protein structure prediction folding of amino acid chains",
}


def _paper(topic: str, n: int) -> Paper:
    title = f"{topic.title()} study {n}"
    abstract = f"We present learning methods: {TOPICS[topic]}. Variant {n} of our evaluation."
    return Paper(id=paper_identity(None, title), title=title, abstract=abstract, day=DAY)


PAPERS = [_paper(topic, n) for n in range(8) for topic in TOPICS]
READER = Subscriber(id="ann", email="ann@example.org", keywords=("learning methods",), max_papers=5)


@pytest.fixture(scope="module")
def features():
    return featurize(PAPERS, HashingEmbedder())[0]


def _votes(features, liked: str, disliked: tuple[str, ...], each: int = 3) -> learn.Votes:
    """Votes on the first `each` papers of each topic: up on `liked`, down on `disliked`."""
    rows = [i for i, p in enumerate(features.papers) if p.title.startswith(liked.title())][:each]
    downs = [i for i, p in enumerate(features.papers) for t in disliked if p.title.startswith(t.title())]
    rows, labels = (
        rows + downs[: each * len(disliked)],
        [1.0] * len(rows) + [-1.0] * len(downs[: each * len(disliked)]),
    )
    return learn.Votes(
        tuple(features.papers[i].id for i in rows),
        tuple(features.papers[i].title for i in rows),
        np.array(labels, dtype=np.float32),
        features.vectors[rows],
    )


def _rank(sub: Subscriber, features, votes: learn.Votes | None, **kw):
    history = {sub.id: History(votes=votes)}
    return rank.rank_subscribers([sub], features, HashingEmbedder(), history=history, **kw)[sub.id]


def test_leave_one_out_outputs_equal_refitting_without_each_vote():
    rng = np.random.default_rng(5)
    d, n = 12, 9
    x = normalize(rng.normal(size=(n, d))).astype(np.float32)
    labels = np.where(rng.random(n) > 0.4, 1.0, -1.0).astype(np.float32)
    votes = learn.Votes(tuple(f"p{i}" for i in range(n)), ("t",) * n, labels, x)
    negatives = normalize(rng.normal(size=(4, d))).astype(np.float32)
    fitted = learn.fit([votes], negatives)
    y = np.concatenate([np.where(labels > 0, learn.UP_LABEL, labels), np.full(4, learn.BACKGROUND_LABEL)])
    rows = np.vstack([x, negatives])
    held_out = []
    for i in range(n):  # the slow way: fit without vote i, ask the model about it
        keep = np.arange(len(rows)) != i
        k = rows[keep] @ rows[keep].T + learn.RIDGE * np.eye(keep.sum())
        w = rows[keep].T @ np.linalg.solve(k, y[keep])
        held_out.append(float(rows[i] @ w))
    (clarity,), (boundary,) = learn.judge(labels, np.array(held_out, dtype=np.float32))
    assert fitted.clarity[0] == pytest.approx(clarity, abs=1e-4)
    assert fitted.boundary[0] == pytest.approx(boundary, abs=1e-3)


def test_clear_votes_weigh_more_than_the_count_alone_and_mixed_ones_do_not(features):
    clear = _votes(features, "speech", ("graphs", "robots", "proteins"), each=4)
    rng = np.random.default_rng(0)
    mixed = replace(clear, labels=rng.permutation(clear.labels))  # the same papers, votes at random
    fitted = learn.fit([clear, mixed], learn.background(features.vectors))
    ids = [p.id for p in features.papers]
    sure, unsure = learn.apply(fitted, [clear, mixed], features.vectors, ids)
    by_count = learn.share(len(clear))
    assert sure.clarity > 0.4 and sure.share > by_count + 0.15
    assert unsure.clarity < 0.2 and unsure.share < by_count + 0.08
    assert sure.share <= learn.CLEAR_SHARE


def test_one_kind_of_vote_says_nothing_of_clarity():
    labels = np.array([-1.0, -1.0, -1.0], dtype=np.float32)
    (clarity,), (boundary,) = learn.judge(labels, np.array([0.1, -0.5, 0.3], dtype=np.float32))
    assert clarity == 0 and np.isnan(boundary)


def test_clear_votes_fill_the_digest_with_what_they_liked_where_the_keywords_cannot_tell(features):
    votes = _votes(features, "speech", ("graphs", "robots", "proteins"), each=4)
    reader = replace(READER, explore=False)
    liked = [r.paper.title for r in _rank(reader, features, votes)]
    plain = [r.paper.title for r in _rank(reader, features, None)]
    # four speech papers are left unvoted: the digest's first four
    assert [t.startswith("Speech") for t in liked] == [True] * 4 + [False]
    assert sum(t.startswith("Speech") for t in plain[:4]) < 4  # the vague keyword alone cannot tell


def test_a_voter_gets_one_exploration_paper_in_the_last_place_from_outside_their_usual_picks(features):
    votes = _votes(features, "speech", ("graphs",))
    usual = [r.paper.id for r in _rank(replace(READER, explore=False), features, votes)]
    picks = _rank(READER, features, votes)
    assert len(picks) == len(usual) == READER.max_papers
    assert [r.explore for r in picks] == [False] * 4 + [True]
    assert [r.paper.id for r in picks[:4]] == usual[:4]
    assert picks[-1].paper.id not in usual[:4] and picks[-1].paper.id not in votes.seen
    every = _rank(READER, features, votes, limit=0)  # every paper: the slot at the digest's last place
    assert [r.explore for r in every].index(True) == READER.max_papers - 1
    assert sum(r.explore for r in every) == 1


def test_the_slot_asks_about_the_paper_nearest_the_models_boundary(features):
    votes = _votes(features, "speech", ("graphs",))
    reader = replace(READER, explore=True)
    fitted = learn.fit([votes], learn.background(features.vectors))
    (model,) = learn.apply(fitted, [votes], features.vectors, [p.id for p in features.papers])
    every = _rank(replace(reader, explore=False), features, votes, limit=0)
    position = features.position
    pool = [position[r.paper.id] for r in every][reader.max_papers - 1 :][: explore.POOL]
    expected = min(pool, key=lambda i: (abs(model.score[i] - model.boundary), pool.index(i)))
    slot = next(r for r in _rank(reader, features, votes) if r.explore)
    assert position[slot.paper.id] == expected


def test_explore_false_turns_the_slot_off_and_a_reader_without_votes_has_it_only_if_they_ask(features):
    votes = _votes(features, "speech", ("graphs",))
    assert not any(r.explore for r in _rank(replace(READER, explore=False), features, votes))
    assert not any(r.explore for r in _rank(READER, features, None))
    asked = _rank(replace(READER, explore=True), features, None)
    assert [r.explore for r in asked][-1] and sum(r.explore for r in asked) == 1
    assert explore.wanted(READER, has_votes=True) and not explore.wanted(READER, has_votes=False)


def test_a_digest_of_one_paper_or_full_of_pins_keeps_them_and_has_no_slot(features):
    votes = _votes(features, "speech", ("graphs",))
    assert not any(r.explore for r in _rank(replace(READER, max_papers=1), features, votes))
    pinned = replace(READER, max_papers=2, always=("learning methods",))
    assert not any(r.explore for r in _rank(pinned, features, votes))


def test_the_mail_labels_the_slot_and_keeps_both_vote_links(features):
    votes = _votes(features, "speech", ("graphs",))
    picks = _rank(READER, features, votes)
    feedback = {
        r.paper.id: (f"https://d.example/more/{i}", f"https://d.example/less/{i}")
        for i, r in enumerate(picks)
    }
    links = Links(
        unsubscribe_https=None,
        unsubscribe_mailto="mailto:unsubscribe@example.org",
        archive=None,
        feedback=feedback,
    )
    mail = render.render(READER, DAY, picks, links)
    slot = picks[-1]
    more, less = feedback[slot.paper.id]
    assert mail.html.count("Something different: does it fit?") == 1
    assert mail.text.count("Something different: does it fit?") == 1
    html_card = mail.html[mail.html.index("Something different: does it fit?") :]
    assert more in html_card and less in html_card
    assert render.why_line(slot).startswith("It is outside your usual picks")


def test_explore_is_read_from_subscribers_yaml_with_the_same_one_line_errors():
    text = "subscribers:\n  - id: ann\n    email: ann@example.org\n    keywords: [x]\n    explore: {}\n"
    assert parse_roster(text.format("false")).subscribers[0].explore is False
    assert parse_roster(text.replace("    explore: {}\n", "")).subscribers[0].explore is None
    with pytest.raises(ConfigError) as info:
        parse_roster(text.format("sometimes"))
    said = str(info.value)
    assert (
        "field 'explore' (line 5): 'sometimes' must be true or false" in said and len(said.splitlines()) == 1
    )


def test_rank_json_marks_the_slot(features):
    from digest.printing import ranked_json

    votes = _votes(features, "speech", ("graphs",))
    shown = json.loads(ranked_json({"ann": _rank(READER, features, votes)}))["ann"]
    assert [p["explore"] for p in shown] == [False] * 4 + [True]
