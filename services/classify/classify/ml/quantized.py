"""The sentence model as an int8 ONNX Runtime graph: the same transformer, mean pooling and normalisation as
`compiled.py`, with the weights of its matrix multiplications quantised to 8 bits (dynamic quantisation:
activations are quantised on the fly, per forward pass).

Each text runs through the graph on its own, never padded beside others. Dynamic quantisation takes its
activation scales from the whole input tensor, so in a padded batch a text's vector depended on its
batchmates and the padding (cosine to full precision 0.94 for "ok" batched with longer texts, 0.97 alone,
on this machine's AVX2 kernels), and a text could cross the triage boundary depending on what it was
batched with. Alone, a text always gets the same vector.

Why: measured on the 2-core development machine (AMD EPYC, AVX2, 2026-12-03) on 600 Banking77 texts of
15 tokens on average, one thread, CPU per text: 5.2 ms int8 one text at a time, against 5.7 ms for the
TorchScript graph in sorted batches of 16 and 12.6 ms for it one text at a time, which is what the
service does under live load (a few messages per consumer batch). ONNX Runtime runs a session from several
threads at once without the GIL, as the TorchScript graph does.

Where the graph comes from: it is converted from the packaged model, never downloaded. `ensure_quantized`
exports the model with `torch.onnx.export`, quantises it with `onnxruntime.quantization.quantize_dynamic`
and caches the result under `var/models/` (keyed by the model's files), so the conversion (~30 s) happens
once: beforehand (`python -m classify.ml.quantized`; the Dockerfile does), or else at the service's first start. The
converted graph is checked against `model.encode` on probe texts before use; a model this code cannot
convert, or whose graph drifts too far, runs as before (TorchScript or eager). See ADR 0009.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from classify.ml.compiled import PROBE_TEXTS, TokenIds, mean_pooled_module, padded

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# int8 weights move each vector a little: cosine to the full-precision vector on the probe texts must stay
# above this (measured: 0.979 at worst on 512 benchmark texts, 0.99+ typically); Banking77 accuracy is the
# real check (README, bench `--only accuracy`).
MIN_COSINE = 0.95
FORMAT_VERSION = "1"  # bump when the export or quantisation recipe changes, so old caches are not reused


class QuantizedEncoder:
    """Encodes already tokenised texts (lists of token ids) to unit vectors. Safe to call from several threads."""

    def __init__(self, path: Path, pad_token_id: int, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Parallelism comes from the embed workers (one forward batch each), as for the TorchScript graph.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._pad_token_id = pad_token_id

    def encode(self, token_ids: list[list[int]]) -> np.ndarray:
        """One forward pass per text (see the module docstring: a text's vector must not depend on its batch)."""
        vectors = np.concatenate([self._forward(row) for row in token_ids]) if token_ids else \
            np.zeros((0, 0), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)

    def _forward(self, row: list[int]) -> np.ndarray:
        ids, mask = padded([row], self._pad_token_id)  # one row: no padding
        vector: np.ndarray = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return vector


def model_fingerprint(model_path: str) -> str:
    """A short hash of the model's files (names and sizes: modification times change when an image copies them)."""
    digest = hashlib.sha256(FORMAT_VERSION.encode())
    root = Path(model_path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    for file in files:
        digest.update(f"{file.relative_to(root)}:{file.stat().st_size}".encode())
    if not files:
        digest.update(model_path.encode())
    return digest.hexdigest()[:16]


def cache_path(cache_dir: str | Path, model_name: str, model_path: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(model_name).name) or "model"
    return Path(cache_dir) / f"{safe}-{model_fingerprint(model_path)}-int8.onnx"


def convert(model: SentenceTransformer, token_ids: TokenIds, pad_token_id: int, target: Path) -> None:
    """Export `model` to ONNX and quantise it to int8 at `target` (written atomically)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    module = mean_pooled_module(model)
    if module is None:
        raise ValueError("not a mean-pooled Hugging Face transformer")
    example = token_ids(PROBE_TEXTS[:2])
    width = max(len(row) for row in example)
    ids = torch.tensor([row + [pad_token_id] * (width - len(row)) for row in example])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in example])
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        full = Path(scratch) / "model.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings, as in compiled.py; the result is checked after
            torch.onnx.export(
                module.eval(), (ids, mask), str(full), input_names=["input_ids", "attention_mask"],
                output_names=["embedding"], opset_version=17, dynamo=False,
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "embedding": {0: "batch"}},
            )
        quantized = Path(scratch) / "model-int8.onnx"
        quantize_dynamic(str(full), str(quantized), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(quantized, target)  # atomic: a second process converting at once never reads half a file


def ensure_quantized(model: SentenceTransformer, model_name: str, model_path: str, token_ids: TokenIds,
                     pad_token_id: int | None, cache_dir: str | Path) -> QuantizedEncoder | None:
    """The int8 encoder of `model` (converted now if not cached), checked against `model.encode`; None if the
    model does not qualify or the graph is not close enough."""
    try:
        return _ensure(model, model_name, model_path, token_ids, pad_token_id, cache_dir)
    except Exception as exc:  # the unquantised model still works
        log.warning("quantised model not used", extra={"reason": f"{type(exc).__name__}: {exc}"})
        return None


def _ensure(model: Any, model_name: str, model_path: str, token_ids: TokenIds, pad_token_id: int | None,
            cache_dir: str | Path) -> QuantizedEncoder | None:
    if pad_token_id is None:
        return None
    target = cache_path(cache_dir, model_name, model_path)
    if not target.exists():
        log.info("converting the model to int8 ONNX (once; cached)", extra={"path": str(target)})
        convert(model, token_ids, pad_token_id, target)
    encoder = QuantizedEncoder(target, pad_token_id)
    expected = model.encode(PROBE_TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    probe_ids = token_ids(PROBE_TEXTS)
    for batch in ([0], [4], [0, 1, 2], [2, 3, 4, 0]):
        got = encoder.encode([probe_ids[i] for i in batch])
        cosine = float((got * expected[batch]).sum(axis=1).min())
        if cosine < MIN_COSINE:
            log.warning("quantised model not used: too far from the original", extra={"cosine": cosine})
            return None
    return encoder


def main() -> None:
    """`python -m classify.ml.quantized`: convert the configured model's transformer parts now (`make install`
    and the Dockerfile do), so the service starts without converting."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from classify.ml.embedding import Embedder, build_embedder
    from classify.settings import ClassifySettings

    settings = ClassifySettings()
    embedder = build_embedder(settings.model_name, workers=1, quantized=True, cache_dir=settings.model_cache_dir)
    for part in getattr(embedder, "parts", [embedder]):
        if isinstance(part, Embedder):
            print(f"{part.model_name}: int8 graph {part.quantized.path if part.quantized else 'not available'}")


if __name__ == "__main__":
    main()
