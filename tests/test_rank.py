from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from digest.models import Paper, Subscriber, paper_identity
from digest.ranking import rank
from digest.ranking.embed import HashingEmbedder, normalize, text_hash
from digest.ranking.features import featurize, lexical, tokens
from digest.ranking.keyphrases import is_acronym
from digest.ranking.profile import Profile
from digest.ranking.scores import MATCH_FLOOR, _lexical_matrix, score_matrix
from digest.ranking.signals import History


def _paper(title: str, abstract: str, **kw) -> Paper:
    return Paper(id=paper_identity(None, title), title=title, abstract=abstract, day=date(2026, 11, 20), **kw)


PAPERS = [
    _paper(
        "Faster diffusion models for image generation",
        "We distill diffusion models so image generation needs two denoising steps.",
    ),
    _paper(
        "Graph neural networks for molecules",
        "Message passing graph neural networks predict molecular properties.",
    ),
    _paper(
        "Soil moisture sensors in the field",
        "Capacitive probes measure soil moisture on farms across a season.",
    ),
    _paper(
        "Diffusion priors for medical imaging",
        "A diffusion model denoises CT scans in medical imaging before segmentation.",
    ),
]


@pytest.fixture(scope="module")
def features():
    feats, _ = featurize(PAPERS, HashingEmbedder())
    return feats


def _rank(sub: Subscriber, features, exclude_ids: set[str] = frozenset(), **kw):
    ranked = rank.rank_subscribers(
        [sub], features, HashingEmbedder(), history={sub.id: History(sent_ids=exclude_ids)}, **kw
    )
    return ranked[sub.id]


SUB = Subscriber(id="alice", email="a@example.org", keywords=("diffusion models", "graph neural networks"))


def test_papers_on_the_profile_come_first_and_unrelated_ones_are_left_out(features):
    titles = [r.paper.title for r in _rank(SUB, features)]
    assert set(titles[:3]) >= {PAPERS[0].title, PAPERS[1].title}
    assert PAPERS[2].title not in titles


def test_every_pick_says_which_keywords_matched_and_has_keyphrases(features):
    top = _rank(SUB, features)[0]
    assert top.matched and set(top.matched) <= set(SUB.keywords)
    assert top.keyphrases and all(isinstance(k, str) for k in top.keyphrases)


def test_exclude_keyword_drops_a_matching_paper(features):
    sub = replace(SUB, exclude=("medical imaging",))
    assert PAPERS[3].title not in [r.paper.title for r in _rank(sub, features, limit=0)]


def test_max_papers_and_min_score_bound_the_digest(features):
    assert len(_rank(replace(SUB, max_papers=1), features)) == 1
    scores = [r.score for r in _rank(SUB, features, limit=0)]
    assert len(_rank(replace(SUB, min_score=(scores[1] + scores[2]) / 2), features)) == 2


def test_limit_zero_scores_every_paper(features):
    assert len(_rank(SUB, features, limit=0)) == len(PAPERS)


def test_papers_already_sent_are_never_ranked_again(features):
    ids = [r.paper.id for r in _rank(SUB, features, limit=0, exclude_ids={PAPERS[0].id})]
    assert PAPERS[0].id not in ids


@pytest.mark.parametrize("older", [0, 1000], ids=["few sent", "more sent than the day holds"])
def test_sent_papers_are_left_out_however_many_were_sent_before(features, older: int):
    sent = {PAPERS[0].id, PAPERS[-1].id} | {f"old-{n}" for n in range(older)}
    ids = [r.paper.id for r in _rank(SUB, features, limit=0, exclude_ids=sent)]
    assert ids and sorted(ids) == sorted(p.id for p in PAPERS[1:-1])


def test_one_square_hit_beats_brushing_every_interest():
    square = _paper("Diffusion models", "Diffusion models diffusion models for diffusion models.")
    brush = _paper("Notes", "A diffusion step, a graph, some neural networks and models in passing.")
    feats, _ = featurize([square, brush], HashingEmbedder())
    ranked = _rank(SUB, feats, limit=0)
    assert ranked[0].paper.id == square.id


