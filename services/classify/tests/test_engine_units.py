"""The engine's parts on the real model: training and calibration on a Banking77 sample, taxonomy from
API nodes, field modes, urgency signals, language, near-duplicates and topic clustering."""

from __future__ import annotations

import csv
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from classify.main import shared_embedder
from classify.ml.clustering import cluster
from classify.ml.embedding import Embedder
from classify.ml.engine import (
    NEEDS_TRIAGE,
    ActiveModel,
    ClassificationEngine,
    DuplicateIndex,
    EngineConfig,
    decide,
)
from classify.ml.ensemble import (
    EnsembleModel,
    TrainParams,
    evaluate,
    fit_ensemble,
    fit_temperature,
    stratified_split,
    train_model,
)
from classify.ml.language import LanguageDetector
from classify.ml.prototypes import PrototypeClassifier
from classify.ml.signals import detect
from classify.taxonomy import Taxonomy, TaxonomyError, load_taxonomy
from classify.topics import trend_of

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SAMPLE = Path(__file__).parent / "data" / "banking77_sample.csv"
MULTILINGUAL = Path(__file__).parent / "data" / "multilingual_feedback.tsv"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return shared_embedder("all-MiniLM-L6-v2")  # the copy the service tests' apps use too


@pytest.fixture(scope="module")
def sample(embedder: Embedder) -> tuple[list[str], list[str], np.ndarray]:
    with SAMPLE.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    texts = [r["text"] for r in rows]
    return texts, [f"banking/{r['category']}" for r in rows], embedder.encode(texts)


# --- training ---------------------------------------------------------------------------------


def test_training_on_a_banking77_sample(sample: tuple[list[str], list[str], np.ndarray]) -> None:
    texts, labels, embeddings = sample
    y = np.searchsorted(np.array(sorted(set(labels))), np.array(labels))
    train, test = stratified_split(y, 0.25, seed=3)
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == len(labels)
    assert set(y[test]) == set(y)  # every label held out in proportion

    progress: list[float] = []
    result = train_model(embeddings[train], [texts[i] for i in train], [labels[i] for i in train],
                         TrainParams(), threshold=0.5, progress=lambda f, _s: progress.append(f))
    assert progress == sorted(progress) and progress[-1] == 1.0
    metrics = result.metrics
    assert {"accuracy", "macro_f1", "coverage", "per_class", "expected_calibration_error",
            "temperature"} <= set(metrics)
    assert set(metrics["per_class"]) == set(labels)
    assert all({"precision", "recall", "coverage", "support"} <= set(v) for v in metrics["per_class"].values())

    # On texts it has never seen (the outer split), the serialised model still classifies well.
    model = EnsembleModel.from_bytes(result.model.to_bytes())
    probs = model.probabilities(embeddings[test], [texts[i] for i in test])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs, result.model.probabilities(embeddings[test], [texts[i] for i in test]),
                               atol=1e-4)
    predicted = np.array(model.labels)[probs.argmax(axis=1)]
    accuracy = float((predicted == np.array([labels[i] for i in test])).mean())
    assert accuracy >= 0.85, accuracy
    # Each member is worth its place: the ensemble beats the embedding logistic regression alone.
    alone = EnsembleModel.from_bytes(result.model.to_bytes())
    alone.params.weights = (1.0, 0.0, 0.0)
    alone_accuracy = float((np.array(alone.labels)[alone.probabilities(embeddings[test], [texts[i] for i in test])
                                                    .argmax(axis=1)] == np.array([labels[i] for i in test])).mean())
    assert accuracy >= alone_accuracy - 0.01, (accuracy, alone_accuracy)


def test_temperature_scaling_reduces_calibration_error() -> None:
    rng = np.random.default_rng(0)
    n, k = 400, 5
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += 1.0
    overconfident = np.exp(logits * 4)
    overconfident /= overconfident.sum(axis=1, keepdims=True)
    temperature = fit_temperature(overconfident, y)
    assert temperature > 1.5  # it softens an overconfident model
    from classify.ml.ensemble import calibrate, expected_calibration_error

    assert expected_calibration_error(calibrate(overconfident, temperature), y) < \
        expected_calibration_error(overconfident, y) / 2
    assert fit_temperature(overconfident[:5], y[:5]) == 1.0  # too few to calibrate


