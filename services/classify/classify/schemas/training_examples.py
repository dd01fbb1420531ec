"""Training examples (`/v1/training-examples`)."""

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from classify.schemas.text import check_text
from closedloop.pagination import Page


class TrainingExampleIn(BaseModel):
    text: str = Field(examples=["I still have not received my new card"])
    label: str = Field(examples=["cards/card_arrival"])

    @field_validator("text")
    @classmethod
    def _text_ok(cls, text: str) -> str:
        return check_text(text)


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


class TrainingExamplePage(Page[TrainingExamplePublic]):
    """Training examples, oldest first, and how many there are of each label."""

    labels: dict[str, int] = Field(description="Examples per label (all of them, not only this page).")
