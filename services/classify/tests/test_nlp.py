"""Tests for the classify NLP core, run against the real bundled MiniLM model (no mocks)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from classify.ml.embedding import Embedder
from classify.ml.prototypes import PrototypeClassifier
from classify.ml.sentiment import SentimentClassifier, lexicon_polarity
from classify.taxonomy import Taxonomy, load_taxonomy

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network from tests
DIM = 384
MULTILINGUAL = Path(__file__).parent / "data" / "multilingual_feedback.tsv"


def _minimal() -> dict[str, Any]:
    return {
        "categories": [
            {
                "key": "billing",
                "name": "Billing",
                "description": "Money things.",
                "children": [
                    {"key": "refund", "name": "Refund", "description": "Wants money back."},
                    {"key": "invoice", "name": "Invoice", "description": "Needs an invoice."},
                ],
            }
        ]
    }


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="module")
def category_clf(taxonomy: Taxonomy, embedder: Embedder) -> PrototypeClassifier:
    return PrototypeClassifier(taxonomy, embedder)


@pytest.fixture(scope="module")
def sentiment_clf(embedder: Embedder) -> SentimentClassifier:
    return SentimentClassifier(embedder)


# --- taxonomy ---------------------------------------------------------------------------------


def test_default_taxonomy_shape(taxonomy: Taxonomy) -> None:
    leaves = taxonomy.leaves()
    tops = [n for n in taxonomy.nodes if n.parent is None]
    assert len(tops) >= 5 and len(leaves) >= 20
    assert all(leaf.parent is not None for leaf in leaves)  # every leaf sits at level >= 2
    for key in (
        "security/account_compromise",
        "security/data_privacy",
        "technical/outage",
        "technical/data_loss",
        "billing/payment_failure",
        "billing/refund",
        "general/praise",
        "product/feature_request",
    ):
        assert taxonomy.get(key).description
    assert all(leaf.description and len(leaf.examples) >= 6 for leaf in leaves)
    assert [n.key for n in taxonomy.path("billing/refund")] == ["billing", "billing/refund"]
    with pytest.raises(KeyError):
        taxonomy.get("nope/nothing")


def test_version_is_content_hash(tmp_path: Path) -> None:
    base = _minimal()
    v1 = Taxonomy.from_dict(base).version
    assert len(v1) == 12 and v1 == Taxonomy.from_dict(copy.deepcopy(base)).version
    changed = copy.deepcopy(base)
    changed["categories"][0]["children"][0]["description"] = "Wants their money back."
    assert Taxonomy.from_dict(changed).version != v1
    # Same content through a file gives the same version as the dict.
    path = tmp_path / "tax.yaml"
    path.write_text(yaml.safe_dump(base), encoding="utf-8")
    assert load_taxonomy(path).version == v1


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["categories"][0]["children"].append(
                dict(d["categories"][0]["children"][0])
            ),
            "duplicate",
        ),
        (lambda d: d["categories"][0]["children"][1].pop("description"), "description"),
        (lambda d: d["categories"][0].pop("children"), "level"),
        (lambda d: d.pop("categories"), "categories"),
    ],
)
def test_invalid_taxonomy_raises(mutate: Any, message: str) -> None:
    data = _minimal()
    mutate(data)
    with pytest.raises(ValueError, match=message):
        Taxonomy.from_dict(data)


# --- embedding --------------------------------------------------------------------------------


def test_encode_shape_and_norm(embedder: Embedder) -> None:
    vecs = embedder.encode(["my card was refused", "great app", "where is my parcel"])
    assert embedder.dimension == DIM
    assert vecs.shape == (3, DIM) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # Paraphrases must be closer than unrelated text, or the classifiers are meaningless.
    assert float(vecs[0] @ embedder.encode(["payment declined"])[0]) > float(vecs[0] @ vecs[2])


def test_workers_encode_the_same_vectors_in_the_callers_order(embedder: Embedder) -> None:
    # Texts of mixed lengths, more than one forward batch: the workers sort them by length, so a mistake in
    # putting them back would pair a text with another's vector. Each text encoded alone is the reference.
    texts = [("word " * (i % 7 + 1)) + f"number {i}" for i in range(23)]
    alone = np.stack([embedder.encode([text])[0] for text in texts])
    parallel = Embedder(batch_size=4, workers=2)
    assert parallel.workers == 2
    np.testing.assert_allclose(parallel.encode(texts), alone, atol=1e-4)
    np.testing.assert_allclose(embedder.encode(texts), alone, atol=1e-4)


@pytest.mark.parametrize("onnx", [True, False], ids=["onnx-fp32", "torchscript"])
def test_compiled_forward_pass_gives_what_encode_gives(embedder: Embedder, onnx: bool) -> None:
    from sentence_transformers import SentenceTransformer

    from classify.ml.embedding import resolve_model_path

    if not onnx:
        embedder = Embedder(onnx=False)
    # The bundled MiniLM has the layout that converts: ONNX Runtime by default, TorchScript without it.
    assert (embedder.graph if onnx else embedder.compiled) is not None
    texts = ["refund", "Where is my parcel? It was due on Monday and the tracking page has not changed since.",
             "Ma carte a été débitée deux fois", "x,y,z"] * 5
    eager = SentenceTransformer(resolve_model_path("all-MiniLM-L6-v2"), device="cpu")
    np.testing.assert_allclose(embedder.encode(texts), eager.encode(texts, normalize_embeddings=True), atol=1e-5)


def test_a_model_of_another_layout_is_not_compiled(embedder: Embedder) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    from classify.ml.compiled import compile_encoder
    from classify.ml.embedding import resolve_model_path

    eager = SentenceTransformer(resolve_model_path("all-MiniLM-L6-v2"), device="cpu")
    cls_pooled = SentenceTransformer(modules=[eager[0], Pooling(DIM, pooling_mode="cls")], device="cpu")
    pad = eager.tokenizer.pad_token_id
    assert compile_encoder(cls_pooled, embedder.token_ids, pad) is None
    assert compile_encoder(eager, embedder.token_ids, pad) is not None


def test_forward_batches_group_texts_of_similar_token_length() -> None:
    # By characters the order would be "ok" (2), "x,y,z,q,w" (9), "a,b,c,d,e,f" (11), "understanding
    # everything" (24); by tokens it is 3, 4, 11, 13: punctuation costs a token a character.
    texts = ["x,y,z,q,w", "understanding everything", "a,b,c,d,e,f", "ok"]
    batches = Embedder(batch_size=2).forward_batches(texts)
    assert [[texts[i] for i in batch] for batch in batches] == [
        ["ok", "understanding everything"], ["x,y,z,q,w", "a,b,c,d,e,f"]]


def test_encode_empty(embedder: Embedder) -> None:
    empty = embedder.encode([])
    assert empty.shape == (0, DIM) and empty.dtype == np.float32


# --- category classifier ----------------------------------------------------------------------

# Messages written for the test, not copied from taxonomy.yaml. (text, expected leaf, strict):
# strict=False accepts the right top-level type when two sibling leaves are both plausible.
CATEGORY_CASES = [
    ("Checkout rejected my debit card three times in a row", "billing/payment_failure", True),
    (
        "I sent the headphones back a month ago and I'm still waiting for my money",
        "billing/refund",
        True,
    ),
    (
        "Nobody on my team can reach the website, it just times out with a server error",
        "technical/outage",
        False,
    ),
    (
        "Somebody signed into my account from another country and moved money out",
        "security/account_compromise",
        True,
    ),
    (
        "It would be really useful if I could set spending limits for each card",
        "product/feature_request",
        True,
    ),
    ("All my uploaded photos were deleted after the sync", "technical/data_loss", True),
    (
        "What personal information do you keep about me and who do you share it with?",
        "security/data_privacy",
        True,
    ),
    ("Wonderful product, it has made my life so much easier", "general/praise", True),
    (
        "The parcel was supposed to arrive last Friday and there is still no sign of it",
        "orders/delivery_delay",
        True,
    ),
]


@pytest.mark.parametrize(("text", "expected", "strict"), CATEGORY_CASES)
def test_category_predictions(
    category_clf: PrototypeClassifier, embedder: Embedder, text: str, expected: str, strict: bool
) -> None:
    (pred,) = category_clf.predict(embedder.encode([text]))
    if strict:
        assert pred.category == expected, pred
    else:
        assert pred.top_level == expected.split("/")[0], pred
    assert pred.top_level == pred.category.split("/")[0]


def test_category_confidences(category_clf: PrototypeClassifier, embedder: Embedder) -> None:
    texts = [t for t, _, _ in CATEGORY_CASES]
    emb = embedder.encode(texts)
    probs = category_clf.probabilities(emb)
    assert probs.shape == (len(texts), len(category_clf.taxonomy.leaves()))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    for pred, row in zip(category_clf.predict(emb), probs, strict=True):
        assert 0.0 <= pred.confidence <= 1.0
        assert pred.confidence == pytest.approx(float(row.max()), abs=1e-6)
        assert len(pred.alternatives) == 3 and pred.alternatives[0][0] == pred.category
        confs = [c for _, c in pred.alternatives]
        assert confs == sorted(confs, reverse=True)
        assert pred.label == category_clf.taxonomy.get(pred.category).name
    assert category_clf.predict(embedder.encode([])) == []


# --- sentiment --------------------------------------------------------------------------------

SENTIMENT_CASES = [
    ("This is the third time my payment failed, I'm furious", "negative"),
    ("Your courier threw my parcel over the fence and it's broken, awful service", "negative"),
    ("I've emailed support four times and got no answer, really disappointing", "negative"),
    ("How do I change my email address?", "neutral"),
    ("Can I get the invoice for my June order sent to my accountant?", "neutral"),
    ("Do you deliver to Ireland?", "neutral"),
    ("Love the new dashboard, great job", "positive"),
    ("The agent sorted my problem out in two minutes, thank you so much!", "positive"),
    ("Really impressed with the update, the app feels much faster", "positive"),
]


def test_sentiment_obvious_cases(sentiment_clf: SentimentClassifier, embedder: Embedder) -> None:
    texts = [t for t, _ in SENTIMENT_CASES]
    preds = sentiment_clf.predict(embedder.encode(texts), texts)
    got = [(t, p.label) for t, p in zip(texts, preds, strict=True)]
    assert got == SENTIMENT_CASES
    for pred in preds:
        assert 1 / 3 <= pred.score <= 1.0
        assert -1.0 <= pred.polarity <= 1.0
        if pred.label == "positive":
            assert pred.polarity > 0
        if pred.label == "negative":
            assert pred.polarity < 0


def test_sentiment_in_the_other_default_languages(sentiment_clf: SentimentClassifier, embedder: Embedder) -> None:
    # The 72 messages (tests/data) are the same six requests in twelve languages, none of them among the
    # seed examples. The English model reads other languages poorly: with English seeds only, 29 of 72
    # were right (Danish 0 of 6); with the multilingual seeds, 47.
    rows = [line.rstrip("\n").split("\t") for line in MULTILINGUAL.open(encoding="utf-8")]
    tone = ["negative", "neutral", "negative", "neutral", "positive", "negative"]  # per request, in file order
    texts = [text for _, text in rows]
    preds = sentiment_clf.predict(embedder.encode(texts), texts)
    right: dict[str, int] = {}
    for i, ((language, _), pred) in enumerate(zip(rows, preds, strict=True)):
        right[language] = right.get(language, 0) + (pred.label == tone[i % 6])
    assert right["en"] == 6
    # With the zh/ja/ko/ar seeds added for the multilingual default model, MiniLM's neighbours of a Russian
    # or Turkish message can be one of those: 2 of 6 at worst (the default model: test_multilingual.py).
    assert min(right.values()) >= 2, right
    assert sum(right.values()) >= 44, right


def test_sentiment_empty_and_mismatch(
    sentiment_clf: SentimentClassifier, embedder: Embedder
) -> None:
    assert sentiment_clf.predict(embedder.encode([]), []) == []
    with pytest.raises(ValueError):
        sentiment_clf.predict(embedder.encode(["a", "b"]), ["a"])


def test_lexicon_negation() -> None:
    assert lexicon_polarity("I am happy with it") > 0
    assert lexicon_polarity("I am not happy with it") < 0
    assert lexicon_polarity("not bad at all") > 0
    assert lexicon_polarity("How do I change my email address?") == 0
