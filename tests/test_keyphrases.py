"""Keyphrases are noun phrases that occur in the paper, word for word: never words glued across
a clause, a sentence, a stop word or a leftover of LaTeX or markup."""

from __future__ import annotations

import numpy as np
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import sources
from digest.ranking import keyphrases
from digest.ranking.embed import HashingEmbedder, encode_spans_apart, normalize
from digest.ranking.keyphrases import occurs_verbatim

# From our sample dumps: the sentences KeyBERT's CountVectorizer glued into "phones quantize",
# "fidelity distilling" and the like, plus LaTeX, markup, acronyms and hyphens.
GLUED = (
    "Diffusion transformers set the state of the art in image generation but are too large for "
    "phones. We quantize weights to four bits and activations to eight bits."
)
TITLE = "Fewer Steps, Same Fidelity: Distilling Diffusion Samplers into Two Denoising Passes"
LATEX = (
    r"$\bf{D^3}$QE: detecting <i>fake</i> images with large-scale graph neural networks (GNNs) on ImageNet."
)


def _phrases(text: str) -> list[str]:
    return [c.phrase for c in keyphrases.candidates(text)]


def test_no_candidate_is_glued_across_a_sentence_or_clause():
    found = _phrases(GLUED)
    assert "phones quantize" not in found and "phones" in found
    assert "diffusion transformers" in found and "image generation" in found
    assert all(occurs_verbatim(p, GLUED) for p in found), found
    title = _phrases(TITLE)
    assert "fidelity distilling" not in title and "fidelity" in title
    assert "diffusion samplers" in title


def test_stop_words_never_sit_inside_a_candidate():
    found = _phrases("The state of the art in image generation is too large for the phones we own.")
    stop = keyphrases._stop_words()
    assert found and all(w.lower() not in stop for p in found for w in p.split()), found


def test_latex_and_markup_leftovers_break_a_phrase_and_never_show():
    found = _phrases(LATEX)
    assert all(not set(p) & set("$\\{}^<>/()") for p in found), found
    assert "large-scale graph neural networks" in found  # hyphenated words are words
    assert "GNNs" in found and "ImageNet" in found  # acronyms keep their capitals
    assert all(occurs_verbatim(p, LATEX) for p in found), found


def test_research_gerunds_are_nouns_and_other_ing_words_end_a_phrase():
    found = _phrases("Reinforcement learning and question answering with deep learning models improve.")
    assert {"reinforcement learning", "question answering", "deep learning models"} <= set(found), found
    found = _phrases("Networks achieving high accuracy. Distilling diffusion samplers.")
    assert "networks" in found and "diffusion samplers" in found, found
    assert not any("achieving" in p or "distilling" in p for p in found), found


def test_a_long_noun_run_keeps_its_last_four_words():
    found = _phrases("We study deep convolutional neural network architecture search.")
    assert "neural network architecture search" in found
    assert all(len(p.split()) <= keyphrases.MAX_WORDS for p in found)


def test_each_candidate_appears_once_at_its_first_occurrence():
    text = "Graph neural networks are fast. Graph Neural Networks are everywhere."
    found = keyphrases.candidates(text)
    assert [c.phrase for c in found].count("graph neural networks") == 1
    assert next(c.first for c in found if c.phrase == "graph neural networks") == 0


def test_mmr_trades_relevance_for_variety():
    vectors = normalize(np.array([[1.0, 0.0], [0.99, 0.14], [0.6, 0.8]]))
    relevance = np.array([0.9, 0.89, 0.6])
    assert keyphrases.mmr(vectors, relevance, 2, diversity=0.0) == [0, 1]
    assert keyphrases.mmr(vectors, relevance, 2, diversity=0.5) == [0, 2]
    assert keyphrases.mmr(vectors[:0], relevance[:0], 5, diversity=0.3) == []


def test_an_early_phrase_wins_a_tie():
    text = "Quantization of diffusion models. Later we discuss quantization of diffusion models again."
    emb = HashingEmbedder()
    (found,) = keyphrases.extract([text], emb, top_n=1)
    assert found and occurs_verbatim(found[0], text)


