"""The ONNX Runtime forward passes: converted from the packaged model into the cache; fp32 gives TorchScript's
vectors, int8 stays close to them; keyed by the model's files so another model never reuses a graph."""

from __future__ import annotations

import numpy as np
import pytest

from classify.main import shared_embedder
from classify.ml.embedding import MINILM, Embedder
from classify.ml.onnx_graphs import cache_path, model_fingerprint
from classify.settings import ClassifySettings

TEXTS = [
    "I was charged twice for the same order",
    "My card payment was declined at the shop",
    "How do I reset my password?",
    "The app crashes every time I open settings",
    "Wo ist meine Karte? Sie ist nach zwei Wochen noch nicht angekommen.",
    "refund",
]


@pytest.fixture(scope="module")
def quantized() -> Embedder:
    settings = ClassifySettings()
    return shared_embedder(MINILM, settings.embed_batch_size, 2, settings.languages, True, settings.model_cache_dir)


@pytest.fixture(scope="module")
def full_precision() -> Embedder:
    """TorchScript at full precision: the reference."""
    return shared_embedder(MINILM, 16, 2, ClassifySettings().languages, False, onnx=False)


@pytest.fixture(scope="module")
def onnx_fp32() -> Embedder:
    settings = ClassifySettings()
    return shared_embedder(MINILM, 16, 2, settings.languages, False, settings.model_cache_dir, onnx=True)


def test_quantized_graph_is_used_and_cached(quantized):
    assert quantized.graph is not None and quantized.compiled is None
    assert quantized.graph.path.is_file() and quantized.graph.one_text_per_pass
    assert quantized.graph.path.parent.name == "models"
    assert quantized.graph.path.name.endswith("-int8.onnx")


def test_fp32_graph_is_the_default_and_gives_torchscripts_vectors(onnx_fp32, full_precision):
    assert ClassifySettings().onnx_runtime and not ClassifySettings().quantized
    assert onnx_fp32.graph is not None and onnx_fp32.graph.path.name.endswith("-fp32.onnx")
    assert not onnx_fp32.graph.one_text_per_pass
    assert full_precision.graph is None and full_precision.compiled is not None
    assert np.abs(onnx_fp32.encode(TEXTS) - full_precision.encode(TEXTS)).max() < 1e-4


def test_vectors_stay_close_to_full_precision_and_keep_neighbours(quantized, full_precision):
    assert full_precision.graph is None and full_precision.compiled is not None
    q, f = quantized.encode(TEXTS), full_precision.encode(TEXTS)
    assert q.shape == f.shape == (len(TEXTS), full_precision.dimension)
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)
    cosine = (q * f).sum(axis=1)
    assert cosine.min() > 0.95, cosine
    # Each text's nearest other text under int8 is its nearest at full precision, up to near-ties ("refund"
    # is 0.340 from "charged twice" and 0.353 from "payment declined" at full precision).
    similarity = f @ f.T
    np.fill_diagonal(similarity, -1)
    quantized_similarity = q @ q.T
    np.fill_diagonal(quantized_similarity, -1)
    for text, row in enumerate(quantized_similarity):
        assert similarity[text, row.argmax()] >= similarity[text].max() - 0.02, TEXTS[text]


def test_a_texts_vector_does_not_depend_on_its_batch(quantized):
    alone = np.concatenate([quantized.encode([text]) for text in TEXTS])
    together = quantized.encode(TEXTS)
    assert np.array_equal(alone, together)


def test_cache_is_keyed_by_the_model_files(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "weights.bin").write_bytes(b"x" * 10)
    before = model_fingerprint(str(model))
    assert cache_path("var/models", str(model), str(model), "int8").name == f"model-{before}-int8.onnx"
    (model / "weights.bin").write_bytes(b"x" * 11)
    assert model_fingerprint(str(model)) != before, "other weights, other graph"