def test_evaluate_coverage_and_precision() -> None:
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.55, 0.45]])
    y = np.array([0, 0, 1, 1])
    metrics = evaluate(probs, y, ["a", "b"], threshold=0.7)
    assert metrics["accuracy"] == 0.5
    assert metrics["per_class"]["a"]["precision"] == 0.5 and metrics["per_class"]["b"]["precision"] == 0.5
    assert metrics["per_class"]["a"]["coverage"] == 0.5 and metrics["per_class"]["b"]["coverage"] == 0.5
    assert metrics["coverage"] == 0.5 and metrics["accuracy_on_covered"] == 1.0


# --- taxonomy from the API shape ---------------------------------------------------------------


def test_taxonomy_from_nodes_and_round_trip() -> None:
    taxonomy = Taxonomy.from_nodes([
        {"path": "billing/refund", "description": "Wants money back.", "examples": ["refund please"]},
        {"path": "billing/payment_failure", "description": "Payment failed."},
        {"path": "card_arrival"},  # a flat leaf: allowed over the API
    ])
    assert [leaf.key for leaf in taxonomy.leaves()] == ["billing/refund", "billing/payment_failure", "card_arrival"]
    assert taxonomy.get("card_arrival").description == "Card arrival"
    assert taxonomy.get("billing").parent is None
    again = Taxonomy.from_dict(taxonomy.to_dict(), require_two_levels=False)
    assert again.version == taxonomy.version
    packaged = load_taxonomy()
    assert Taxonomy.from_dict(packaged.to_dict()).version == packaged.version
    with pytest.raises(TaxonomyError, match="duplicate"):
        Taxonomy.from_nodes([{"path": "a/b"}, {"path": "a/b"}])
    with pytest.raises(TaxonomyError, match="path"):
        Taxonomy.from_nodes([{"path": "a//b"}])


# --- modes, triage, signals, language -----------------------------------------------------------


def test_modes_and_triage(embedder: Embedder, languages: LanguageDetector) -> None:
    taxonomy = load_taxonomy()
    engine = ClassificationEngine(embedder, ActiveModel(taxonomy, PrototypeClassifier(taxonomy, embedder)), languages)
    (result,) = engine.classify(["My card was charged twice for one order"])
    auto = decide(result, EngineConfig())
    assert auto.category == result.category.category and not auto.needs_triage and auto.suggestions == {}

    engine.config = EngineConfig(zero_shot_triage_threshold=0.999)
    (unsure,) = engine.classify(["My card was charged twice for one order"])
    triaged = decide(unsure, engine.config)
    assert triaged.category == NEEDS_TRIAGE and triaged.needs_triage
    assert triaged.suggestions["category"]["value"] == result.category.category

    modes = {"category": "suggest", "sentiment": "off", "severity": "suggest", "language": "off"}
    suggested = decide(result, EngineConfig(modes=modes))
    assert suggested.category == NEEDS_TRIAGE and suggested.suggestions["category"]["value"] == result.category.category
    assert suggested.sentiment == "neutral" and "sentiment" not in suggested.suggestions
    assert suggested.severity is None and suggested.suggestions["severity"]["value"] == result.signals.severity
    assert suggested.language is None and "language" not in suggested.suggestions


WEATHER = "Will it rain in Lisbon on Saturday afternoon?"


def test_out_of_scope_text_is_triaged_unless_the_model_is_sure(
        embedder: Embedder, languages: LanguageDetector, sample: tuple[list[str], list[str], np.ndarray]) -> None:
    texts, labels, embeddings = sample
    trained = train_model(embeddings, texts, labels, TrainParams(), threshold=0.3).model
    assert trained.novelty_threshold > 0
    taxonomy = Taxonomy.from_nodes([{"path": label} for label in sorted(set(labels))])
    engine = ClassificationEngine(embedder, ActiveModel(taxonomy, PrototypeClassifier(taxonomy, embedder),
                                                        trained=trained), languages)
    in_scope, weather = engine.classify([texts[0], WEATHER])
    assert not in_scope.novel and not in_scope.needs_triage
    assert weather.novel  # nothing like it among the banking examples
    # Triaged for being unlike the examples only while the model is less sure than `novelty_confidence`.
    def triaged(config: EngineConfig) -> bool:
        engine.config = config
        (result,) = engine.classify([WEATHER])
        return decide(result, config).category == NEEDS_TRIAGE

    confidence = weather.category.confidence
    assert triaged(EngineConfig(triage_threshold=0.0, novelty_confidence=confidence + 1e-6))
    assert not triaged(EngineConfig(triage_threshold=0.0, novelty_confidence=confidence - 1e-6))
    assert not triaged(EngineConfig(triage_threshold=0.0, novelty_check=False))


