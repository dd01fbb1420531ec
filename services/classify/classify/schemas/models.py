"""Model versions and training runs (`/v1/models`)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from closedloop.pagination import Page


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


class ModelIn(BaseModel):
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


class ModelPage(Page[ModelPublic]):
    """Model versions, newest first."""


class ActiveModelPublic(BaseModel):
    mode: Literal["trained", "zero-shot"]
    model_version: str
    taxonomy_version: str
    model: ModelPublic | None
