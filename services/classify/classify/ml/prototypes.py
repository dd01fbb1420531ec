"""Nearest-prototype category classifier over the taxonomy leaves (no training step)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from classify.ml.embedding import Embedder
from classify.taxonomy import Taxonomy

TOP_K_EXAMPLES = 3  # mean of the best k example cosines: robust to one lucky near-duplicate
N_ALTERNATIVES = 3


@dataclass(frozen=True)
class CategoryPrediction:
    category: str  # leaf key, e.g. "billing/refund"
    top_level: str  # e.g. "billing"
    label: str  # leaf display name
    confidence: float  # softmax probability of `category`, 0..1
    alternatives: tuple[tuple[str, float], ...]  # top 3 (leaf key, confidence), best first


class PrototypeClassifier:
    """Scores each leaf by max(cosine to its prototype, mean top-3 cosine to its examples).

    The prototype (normalised mean) captures the leaf's overall topic; the example term rescues
    messages that match one specific phrasing that the average washes out.
    """

    def __init__(self, taxonomy: Taxonomy, embedder: Embedder, temperature: float = 0.05) -> None:
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        self.taxonomy = taxonomy
        self.temperature = temperature
        self.leaves = taxonomy.leaves()
        self.keys = [leaf.key for leaf in self.leaves]

        # One flat batch for all leaves: "name: description" first, then each example.
        texts: list[str] = []
        owner: list[int] = []
        for i, leaf in enumerate(self.leaves):
            for text in (f"{leaf.name}: {leaf.description}", *leaf.examples):
                texts.append(text)
                owner.append(i)
        self.example_embeddings = embedder.encode(texts)  # (n_examples, dim)
        self.example_owner = np.asarray(owner, dtype=np.int64)

        n_leaves = len(self.leaves)
        counts = np.bincount(self.example_owner, minlength=n_leaves)
        sums = np.zeros((n_leaves, self.example_embeddings.shape[1]), dtype=np.float32)
        np.add.at(sums, self.example_owner, self.example_embeddings)
        self.prototypes = sums / np.linalg.norm(sums, axis=1, keepdims=True)  # (n_leaves, dim)

        # Padded (n_leaves, max_count) index table so per-leaf top-k is one gather, no loops.
        max_count = int(counts.max())
        self._slots = np.full((n_leaves, max_count), -1, dtype=np.int64)
        fill = np.zeros(n_leaves, dtype=np.int64)
        for j, i in enumerate(owner):
            self._slots[i, fill[i]] = j
            fill[i] += 1
        self._k = np.minimum(counts, TOP_K_EXAMPLES).astype(np.float32)  # (n_leaves,)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Raw per-leaf similarity scores, shape (n, n_leaves)."""
        emb = np.asarray(embeddings, dtype=np.float32)
        proto_sim = emb @ self.prototypes.T  # (n, L)
        ex_sim = emb @ self.example_embeddings.T  # (n, E)
        gathered = ex_sim[:, np.maximum(self._slots, 0)]  # (n, L, max_count)
        gathered = np.where(self._slots >= 0, gathered, -np.inf)
        top = -np.sort(-gathered, axis=2)[:, :, :TOP_K_EXAMPLES]  # best k, descending
        top = np.where(np.isfinite(top), top, 0.0)  # leaves with < k examples: pad with 0
        topk_mean = top.sum(axis=2) / self._k
        return np.maximum(proto_sim, topk_mean)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """Softmax over leaves of scores / temperature, shape (n, n_leaves); rows sum to 1."""
        z = self.scores(embeddings) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, embeddings: np.ndarray) -> list[CategoryPrediction]:
        if len(embeddings) == 0:
            return []
        probs = self.probabilities(embeddings)
        order = np.argsort(-probs, axis=1)[:, :N_ALTERNATIVES]
        results: list[CategoryPrediction] = []
        for row, idx in zip(probs, order, strict=True):
            leaf = self.leaves[int(idx[0])]
            results.append(
                CategoryPrediction(
                    category=leaf.key,
                    top_level=self.taxonomy.path(leaf.key)[0].key,
                    label=leaf.name,
                    confidence=float(row[idx[0]]),
                    alternatives=tuple((self.keys[int(j)], float(row[j])) for j in idx),
                )
            )
        return results