@pytest.mark.parametrize(("text", "signals", "severity"), [
    ("Someone logged in from another country and changed my password", {"security"}, "critical"),
    ("After the update all my photos are gone", {"data_loss"}, "critical"),
    ("The website is down again, I get a 503 server error", {"outage"}, "critical"),
    ("My payment was declined three times at checkout", {"payment_failure"}, "high"),
    ("If this is not fixed I will take you to court", {"legal_threat"}, "critical"),
    ("How do I change my delivery address?", set(), "low"),
])
def test_urgency_signals(text: str, signals: set[str], severity: str) -> None:
    found = detect(text)
    assert set(found.signals) == signals, found
    assert found.severity == severity


def test_emotion_flags() -> None:
    assert "anger" in detect("This is OUTRAGEOUS, worst service ever").emotions
    assert "frustration" in detect("Third time I write, still no answer from anyone").emotions
    assert "urgency" in detect("Please fix this immediately, it is urgent").emotions
    assert detect("Thanks, that worked perfectly").emotions == ()
    assert detect("fine", category="security/account_compromise").severity == "critical"


def test_language_detection(languages: LanguageDetector) -> None:
    found = languages.detect(["My card was charged twice and nobody answers",
                              "Meine Karte wurde zweimal belastet und niemand antwortet",
                              "Ma carte a été débitée deux fois et personne ne répond", "12345"])
    assert [f.language for f in found] == ["en", "de", "fr", "und"]
    assert all(f.confidence > 0.5 for f in found[:3]) and found[3].confidence == 0.0
    with pytest.raises(ValueError):
        LanguageDetector(["en", "xx"])


def test_language_cascade_matches_the_full_detector_in_twelve_languages(languages: LanguageDetector) -> None:
    rows = [line.rstrip("\n").split("\t") for line in MULTILINGUAL.open(encoding="utf-8")]
    expected = [language for language, _ in rows]
    texts = [text for _, text in rows]
    assert set(expected) <= set(languages.codes) and len(set(expected)) == 12
    cascade = languages.detect(texts)
    full_only = LanguageDetector(languages.codes, quick_confidence=1.01).detect(texts)  # nothing is sure enough
    assert [p.language for p in cascade] == expected
    assert [p.language for p in full_only] == expected
    # The full mode decided some texts: an answer the quick mode keeps is always at least this sure.
    assert any(p.confidence < languages.quick_confidence for p in cascade)


# --- near-duplicates and topics ---------------------------------------------------------------


def test_near_duplicates_link_to_the_first_message(embedder: Embedder, languages: LanguageDetector) -> None:
    taxonomy = load_taxonomy()
    index = DuplicateIndex(embedder.dimension, window_seconds=3600, threshold=0.85, max_items=100)
    engine = ClassificationEngine(embedder, ActiveModel(taxonomy, PrototypeClassifier(taxonomy, embedder)),
                                  languages, duplicates=index)
    now = datetime.now(UTC)
    first = engine.classify(["The app crashes every time I open my invoices"], now, ["f1"])[0]
    assert first.near_duplicates == () and first.duplicate_of is None
    index.add("f1", now, first.embedding, None)
    batch = engine.classify(["Every time I open my invoices the app crashes",
                             "When I open the invoices the app crashes each time",
                             "Do you ship to Canada?"], now, ["f2", "f3", "f4"])
    assert batch[0].duplicate_of == "f1" and batch[0].near_duplicates[0].feedback_id == "f1"
    assert batch[1].duplicate_of == "f1"  # linked to the root, not to f2
    assert batch[2].duplicate_of is None
    # Outside the window nothing links.
    later = now + timedelta(hours=2)
    assert engine.classify(["The app crashes every time I open my invoices"], later, ["f5"])[0].duplicate_of is None


