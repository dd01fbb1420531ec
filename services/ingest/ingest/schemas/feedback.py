"""Feedback items: the standard record every channel is turned into, what accepting one answers, the
item with its progress, and batches of items."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from closedloop.errors import Problem
from closedloop.events import Channel
from closedloop.limits import EXTERNAL_REF_DESCRIPTION, EXTERNAL_REF_PATTERN, Metadata, SafeId
from ingest.cleaning import clean_optional, prepare_text
from ingest.models import Feedback

LANGUAGE_TAG = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
# Region and product codes: letters, digits, `-`, `_`, `.`, `/` (no spaces: they are grouped on and shown in URLs).
DIMENSION_VALUE = r"^[A-Za-z0-9][A-Za-z0-9_./-]*$"
DuplicateReason = Literal["idempotency_key", "source_id", "same_text"]


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: SafeId = Field(examples=["cust-1042"])
    tier: str | None = Field(default=None, min_length=1, max_length=50, examples=["vip"],
                             description="Taken from the customer profile when left out; `standard` without one.")
    email: EmailStr | None = Field(default=None, examples=["ana@example.com"])
    name: str | None = Field(default=None, max_length=200, examples=["Ana Lima"])
    locale: str | None = Field(default=None, max_length=35, pattern=LANGUAGE_TAG, examples=["pt-BR"])
    value: float | None = Field(default=None, ge=0, description="e.g. annual revenue; a priority hint.")

    @field_validator("id", "tier", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        # Before the type's own checks, so " cust-1 " is taken as "cust-1" rather than refused by the id pattern.
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value


class FeedbackIn(BaseModel):
    """The standard record every channel is turned into."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "channel": "app",
        "text": "I was charged twice for my subscription this month and nobody answers my emails.",
        "customer": {"id": "cust-1042", "tier": "vip", "email": "ana@example.com", "name": "Ana Lima"},
        "subject": "Double charge",
        "rating": 1,
        "language": "en",
        "external_id": "app-review-88121",
        "app_version": "5.2.1",
        "platform": "ios",
        "region": "emea",
        "product": "mobile-app",
        "metadata": {"screen": "checkout"},
    }]})

    channel: Channel
    text: str = Field(description="The feedback itself. Unicode and whitespace are normalised, quoted e-mail "
                                  "replies and signatures removed; empty or garbled text (mojibake, keyboard "
                                  "mashing, hardly any letters) is refused with the reason. E-mail addresses, "
                                  "phone and card numbers are masked in what travels downstream.")
    customer: CustomerIn
    subject: str | None = Field(default=None, max_length=500)
    rating: float | None = Field(default=None, ge=0, le=10, description="Star rating, NPS or CSAT score.")
    language: str | None = Field(default=None, min_length=2, max_length=20, examples=["en", "pt-BR"],
                                 pattern=LANGUAGE_TAG, description="BCP 47 tag.")
    external_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=EXTERNAL_REF_PATTERN,
                                    description="The id in the source system; repeats are reported as duplicates. "
                                                + EXTERNAL_REF_DESCRIPTION)
    thread_id: str | None = Field(default=None, min_length=1, max_length=500, pattern=EXTERNAL_REF_PATTERN,
                                  description="Conversation the message belongs to (e-mail thread, chat). "
                                              + EXTERNAL_REF_DESCRIPTION)
    app_version: str | None = Field(default=None, min_length=1, max_length=50, examples=["5.2.1"])
    platform: str | None = Field(default=None, min_length=1, max_length=50, examples=["ios", "android", "web"])
    region: str | None = Field(default=None, min_length=1, max_length=50, pattern=DIMENSION_VALUE,
                               examples=["emea", "br"],
                               description="Where the customer is (your own codes); a dimension of insights.")
    product: str | None = Field(default=None, min_length=1, max_length=100, pattern=DIMENSION_VALUE,
                                examples=["mobile-app", "payments-api"],
                                description="The product line the feedback is about; a dimension of insights.")
    nps: int | None = Field(default=None, ge=0, le=10, description="Net Promoter Score answer, 0-10.")
    csat: int | None = Field(default=None, ge=1, le=5, description="Customer satisfaction answer, 1-5.")
    metadata: Metadata = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _clean_text(cls, value: str) -> str:
        return prepare_text(value)

    @field_validator("subject")
    @classmethod
    def _clean_subject(cls, value: str | None) -> str | None:
        return clean_optional(value)

    @field_validator("platform")
    @classmethod
    def _lower_platform(cls, value: str | None) -> str | None:
        return value.strip().lower() or None if value is not None else None

    @field_validator("region", "product")
    @classmethod
    def _lower_dimension(cls, value: str | None) -> str | None:
        # Dimensions are grouped on: "EMEA" and "emea" must be one region.
        return value.lower() if value is not None else None

    @model_validator(mode="after")
    def _score_in_rating(self) -> "FeedbackIn":
        # A survey score is also the item's rating, so consumers that only read `rating` still see it.
        if self.rating is None:
            score = self.nps if self.nps is not None else self.csat
            if score is not None:
                self.rating = float(score)
        return self


