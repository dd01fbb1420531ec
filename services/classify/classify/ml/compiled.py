"""The sentence model's forward pass as one TorchScript graph: transformer, mean pooling, normalisation.

Why: in eager mode every layer of the model is a Python call, so each forward pass takes and gives back
the GIL dozens of times. Beside the service's other Python threads (event loop, database, language
detection) the model workers queue for the GIL and spin: on the 2-core development machine, two eager
workers next to one pure-Python thread at 30 % duty fell from ~315 to ~200 texts/s and burned 18 CPU-s
per 2,048 texts instead of 12.8. A traced graph runs in C++ with the GIL released from start to end:
257-271 texts/s and 14.7-15.5 CPU-s under the same disturbance.

Only the common sentence-transformers layout is compiled (Transformer → mean Pooling → optional
Normalize). Anything else, or a graph whose output differs from `model.encode` on the probe texts, is
refused and the caller keeps the eager model.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# Texts of different lengths and batch shapes (one of them past the 256-token limit) on which the graph
# must give what `encode` gives.
PROBE_TEXTS = [
    "ok", "refund please", "My card was charged twice for the same order and nobody answers my e-mails.",
    "Die App stürzt ab, sobald ich die Einstellungen öffne.", "parcel " * 300,
]
MAX_DIFFERENCE = 1e-4


# Batches of PROBE_TEXTS a converted graph is checked on: alone and padded beside others, past the limit too.
PROBE_BATCHES = ([0], [4], [0, 1, 2], [2, 3, 4, 0])


def probe_pairs(encode: Callable[[list[list[int]]], np.ndarray], model: SentenceTransformer,
                token_ids: TokenIds) -> list[tuple[np.ndarray, np.ndarray]]:
    """(what `encode` gives, what `model.encode` gives) for each of the PROBE_BATCHES."""
    expected = model.encode(PROBE_TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    probe_ids = token_ids(PROBE_TEXTS)
    return [(encode([probe_ids[i] for i in batch]), expected[batch]) for batch in PROBE_BATCHES]


def example_inputs(token_ids: TokenIds, pad_token_id: int) -> tuple[Any, Any]:
    """Two probe texts as torch tensors (ids, mask) to trace or export the model with."""
    import torch

    ids, mask = padded(token_ids(PROBE_TEXTS[:2]), pad_token_id)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def padded(token_ids: list[list[int]], pad_token_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The batch as a rectangle: token ids padded to the longest row, and the attention mask."""
    width = max(len(row) for row in token_ids)
    ids = np.full((len(token_ids), width), pad_token_id, dtype=np.int64)
    mask = np.zeros((len(token_ids), width), dtype=np.int64)
    for i, row in enumerate(token_ids):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return ids, mask

class CompiledEncoder:
    """Encodes already tokenised texts (lists of token ids) to unit vectors. Safe to call from several threads."""

    def __init__(self, module: Any, pad_token_id: int) -> None:
        self._module = module
        self._pad_token_id = pad_token_id

    def encode(self, token_ids: list[list[int]]) -> np.ndarray:
        import torch

        ids, mask = padded(token_ids, self._pad_token_id)
        with torch.inference_mode():
            return self._module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()


TokenIds = Callable[[list[str]], list[list[int]]]  # texts -> token ids, truncated as the model needs


def compile_encoder(model: SentenceTransformer, token_ids: TokenIds,
                    pad_token_id: int | None) -> CompiledEncoder | None:
    """A TorchScript version of `model`, checked against `model.encode`; None if the model does not qualify."""
    try:
        return _compile(model, token_ids, pad_token_id)
    except Exception as exc:  # a model this code does not know how to trace: eager mode still works
        log.warning("model not compiled, running it eagerly", extra={"reason": f"{type(exc).__name__}: {exc}"})
        return None


def mean_pooled_module(model: SentenceTransformer) -> Any:
    """The model as one torch module (input_ids, attention_mask) -> unit vectors, or None for a layout other
    than Transformer → mean Pooling → optional Normalize."""
    import torch

    modules = list(model)
    layout = [type(module).__name__ for module in modules]
    if layout not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        log.info("model not compiled: unusual layout", extra={"layout": layout})
        return None
    pooling = modules[1]
    mean = getattr(pooling, "pooling_mode", None) == "mean" or getattr(pooling, "pooling_mode_mean_tokens", False)
    backbone = getattr(modules[0], "auto_model", None)
    if not mean or backbone is None:
        log.info("model not compiled: not a mean-pooled Hugging Face transformer")
        return None

    class MeanPooledTransformer(torch.nn.Module):
        def __init__(self, backbone: torch.nn.Module) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return MeanPooledTransformer(backbone)


def _compile(model: SentenceTransformer, token_ids: TokenIds, pad_token_id: int | None) -> CompiledEncoder | None:
    import torch

    module = mean_pooled_module(model)
    if module is None or pad_token_id is None:
        return None

    ids, mask = example_inputs(token_ids, pad_token_id)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python values in the graph, checked below
        traced = torch.jit.trace(module.eval(), (ids, mask), check_trace=False)
        compiled = CompiledEncoder(torch.jit.freeze(traced.eval()), pad_token_id)

    for got, expected in probe_pairs(compiled.encode, model, token_ids):
        difference = float(np.abs(got - expected).max())
        if difference > MAX_DIFFERENCE:
            log.warning("model not compiled: traced output differs", extra={"difference": difference})
            return None
    return compiled