def test_trending_weight_lifts_upvoted_papers():
    a = _paper("Diffusion models for audio", "Diffusion models generate audio.", upvotes=0)
    b = _paper("Diffusion models for video", "Diffusion models generate video.", upvotes=80)
    feats, _ = featurize([a, b], HashingEmbedder())
    plain = {r.paper.id: r.score for r in _rank(SUB, feats, limit=0)}
    trendy = {r.paper.id: r.score for r in _rank(replace(SUB, trending_weight=0.5), feats, limit=0)}
    assert trendy[b.id] - trendy[a.id] > plain[b.id] - plain[a.id]


def test_one_interest_cannot_take_every_slot():
    many = [
        _paper(f"Diffusion models study {i}", f"Diffusion models variant {i} improves sampling.")
        for i in range(6)
    ]
    gnn = _paper("Graph neural networks at scale", "Graph neural networks on large graphs.")
    feats, _ = featurize([*many, gnn], HashingEmbedder())
    picked = _rank(replace(SUB, max_papers=4), feats)
    assert gnn.id in [r.paper.id for r in picked]


def test_lexical_match_needs_the_whole_phrase_for_full_credit():
    toks = tokens("we study graph neural networks")
    assert lexical("graph neural network", toks, set(toks)) == 1.0
    assert lexical("neural graph", toks, set(toks)) == 0.5


def test_many_subscribers_share_one_score_matrix_and_get_their_own_picks(features):
    subs = [
        Subscriber(id="d", email="d@example.org", keywords=("diffusion models",), max_papers=1),
        Subscriber(id="g", email="g@example.org", keywords=("graph neural networks",), max_papers=1),
    ]
    ranked = rank.rank_subscribers(subs, features, HashingEmbedder())
    assert [r.paper.title for r in ranked["d"]] == [PAPERS[0].title]
    assert [r.paper.title for r in ranked["g"]] == [PAPERS[1].title]


def test_ranking_in_small_blocks_gives_every_subscriber_the_same_picks(features, monkeypatch):
    import numpy as np

    from digest.ranking.learn import Votes

    topics = ["diffusion models", "graph neural networks", "soil moisture", "medical imaging", "sensors"]
    subs = [
        Subscriber(
            id=f"s{i}",
            email=f"s{i}@example.org",
            keywords=(topics[i % 5], topics[(i * 2 + 1) % 5]),
            exclude=("medical imaging",) if i % 4 == 0 else (),
        )
        for i in range(12)
    ]
    liked = PAPERS[1]
    vote = Votes((liked.id,), (liked.title,), np.array([1.0], dtype=np.float32), features.vectors[[1]])
    signals = {"s3": History(votes=vote), "s7": History(sent_ids=frozenset({PAPERS[0].id}))}
    whole = rank.rank_subscribers(subs, features, HashingEmbedder(), history=signals, limit=0)
    monkeypatch.setattr(rank, "BLOCK_CELLS", 2 * len(PAPERS))  # two keywords, two voters a block
    assert len(list(rank._blocks(subs, {}, len(PAPERS), {"s3"}))) >= 6
    blocks = rank.rank_subscribers(subs, features, HashingEmbedder(), history=signals, limit=0)
    assert blocks == whole


def test_fast_lexical_matrix_equals_the_reference_pair_by_pair():
    import random

    rnd = random.Random(5)
    vocab = ["graph", "neural", "network", "diffusion", "model", "image", "generation", "x", "y"]
    token_lists = [tuple(tokens(" ".join(rnd.choices(vocab, k=30)))) for _ in range(40)]
    keywords = ["graph neural networks", "diffusion models", "image", "neural graph", "model model", "zzz"]
    keywords += [
        "graph zzz",
        "x y x",
        "y",
        *(" ".join(rnd.choices(vocab, k=rnd.randint(1, 3))) for _ in range(40)),
    ]
    fast = _lexical_matrix(token_lists, keywords)
    for i, toks in enumerate(token_lists):
        for j, k in enumerate(keywords):
            assert fast[i, j] == pytest.approx(lexical(k, toks, set(toks))), (i, k)