def _sample_texts() -> list[str]:
    """The texts of the papers in our sample dumps."""
    return [p.text for f in sorted((ROOT / "samples").glob("*.txt")) for p in sources.read_file(f).papers]


def _one_pass(texts: list[str]) -> int:
    """What the pass over `texts` asks a span-embedding-apart double to embed: each text and
    each of its candidates."""
    return len(texts) + sum(len(keyphrases.candidates(t)) for t in texts)


def test_every_keyphrase_of_the_sample_dumps_occurs_in_its_paper():
    texts = _sample_texts()
    emb = HashingEmbedder()
    found = keyphrases.extract(texts, emb)
    assert all(1 <= len(group) <= keyphrases.TOP_N for group in found)
    loose = [
        (p, t[:60]) for group, t in zip(found, texts, strict=True) for p in group if not occurs_verbatim(p, t)
    ]
    assert not loose
    glued = {"phones quantize", "fidelity distilling", "imagenet surpassing", "algorithms deep"}
    assert not glued & {p.lower() for group in found for p in group}


def test_texts_without_nouns_or_at_all_get_no_keyphrases():
    emb = HashingEmbedder()
    texts = ["", "the of and", "$$ {} \\\\ ..."]
    assert keyphrases.extract(texts, emb) == [[], [], []]


PIECES = st.sampled_from(
    [
        "graph",
        "neural",
        "networks",
        "the",
        "of",
        "Large-scale",
        "GNNs",
        ".",
        ",",
        ";",
        "(",
        ")",
        "$x^2$",
        "<b>",
        "</b>",
        "\\emph{",
        "}",
        "diffusion",
        "models",
        "for",
        "phones",
        "We",
        "quantize",
        "3D",
        "point",
        "clouds",
        "e.g.",
        "state-of-the-art",
        "Schrödinger",
        "equation",
        "—",
        "x",
        "42",
        "\n",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(PIECES, max_size=40), st.sampled_from([" ", "", "  "]))
def test_any_text_gives_only_contiguous_stop_word_free_phrases(pieces: list[str], glue: str):
    text = glue.join(pieces)
    stop = keyphrases._stop_words()
    for candidate in keyphrases.candidates(text):
        words = candidate.phrase.split()
        assert 1 <= len(words) <= keyphrases.MAX_WORDS
        assert occurs_verbatim(candidate.phrase, text), (candidate, text)
        assert not any(w.lower() in stop for w in words)
        assert text.lower().find(words[0].lower(), candidate.first) == candidate.first


class CountingSpans(HashingEmbedder):
    """A span embedder (each span embedded apart) that records what `encode` was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.asked += texts
        return super().encode(texts)

    def encode_spans(self, texts, spans):  # noqa: ANN001, ANN201 - the SpanEmbedder signature
        return encode_spans_apart(self, texts, spans)


def test_with_span_vectors_only_each_papers_shortlist_is_embedded_on_its_own():
    texts = _sample_texts()
    emb = CountingSpans()
    found = keyphrases.extract(texts, emb, shortlist=6)
    apart = emb.asked[_one_pass(texts) :]  # after the texts and their spans
    assert len(apart) <= 6 * len(texts) and len(set(apart)) == len(apart)
    assert all(1 <= len(group) <= keyphrases.TOP_N for group in found)
    assert all(p in apart for group in found for p in group)
    assert found == keyphrases.extract(texts, emb, shortlist=6)  # deterministic


def test_with_shortlist_zero_the_contextual_vectors_alone_rank_and_nothing_more_is_embedded():
    texts = _sample_texts()
    emb = CountingSpans()
    found = keyphrases.extract(texts, emb, shortlist=0)
    assert len(emb.asked) == _one_pass(texts)  # the pass over the texts and nothing after it
    # this double's contextual vectors are the spans embedded apart: the same picks as embedding all
    assert found == keyphrases.extract(texts, HashingEmbedder(), shortlist=None)
