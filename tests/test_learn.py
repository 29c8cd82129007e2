"""Votes shape each subscriber's ranking: from the first few, never burying what they wrote."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SUBSCRIBERS

from digest.cli import cli
from digest.models import Paper, Subscriber, paper_identity
from digest.ranking import learn, rank
from digest.ranking.embed import HashingEmbedder, normalize
from digest.ranking.features import featurize
from digest.ranking.ranker import Ranker
from digest.ranking.signals import History

EMB = HashingEmbedder()
DAY = date(2026, 11, 20)


def _paper(title: str, abstract: str) -> Paper:
    return Paper(id=paper_identity(None, title), title=title, abstract=abstract, day=DAY)


TODAY = [
    _paper(
        "Diffusion models for image generation at scale", "We scale diffusion models for image generation."
    ),
    _paper("Diffusion models for robot planning", "Diffusion models plan robot arm motion in a kitchen."),
    _paper(
        "Image generation with diffusion models and guidance",
        "Guidance for diffusion models in image generation.",
    ),
    _paper("Diffusion models for audio", "Diffusion models generate speech and music."),
]
LIKED = _paper("Robot arm motion planning", "A robot arm plans motion in a kitchen with learned models.")
DISLIKED = _paper("Audio generation", "We generate speech and music audio.")
ALICE = Subscriber(id="alice", email="a@example.org", keywords=("diffusion models",), max_papers=4)


def _votes(*pairs: tuple[Paper, int]) -> learn.Votes:
    papers = [p for p, _ in pairs]
    return learn.Votes(
        paper_ids=tuple(p.id for p in papers),
        titles=tuple(p.title for p in papers),
        labels=np.array([v for _, v in pairs], dtype=np.float32),
        vectors=EMB.encode([p.text for p in papers]),
    )


def _rank(votes: learn.Votes | None, sub: Subscriber = ALICE, **kw):
    features, _ = featurize(TODAY, EMB)
    signals = {sub.id: History(votes=votes)}
    return rank.rank_subscribers([sub], features, EMB, history=signals, **kw)[sub.id]


def test_a_reader_who_never_votes_ranks_exactly_as_before():
    features, _ = featurize(TODAY, EMB)
    plain = rank.rank_subscribers([ALICE], features, EMB)["alice"]
    assert _rank(None) == plain


def test_one_up_vote_lifts_similar_papers_and_says_why():
    before = [r.paper.id for r in _rank(None, limit=0)]
    ranked = _rank(_votes((LIKED, 1)), limit=0)
    after = [r.paper.id for r in ranked]
    robot = TODAY[1].id
    assert after.index(robot) < before.index(robot)
    (lifted,) = [r for r in ranked if r.paper.id == robot]
    assert lifted.liked_like == LIKED.title


def test_a_down_vote_sinks_similar_papers_and_the_voted_paper_never_comes_back():
    before = [r.paper.id for r in _rank(None, limit=0)]
    more_audio = [replace(DISLIKED, id=f"a{i}", abstract=f"{DISLIKED.abstract} Take {i}.") for i in range(3)]
    after = [r.paper.id for r in _rank(_votes(*[(p, -1) for p in more_audio]), limit=0)]
    audio = TODAY[3].id
    assert before.index(audio) == 0 and after.index(audio) > 0
    voted_down_today = _votes((TODAY[0], -1))
    assert TODAY[0].id not in [r.paper.id for r in _rank(voted_down_today, limit=0)]


def test_one_up_vote_among_nine_down_votes_still_lifts_the_papers_like_it():
    # a broad keyword: most of the first digest is voted down, and the one paper liked is what
    # the reader wants; the day's paper like it must come first, not drown in the "not this"
    rng = np.random.default_rng(0)
    d = 64
    liked, topic = normalize(rng.normal(size=(2, d)))
    noise = lambda n, scale: scale * rng.normal(size=(n, d)) / np.sqrt(d)  # noqa: E731
    downs = normalize(topic + 0.5 * liked + noise(9, 2.4))  # the broad topic, a little like it
    votes = learn.Votes(
        tuple(f"v{i}" for i in range(10)),
        ("t",) * 10,
        np.array([1.0] + [-1.0] * 9, dtype=np.float32),
        np.vstack([liked, downs]).astype(np.float32),
    )
    like_it = normalize(liked + noise(1, 1.2))
    day = np.vstack([like_it, normalize(topic + noise(1, 1.2)), normalize(rng.normal(size=(20, d)))])
    day = day.astype(np.float32)
    (learned,) = learn.apply(
        learn.fit([votes], learn.background(day)), [votes], day, [f"p{i}" for i in range(22)]
    )
    assert learned.score.argmax() == 0 and learned.score[0] - np.sort(learned.score)[-2] > 0.2
    assert learned.score[1] < np.median(learned.score)  # the topic voted down sinks


def test_the_share_of_votes_grows_with_their_number_and_unclear_votes_never_pass_half():
    shares = [learn.share(n) for n in (0, 1, 5, 20, 100, 10_000)]
    assert shares[0] == 0 and shares == sorted(shares) and max(shares) < learn.MAX_SHARE * learn.UNCLEAR
    assert learn.share(5) == pytest.approx(0.25 * learn.UNCLEAR)
    assert learn.share(20) == pytest.approx(0.4 * learn.UNCLEAR)


def test_clear_votes_take_the_share_further_but_a_few_votes_leave_the_keywords_ahead():
    by_clarity = [learn.share(40, c) for c in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert by_clarity == sorted(by_clarity) and by_clarity[-1] == pytest.approx(learn.CLEAR_SHARE)
    # three votes, one up and two down, in perfect order: clarity at most 1 x 1 / (1 + CLEAR_HALF_AT)
    rng = np.random.default_rng(9)
    labels = np.array([1.0, -1.0, -1.0], dtype=np.float32)
    (clarity,), (_,) = learn.judge(labels, np.array([2.0, -1.0, -0.5], dtype=np.float32))
    assert clarity == pytest.approx(1 / (1 + learn.CLEAR_HALF_AT))
    assert learn.share(3, clarity) < 0.5
    # forty votes the model cannot tell apart (held-out outputs at random): keywords stay ahead
    labels = np.where(rng.random(40) > 0.5, 1.0, -1.0).astype(np.float32)
    (clarity,), (_,) = learn.judge(labels, rng.normal(size=40).astype(np.float32))
    assert learn.share(40, clarity) < 0.4


def test_a_handful_of_votes_cannot_bury_the_stated_interest():
    # five down-votes on the very topic the reader wrote down: its best paper stays in
    against = _votes(*[(replace(TODAY[0], id=f"x{i}", title=f"t{i}"), -1) for i in range(5)])
    picked = [r.paper.id for r in _rank(against)]
    assert TODAY[2].id in picked


def test_learning_is_one_batched_solve_for_many_readers():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(50, 32)).astype(np.float32)
    many = [
        learn.Votes(
            paper_ids=tuple(map(str, range(10 + i % 5))),
            titles=("t",) * (10 + i % 5),
            labels=np.where(rng.random(10 + i % 5) > 0.5, 1.0, -1.0).astype(np.float32),
            vectors=vectors[: 10 + i % 5],
        )
        for i in range(40)
    ]
    weights = learn.fit(many, learn.background(vectors)).weights
    one = learn.fit([many[3]], learn.background(vectors)).weights
    assert weights.shape == (40, 32) and np.allclose(weights[3], one[0], atol=1e-4)


def test_a_vote_changes_the_next_days_order_and_the_mail_says_why(tmp_path: Path, database: str):
    env = {
        "DIGEST_SUBSCRIBERS": str(SUBSCRIBERS),
        "DIGEST_DB": database,
        "DIGEST_STATE": str(tmp_path),
        "DIGEST_INBOX": str(tmp_path / "inbox"),
        "DIGEST_OUTBOX": str(tmp_path / "outbox"),
        "DIGEST_MODEL": "hashing",
    }
    old = tmp_path / "2026-11-19.jsonl"
    liked = [
        {"id": f"2611.0900{i}", "title": f"{LIKED.title} {i}", "abstract": f"{LIKED.abstract} Variant {i}."}
        for i in (1, 2)
    ]
    old.write_text("".join(json.dumps(p) + "\n" for p in liked))
    new = tmp_path / "2026-11-20.jsonl"
    new.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in TODAY))
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(old), str(new)], env=env).exit_code == 0

    def alice_order() -> list[dict]:
        out = runner.invoke(
            cli, ["rank", "--user", "alice", "--day", "2026-11-20", "--limit", "0", "--json"], env=env
        )
        return json.loads(out.output)["alice"]

    before = [r["title"] for r in alice_order()]
    for paper in liked:
        voted = runner.invoke(cli, ["feedback", "alice", paper["id"], "up"], env=env)
        assert voted.exit_code == 0, voted.output
    after = alice_order()
    titles = [r["title"] for r in after]
    assert titles.index(TODAY[1].title) < before.index(TODAY[1].title)
    (robot,) = [r for r in after if r["title"] == TODAY[1].title]
    assert robot["liked_like"] in {p["title"] for p in liked}
    assert not {p["title"] for p in liked} & set(titles)  # voted on: already read
    preview = runner.invoke(
        cli, ["preview", "--user", "alice", "--day", "2026-11-20", "--format", "text"], env=env
    )
    text = Path(preview.output.strip().splitlines()[-1].removeprefix("wrote ")).read_text()
    assert f"is like “{robot['liked_like']}”, which you liked." in text
    check = runner.invoke(cli, ["subscribers", "check"], env=env).output
    assert "2 votes shape their ranking (2 more, 0 less like this" in check


def _random_votes(rng: np.random.Generator, n: int, d: int, name: str = "v") -> learn.Votes:
    return learn.Votes(
        paper_ids=tuple(f"{name}{j}" for j in range(n)),
        titles=("t",) * n,
        labels=np.where(rng.random(n) > 0.6, 1.0, -1.0).astype(np.float32),
        vectors=normalize(rng.normal(size=(n, d))).astype(np.float32),
    )


def _dual_ridge(votes: learn.Votes, negatives: np.ndarray) -> np.ndarray:
    """One reader's weights the plain way, in float64: (X Xᵀ + λI) a = y, w = Xᵀ a."""
    x = np.vstack([votes.vectors, negatives]).astype(np.float64)
    y = np.concatenate(
        [np.where(votes.labels > 0, learn.UP_LABEL, votes.labels), [learn.BACKGROUND_LABEL] * len(negatives)]
    )
    return x.T @ np.linalg.solve(x @ x.T + learn.RIDGE * np.eye(len(x)), y)


