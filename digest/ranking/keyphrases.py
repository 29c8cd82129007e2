"""Keyphrases a person would write: noun phrases that occur in the paper, ranked as KeyBERT does.

Candidates are the paper's noun phrases: maximal runs of adjectives and nouns ending in a noun,
found with a part-of-speech tagger (TextBlob's pattern tagger, bundled with the package: no
download). A run never crosses a stop word, punctuation, a sentence break or a leftover of LaTeX
or markup, so every candidate is a contiguous stretch of the text; a run longer than
MAX_WORDS keeps its last words (the head noun and what modifies it most closely). Hyphenated
words and acronyms are words; an acronym keeps its capitals ("GNN", "ImageNet").

Each distinct candidate is embedded once per batch, scored by its cosine to the paper's
embedding plus a small bonus for appearing early (titles and first sentences name the topic),
and the top ones are picked with maximal marginal relevance (MMR) so that five phrases say five
things. benchmarks/rank_quality.py measures them on Inspec and SemEval-2017 against plain
KeyBERT (whose CountVectorizer glues words across clauses: "too large for phones. We quantize"
gives "phones quantize").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from .embed import Embedder, SpanEmbedder, normalize

TOP_N = 5
MMR_DIVERSITY = 0.3
MAX_WORDS = 4
# cosine + POSITION_WEIGHT / (1 + first character / 100): a phrase in the title gets +0.1, one
# 400 characters in +0.02. Chosen on Inspec; SemEval-2017 agrees (benchmarks/rank_quality.py).
POSITION_WEIGHT = 0.1
# Candidates are ranked by their contextual vectors (pooled from the paper's own pass) and only
# the best SHORTLIST of each paper are embedded on their own: embedding candidates was most of
# the cost of a cold day. 8 keeps F1@5 within 0.01 of embedding every candidate on Inspec and
# SemEval-2017 (benchmarks/rank_quality.py) at a third of the embeddings of 12.
SHORTLIST = 8
VERSION = "np-1"  # part of the keyphrase cache key: a new extractor never reuses old phrases

_NOUN = frozenset({"NN", "NNS", "NNP", "NNPS"})
_MODIFIER = frozenset({"JJ", "JJR", "JJS", "VBN"})  # "large-scale", "pretrained"
# The tagger calls every -ing word a verb. These are nouns in research writing ("reinforcement
# learning", "question answering", "learning rate"); any other -ing word ends a phrase
# ("Distilling diffusion samplers", "networks achieving ...").
_GERUND = "VBG"
_NOUN_GERUNDS = frozenset(
    """learning training pretraining pre-training post-training fine-tuning finetuning tuning
    unlearning processing computing modeling modelling reasoning planning mining clustering matching
    tracking sampling upsampling downsampling filtering forecasting rendering editing prompting
    pruning scheduling routing encoding decoding understanding engineering programming coding
    testing networking imaging sensing parsing tagging indexing hashing ranking labeling labelling
    captioning answering grounding inpainting denoising deblurring dehazing watermarking
    fingerprinting profiling benchmarking monitoring caching streaming mapping positioning scanning
    printing manufacturing debugging logging smoothing shading blending warping matting morphing
    reading writing spelling teaching banking marketing accounting trading pricing bidding voting
    polling crowdsourcing recommending summarizing summarising translating""".split()  # noqa: SIM905 - a word list reads best as words
)
_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")  # letters and digits, hyphens inside; no markup


@cache
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


@cache
def _tagger():  # noqa: ANN202 - textblob is imported lazily (it imports nltk: ~2 s)
    from textblob.en.taggers import PatternTagger

    return PatternTagger()


@cache
def _lexicon():  # noqa: ANN202 - the tagger's own word -> tag table
    from textblob.en import lexicon

    return lexicon


def _title_case(word: str) -> bool:
    """ "Distilling", "Self-Supervised": capitals only where a title puts them (not "GNN")."""
    return all(part[:1].isupper() and part[1:].islower() for part in word.split("-") if part)


_ACRONYM = re.compile(r"(?=(?:[^A-Z]*[A-Z]){2})[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*s?")


def is_acronym(phrase: str) -> bool:
    """A phrase of acronyms only ("GNN", "CODE-GEN", "LLMs"): its embedding is the model's guess
    at the letters, not what the paper says."""
    words = phrase.split()
    return bool(words) and all(_ACRONYM.fullmatch(w) for w in words)


def _tag(word: str, tag: str) -> str:
    """The tagger's tag, except that acronyms are names, a Title Case word (a paper's title) is
    tagged as its lower case form would be (the tagger takes every capitalized word for a name)
    and the research gerunds are nouns."""
    if any(c.isupper() for c in word[1:]) and not _title_case(word):
        return "NNP"  # an acronym or a name such as GPT-4 or ImageNet, whatever the tagger guessed
    if tag in ("NNP", "NNPS") and _title_case(word):
        lower = word.lower()
        tag = _lexicon().get(lower) or ("VBG" if lower.endswith("ing") else "NN")
    if tag == _GERUND and word.lower() in _NOUN_GERUNDS:
        return "NN"
    return tag


@dataclass(frozen=True)
class Candidate:
    phrase: str  # as shown: lower case but for acronyms and inner capitals
    first: int  # character offsets of its first occurrence: text[first:end]
    end: int


def _shown(word: str) -> str:
    """Lower case, unless the word has capitals a title would not give it (GNN, ImageNet, LLaMA-2)."""
    return word.lower() if _title_case(word) or word.islower() else word


def _is_word(token: str) -> bool:
    return bool(_WORD.fullmatch(token)) and any(c.isalpha() for c in token)


def candidates(text: str, *, max_words: int = MAX_WORDS) -> list[Candidate]:
    """The noun phrases of `text`, each once (by lower case), in order of first occurrence."""
    stop = _stop_words()
    tokens: list[tuple[str, str, int]] = []  # (token, tag, start offset)
    position = 0
    for token, tag in _tagger().tag(text):
        start = text.find(token, position)
        if start < 0:  # the tagger rewrote it; treat as a break
            tokens.append(("", "", position))
            continue
        tokens.append((token, _tag(token, tag), start))
        position = start + len(token)
    found: dict[str, Candidate] = {}
    run: list[tuple[str, str, int]] = []
    for token in [*tokens, ("", "", len(text))]:  # a sentinel ends the last run
        word, tag, _ = token
        if (tag in _NOUN or tag in _MODIFIER) and _is_word(word) and word.lower() not in stop:
            run.append(token)
            continue
        while run and run[-1][1] not in _NOUN:  # a noun phrase ends in a noun
            run.pop()
        run = run[-max_words:]
        if run and not (len(run) == 1 and len(run[0][0]) < 2):  # no one-letter phrases
            end = run[-1][2] + len(run[-1][0])
            phrase = " ".join(_shown(w) for w in text[run[0][2] : end].split())  # the text's own words
            found.setdefault(phrase.lower(), Candidate(phrase, run[0][2], end))
        run = []
    return list(found.values())


def occurs_verbatim(phrase: str, text: str) -> bool:
    """The phrase's words occur in the text one after another, separated only by white space
    (any case): how every keyphrase shown to a reader relates to its paper."""
    pattern = r"(?<![^\W_])" + r"\s+".join(map(re.escape, phrase.lower().split())) + r"(?![^\W_])"
    return re.search(pattern, text.lower()) is not None


def mmr(vectors: np.ndarray, relevance: np.ndarray, top_n: int, diversity: float) -> list[int]:
    """Maximal marginal relevance (as KeyBERT): each pick maximizes
    (1 - diversity) * relevance - diversity * (its highest cosine to a phrase already picked)."""
    if not len(vectors):
        return []
    chosen = [int(np.argmax(relevance))]
    left = np.ones(len(vectors), dtype=bool)
    left[chosen[0]] = False
    closest = vectors @ vectors[chosen[0]]  # each phrase's highest cosine to the chosen ones
    while len(chosen) < min(top_n, len(vectors)):
        score = np.where(left, (1 - diversity) * relevance - diversity * closest, -np.inf)
        best = int(np.argmax(score))
        chosen.append(best)
        left[best] = False
        closest = np.maximum(closest, vectors @ vectors[best])
    return chosen


def extract(
    texts: Sequence[str], embedder: Embedder, doc_vectors: np.ndarray | None = None, **options: float | None
) -> list[list[str]]:
    """The top_n keyphrases of each text, best first (`extract_with_vectors` without the vectors)."""
    return extract_with_vectors(texts, embedder, doc_vectors, **options)[0]


def extract_with_vectors(
    texts: Sequence[str],
    embedder: Embedder,
    doc_vectors: np.ndarray | None = None,
    *,
    top_n: int = TOP_N,
    diversity: float = MMR_DIVERSITY,
    position_weight: float = POSITION_WEIGHT,
    shortlist: int | None = SHORTLIST,
) -> tuple[list[list[str]], np.ndarray]:
    """The top_n keyphrases of each text, best first, and the texts' embeddings.

    With an embedder that can pool its own token vectors (`SpanEmbedder`) and no `doc_vectors`
    given, one pass over the texts gives their embeddings and, for free, a contextual vector for
    every candidate: the `shortlist` best of each text by those are then embedded on their own
    and ranked (`shortlist=0`: none is, the contextual vectors rank them all). Otherwise, or
    with `shortlist=None`, every distinct candidate of the batch is embedded once."""
    if doc_vectors is None and shortlist is not None and isinstance(embedder, SpanEmbedder):
        found, pooled, doc_vectors = _shortlists(texts, embedder, shortlist, position_weight)
    else:
        found = [candidates(text) for text in texts]
        doc_vectors = embedder.encode(list(texts)) if doc_vectors is None else doc_vectors
        pooled = None
    if pooled is None or shortlist:  # the candidates left are embedded on their own
        distinct = list(dict.fromkeys(c.phrase for group in found for c in group))
        vectors = embedder.encode(distinct) if distinct else np.zeros((0, 1), dtype=np.float32)
        row = {phrase: i for i, phrase in enumerate(distinct)}
        pooled = [vectors[[row[c.phrase] for c in group]] for group in found]
    result = []
    for group, group_vectors, doc_vector in zip(found, pooled, doc_vectors, strict=True):
        if not group:
            result.append([])
            continue
        own = normalize(group_vectors)
        relevance = _relevance(group, own, doc_vector, position_weight)
        result.append([group[i].phrase for i in mmr(own, relevance, top_n, diversity)])
    return result, doc_vectors


BLOCK = 256  # texts whose candidates' contextual vectors are held at once (~18 MB)


def _shortlists(
    texts: Sequence[str], embedder: SpanEmbedder, shortlist: int, position_weight: float
) -> tuple[list[list[Candidate]], list[np.ndarray], np.ndarray]:
    """Each text's `shortlist` best candidates by their contextual vectors (0: all of them),
    those vectors, and the texts' embeddings, a block of texts at a time."""
    found: list[list[Candidate]] = []
    kept: list[np.ndarray] = []
    blocks = []
    for start in range(0, len(texts), BLOCK):
        block = list(texts[start : start + BLOCK])
        groups = [candidates(text) for text in block]
        docs, pooled = embedder.encode_spans(block, [[(c.first, c.end) for c in g] for g in groups])
        for group, vectors, doc in zip(groups, pooled, docs, strict=True):
            best = sorted(np.argsort(-_relevance(group, vectors, doc, position_weight))[: shortlist or None])
            found.append([group[i] for i in best])
            kept.append(vectors[best])
        blocks.append(docs)
    return found, kept, np.concatenate(blocks) if blocks else np.zeros((0, 1), dtype=np.float32)


def _relevance(
    group: Sequence[Candidate],
    vectors: np.ndarray,
    doc_vector: np.ndarray,
    position_weight: float = POSITION_WEIGHT,
) -> np.ndarray:
    """Cosine to the paper plus the bonus for appearing early."""
    first = np.array([c.first for c in group], dtype=np.float32)
    return normalize(vectors) @ doc_vector + position_weight / (1 + first / 100)