def test_topic_clustering_and_trend(embedder: Embedder) -> None:
    texts = ["I can't log in to my account", "Login fails with an error", "I am unable to sign in",
             "Where is my parcel?", "My delivery has not arrived", "The package is late"]
    clusters = cluster(embedder.encode(texts), [f"id{i}" for i in range(6)], threshold=0.45)
    groups = sorted(sorted(c.members) for c in clusters)
    assert groups == [[0, 1, 2], [3, 4, 5]], groups
    assert trend_of(5, 0) == ("new", None)
    assert trend_of(10, 4)[0] == "rising" and trend_of(2, 10)[0] == "falling" and trend_of(10, 9)[0] == "stable"


def test_duplicate_index_window_capacity_and_growth() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    start = datetime.now(UTC)
    capped = DuplicateIndex(8, window_seconds=3600, threshold=0.99, max_items=50)
    windowed = DuplicateIndex(8, window_seconds=10, threshold=0.99, max_items=10_000)
    for i, vector in enumerate(vectors):
        capped.add(f"id{i}", start + timedelta(seconds=i * 0.01), vector, None)
        windowed.add(f"id{i}", start + timedelta(seconds=i), vector, None)
    assert len(capped) == 50 and len(windowed) == 11  # only the newest / those within 10 s remain
    now = (start + timedelta(seconds=2999)).timestamp()
    assert [root for _, root in capped.neighbours(vectors[-2:], now)] == ["id2998", "id2999"]
    assert capped.neighbours(vectors[:1], now) == [((), None)]  # pruned long ago
    grown = DuplicateIndex(8, window_seconds=1e9, threshold=0.99, max_items=10_000)
    for i, vector in enumerate(vectors):
        grown.add(f"id{i}", start, vector, "root" if i else None)
    assert len(grown) == 3000
    assert grown.neighbours(vectors[1500:1501], start.timestamp())[0][1] == "root"
    assert grown.neighbours(vectors[:1], start.timestamp())[0][1] == "id0"


def test_duplicate_neighbours_are_the_closest_above_threshold_minus_excluded() -> None:
    query = np.array([1.0, 0.0], dtype=np.float32)
    similarities = {"a": 0.99, "b": 0.80, "c": 0.97, "d": 0.95, "e": 0.90, "f": 0.10}
    index = DuplicateIndex(2, window_seconds=3600, threshold=0.9, max_items=100)
    now = datetime.now(UTC)
    for name, similarity in similarities.items():
        vector = np.array([similarity, np.sqrt(1 - similarity ** 2)], dtype=np.float32)
        index.add(name, now, vector, "root-of-c" if name == "c" else None)
    [(found, root)] = index.neighbours(query[None, :], now.timestamp(), k=3, exclude={"a"})
    assert [n.feedback_id for n in found] == ["c", "d", "e"]  # "a" excluded, "b" and "f" below 0.9
    assert [n.similarity for n in found] == [0.97, 0.95, 0.9]
    assert root == "root-of-c"
    [(found, root)] = index.neighbours(query[None, :], now.timestamp(), k=2)
    assert [n.feedback_id for n in found] == ["a", "c"] and root == "a"


def test_weights_leave_the_default_only_for_a_clear_gain() -> None:
    from classify.ml.ensemble import choose_weights

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=1000)
    right = rng.random(1000) < 0.9
    predicted = np.where(right, y, 1 - y)
    embedding_lr = np.full((1000, 2), 0.4)
    embedding_lr[np.arange(1000), predicted] = 0.6
    knn = np.full((1000, 2), 0.5)
    default = (0.5, 0.2, 0.3)

    def ngrams_wrong_on(share: float) -> np.ndarray:
        # Confidently wrong where the embedding model is right, on `share` of the texts; agreeing elsewhere.
        wrong = right & (rng.random(1000) < share)
        shown = np.where(wrong, 1 - y, predicted)
        probs = np.zeros((1000, 2))
        probs[np.arange(1000), shown] = 1.0
        return probs

    # The n-grams spoil 40 % of the answers: a weighting without them is far better and is chosen.
    assert choose_weights([embedding_lr, knn, ngrams_wrong_on(0.4)], y, default)[2] == 0.0
    # They spoil 1 %: leaving them out would gain a point, within the noise of 1,000 texts. Default kept.
    assert choose_weights([embedding_lr, knn, ngrams_wrong_on(0.01)], y, default) == default