def test_the_score_is_in_0_1_and_trending_weight_is_a_true_share():
    papers = [
        _paper(f"Diffusion models paper {i}", f"Diffusion models sample images {i}.", upvotes=10 * i)
        for i in range(6)
    ]
    feats, _ = featurize(papers, HashingEmbedder())
    for w in (0.0, 0.3, 1.0):
        ranked = _rank(replace(SUB, trending_weight=w), feats, limit=0)
        assert ranked and all(0.0 <= r.score <= 1.0 for r in ranked)
        for r in ranked:
            assert r.score == pytest.approx((1 - w) * r.relevance + w * r.trending, abs=1e-3)


def test_min_score_compares_the_score_the_order_uses(features):
    scores = sorted(r.score for r in _rank(SUB, features))
    floor = (scores[0] + scores[-1]) / 2
    kept = _rank(replace(SUB, min_score=floor), features)
    assert kept and all(r.score >= floor for r in kept)
    assert len(kept) < len(scores)


def test_the_quota_holds_when_one_interest_dominates_the_day():
    crowd = [
        _paper(f"Diffusion models study {i}", f"Diffusion models for diffusion models, variant {i}.")
        for i in range(40)
    ]
    few = [
        _paper(
            f"Tabular learning survey {j}",
            f"Trees, kernels, boosting, linear models and graph neural networks compared on tables {j}.",
        )
        for j in range(5)
    ]
    feats, _ = featurize([*crowd, *few], HashingEmbedder())
    every = _rank(replace(SUB, max_papers=10), feats, limit=0)
    assert {r.paper.id for r in every[:40]} == {p.id for p in crowd}  # the crowd outranks the few
    picked = {r.paper.id for r in _rank(replace(SUB, max_papers=10), feats)}
    assert len(picked) == 10
    assert len(picked & {p.id for p in few}) == 4 and len(picked & {p.id for p in crowd}) == 6


def _profile(*own: Paper) -> Profile:
    return Profile(
        titles=tuple(p.title for p in own),
        vectors=HashingEmbedder().encode([p.text for p in own]),
        text="\n".join(p.text for p in own),
    )


MOLECULES = _paper(
    "Message passing on molecular graphs", "Graph networks predict molecular energies and bonds."
)


def test_own_papers_rank_by_nearness_and_name_the_closest_one():
    near = _paper(
        "Molecular graphs and message passing", "Message passing predicts molecular bonds and energies."
    )
    far = _paper("Rainfall in the valley", "Sensors record rainfall, wind and soil moisture on farms.")
    feats, _ = featurize([far, near], HashingEmbedder())
    profile = _profile(
        MOLECULES, _paper("Protein folding with transformers", "Attention folds protein chains.")
    )
    ranked = _rank(Subscriber(id="dana", email="d@example.org"), feats, profiles={"dana": profile})
    assert [r.paper.title for r in ranked] == [near.title]  # the far paper is not on topic
    assert ranked[0].close_to == MOLECULES.title and ranked[0].matched == ()


