"""TL;DR quality on SciTLDR-A (../shared/data/scitldr): tuned on train, reported on dev.

Every method gets the abstract as one string (as digest does) and digest.tldr.split cuts it into
sentences. Scored as the SciTLDR paper does: ROUGE-1/2/L F-measure (rouge-score, Porter-stemmed)
against each gold TL;DR of a paper, the best kept, averaged over papers, x100.

    first sentence       the abstract's first sentence
    "we propose" picker  the first sentence saying "we propose/present/introduce/show", "this
                         paper" or "in this work", else the first
    ours                 digest.tldr.tldr: the sentence the shipped weights score best, shortened
    ceiling              the single sentence with the best ROUGE-1 against the gold (an oracle:
                         no picker of one sentence can do better)

with the share of TL;DRs of at most 40 words and their mean length. `--fit` fits the weights again
on train (ridge regression of each shortened sentence's ROUGE-1, alpha 1 on standardized
features, as digest.tldr's were), prints them in the features' units and the 5-fold
cross-validated ROUGE-1 on train of picking by them, then scores dev with them beside the shipped
ones.

Run: .venv/bin/python benchmarks/tldr_bench.py [--fit] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from digest import tldr

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scitldr"


def load(split: str, limit: int = 0) -> list[dict]:
    rows = []
    for line in (DATA / f"{split}.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            row["abstract"] = " ".join(" ".join(row["source"]).split())
            row["title"] = " ".join((row.get("title") or "").split())
            rows.append(row)
    return rows[:limit] if limit else rows


def scorer():  # noqa: ANN201 - rouge_score's RougeScorer
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def best_of_golds(score, prediction: str, golds: Sequence[str]) -> np.ndarray:  # noqa: ANN001
    """ROUGE-1/2/L of `prediction`, each the best over the paper's gold TL;DRs, x100."""
    best = np.zeros(3)
    for gold in golds:
        s = score.score(gold, prediction)
        best = np.maximum(best, [s[k].fmeasure for k in ("rouge1", "rouge2", "rougeL")])
    return 100 * best


Method = Callable[[dict, list[str]], str]


def methods(score) -> dict[str, Method]:  # noqa: ANN001
    def first(row: dict, sentences: list[str]) -> str:
        return sentences[0]

    def picker(row: dict, sentences: list[str]) -> str:
        return next((s for s in sentences if tldr.PICKER.search(s)), sentences[0])

    def ceiling(row: dict, sentences: list[str]) -> str:
        return max(sentences, key=lambda s: best_of_golds(score, s, row["target"])[0])

    return {
        "first sentence": first,
        '"we propose" picker': picker,
        "ours (digest.tldr)": lambda row, sentences: tldr.tldr(row["title"], row["abstract"]),
        "ceiling: best single sentence": ceiling,
    }


def table(rows: list[dict], named: dict[str, Method], score) -> None:  # noqa: ANN001
    print(f"   {'method':<32} {'R-1':>6} {'R-2':>6} {'R-L':>6} {'<=40 words':>11} {'words':>6}")
    for name, method in named.items():
        scores, lengths = [], []
        for row in rows:
            sentences = tldr.split(row["abstract"])
            text = method(row, sentences) if sentences else ""
            scores.append(best_of_golds(score, text, row["target"]))
            lengths.append(len(text.split()))
        r1, r2, rl = np.mean(scores, axis=0)
        short = np.mean(np.array(lengths) <= tldr.MAX_WORDS)
        print(f"   {name:<32} {r1:>6.2f} {r2:>6.2f} {rl:>6.2f} {short:>11.1%} {np.mean(lengths):>6.1f}")


# --- fitting the weights --------------------------------------------------------------------------


def training_set(rows: list[dict], score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: ANN001
    """Each sentence's features, the ROUGE-1 of it shortened, and the paper it belongs to."""
    features, labels, papers = [], [], []
    for p, row in enumerate(rows):
        sentences = tldr.split(row["abstract"])
        if not sentences:
            continue
        features += tldr.features(row["title"], sentences)
        labels += [best_of_golds(score, tldr.compress(s), row["target"])[0] for s in sentences]
        papers += [p] * len(sentences)
    return np.array(features), np.array(labels), np.array(papers)


def ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Ridge regression on standardized features, the weights returned in the features' units."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    w = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return w / std


def picked_score(weights: np.ndarray, x: np.ndarray, y: np.ndarray, papers: np.ndarray) -> float:
    """The mean label of the sentence each paper's best score picks (the first of ties)."""
    scores = x @ weights
    total, count = 0.0, 0
    for p in np.unique(papers):
        at = np.flatnonzero(papers == p)
        total += y[at[np.argmax(scores[at])]]
        count += 1
    return total / count


def fit(train: list[dict], score) -> dict[str, float]:  # noqa: ANN001
    x, y, papers = training_set(train, score)
    folds = np.arange(papers.max() + 1) % 5
    held_out = []
    for k in range(5):
        fitted_on = folds[papers] != k
        w = ridge(x[fitted_on], y[fitted_on])
        held_out.append(picked_score(w, x[~fitted_on], y[~fitted_on], papers[~fitted_on]))
    w = ridge(x, y)
    w = w / np.abs(w).max()
    rounded = {name: float(f"{v:.2g}") for name, v in zip(tldr.FEATURES, w, strict=True)}
    print(f"\n   fitted on {len(np.unique(papers))} train papers ({len(y)} sentences); ROUGE-1 of the")
    print(f"   picks, 5-fold cross-validated on train: {np.mean(held_out):.2f}", "(one gold per paper there)")
    print("   weights (features' units, the largest 1, two digits), largest first:")
    for name, v in sorted(rounded.items(), key=lambda kv: -abs(kv[1])):
        shipped = tldr.WEIGHTS[name]
        print(f"     {name:<24} {v:+.2g}" + ("" if shipped == v else f"   (shipped {shipped:+.2g})"))
    return rounded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="fit the weights on train again and print them")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N papers of each split")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} not present")
        return 0
    score = scorer()
    dev = load("dev", args.limit)
    started = time.perf_counter()
    print(f"TL;DR on SciTLDR-A dev: {len(dev)} papers, ROUGE F x100", "(stemmed, best over a paper's golds)")
    table(dev, methods(score), score)
    if args.fit:
        refit = fit(load("train", args.limit), score)
        print("\n   dev with the weights fitted now:")
        table(dev, {"ours, refit": lambda row, s: tldr.compress(s[tldr.pick(row["title"], s, refit)])}, score)
    began = time.perf_counter()
    for row in dev:
        tldr.tldr.__wrapped__(row["title"], row["abstract"])
    per_paper = (time.perf_counter() - began) / max(1, len(dev))
    whole = time.perf_counter() - started
    print(f"\n   cost: {per_paper * 1e3:.2f} ms per paper (no model); the whole run {whole:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
