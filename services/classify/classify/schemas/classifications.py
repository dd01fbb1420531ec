"""Classifications: stored ones (`/v1/classifications`) and previews (`POST /v1/classify`)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from classify.schemas.text import check_text
from closedloop.limits import exactly_one_of
from closedloop.pagination import Page


class Neighbour(BaseModel):
    feedback_id: str
    similarity: float


class ClassificationPublic(BaseModel):
    feedback_id: str
    category: str = Field(description="Taxonomy leaf, or `needs_triage` when the model is not sure enough "
                                      "(or category mode is not `autofill`).")
    category_label: str
    top_level: str
    confidence: float
    needs_triage: bool = False
    alternatives: list[tuple[str, float]]
    suggestions: dict[str, Any] | None = None
    sentiment: str
    sentiment_score: float
    polarity: float
    severity: str | None = None
    signals: list[str] | None = None
    emotions: list[str] | None = None
    language: str | None = None
    language_confidence: float | None = None
    duplicate_of: str | None = None
    near_duplicates: list[Neighbour] | None = None
    taxonomy_version: str
    model_version: str
    created_at: datetime


class ClassificationPage(Page[ClassificationPublic]):
    """Stored classifications, newest first; `total` is null (counting would scan every classification)."""


class ClassifyItem(BaseModel):
    text: str = Field(examples=["My card was declined twice today"])
    subject: str | None = None

    @field_validator("text")
    @classmethod
    def _text_ok(cls, text: str) -> str:
        return check_text(text)


class ClassifyIn(BaseModel):
    """Either one `text`, or a batch of `items` (answered in the same order)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"text": "I was charged twice for my subscription"},
        {"items": [{"text": "The app crashes when I open it"}, {"text": "Love the new dashboard!"}]},
    ], **exactly_one_of("text", "items")})

    text: str | None = None
    subject: str | None = None
    items: list[ClassifyItem] | None = Field(default=None, min_length=1, max_length=1000)

    @field_validator("text")
    @classmethod
    def _text_ok(cls, text: str | None) -> str | None:
        return check_text(text) if text is not None else None

    @model_validator(mode="after")
    def _one_shape(self) -> "ClassifyIn":
        if (self.text is None) == (self.items is None):
            raise ValueError("send either `text` or `items`, not both and not neither")
        return self


class Alternative(BaseModel):
    label: str
    confidence: float


class ClassifyResult(BaseModel):
    label: str = Field(description="Taxonomy leaf, or `needs_triage`.", examples=["billing/payment_failure"])
    category_label: str
    top_level: str
    confidence: float = Field(description="Calibrated probability of the predicted leaf (trained models).")
    needs_triage: bool
    calibrated: bool = Field(description="True when a trained, calibrated model answered; false for zero-shot.")
    out_of_scope: bool = Field(description="Unlike every training example of the trained model (sent to triage "
                                           "when `novelty_check` is on and confidence is below "
                                           "`novelty_confidence`).")
    alternatives: list[Alternative]
    suggestions: dict[str, Any]
    sentiment: str
    sentiment_score: float
    polarity: float
    emotions: list[str]
    severity: str | None
    signals: list[str]
    language: str | None
    language_confidence: float | None
    near_duplicates: list[Neighbour]
    duplicate_of: str | None
    model_version: str
    taxonomy_version: str


class ClassifyBatchResult(BaseModel):
    results: list[ClassifyResult]