def test_keywords_and_own_papers_both_reach_a_digest_neither_drowning_the_other():
    # five papers square on the keyword, five near the subscriber's own paper, filler around them
    keyword_hits = [
        _paper(f"Diffusion models study {i}", f"Diffusion models denoise images, variant {i}.")
        for i in range(5)
    ]
    near_own = [
        _paper(f"Molecular message passing {i}", f"Graph networks predict molecular energies, case {i}.")
        for i in range(5)
    ]
    filler = [
        _paper(f"Field notes {i}", f"Sensors, rainfall and crops observed at site {i}.") for i in range(60)
    ]
    feats, _ = featurize([*keyword_hits, *near_own, *filler], HashingEmbedder())
    sub = Subscriber(id="dana", email="d@example.org", keywords=("diffusion models",), max_papers=6)
    ranked = _rank(sub, feats, profiles={"dana": _profile(MOLECULES)})
    by_keyword = [r for r in ranked if "diffusion models" in r.matched]
    by_own = [r for r in ranked if r.close_to == MOLECULES.title]
    assert len(by_keyword) + len(by_own) == 6
    assert 2 <= len(by_keyword) <= 4 and 2 <= len(by_own) <= 4  # each kind holds its share
    assert {r.paper.id for r in by_keyword} <= {p.id for p in keyword_hits}
    assert {r.paper.id for r in by_own} <= {p.id for p in near_own}
    # the keyword alone, or the profile alone, would fill every slot with its own kind
    assert {r.paper.id for r in _rank(sub, feats)} <= {p.id for p in keyword_hits}
    only_own = _rank(replace(sub, keywords=()), feats, profiles={"dana": _profile(MOLECULES)})
    assert {r.paper.id for r in only_own} <= {p.id for p in near_own}


class _Table:
    """An embedder that knows a few texts' vectors by heart (unknown texts are orthogonal to
    them): to make a phrase look like a keyword as a real model can."""

    model_id = "table"

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors

    def encode(self, texts: list[str]) -> np.ndarray:
        dim = len(next(iter(self.vectors.values())))
        rows = [self.vectors.get(t, [0.0] * (dim - 1) + [1.0]) for t in texts]
        return normalize(np.array(rows, dtype=np.float32))


@pytest.mark.parametrize("acronym", ["CODE-GEN", "CG", "CODEGENs"])
def test_a_keyword_is_not_matched_through_an_acronym_alone(acronym: str):
    # the model reads the acronym's letters as the keyword (cosine 1 here); the paper's words
    # and its own embedding say something else
    paper = _paper(f"{acronym}: quiz questions for students", "A tool that writes quiz questions.")
    table = _Table({"code generation": [1, 0, 0], acronym: [1, 0, 0], paper.text: [0.6, 0.8, 0]})
    cache = {text_hash(paper.text): [acronym, "quiz questions"]}
    features, _ = featurize([paper], table, cache)
    matrix = score_matrix(features, ["code generation"], table.encode(["code generation"]))
    assert matrix.evidence[0, 0] < MATCH_FLOOR
    spelled = _paper("Code generation quiz questions", "A tool that writes quiz questions.")
    table.vectors[spelled.text] = [0.6, 0.8, 0]
    features, _ = featurize([spelled], table, {text_hash(spelled.text): ["code generation"]})
    matrix = score_matrix(features, ["code generation"], table.encode(["code generation"]))
    assert matrix.evidence[0, 0] >= MATCH_FLOOR  # the words themselves still count


def test_acronyms_are_phrases_of_capitals_only():
    assert all(is_acronym(p) for p in ["GNN", "CODE-GEN", "LLMs", "GPT-4", "RAG", "COVID-19"])
    assert not any(is_acronym(p) for p in ["ImageNet", "LLaMA-2", "graph GNN", "A", "X-ray", "3D", "code"])


def test_a_keyword_that_is_the_acronym_still_matches_through_it():
    paper = _paper("RAG: quiz questions for students", "A tool that writes quiz questions.")
    table = _Table({"RAG": [1, 0, 0], "rag systems": [1, 0, 0], paper.text: [0.55, 0.83, 0]})
    features, _ = featurize([paper], table, {text_hash(paper.text): ["RAG", "quiz questions"]})
    keywords = ["RAG", "rag systems", "code generation"]
    table.vectors["code generation"] = [1, 0, 0]
    matrix = score_matrix(features, keywords, table.encode(keywords))
    assert matrix.evidence[0, 0] >= MATCH_FLOOR and matrix.evidence[1, 0] >= MATCH_FLOOR
    assert matrix.evidence[2, 0] < MATCH_FLOOR  # the same acronym says nothing of another keyword
