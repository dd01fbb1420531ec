"""The engine's run-time config: triage thresholds and per-field modes (`/v1/config`)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FieldModeName = Literal["autofill", "suggest", "off"]


class EngineConfigPublic(BaseModel):
    triage_threshold: float = Field(description="Below this calibrated confidence the category is `needs_triage`.")
    zero_shot_triage_threshold: float = Field(description="The same for the zero-shot fallback (uncalibrated).")
    novelty_check: bool = Field(description="Also triage texts unlike every example of the trained model ...")
    novelty_confidence: float = Field(description="... when its confidence in them is below this.")
    category_mode: FieldModeName
    sentiment_mode: FieldModeName
    severity_mode: FieldModeName
    language_mode: FieldModeName


class EngineConfigIn(BaseModel):
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
