"""ONNX Runtime against PyTorch for the bundled all-MiniLM-L6-v2, in one process.

The model is exported from the installed package's weights (torch.onnx, no network) into a
temporary folder, once plainly and once with ONNX Runtime's BERT fusions, and run with two
threads, as PyTorch is. Prints, for abstracts (batches of 16) and keyphrase candidates (batches
of 256): seconds (best of 2) for PyTorch through sentence-transformers and for each ONNX model,
the speed ratio and the lowest cosine between their vectors. digest adopts ONNX only if its
vectors match (cosine >= 0.999) and it is faster.

Needs onnxruntime and onnx, which digest itself does not: pip install -e '.[bench]'.
Run: .venv/bin/python benchmarks/onnx_bench.py [--papers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from digest import sources  # noqa: E402
from digest.ranking import keyphrases  # noqa: E402
from digest.ranking.embed import MiniLM, normalize  # noqa: E402

LISTINGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv_daily" / "raw_daily_listings"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export(model: MiniLM, folder: Path) -> dict[str, Path]:
    """The transformer of the sentence-transformers model as ONNX: plain and with BERT fusions."""
    import torch
    from onnxruntime.transformers import optimizer

    bert = model.model[0].auto_model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    example = model.model.tokenizer(
        ["an example", "a longer example text"], padding=True, return_tensors="pt"
    )
    plain = folder / "minilm.onnx"
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    torch.onnx.export(
        LastHiddenState(),
        tuple(example[name] for name in INPUTS),
        str(plain),
        input_names=list(INPUTS),
        output_names=["last_hidden_state"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    fused = folder / "minilm-fused.onnx"
    optimizer.optimize_model(str(plain), model_type="bert", num_heads=12, hidden_size=384).save_model_to_file(
        str(fused)
    )
    return {"ONNX Runtime": plain, "ONNX Runtime, BERT fusions": fused}


def onnx_encoder(model: MiniLM, path: Path) -> Callable[[list[str], int], np.ndarray]:
    """Mean-pooled, normalized embeddings from the ONNX model (as sentence-transformers pools)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    tokenizer, limit = model.model.tokenizer, model.model.max_seq_length

    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts])
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i].strip() for i in rows],
                padding=True,
                truncation=True,
                max_length=limit,
                return_tensors="np",
            )
            (hidden,) = session.run(None, {name: batch[name].astype(np.int64) for name in INPUTS})
            mask = batch["attention_mask"][..., None].astype(np.float32)
            out[rows] = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
        return normalize(out)

    return encode


def best_of_two(run: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    times = []
    for _ in range(2):
        start = time.perf_counter()
        vectors = run()
        times.append(time.perf_counter() - start)
    return min(times), vectors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=300)
    args = parser.parse_args()
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        print("skipped: onnxruntime and onnx are not installed (pip install -e '.[bench]')")
        return 0
    files = sorted(LISTINGS.glob("*.jsonl"))
    if not files:
        print(f"skipped: no listings under {LISTINGS}")
        return 0
    papers = [p for f in files for p in sources.read_file(f).papers][: args.papers]
    texts = [p.text for p in papers]
    phrases = sorted({c.phrase for t in texts for c in keyphrases.candidates(t)})[: 10 * len(texts)]
    model = MiniLM(progress=False)
    model.encode(["load the model"])
    with tempfile.TemporaryDirectory() as tmp:
        onnx_models = {name: onnx_encoder(model, path) for name, path in export(model, Path(tmp)).items()}
        print(f"ONNX Runtime against PyTorch ({model.model_id}, 2 threads), best of 2 runs")
        print(f"   {'texts':<30} {'runtime':<32} {'seconds':>8} {'vs PyTorch':>11} {'lowest cosine':>14}")
        for what, data, batch in (
            (f"{len(texts)} abstracts", texts, 16),
            (f"{len(phrases)} phrases", phrases, 256),
        ):
            torch_s, reference = best_of_two(lambda data=data: model.encode(data))
            print(f"   {what:<30} {'PyTorch (sentence-transformers)':<32} {torch_s:>8.1f} {'1.00x':>11}")
            for name, encode in onnx_models.items():
                encode(data[:batch], batch)  # warm up
                onnx_s, vectors = best_of_two(
                    lambda data=data, encode=encode, batch=batch: encode(data, batch)
                )
                cosine = float((vectors * reference).sum(axis=1).min())
                print(f"   {'':<30} {name:<32} {onnx_s:>8.1f} {torch_s / onnx_s:>10.2f}x {cosine:>14.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