class FeedbackAccepted(BaseModel):
    id: str
    status: str
    duplicate: bool = Field(default=False, description="True when this repeats an earlier submission.")
    duplicate_reason: DuplicateReason | None = Field(
        default=None, description="`idempotency_key` (a retry), `source_id` (same channel and external_id) or "
                                  "`same_text` (the same customer sent the same text within the window).")
    status_url: str
    reply_to_ticket: str | None = Field(
        default=None, description="Set when this was recognised as the customer's answer about a ticket (e-mail "
                                  "In-Reply-To/References, ticket address or tag; chat/app thread): it continues "
                                  "that ticket instead of opening one.")


class CustomerPublic(BaseModel):
    id: str
    tier: str
    email: str | None
    name: str | None
    locale: str | None = None
    value: float | None = None


class FeedbackPublic(BaseModel):
    id: str
    channel: str
    text: str = Field(description="As sent downstream: cleaned, personal data masked.")
    subject: str | None
    customer: CustomerPublic
    rating: float | None
    language: str | None
    external_id: str | None
    thread_id: str | None = None
    app_version: str | None = None
    platform: str | None = None
    region: str | None = None
    product: str | None = None
    nps: int | None = None
    csat: int | None = None
    pii_masked: list[str] = Field(default_factory=list, description="Kinds of personal data masked in the text.")
    duplicate_count: int = Field(default=0, description="Later submissions recorded as duplicates of this one.")
    metadata: dict[str, Any]
    status: str = Field(description="received → classified → ticket_opened → resolved")
    category: str | None
    sentiment: str | None
    ticket_id: str | None
    received_at: datetime
    updated_at: datetime


# --- batch --------------------------------------------------------------------------------------


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[Any] = Field(
        min_length=1, max_length=1000, json_schema_extra={"items": {"type": "object"}},
        description="Up to 1,000 feedback items, each shaped like `POST /v1/feedback`'s body plus an optional "
                    "`idempotency_key`. Each item is validated and stored on its own: one bad item does not "
                    "stop the others.")


class BatchItemResult(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    id: str | None = None
    duplicate_reason: DuplicateReason | None = None
    problem: Problem | None = None


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[BatchItemResult]


def to_public(feedback: Feedback) -> FeedbackPublic:
    return FeedbackPublic(
        id=feedback.id, channel=feedback.channel, text=feedback.text, subject=feedback.subject,
        customer=CustomerPublic(id=feedback.customer_id, tier=feedback.customer_tier,
                                email=feedback.customer_email, name=feedback.customer_name,
                                locale=feedback.customer_locale, value=feedback.customer_value),
        rating=feedback.rating, language=feedback.language, external_id=feedback.external_id,
        thread_id=feedback.thread_id, app_version=feedback.app_version, platform=feedback.platform,
        region=feedback.region, product=feedback.product,
        nps=feedback.nps, csat=feedback.csat, pii_masked=feedback.pii_masked or [],
        duplicate_count=feedback.duplicate_count or 0,
        metadata=feedback.extra, status=feedback.status, category=feedback.category,
        sentiment=feedback.sentiment, ticket_id=feedback.ticket_id,
        received_at=feedback.received_at, updated_at=feedback.updated_at,
    )
