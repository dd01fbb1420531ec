"""Request and response bodies of the ingest API."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from closedloop.events import Channel
from ingest.cleaning import clean_optional, clean_text


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, examples=["cust-1042"])
    tier: str = Field(default="standard", min_length=1, max_length=50, examples=["vip"])
    email: EmailStr | None = Field(default=None, examples=["ana@example.com"])
    name: str | None = Field(default=None, max_length=200, examples=["Ana Lima"])

    @field_validator("id", "tier")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "channel": "app",
        "text": "I was charged twice for my subscription this month and nobody answers my emails.",
        "customer": {"id": "cust-1042", "tier": "vip", "email": "ana@example.com", "name": "Ana Lima"},
        "subject": "Double charge",
        "rating": 1,
        "language": "en",
        "external_id": "app-review-88121",
        "metadata": {"app_version": "5.2.1", "platform": "ios"},
    }]})

    channel: Channel
    text: str = Field(description="The feedback itself; whitespace is cleaned, and it must not be empty.")
    customer: CustomerIn
    subject: str | None = Field(default=None, max_length=500)
    rating: float | None = Field(default=None, ge=0, le=10, description="Star rating, NPS or CSAT score.")
    language: str | None = Field(default=None, min_length=2, max_length=20, examples=["en", "pt-BR"],
                                 pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", description="BCP 47 tag.")
    external_id: str | None = Field(default=None, min_length=1, max_length=200,
                                    description="The id in the source system; repeats are reported as duplicates.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _clean_text(cls, value: str) -> str:
        cleaned = clean_text(value)
        if not cleaned:
            raise ValueError("text must not be empty or whitespace only")
        return cleaned

    @field_validator("subject")
    @classmethod
    def _clean_subject(cls, value: str | None) -> str | None:
        return clean_optional(value)


class FeedbackAccepted(BaseModel):
    id: str
    status: str
    duplicate: bool = Field(default=False, description="True when this repeats an earlier submission.")
    status_url: str


class CustomerPublic(BaseModel):
    id: str
    tier: str
    email: str | None
    name: str | None


class FeedbackPublic(BaseModel):
    id: str
    channel: str
    text: str
    subject: str | None
    customer: CustomerPublic
    rating: float | None
    language: str | None
    external_id: str | None
    metadata: dict[str, Any]
    status: str = Field(description="received → classified → ticket_opened → resolved")
    category: str | None
    sentiment: str | None
    ticket_id: str | None
    received_at: datetime
    updated_at: datetime
