"""The bodies of the channel webhooks: each source's own shape, with `record()` turning it into the standard
record (`FeedbackIn`) through `ingest.channels.to_record` (which names the source's own fields in errors)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from closedloop.limits import EXTERNAL_REF_PATTERN, ExternalRef, SafeId, exactly_one_of
from ingest.channels import to_record
from ingest.schemas.feedback import CustomerIn, FeedbackIn

STORE_PLATFORMS = {"app_store": "ios", "google_play": "android", "microsoft_store": "windows",
                   "amazon_appstore": "android"}


class AppReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "review_id": "gp:AOqpTOH", "store": "google_play", "app_version": "5.2.1", "rating": 1,
        "title": "Crashes", "text": "Crashes every time I open the camera.", "author_id": "u-77",
        "author_name": "Ana", "language": "en"}]})

    review_id: ExternalRef
    store: Literal["app_store", "google_play", "microsoft_store", "amazon_appstore", "other"] = "other"
    platform: str | None = Field(default=None, max_length=50, description="Taken from `store` when left out.")
    app_version: str | None = Field(default=None, max_length=50)
    rating: int = Field(ge=1, le=5, description="Stars, 1-5.")
    title: str | None = Field(default=None, max_length=500)
    text: str
    author_id: SafeId = Field(description="The reviewer; becomes the customer id (so: a customer id's characters).")
    author_name: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, max_length=20)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def record(self) -> FeedbackIn:
        return to_record({
            "channel": "app_review", "text": self.text, "subject": self.title, "rating": self.rating,
            "customer": {"id": self.author_id, "name": self.author_name}, "external_id": self.review_id,
            "app_version": self.app_version, "platform": self.platform or STORE_PLATFORMS.get(self.store),
            "language": self.language, "metadata": {**self.metadata, "store": self.store},
        }, {"subject": "body.title", "customer": "body.author_id", "external_id": "body.review_id"})


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    author: Literal["customer", "agent", "bot"]
    text: str = Field(max_length=20_000)
    sent_at: datetime | None = None


class ChatTranscriptIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "conversation_id": "conv-1881", "customer": {"id": "cust-1042", "email": "ana@example.com"},
        "messages": [{"author": "customer", "text": "My refund has not arrived."},
                     {"author": "agent", "text": "Let me check that for you."},
                     {"author": "customer", "text": "It has been two weeks."}]}]})

    conversation_id: ExternalRef
    customer: CustomerIn
    messages: list[ChatMessage] = Field(min_length=1, max_length=2000)
    language: str | None = Field(default=None, max_length=20)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("messages")
    @classmethod
    def _customer_spoke(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(message.author == "customer" and message.text.strip() for message in messages):
            raise ValueError("the transcript has no message from the customer")
        return messages

    def record(self) -> FeedbackIn:
        # The customer's own words are the feedback; the agent's answers stay out of classification.
        said = "\n".join(message.text for message in self.messages if message.author == "customer")
        times = [message.sent_at for message in self.messages if message.sent_at is not None]
        return to_record({
            "channel": "chat", "text": said, "customer": self.customer.model_dump(exclude_none=True),
            "external_id": self.conversation_id, "thread_id": self.conversation_id, "language": self.language,
            "metadata": {**self.metadata, "messages": len(self.messages),
                         "agent_messages": sum(m.author == "agent" for m in self.messages),
                         **({"started_at": min(times).isoformat(), "ended_at": max(times).isoformat()}
                            if times else {})},
        }, {"text": "body.messages", "external_id": "body.conversation_id", "thread_id": "body.conversation_id"})


class SurveyAnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "response_id": "resp-5521", "survey_id": "nps-2026-q4", "customer": {"id": "cust-1042"}, "nps": 3,
        "comment": "Support took a week to answer."}], **exactly_one_of("nps", "csat")})

    response_id: ExternalRef
    survey_id: ExternalRef | None = None
    customer: CustomerIn
    nps: int | None = Field(default=None, ge=0, le=10, description="0-10; give `nps` or `csat`.")
    csat: int | None = Field(default=None, ge=1, le=5, validate_default=True,
                             description="1-5; give `nps` or `csat`.")
    comment: str | None = Field(default=None, description="Free text; without it the score alone is recorded.")
    ticket_id: str | None = Field(default=None, max_length=36, pattern=EXTERNAL_REF_PATTERN,
                                  description="The ticket a CSAT survey was about.")
    language: str | None = Field(default=None, max_length=20)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("csat")
    @classmethod
    def _one_score(cls, csat: int | None, info: ValidationInfo) -> int | None:
        if "nps" in info.data and (info.data["nps"] is None) == (csat is None):
            raise ValueError("give exactly one of nps (0-10) or csat (1-5)")
        return csat

    def record(self) -> FeedbackIn:
        if self.comment is not None and self.comment.strip():
            text = self.comment
        else:
            text = f"NPS answer {self.nps} of 10, no comment." if self.nps is not None else \
                f"CSAT answer {self.csat} of 5, no comment."
        extra = {"survey_id": self.survey_id, "ticket_id": self.ticket_id, "score_only": not self.comment}
        return to_record({
            "channel": "survey", "text": text, "customer": self.customer.model_dump(exclude_none=True),
            "nps": self.nps, "csat": self.csat, "external_id": self.response_id, "language": self.language,
            "metadata": {**self.metadata, **{k: v for k, v in extra.items() if v is not None}},
        }, {"text": "body.comment", "external_id": "body.response_id"})
