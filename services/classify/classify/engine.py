"""The classification engine: one embedding call per batch, then category and sentiment from it."""

import asyncio
from dataclasses import dataclass

from classify.embedding import Embedder
from classify.prototypes import CategoryPrediction, PrototypeClassifier
from classify.sentiment import SentimentClassifier, SentimentPrediction
from classify.taxonomy import Taxonomy


@dataclass(frozen=True)
class Result:
    category: CategoryPrediction
    sentiment: SentimentPrediction


class ClassificationEngine:
    def __init__(self, embedder: Embedder, taxonomy: Taxonomy) -> None:
        self.embedder = embedder
        self.taxonomy = taxonomy
        self.categories = PrototypeClassifier(taxonomy, embedder)
        self.sentiment = SentimentClassifier(embedder)
        self.model_version = f"prototype-{embedder.model_name}-{taxonomy.version}"

    def classify(self, texts: list[str]) -> list[Result]:
        embeddings = self.embedder.encode(texts)
        categories = self.categories.predict(embeddings)
        sentiments = self.sentiment.predict(embeddings, texts)
        return [Result(c, s) for c, s in zip(categories, sentiments, strict=True)]

    async def classify_async(self, texts: list[str]) -> list[Result]:
        # The model call is CPU-bound: keep the event loop (HTTP, acks, outbox) responsive.
        return await asyncio.to_thread(self.classify, texts)


def load_engine(model_name: str, taxonomy: Taxonomy) -> ClassificationEngine:
    return ClassificationEngine(Embedder(model_name), taxonomy)