def test_the_model_learns_from_the_newest_votes_and_their_weight_counts_them_all(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(learn, "MAX_VOTES", 5)
    rng = np.random.default_rng(2)
    votes, day = _random_votes(rng, 12, 16), normalize(rng.normal(size=(30, 16))).astype(np.float32)
    newest = votes.newest(5)
    assert newest.paper_ids == votes.paper_ids[-5:] and newest.earlier == set(votes.paper_ids[:-5])
    assert newest.seen == votes.seen and newest.cast == 12
    negatives = learn.background(day)
    fitted = learn.fit([votes], negatives)
    (weights,) = fitted.weights
    assert np.allclose(weights, _dual_ridge(newest, negatives), atol=1e-4)
    assert not np.allclose(weights, _dual_ridge(votes, negatives), atol=1e-2)
    (learned,) = learn.apply(fitted, [votes], day, [f"p{i}" for i in range(30)])
    assert len(learned.votes) == 5 and learned.share == learn.share(12, learned.clarity)


def test_a_paper_voted_on_before_the_newest_votes_is_never_embedded_nor_sent_again(
    store, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(learn, "MAX_VOTES", 2)
    store.add_papers([*TODAY, LIKED, DISLIKED])
    for paper, vote in ((TODAY[0], -1), (LIKED, 1), (DISLIKED, -1)):  # oldest first
        store.record_vote(ALICE.id, paper.id, vote)
    ranker = Ranker(store, EMB)
    votes = ranker.votes(ALICE)
    assert votes is not None and votes.paper_ids == (LIKED.id, DISLIKED.id)
    assert ranker.embedder.computed == 2  # the old vote's paper is not embedded
    assert TODAY[0].id in votes.seen and votes.cast == 3
    ranked = ranker.rank_all([ALICE], DAY, limit=0)[ALICE.id]
    assert ranked and TODAY[0].id not in [r.paper.id for r in ranked]


def test_the_blocked_fit_equals_a_plain_dual_ridge_solve_per_reader(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(learn, "MAX_VOTES", 1000)  # the very long history is learned from whole
    rng = np.random.default_rng(3)
    d = 24
    lengths = [1, 3, 50, 7, 20, 2, 700, 12, 5, 33, 1, 90]
    many = [_random_votes(rng, n, d, name=f"r{i}-") for i, n in enumerate(lengths)]
    negatives = learn.background(normalize(rng.normal(size=(60, d))).astype(np.float32))
    plain = np.stack([_dual_ridge(votes, negatives) for votes in many])
    for budget in (10**9, 20_000):  # everyone at once, padded to the longest; many small groups
        assert np.allclose(learn.fit(many, negatives, budget=budget).weights, plain, atol=1e-4)


def test_a_reader_with_a_huge_history_changes_no_one_elses_weights_and_groups_stay_in_budget(
    monkeypatch: pytest.MonkeyPatch,
):
    rng = np.random.default_rng(4)
    d = 16
    others = [_random_votes(rng, int(n), d, name=f"r{i}-") for i, n in enumerate(rng.integers(1, 60, 40))]
    keen = _random_votes(rng, 20 * learn.MAX_VOTES, d, name="keen-")
    negatives = learn.background(normalize(rng.normal(size=(60, d))).astype(np.float32))
    longest = learn.MAX_VOTES + len(negatives)
    budget = longest * (longest + d)  # room for one reader at the cap: the others come in groups
    solved: list[tuple[int, int]] = []  # (readers, n) of each group solved together

    def spy(group, negatives):  # noqa: ANN001, ANN202
        solved.append((len(group), max(map(len, group)) + len(negatives)))
        return solve(group, negatives)

    solve = learn._solve  # noqa: SLF001
    monkeypatch.setattr(learn, "_solve", spy)
    alone = learn.fit(others, negatives, budget=budget).weights
    assert max(m * n * (n + d) for m, n in solved) <= budget
    solved.clear()
    beside = learn.fit([*others, keen], negatives, budget=budget).weights
    assert np.allclose(beside[:-1], alone, atol=1e-5)
    assert max(m * n * (n + d) for m, n in solved) <= budget  # the keen reader padded no one
    assert max(n for _, n in solved) == learn.MAX_VOTES + len(negatives)  # and was cut to the newest
