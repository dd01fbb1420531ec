from datetime import datetime

from pydantic import BaseModel, Field, field_validator


class ClassificationPublic(BaseModel):
    feedback_id: str
    category: str
    category_label: str
    top_level: str
    confidence: float
    alternatives: list[tuple[str, float]]
    sentiment: str
    sentiment_score: float
    polarity: float
    taxonomy_version: str
    model_version: str
    created_at: datetime


class ClassifyRequest(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=64, examples=[["My card was declined twice today"]])

    @field_validator("texts")
    @classmethod
    def _not_blank(cls, texts: list[str]) -> list[str]:
        for index, text in enumerate(texts):
            if not text.strip():
                raise ValueError(f"texts[{index}] must not be empty")
            if len(text) > 10_000:
                raise ValueError(f"texts[{index}] is longer than 10000 characters")
        return texts


class Prediction(BaseModel):
    category: str
    category_label: str
    top_level: str
    confidence: float
    alternatives: list[tuple[str, float]]
    sentiment: str
    sentiment_score: float
    polarity: float


class TaxonomyNodePublic(BaseModel):
    key: str
    name: str
    description: str
    parent: str | None
    examples: list[str]


class TaxonomyPublic(BaseModel):
    version: str
    nodes: list[TaxonomyNodePublic]