def test_evaluation_scoring(tmp_path: Path) -> None:
    from classify.evaluate import read_csv, score, to_path

    path = tmp_path / "data.csv"
    path.write_text("text,category\nhello there,greet\n  ,greet\nbye now,leave\n", encoding="utf-8")
    assert read_csv(path) == (["hello there", "bye now"], ["greet", "leave"])  # blank texts are skipped
    assert to_path("greet", "demo") == "demo/greet" and to_path("a/b", "demo") == "a/b"
    results = [
        {"label": "demo/greet", "needs_triage": False, "suggestions": {}},
        {"label": "needs_triage", "needs_triage": True, "suggestions": {"category": {"value": "demo/leave"}}},
        {"label": "demo/greet", "needs_triage": False, "suggestions": {}},
    ]
    report = score(results, ["demo/greet", "demo/leave", "demo/leave"])
    assert report["top1_accuracy"] == round(2 / 3, 4)  # the triaged text's best guess was right
    assert report["accuracy_with_triage"] == round(1 / 3, 4)
    assert report["coverage"] == round(2 / 3, 4) and report["accuracy_on_covered"] == 0.5
    assert report["per_class"]["demo/greet"]["precision"] == 0.5 and report["per_class"]["demo/leave"]["recall"] == 0.5


def test_texts_without_the_english_only_dimensions_get_their_own_head_and_it_survives_storage() -> None:
    """Two blocks of dimensions, the first English-only (as MiniLM is beside USE). Texts with the first block
    empty are read by the head fitted on the alternate view, texts with it by the other one; both heads are
    stored, and a model stored before the second head existed still loads."""
    rng = np.random.default_rng(3)
    n = 200
    y = np.r_[np.zeros(n // 2, int), np.ones(n // 2, int)]
    english = np.c_[rng.normal(0, 1, (n, 4)) + np.where(y[:, None] == 0, 3.0, -3.0), rng.normal(0, 1, (n, 4))]
    english[:, 4:] += np.where(y[:, None] == 0, 1.0, -1.0)

    def alternate_view(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero(np.abs(vectors[:, :4]).sum(axis=1) > 0)
        others = vectors[rows].copy()
        others[:, :4] = 0.0
        return rows, others

    texts = [f"t{i}" for i in range(n)]
    model = fit_ensemble(english, texts, y, ["a", "b"], TrainParams(use_tfidf=False, weights=(1.0, 0.0, 0.0)),
                         alternate_view=alternate_view)
    assert model.alt_dims is not None and model.alt_dims.tolist() == [0, 1, 2, 3]
    stored = EnsembleModel.from_bytes(model.to_bytes())
    other_language = np.c_[np.zeros((n, 4)), rng.normal(0, 1, (n, 4)) + np.where(y[:, None] == 0, 1.0, -1.0)]
    for loaded in (model, stored):
        assert loaded.lr_alt_coef is not None and loaded.lr_alt_intercept is not None
        own_head = other_language @ loaded.lr_alt_coef.T + loaded.lr_alt_intercept
        read = loaded.member_probabilities(other_language, texts)[0]
        assert np.allclose(read, np.exp(own_head) / np.exp(own_head).sum(axis=1, keepdims=True), atol=1e-5)
        assert (read.argmax(axis=1) == y).mean() > 0.8
        english_head = english @ loaded.lr_coef.T + loaded.lr_intercept
        assert np.allclose(loaded.member_probabilities(english, texts)[0],
                           np.exp(english_head) / np.exp(english_head).sum(axis=1, keepdims=True), atol=1e-5)
    # A model stored before the second head existed loads and predicts with its one LR.
    stored.lr_alt_coef = stored.lr_alt_intercept = stored.alt_dims = None
    assert EnsembleModel.from_bytes(stored.to_bytes()).lr_alt_coef is None
