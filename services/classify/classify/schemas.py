from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from closedloop.limits import exactly_one_of

FieldModeName = Literal["autofill", "suggest", "off"]
MAX_TEXT_CHARS = 10_000


def _check_text(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"is longer than {MAX_TEXT_CHARS} characters")
    return text


# --- classifications ----------------------------------------------------------------------------


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


class ClassifyItem(BaseModel):
    text: str = Field(examples=["My card was declined twice today"])
    subject: str | None = None

    @field_validator("text")
    @classmethod
    def _text_ok(cls, text: str) -> str:
        return _check_text(text)


class ClassifyRequest(BaseModel):
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
        return _check_text(text) if text is not None else None

    @model_validator(mode="after")
    def _one_shape(self) -> "ClassifyRequest":
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


# --- taxonomy -----------------------------------------------------------------------------------


class TaxonomyNodeIn(BaseModel):
    path: str = Field(min_length=1, max_length=200, examples=["billing/refund"])
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000,
                                    examples=["The customer wants money back for a purchase."])
    examples: list[str] = Field(default_factory=list, max_length=200, examples=[["I want my money back"]])


class TaxonomyPut(BaseModel):
    """Flat `nodes` with paths (parents implied), or the file shape `categories` (a tree)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"nodes": [
        {"path": "billing/refund", "description": "Wants money back.", "examples": ["I want a refund"]},
        {"path": "billing/payment_failure", "description": "A payment did not go through."},
    ]}], **exactly_one_of("nodes", "categories")})

    nodes: list[TaxonomyNodeIn] | None = Field(default=None, min_length=1, max_length=5000)
    categories: list[dict[str, Any]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_shape(self) -> "TaxonomyPut":
        if (self.nodes is None) == (self.categories is None):
            raise ValueError("send either `nodes` or `categories`")
        return self


class TaxonomyNodePublic(BaseModel):
    key: str
    path: str
    name: str
    description: str
    parent: str | None
    leaf: bool
    examples: list[str]


class TaxonomyPublic(BaseModel):
    version: str
    active: bool = True
    source: str | None = None
    created: bool | None = Field(default=None, description="On PUT: whether this content was a new version.")
    created_at: datetime | None = None
    nodes: list[TaxonomyNodePublic]


class TaxonomyVersionSummary(BaseModel):
    version: str
    source: str
    active: bool
    leaves: int
    created_at: datetime
    activated_at: datetime | None


# --- training examples --------------------------------------------------------------------------


class TrainingExampleIn(BaseModel):
    text: str = Field(examples=["I still have not received my new card"])
    label: str = Field(examples=["cards/card_arrival"])

    @field_validator("text")
    @classmethod
    def _text_ok(cls, text: str) -> str:
        return _check_text(text)


class TrainingExamplesIn(BaseModel):
    examples: list[TrainingExampleIn] = Field(min_length=1, max_length=20_000)


class TrainingExamplesAccepted(BaseModel):
    accepted: int = Field(description="New examples stored.")
    duplicates: int = Field(description="Examples already stored with the same text and label (ignored).")
    total: int = Field(description="Examples stored in all.")


class TrainingExamplePublic(BaseModel):
    id: int
    text: str
    label: str
    source: str
    feedback_id: str | None
    created_at: datetime


class TrainingExamplePage(BaseModel):
    items: list[TrainingExamplePublic]
    total: int
    next_after: int | None
    labels: dict[str, int] = Field(description="Examples per label (all of them, not only this page).")


# --- models -------------------------------------------------------------------------------------


class TrainParamsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lr_c: float | None = Field(default=None, gt=0, le=1e4)
    knn_k: int | None = Field(default=None, ge=1, le=100)
    knn_temperature: float | None = Field(default=None, gt=0, le=10)
    knn_max_examples: int | None = Field(default=None, ge=100, le=1_000_000)
    tfidf_c: float | None = Field(default=None, gt=0, le=1e4)
    use_tfidf: bool | None = None
    tfidf_model: Literal["lr", "svm"] | None = None
    tfidf_scale: float | None = Field(default=None, gt=0, le=100)
    weights: tuple[float, float, float] | None = Field(
        default=None, description="Ensemble weights: embedding LR, kNN, TF-IDF LR.")
    holdout: float | None = Field(default=None, ge=0, le=0.5)
    seed: int | None = None
    auto_weights: bool | None = Field(default=None, description="Pick the weights by held-out accuracy.")
    novelty_quantile: float | None = Field(default=None, ge=0, le=0.5)


class ModelCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{}, {"activate": True}]})

    activate: bool | Literal["if_better"] = Field(
        default=False, description="Activate the model as soon as it is ready (`if_better`: only when its "
                                   "held-out accuracy is not below the active model's).")
    params: TrainParamsIn | None = None


class ModelPublic(BaseModel):
    id: str
    version: int
    status: Literal["queued", "training", "ready", "failed"]
    progress: float = Field(description="0..1")
    stage: str
    active: bool
    metrics: dict[str, Any] | None = Field(
        description="accuracy, macro_f1, coverage, accuracy_on_covered, expected_calibration_error, "
                    "per_class {precision, recall, f1, coverage, support} on the held-out split")
    error: str | None
    params: dict[str, Any]
    taxonomy_version: str
    embedding_model: str
    n_examples: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    activated_at: datetime | None


class ActiveModelPublic(BaseModel):
    mode: Literal["trained", "zero-shot"]
    model_version: str
    taxonomy_version: str
    model: ModelPublic | None


# --- config -------------------------------------------------------------------------------------


class EngineConfigPublic(BaseModel):
    triage_threshold: float = Field(description="Below this calibrated confidence the category is `needs_triage`.")
    zero_shot_triage_threshold: float = Field(description="The same for the zero-shot fallback (uncalibrated).")
    novelty_check: bool = Field(description="Also triage texts unlike every example of the trained model ...")
    novelty_confidence: float = Field(description="... when its confidence in them is below this.")
    category_mode: FieldModeName
    sentiment_mode: FieldModeName
    severity_mode: FieldModeName
    language_mode: FieldModeName


class EngineConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"triage_threshold": 0.6, "category_mode": "suggest"}]})

    triage_threshold: float | None = Field(default=None, ge=0, le=1)
    zero_shot_triage_threshold: float | None = Field(default=None, ge=0, le=1)
    novelty_check: bool | None = None
    novelty_confidence: float | None = Field(default=None, ge=0, le=1)
    category_mode: FieldModeName | None = None
    sentiment_mode: FieldModeName | None = None
    severity_mode: FieldModeName | None = None
    language_mode: FieldModeName | None = None


# --- topics and alerts --------------------------------------------------------------------------


class TopicPublic(BaseModel):
    id: str = Field(description="The feedback id of the topic's first message in the time range.")
    label: str = Field(description="The message closest to the topic's centre.")
    top_category: str
    volume: int = Field(description="Messages in the current window.")
    previous_volume: int = Field(description="Messages in the window before it.")
    trend: Literal["new", "rising", "stable", "falling"]
    growth: float | None = Field(description="volume / previous_volume - 1 (null when previous is 0).")
    negative_share: float
    sample_feedback_ids: list[str]


class TopicsPublic(BaseModel):
    window_hours: float
    window_start: datetime
    window_end: datetime
    messages: int
    topics: list[TopicPublic]


class AlertPublic(BaseModel):
    id: int
    kind: str
    severity: str
    message: str
    metrics: dict[str, float]
    event_id: str
    created_at: datetime
