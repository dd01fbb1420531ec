"""The sentence model as ONNX Runtime graphs: the same transformer, mean pooling and normalisation as
`compiled.py`, at full precision (fp32, the default forward pass) or with the weights of its matrix
multiplications quantised to 8 bits (int8, `CLASSIFY_QUANTIZED`; dynamic quantisation: activations are
quantised on the fly, per forward pass).

Why fp32 in ONNX Runtime rather than TorchScript: measured on the 2-core development machine (AMD EPYC,
AVX2, 2026-12-03), 600 Banking77 texts of 15 tokens on average, one thread, CPU per text:

| forward pass | one text at a time | sorted batches of 4 | of 16 |
|---|---:|---:|---:|
| TorchScript fp32 | 11.7 ms | 6.3 ms | 5.1 ms |
| ONNX Runtime fp32 | 7.1 ms | 4.4 ms | 3.9 ms |
| ONNX Runtime int8 | 5.2 ms | | 4.4 ms (batch-dependent, see below) |

Under live load the service meets small batches (a few messages per consumer batch), where ONNX Runtime's
lighter per-operator dispatch counts most. The fp32 graph's vectors are checked against `model.encode`
(max difference 1e-4, as for TorchScript), so nothing downstream changes.

The int8 graph runs each text on its own, never padded beside others: dynamic quantisation takes its
activation scales from the whole input tensor, so in a padded batch a text's vector depended on its
batchmates and the padding (cosine to full precision 0.94 for "ok" batched with longer texts, 0.97 alone,
on this machine's AVX2 kernels), and a text could cross the triage boundary depending on its batch.

ONNX Runtime runs a session from several threads at once without the GIL, as the TorchScript graph does.

Where the graphs come from: converted from the packaged model, never downloaded. `ensure_graph` exports the
model with `torch.onnx.export`, quantises a copy with `onnxruntime.quantization.quantize_dynamic` and
caches both under `var/models/` (keyed by the model's files), so the conversion (~30 s) happens once:
beforehand (`python -m classify.ml.onnx_graphs`; `make install` and the Dockerfile do), or else at the
service's first start. A model this code cannot convert, or whose graph drifts too far, runs as before
(TorchScript or eager). See ADR 0009.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from classify.ml.compiled import MAX_DIFFERENCE, TokenIds, example_inputs, mean_pooled_module, padded, probe_pairs

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]
# int8 weights move each vector a little: cosine to the full-precision vector on the probe texts must stay
# above this (measured: 0.9726 at worst on 400 Banking77 texts and the probes, 0.993 on average); Banking77
# accuracy is the real check (README, bench `--only accuracy`).
MIN_COSINE = 0.95
FORMAT_VERSION = "2"  # bump when the export or quantisation recipe changes, so old caches are not reused


class OnnxEncoder:
    """Encodes already tokenised texts (lists of token ids) to unit vectors. Safe to call from several threads.

    `one_text_per_pass`: each text through the graph alone (the int8 graph, see the module docstring)."""

    def __init__(self, path: Path, pad_token_id: int, one_text_per_pass: bool, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Parallelism comes from the embed workers (one forward batch each), as for the TorchScript graph.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.one_text_per_pass = one_text_per_pass
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._pad_token_id = pad_token_id

    def encode(self, token_ids: list[list[int]]) -> np.ndarray:
        if not token_ids:
            return np.zeros((0, 0), dtype=np.float32)
        if self.one_text_per_pass:
            vectors = np.concatenate([self._forward([row]) for row in token_ids])
        else:
            vectors = self._forward(token_ids)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)

    def _forward(self, rows: list[list[int]]) -> np.ndarray:
        ids, mask = padded(rows, self._pad_token_id)
        vectors: np.ndarray = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return vectors


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


def cache_path(cache_dir: str | Path, model_name: str, model_path: str, precision: Precision) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(model_name).name) or "model"
    return Path(cache_dir) / f"{safe}-{model_fingerprint(model_path)}-{precision}.onnx"


def convert(model: SentenceTransformer, token_ids: TokenIds, pad_token_id: int, fp32_target: Path,
            int8_target: Path) -> None:
    """Export `model` to ONNX at `fp32_target` and a copy quantised to int8 at `int8_target` (each written
    atomically: a second process converting at once never reads half a file)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    module = mean_pooled_module(model)
    if module is None:
        raise ValueError("not a mean-pooled Hugging Face transformer")
    ids, mask = example_inputs(token_ids, pad_token_id)
    fp32_target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=fp32_target.parent) as scratch:
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
        os.replace(quantized, int8_target)
        os.replace(full, fp32_target)


def ensure_graph(model: SentenceTransformer, model_name: str, model_path: str, token_ids: TokenIds,
                 pad_token_id: int | None, cache_dir: str | Path, precision: Precision) -> OnnxEncoder | None:
    """The ONNX encoder of `model` at `precision` (converted now if not cached), checked against
    `model.encode`; None if the model does not qualify or the graph is not close enough."""
    try:
        return _ensure(model, model_name, model_path, token_ids, pad_token_id, cache_dir, precision)
    except Exception as exc:  # the TorchScript (or eager) model still works
        log.warning("ONNX graph not used", extra={"precision": precision, "reason": f"{type(exc).__name__}: {exc}"})
        return None


def _ensure(model: Any, model_name: str, model_path: str, token_ids: TokenIds, pad_token_id: int | None,
            cache_dir: str | Path, precision: Precision) -> OnnxEncoder | None:
    if pad_token_id is None:
        return None
    targets = {p: cache_path(cache_dir, model_name, model_path, p) for p in ("fp32", "int8")}
    if not targets[precision].exists():
        log.info("converting the model to ONNX (once; cached)", extra={"path": str(targets[precision])})
        convert(model, token_ids, pad_token_id, targets["fp32"], targets["int8"])
    encoder = OnnxEncoder(targets[precision], pad_token_id, one_text_per_pass=precision == "int8")
    for got, expected in probe_pairs(encoder.encode, model, token_ids):
        if precision == "fp32":
            difference = float(np.abs(got - expected).max())
            if difference > MAX_DIFFERENCE:
                log.warning("fp32 ONNX graph not used: output differs", extra={"difference": difference})
                return None
        else:
            cosine = float((got * expected).sum(axis=1).min())
            if cosine < MIN_COSINE:
                log.warning("int8 ONNX graph not used: too far from the original", extra={"cosine": cosine})
                return None
    return encoder


def main() -> None:
    """`python -m classify.ml.onnx_graphs`: convert the configured model's transformer parts now (`make install`
    and the Dockerfile do), so the service starts without converting."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from classify.ml.embedding import Embedder, build_embedder
    from classify.settings import ClassifySettings

    settings = ClassifySettings()
    # One conversion writes both graphs; the build checks the one the settings select.
    embedder = build_embedder(settings.model_name, workers=1, quantized=settings.quantized, onnx=True,
                              cache_dir=settings.model_cache_dir)
    for part in getattr(embedder, "parts", [embedder]):
        if isinstance(part, Embedder):
            graph = part.graph
            print(f"{part.model_name}: {graph.path if graph is not None else 'no ONNX graph (TorchScript)'}")


if __name__ == "__main__":
    main()
