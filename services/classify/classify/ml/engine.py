"""The classification engine: one embedding call per batch, then every field from it.

Category comes from the active trained model when there is one (calibrated ensemble, see
`ensemble.py`) and from the zero-shot prototype classifier of the active taxonomy otherwise. The
active taxonomy and model are swapped as one immutable `ActiveModel`, so a batch never mixes two.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from classify.ml.embedding import Embedder
from classify.ml.ensemble import EnsembleModel
from classify.ml.language import LanguageDetector, LanguagePrediction
from classify.ml.prototypes import N_ALTERNATIVES, CategoryPrediction, PrototypeClassifier
from classify.ml.sentiment import SentimentClassifier, SentimentPrediction
from classify.ml.signals import Signals, detect
from classify.taxonomy import Taxonomy

NEEDS_TRIAGE = "needs_triage"
FIELDS = ("category", "sentiment", "severity", "language")


@dataclass(frozen=True)
class EngineConfig:
    """What operators control at run time (`PUT /v1/config`)."""

    triage_threshold: float = 0.3
    zero_shot_triage_threshold: float = 0.0
    novelty_check: bool = True  # also triage texts unlike every training example (trained models) ...
    novelty_confidence: float = 0.6  # ... unless the model is at least this sure of them
    modes: dict[str, str] = field(default_factory=lambda: dict.fromkeys(FIELDS, "autofill"))

    def threshold(self, calibrated: bool) -> float:
        return self.triage_threshold if calibrated else self.zero_shot_triage_threshold


@dataclass(frozen=True)
class ActiveModel:
    taxonomy: Taxonomy
    zero_shot: PrototypeClassifier
    trained: EnsembleModel | None = None
    trained_id: str | None = None
    trained_version: int | None = None

    @property
    def model_version(self) -> str:
        if self.trained is not None:
            return f"trained-v{self.trained_version}"
        return f"zero-shot-{self.taxonomy.version}"


@dataclass(frozen=True)
class Neighbour:
    feedback_id: str
    similarity: float


@dataclass(frozen=True)
class Result:
    category: CategoryPrediction
    sentiment: SentimentPrediction
    language: LanguagePrediction
    signals: Signals
    calibrated: bool
    needs_triage: bool  # confidence below the threshold in force, or out of scope
    novel: bool  # unlike every training example of the active model (out of scope)
    taxonomy_version: str
    model_version: str
    embedding: np.ndarray = field(repr=False, compare=False)
    near_duplicates: tuple[Neighbour, ...] = ()
    duplicate_of: str | None = None


@dataclass(frozen=True)
class Outcome:
    """A result after the per-field modes: what is filled in, and what is only suggested."""

    category: str
    category_label: str
    top_level: str
    confidence: float
    needs_triage: bool
    sentiment: str
    sentiment_score: float
    polarity: float
    severity: str | None
    language: str | None
    language_confidence: float | None
    suggestions: dict[str, Any]


def decide(result: Result, config: EngineConfig, taxonomy: Taxonomy | None = None) -> Outcome:
    modes = config.modes
    suggestions: dict[str, Any] = {}
    cat = result.category
    category, label, top = cat.category, cat.label, cat.top_level
    triage = result.needs_triage or modes.get("category") != "autofill"
    if triage:
        if modes.get("category") != "off":
            suggestions["category"] = {"value": cat.category, "confidence": round(cat.confidence, 4)}
        category, label, top = NEEDS_TRIAGE, "Needs triage", NEEDS_TRIAGE
    sentiment, score, polarity = result.sentiment.label, result.sentiment.score, result.sentiment.polarity
    if modes.get("sentiment") != "autofill":
        if modes.get("sentiment") == "suggest":
            suggestions["sentiment"] = {"value": sentiment, "confidence": round(score, 4)}
        sentiment, score, polarity = "neutral", 0.0, 0.0
    severity: str | None = result.signals.severity
    if modes.get("severity") != "autofill":
        if modes.get("severity") == "suggest":
            suggestions["severity"] = {"value": severity, "signals": list(result.signals.signals)}
        severity = None
    language: str | None = result.language.language
    language_confidence: float | None = result.language.confidence
    if modes.get("language") != "autofill":
        if modes.get("language") == "suggest":
            suggestions["language"] = {"value": language, "confidence": language_confidence}
        language = language_confidence = None
    return Outcome(category=category, category_label=label, top_level=top, confidence=round(cat.confidence, 4),
                   needs_triage=triage, sentiment=sentiment, sentiment_score=round(score, 4),
                   polarity=round(polarity, 4), severity=severity, language=language,
                   language_confidence=language_confidence, suggestions=suggestions)


class DuplicateIndex:
    """Recent classified messages (id, time, unit vector, root id) to find near-duplicates in memory.

    Filled from the database at start-up and before each batch (messages other replicas classified), and
    with each message this process classifies. Vectors live in one growing buffer (amortised O(1) adds);
    entries older than the window, or beyond `max_items`, are dropped from the front.
    """

    def __init__(self, dimension: int, window_seconds: float, threshold: float, max_items: int) -> None:
        self.window_seconds = window_seconds
        self.threshold = threshold
        self.max_items = max_items
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self._times: list[float] = []
        self._roots: list[str | None] = []
        self._known: set[str] = set()
        self._buffer = np.zeros((1024, dimension), dtype=np.float32)
        self._start = 0  # live entries are [_start, len(_ids))
        self.last_seen: datetime | None = None

    def __len__(self) -> int:
        return len(self._ids) - self._start

    def add(self, feedback_id: str, at: datetime, vector: np.ndarray, root: str | None) -> None:
        with self._lock:
            if feedback_id in self._known:
                return
            self._known.add(feedback_id)
            end = len(self._ids)
            if end == len(self._buffer):
                self._compact(grow=end - self._start >= len(self._buffer) // 2)
                end = len(self._ids)
            self._buffer[end] = np.asarray(vector, dtype=np.float32).reshape(-1)
            self._ids.append(feedback_id)
            self._times.append(at.timestamp())
            self._roots.append(root)
            if self.last_seen is None or at > self.last_seen:
                self.last_seen = at
            self._prune(at.timestamp())

    def forget(self, feedback_ids: list[str]) -> None:
        """Erasure: zero the vectors of these messages (a zero vector is similar to nothing)."""
        wanted = set(feedback_ids)
        with self._lock:
            for position in range(self._start, len(self._ids)):
                if self._ids[position] in wanted:
                    self._buffer[position] = 0.0
                    self._known.discard(self._ids[position])

    def _compact(self, grow: bool) -> None:
        live = slice(self._start, len(self._ids))
        capacity = len(self._buffer) * (2 if grow else 1)
        buffer = np.zeros((capacity, self._buffer.shape[1]), dtype=np.float32)
        count = live.stop - live.start
        buffer[:count] = self._buffer[live]
        self._buffer = buffer
        self._ids, self._times, self._roots = self._ids[live], self._times[live], self._roots[live]
        self._start = 0

    def _prune(self, now: float) -> None:
        cutoff = now - self.window_seconds
        while self._start < len(self._ids) and (self._times[self._start] < cutoff
                                                or len(self._ids) - self._start > self.max_items):
            self._known.discard(self._ids[self._start])
            self._start += 1

    def neighbours(self, vectors: np.ndarray, now: float, k: int = 3,
                   exclude: set[str] | None = None) -> list[tuple[tuple[Neighbour, ...], str | None]]:
        """For each vector: up to k neighbours at or above the threshold, and the root to link to."""
        with self._lock:
            live = slice(self._start, len(self._ids))
            ids, roots = self._ids[live], self._roots[live]
            times = np.array(self._times[live])
            sims = np.asarray(vectors, dtype=np.float32) @ self._buffer[live].T
        if not ids:
            return [((), None) for _ in range(len(vectors))]
        sims[:, times < now - self.window_seconds] = -1.0
        out: list[tuple[tuple[Neighbour, ...], str | None]] = []
        # Only the entries above the threshold are sorted (usually none or a few), not the whole window.
        for row in sims:
            above = np.flatnonzero(row >= self.threshold)
            best: list[int] = []
            for j in above[np.argsort(-row[above], kind="stable")].tolist():
                if not (exclude and ids[j] in exclude):
                    best.append(j)
                    if len(best) == k:
                        break
            if not best:
                out.append(((), None))
                continue
            found = tuple(Neighbour(ids[j], round(float(row[j]), 4)) for j in best)
            out.append((found, roots[best[0]] or ids[best[0]]))
        return out


class ClassificationEngine:
    def __init__(self, embedder: Embedder, active: ActiveModel, languages: LanguageDetector,
                 config: EngineConfig | None = None, duplicates: DuplicateIndex | None = None) -> None:
        self.embedder = embedder
        self.active = active
        self.languages = languages
        self.config = config or EngineConfig()
        self.sentiment = SentimentClassifier(embedder)
        self.duplicates = duplicates

    def build_active(self, taxonomy: Taxonomy, trained: EnsembleModel | None = None,
                     trained_id: str | None = None, trained_version: int | None = None,
                     reuse_zero_shot: bool = True) -> ActiveModel:
        zero_shot = (self.active.zero_shot if reuse_zero_shot and self.active.taxonomy.version == taxonomy.version
                     else PrototypeClassifier(taxonomy, self.embedder))
        return ActiveModel(taxonomy=taxonomy, zero_shot=zero_shot, trained=trained,
                           trained_id=trained_id, trained_version=trained_version)

    def classify(self, texts: list[str], now: datetime | None = None, feedback_ids: list[str] | None = None,
                 embeddings: np.ndarray | None = None,
                 languages: list[LanguagePrediction] | None = None) -> list[Result]:
        """Classify a batch (`embeddings`, `languages`: the texts' vectors and languages, if already
        computed). With `feedback_ids`, near-duplicates are searched among recent messages and among the
        earlier messages of this batch."""
        if not texts:
            return []
        active, config = self.active, self.config
        if embeddings is None:
            embeddings = self.embedder.encode(texts)
        categories, novel = self._categories(active, embeddings, texts)
        calibrated = novel is not None
        sentiments = self.sentiment.predict(embeddings, texts)
        if languages is None:
            languages = self.languages.detect(texts)
        threshold = config.threshold(calibrated)
        links: list[tuple[tuple[Neighbour, ...], str | None]] = [((), None)] * len(texts)
        if self.duplicates is not None and now is not None:
            links = self._link_duplicates(embeddings, now, feedback_ids)
        results = []
        for i, (cat, sentiment, language) in enumerate(zip(categories, sentiments, languages, strict=True)):
            neighbours, root = links[i]
            results.append(Result(
                category=cat, sentiment=sentiment, language=language,
                signals=detect(texts[i], cat.category, sentiment.label), calibrated=calibrated,
                needs_triage=cat.confidence < threshold or bool(
                    novel is not None and config.novelty_check and novel[i]
                    and cat.confidence < config.novelty_confidence),
                novel=bool(novel is not None and novel[i]), taxonomy_version=active.taxonomy.version,
                model_version=active.model_version, embedding=embeddings[i],
                near_duplicates=neighbours, duplicate_of=root,
            ))
        return results

    def _link_duplicates(self, embeddings: np.ndarray, now: datetime,
                         feedback_ids: list[str] | None) -> list[tuple[tuple[Neighbour, ...], str | None]]:
        assert self.duplicates is not None
        stamp = now.timestamp()
        ids = feedback_ids or []
        links = self.duplicates.neighbours(embeddings, stamp, exclude=set(ids))
        threshold = self.duplicates.threshold
        out = []
        roots: list[str | None] = []
        for i, (found, root) in enumerate(links):
            # Earlier messages of the same batch count too (a burst about one problem).
            if ids and i > 0:
                sims = embeddings[:i] @ embeddings[i]
                batch = [Neighbour(ids[j], round(float(sims[j]), 4)) for j in np.argsort(-sims)[:3]
                         if sims[j] >= threshold]
                merged = sorted((*found, *batch), key=lambda n: -n.similarity)[:3]
                if merged and (not found or merged[0].similarity > found[0].similarity):
                    j = ids.index(merged[0].feedback_id)
                    root = roots[j] or ids[j]
                found = tuple(merged)
            roots.append(root)
            out.append((found, root))
        return out

    def _categories(self, active: ActiveModel, embeddings: np.ndarray,
                    texts: list[str]) -> tuple[list[CategoryPrediction], np.ndarray | None]:
        """Predictions, and for a trained model which texts are unlike all its examples (out of scope)."""
        taxonomy = active.taxonomy
        trained = active.trained
        if trained is not None:
            leaves = {leaf.key for leaf in taxonomy.leaves()}
            usable = np.array([label in leaves for label in trained.labels])
            if usable.any():
                similarities = trained.similarities(embeddings)  # computed once for kNN and novelty
                probs = trained.probabilities(embeddings, texts, similarities)
                probs = np.where(usable, probs, 0.0)  # labels the active taxonomy no longer has
                probs = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)
                novel = (trained.max_similarity(embeddings, similarities) < trained.novelty_threshold
                         if trained.novelty_threshold > 0 else np.zeros(len(texts), dtype=bool))
                return _predictions(taxonomy, trained.labels, probs), novel
        return active.zero_shot.predict(embeddings), None

    async def classify_async(self, texts: list[str], now: datetime | None = None, feedback_ids: list[str] | None = None,
                             embeddings: np.ndarray | None = None,
                             languages: list[LanguagePrediction] | None = None) -> list[Result]:
        # The model call is CPU-bound: keep the event loop (HTTP, acks, outbox) responsive.
        return await asyncio.to_thread(self.classify, texts, now, feedback_ids, embeddings, languages)

    async def embed_async(self, texts: list[str]) -> np.ndarray:
        return await asyncio.to_thread(self.embedder.encode, texts)

    async def detect_languages_async(self, texts: list[str]) -> list[LanguagePrediction]:
        # Needs no embedding: runs in its own thread beside the model call instead of after it.
        return await asyncio.to_thread(self.languages.detect, texts)


def _predictions(taxonomy: Taxonomy, labels: list[str], probs: np.ndarray) -> list[CategoryPrediction]:
    order = np.argsort(-probs, axis=1)[:, :N_ALTERNATIVES]
    out = []
    for row, idx in zip(probs, order, strict=True):
        key = labels[int(idx[0])]
        node = taxonomy.get(key)
        out.append(CategoryPrediction(
            category=key, top_level=taxonomy.path(key)[0].key, label=node.name, confidence=float(row[idx[0]]),
            alternatives=tuple((labels[int(j)], float(row[j])) for j in idx),
        ))
    return out
