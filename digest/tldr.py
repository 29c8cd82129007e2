"""One sentence saying what a paper does, picked from its abstract and shortened: its TL;DR.

    tldr(title, abstract)
        sentences = split(abstract)                   our own splitter ("e.g.", "et al.", 3.5, J. Smith)
        score(s)  = WEIGHTS . features(s)             position, cue phrases ("we propose"), length,
                                                      overlap with the title and the other sentences
        best      = the highest-scoring sentence
        return compress(best)                         "In this paper, we ..." -> "We ..."; past 40 words:
                                                      parentheses, then a trailing clause, then a cut

The weights are a ridge regression of each (compressed) sentence's ROUGE-1 against the gold TL;DRs
of SciTLDR-A's train split, in the features' own units (`benchmarks/tldr_bench.py --fit` fits
them again and prints them; its table is on the dev split). The model's sentence vectors were
measured as extra features and added nothing (+0.1 ROUGE-1, within noise), so a TL;DR needs no
model pass: it is computed where it is shown, in well under a millisecond, and never goes stale.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from .text import ANY_MATH, one_line

MAX_WORDS = 40  # a TL;DR past this is shortened: parentheses, a trailing clause, then a cut
MAX_CHARS = 300  # and never longer than this (a text without spaces: CJK, a pasted formula)

# --- sentences ------------------------------------------------------------------------------------

# words that end with a period but rarely end a sentence (lower case, without the period)
_ABBREVIATIONS = frozenset(
    """e.g i.e eg ie al fig figs eq eqs sec secs tab ref refs vs cf approx resp no nos vol pp ch app
    appx thm lem def prop dr mr ms prof st jr inc ltd co corp viz w.r.t wrt a.k.a aka esp incl
    max min avg u.s u.k ph.d m.sc etc""".split()  # noqa: SIM905 - a word list reads best as words
)
_SOFT = frozenset({"etc", "resp", "incl", "inc", "ltd", "co", "corp"})  # may still end one
# words that open a sentence, so "... et al. We show" and "... method A. We" still split
_OPENERS = frozenset(
    """we the this these our in a an it to however finally moreover furthermore experiments
    experimental results then thus here specifically additionally further also as for on by
    with such while unlike despite although recent recently existing most many""".split()  # noqa: SIM905
)
_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s)")
_LAST_WORD = re.compile(r"(\S+)$")


def split(text: str) -> list[str]:
    """The sentences of `text`, whitespace trimmed."""
    text = " ".join(text.split())
    sentences, start = [], 0
    for m in _END.finditer(text):
        rest = text[m.end() :].lstrip()
        if rest and _ends_here(text, start, m, rest):
            sentences.append(text[start : m.end()].strip())
            start = m.end()
    if text[start:].strip():
        sentences.append(text[start:].strip())
    return sentences


def _ends_here(text: str, start: int, m: re.Match[str], rest: str) -> bool:
    if not (rest[0].isupper() or rest[0].isdigit() or rest[0] in "\"'(\u201c[$\\"):
        return False  # "accordingly, we ..." after a period is not told apart: no split
    if text[start : m.end()].count("(") > text[start : m.end()].count(")"):
        return False  # inside a parenthesis
    if not m.group(0).startswith("."):
        return True
    found = _LAST_WORD.search(text[: m.start() + 1])
    word = found.group(1) if found else ""
    core = word.rstrip(".!?").lstrip("(\"'[\u201c").lower()
    next_word = rest.split()[0]
    opener = next_word.lower().strip(",") in _OPENERS
    if core in ("al", "etc") and opener:
        return True  # "... et al. We show"
    shouting = len(core) > 1 and core.isalpha() and word.rstrip(".").isupper()  # "CF." is a name
    if core in _ABBREVIATIONS and core not in _SOFT and not shouting:
        return False
    if core in _SOFT and not rest[0].isupper():
        return False
    if len(core) == 1 and core.isalpha() and word[0].isupper() and rest[0].isupper():  # "J. Smith"
        return opener or not (len(next_word) <= 2 or next_word[1:2].islower())
    return True


# --- features -----------------------------------------------------------------------------------
# Their own light tokenizer and stemmer, not digest.text.words: the weights below were fitted on
# these features as they are, and a change here is a change of the fit (tldr_bench.py --fit).

_STOP = frozenset(
    """a an the of for to in on and or with by from as at is are be this that these those we our it
    its via using based towards toward into over under between than can which their they not no
    do does how what when why new""".split()  # noqa: SIM905
)
_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_WORD = re.compile(r"\S+")


def _stem(word: str) -> str:
    for suffix in ("ations", "ation", "ings", "ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _content(text: str) -> list[str]:
    return [_stem(w) for w in _TOKEN.findall(text.lower()) if w not in _STOP and len(w) > 1]


def _words(text: str) -> int:
    return len(_WORD.findall(text))


_CUES: dict[str, re.Pattern[str]] = {
    "we_propose": re.compile(
        r"\bwe (?:\w+ ){0,2}(?:propose|present|introduce|develop|design|describe|devise|formulate)", re.I
    ),
    "we_show": re.compile(r"\bwe (?:\w+ ){0,2}(?:show|demonstrate|find|prove|observe|establish|argue)", re.I),
    "this_paper": re.compile(
        r"\b(?:in this (?:paper|work|article|study)|this (?:paper|work|article|study)|here,? we"
        r"|in this (?:note|abstract))\b",
        re.I,
    ),
    "starts_we": re.compile(r"^(?:We|Here we|Here, we)\b"),
    "we": re.compile(r"\bwe\b", re.I),
    "our": re.compile(r"\bour\b", re.I),
    "novel": re.compile(r"\b(?:novel|new|first)\b", re.I),
    "method_words": re.compile(
        r"\b(?:method|approach|framework|algorithm|model|technique|architecture|network)\b", re.I
    ),
    "results": re.compile(
        r"\b(?:outperform\w*|state[- ]of[- ]the[- ]art|improv\w+|achiev\w+|experiment\w*|results?"
        r"|empirical\w*|benchmark\w*|accuracy)\b",
        re.I,
    ),
    "background": re.compile(
        r"\b(?:recent(?:ly)?|ha(?:ve|s) (?:been|achieved|shown|become)|however|despite|although"
        r"|typically|existing|widely|popular|traditional\w*|commonly|remain\w*|challeng\w+|problem)\b",
        re.I,
    ),
    "starts_however": re.compile(r"^(?:However|But|Unfortunately|Despite|Although|While)\b"),
    "starts_connective": re.compile(
        r"^(?:Specifically|In particular|Moreover|Furthermore|Additionally|In addition|Finally|Then"
        r"|Also|Thus|Therefore|Hence|Second|Third|First)\b"
    ),
    "number": re.compile(r"\d"),
    "code": re.compile(r"\b(?:code|github|available|release)\b", re.I),
    "paren": re.compile(r"\("),
    "names_method": re.compile(r"\b(?:called|named|dubbed|termed|coined|which we call|we call)\b", re.I),
    "acronym_def": re.compile(r"\([A-Z][A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*\)"),
}
PICKER = re.compile(  # the "we propose" picker: the first sentence saying so
    r"\b(?:we (?:propose|present|introduce|show)|this paper|in this work)\b", re.I
)

FEATURES: tuple[str, ...] = (
    ("pos_rel", "is_first", "is_last", "is_second", "idx_ge3", "n_sent", "is_picker", "is_first_cue")
    + tuple(f"cue_{name}" for name in _CUES)
    + ("words", "words_sq", "over40", "under10", "title_recall", "title_recall_rel", "centrality")
    + ("centrality_rel", "title_name", "sumbasic", "sumbasic_rel", "title_precision", "title_precision_rel")
)


def features(title: str, sentences: Sequence[str]) -> list[list[float]]:
    """Each sentence's FEATURES, in the paper's context (its title, its other sentences)."""
    n = len(sentences)
    title_words = set(_content(title))
    words = [_content(s) for s in sentences]
    bags = [set(w) for w in words]
    picker = next((i for i, s in enumerate(sentences) if PICKER.search(s)), 0)
    claims = (_CUES["we_propose"], _CUES["this_paper"])
    first_cue = next((i for i, s in enumerate(sentences) if any(c.search(s) for c in claims)), -1)
    recall = [len(b & title_words) / max(1, len(title_words)) for b in bags]
    centrality = []
    for i, bag in enumerate(bags):
        others = set().union(*(bags[j] for j in range(n) if j != i))
        centrality.append(len(bag & others) / max(1, len(bag)))
    counts = Counter(w for ws in words for w in ws)
    sumbasic = []
    for ws in words:
        own = Counter(ws)
        frequent = sum((counts[w] - own[w]) / max(1, n - 1) + 2 * (w in title_words) for w in ws)
        sumbasic.append(frequent / max(1, len(ws)))
    precision = [sum(w in title_words for w in ws) / max(1, len(ws)) for ws in words]
    head = title.split(":")[0].strip()
    name = head.lower() if ":" in title and len(head.split()) <= 4 else ""  # "CODE-GEN: ..."
    rows = []
    for i, s in enumerate(sentences):
        w = _words(s)
        row = [i / max(1, n - 1), i == 0, i == n - 1, i == 1, i >= 3, min(n, 15) / 10]
        row += [i == picker, i == first_cue]
        row += [cue.search(s) is not None for cue in _CUES.values()]
        row += [w / 30, (w / 30) ** 2, w > MAX_WORDS, w < 10, recall[i], recall[i] - max(recall)]
        row += [centrality[i], centrality[i] - max(centrality), bool(name) and name in s.lower()]
        row += [sumbasic[i], sumbasic[i] - max(sumbasic), precision[i], precision[i] - max(precision)]
        rows.append([float(v) for v in row])
    return rows


# Fitted on SciTLDR-A train (benchmarks/tldr_bench.py --fit), in the features' units, scaled so the
# largest is 1 and rounded to two digits (the rounding changes no pick there). What they say: a
# sentence that shares the abstract's frequent words and the title's words without repeating the
# title, of a fair length, saying "we propose" first, is the paper's claim.
WEIGHTS: dict[str, float] = {
    "pos_rel": 0.001, "is_first": 0.08, "is_last": 0.0065, "is_second": -0.016, "idx_ge3": 0.019,
    "n_sent": -0.22, "is_picker": 0.1, "is_first_cue": 0.21, "cue_we_propose": 0.11,
    "cue_we_show": -0.034, "cue_this_paper": 0.074, "cue_starts_we": 0.059, "cue_we": 0.14,
    "cue_our": -0.025, "cue_novel": 0.11, "cue_method_words": 0.06, "cue_results": -0.009,
    "cue_background": -0.029, "cue_starts_however": -0.018, "cue_starts_connective": -0.02,
    "cue_number": -0.0063, "cue_code": -0.0063, "cue_paren": -0.027, "cue_names_method": -0.047,
    "cue_acronym_def": -0.028, "words": 0.49, "words_sq": -0.17, "over40": -0.064, "under10": -0.17,
    "title_recall": 0.51, "title_recall_rel": 0.092, "centrality": 0.41, "centrality_rel": -0.059,
    "title_name": -0.11, "sumbasic": 0.81, "sumbasic_rel": 0.18, "title_precision": -1.0,
    "title_precision_rel": -0.35,
}  # fmt: skip


def pick(title: str, sentences: Sequence[str], weights: dict[str, float] | None = None) -> int:
    """The index of the sentence most likely to say what the paper does (the first of ties)."""
    w = [(weights or WEIGHTS)[name] for name in FEATURES]
    scores = [sum(a * b for a, b in zip(w, row, strict=True)) for row in features(title, sentences)]
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


# --- shortening -----------------------------------------------------------------------------------

_LEADS = (
    (
        re.compile(r"^(?:In|Within) (?:this|the present) (?:paper|work|article|study|note),?\s+we\s+", re.I),
        "We ",
    ),
    (
        re.compile(
            r"^(?:Here|Herein|To this end|To that end|To address (?:this|these)(?: \w+)?"
            r"|To (?:tackle|solve|overcome|alleviate|mitigate) (?:this|these)(?: \w+)?|Towards this goal"
            r"|In response|Motivated by (?:this|these)(?: \w+)?),?\s+we\s+",
            re.I,
        ),
        "We ",
    ),
    (re.compile(r"^(?:In|Within) (?:this|the present) (?:paper|work|article|study),?\s+", re.I), ""),
    (
        re.compile(
            r"^(?:Specifically|In particular|Concretely|Therefore|Thus|Hence|Consequently|Moreover"
            r"|Furthermore|Additionally|In addition|Finally|However|Overall|Inspired by this|As a result"
            r"|First|Second|Third|Then|In fact|Indeed),\s+",
            re.I,
        ),
        "",
    ),
)
_PARENTHESES = re.compile(r"\s*\([^()]*\)")
_CLAUSE = re.compile(
    r"(?:;\s|\s[\u2014\u2013]\s|\s--\s|,\s(?:which|where|while|whereas|thus|thereby|and thus|allowing"
    r"|enabling|making|leading|resulting|as well as|such as|including|e\.g\.|i\.e\.|achieving|yielding"
    r"|outperforming|using)\b|:\s)"
)


def compress(sentence: str, limit: int = MAX_WORDS) -> str:
    """`sentence` without its lead-in ("In this paper, we" -> "We"), and when still past `limit`
    words without parentheses, then cut at the last clause that leaves 8 to `limit` words, then
    cut at `limit` words with an ellipsis. Math ($...$, \\(...\\), ...) counts as one word and is
    never cut into or stripped of its parentheses."""
    masked, formulas = _masked(sentence)
    out = _shortened(masked, limit)
    for i, formula in enumerate(formulas):
        out = out.replace(f"\ue000{i}\ue001", formula)
    if len(out) > MAX_CHARS:
        out = out[:MAX_CHARS].rsplit(" ", 1)[0] if " " in out[:MAX_CHARS] else out[:MAX_CHARS]
        out = out.rstrip(" ,;:.") + "…"
    return out


def _masked(text: str) -> tuple[str, list[str]]:
    """`text` with each formula replaced by a placeholder word, and the formulas."""
    formulas: list[str] = []

    def hide(m: re.Match[str]) -> str:
        formulas.append(m.group(0))
        return f"\ue000{len(formulas) - 1}\ue001"

    return ANY_MATH.sub(hide, text.replace("\ue000", "").replace("\ue001", "")), formulas


def _shortened(sentence: str, limit: int) -> str:
    out = sentence
    for lead, replacement in _LEADS:
        shorter = lead.sub(replacement, out, count=1)
        if shorter != out:
            out = shorter[:1].upper() + shorter[1:]
            break
    if _words(out) > limit:
        out = _PARENTHESES.sub("", out)
    if _words(out) > limit:
        heads = [out[: m.start()] for m in _CLAUSE.finditer(out)]
        fitting = [h for h in heads if 8 <= _words(h) <= limit]
        if fitting:
            out = fitting[-1].rstrip(" ,;:") + "."
    if _words(out) > limit:
        out = " ".join(out.split()[:limit]).rstrip(" ,;:.") + "…"
    return out


@lru_cache(maxsize=4096)
def tldr(title: str, abstract: str) -> str:
    """The paper's TL;DR: its best sentence, shortened; "" without an abstract."""
    sentences = split(one_line(abstract))
    if not sentences:
        return ""
    return compress(sentences[pick(one_line(title), sentences)])
