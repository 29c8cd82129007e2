"""End to end with the real all-MiniLM-L6-v2 model, as cron would run it."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES, SHARED, SUBSCRIBERS, smtp_env

pytestmark = pytest.mark.integration

# Hand-labelled: which bundled sample papers belong in whose digest.
RELEVANT = {
    "alice@example.org": {
        "Latent Stitching: Training-Free Panorama Generation with Pretrained Diffusion Models",
        "Fewer Steps, Same Fidelity: Distilling Diffusion Samplers into Two Denoising Passes",
        "Text-Guided Image Editing by Inverting Rectified Flows",
        "Consistency Guidance: Classifier-Free Guidance Without the Oversaturation",
        "Video Diffusion Models as World Simulators for Robot Planning",
        "Quantized Diffusion Transformers on Mobile Devices",
    },
    "bob@example.org": {
        "Reward Shaping Without Reward Models: Pairwise Preference Optimization from Self-Critique",
        "Calibrated Reward Models Make Better Judges for Direct Preference Optimization",
        "Constitutional Self-Alignment: Aligning Language Models with Written Principles and No Human Labels",
        "On the Over-Optimization of Learned Reward Models in RLHF",
        "Preference Data Selection by Gradient Agreement",
    },
    "carol@example.org": {
        "Message Passing on Hypergraphs with Learned Incidence for Session-Based Recommendation",
        "Sparse Late Interaction for Cheap Dense Retrieval over Scientific Literature",
        "Graph Transformers Do Not Need Positional Encodings on Molecular Benchmarks",
        "Cold-Start Recommendation with Language-Model Item Profiles",
        "Temporal Graph Networks for Fraud Detection in Payment Streams",
        "Hybrid Lexical-Semantic Retrieval for Long Technical Documents",
    },
}


def _titles(message: EmailMessage) -> set[str]:
    """Paper titles listed in the plain-text part ("1. Title" lines)."""
    text = message.get_body(("plain",)).get_content()
    return {
        line.split(". ", 1)[1].strip()
        for line in text.splitlines()
        if line[:1].isdigit() and ". " in line and not line.startswith(" ")
    }


def _digest(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("digest", path=str(Path(sys.executable).parent)) or "digest"
    return subprocess.run([exe, "run"], env=env, capture_output=True, text=True, timeout=600)


def test_run_mails_each_subscriber_one_digest_of_their_interests_and_never_twice(
    tmp_path, smtp_server, database: str
):
    controller, inbox = smtp_server
    shutil.copytree(SAMPLES, tmp_path / "inbox")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "DIGEST_SUBSCRIBERS": str(SUBSCRIBERS),
        "DIGEST_DB": database,
        "DIGEST_STATE": str(tmp_path / "var"),
        "DIGEST_INBOX": str(tmp_path / "inbox"),
        "DIGEST_MODEL": "minilm",
        "DIGEST_NOW": "2026-11-20T12:00:00Z",  # past every sample subscriber's morning
    }
    env = smtp_env(env, controller.port)
    first = _digest(env)
    assert first.returncode == 0, first.stderr
    assert "Loading weights" not in first.stderr  # quiet without a terminal

    from email import message_from_bytes

    assert len(inbox.messages) == 3
    for address, relevant in RELEVANT.items():
        (message,) = inbox.to(address)
        message = message_from_bytes(message.as_bytes(), policy=policy.default)
        titles = _titles(message)
        assert titles <= relevant, f"{address} got off-topic papers: {titles - relevant}"
        assert len(titles) >= 4, f"{address} missed papers: {relevant - titles}"

    second = _digest(env)
    assert second.returncode == 0, second.stderr
    assert len(inbox.messages) == 3


def test_the_real_model_picks_only_phrases_that_occur_in_the_paper():
    from digest import sources
    from digest.ranking import keyphrases
    from digest.ranking.embed import MiniLM

    papers = [p for f in sorted(SAMPLES.glob("*.txt")) for p in sources.read_file(f).papers]
    texts = [p.text for p in papers]
    model = MiniLM(progress=False)
    found = keyphrases.extract(texts, model)
    for text, phrases in zip(texts, found, strict=True):
        assert len(phrases) == keyphrases.TOP_N
        for phrase in phrases:
            assert keyphrases.occurs_verbatim(phrase, text), (phrase, text[:80])
    shown = {p.lower() for phrases in found for p in phrases}
    assert not shown & {"phones quantize", "fidelity distilling", "imagenet surpassing", "algorithms deep"}


def test_one_pass_for_papers_and_their_phrases_gives_the_papers_embeddings_unchanged():
    from digest import sources
    from digest.ranking import keyphrases
    from digest.ranking.embed import MiniLM

    papers = [p for f in sorted(SAMPLES.glob("*.txt")) for p in sources.read_file(f).papers]
    texts = [p.text for p in papers] + ["  leading and trailing space, graph neural networks  "]
    model = MiniLM(progress=False)
    spans = [[(c.first, c.end) for c in keyphrases.candidates(t)] for t in texts]
    docs, pooled = model.encode_spans(texts, spans)
    assert (docs * model.encode(texts)).sum(axis=1).min() >= 0.9999
    for own, vectors in zip(spans, pooled, strict=True):
        assert vectors.shape == (len(own), docs.shape[1]) and np.abs(vectors).sum(axis=1).min() > 0
    # a phrase's pooled vector is nearer its own words embedded apart than another phrase's
    apart = model.encode([texts[-1][a:b] for a, b in spans[-1]])
    near = (apart @ (pooled[-1] / np.linalg.norm(pooled[-1], axis=1, keepdims=True)).T).argmax(axis=1)
    assert list(near) == list(range(len(spans[-1])))


LISTING = SHARED / "data" / "arxiv_daily" / "raw_daily_listings" / "2025-10-08.jsonl"


@pytest.mark.skipif(not LISTING.exists(), reason=f"{LISTING} not present")
def test_exclude_drops_papers_about_the_phrase_and_keeps_those_that_mention_it(tmp_path):
    # the README's alice, and her twin without the exclude
    alice = "keywords: [diffusion models, image generation]\n    timezone: Europe/Berlin"
    (tmp_path / "subscribers.yaml").write_text(
        "subscribers:\n"
        f"  - id: alice\n    email: alice@example.org\n    {alice}\n    exclude: [medical imaging]\n"
        f"  - id: twin\n    email: twin@example.org\n    {alice}\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "DIGEST_SUBSCRIBERS": str(tmp_path / "subscribers.yaml"),
        "DIGEST_DB": str(tmp_path / "digest.db"),
        "DIGEST_INBOX": str(tmp_path / "inbox"),
        "DIGEST_MODEL": "minilm",
    }
    exe = shutil.which("digest", path=str(Path(sys.executable).parent)) or "digest"
    run = functools.partial(subprocess.run, env=env, capture_output=True, text=True, timeout=900)
    assert run([exe, "ingest", str(LISTING)]).returncode == 0
    ranked = run([exe, "rank", "--day", "2025-10-08", "--limit", "0", "--json"])
    assert ranked.returncode == 0, ranked.stderr
    titles = {sid: [r["title"] for r in rows] for sid, rows in json.loads(ranked.stdout).items()}

    def has(sid: str, start: str) -> bool:
        return any(t.startswith(start) for t in titles[sid])

    about = "Discrete Diffusion Models with MLLMs for Unified Medical Multimodal Generation"
    mention = "Diffusion Models for Low-Light Image Enhancement"  # names medical imaging as one use
    assert has("twin", about) and has("twin", mention)
    assert not has("alice", about) and has("alice", mention)
    assert set(titles["alice"]) < set(titles["twin"])
