"""What the customer sees and sends by the ticket's public token: its progress, replies and CSAT."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ticketing.schemas.tickets import Status


class PublicReply(BaseModel):
    author_type: str
    body: str
    created_at: datetime


class CsatIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"score": 5, "comment": "Fast and friendly, thank you!"}]})

    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=5000)


class CsatPublic(CsatIn):
    created_at: datetime


class CustomerReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"body": "Here is the screenshot you asked for."}]})

    body: str = Field(min_length=1, max_length=20000)


class PublicTicket(BaseModel):
    """What the customer sees: no internal notes, no agent or routing details."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "title": "My card was charged twice", "status": "open", "created_at": "2026-11-24T09:00:00Z",
        "expected_first_response_by": "2026-11-24T09:30:00Z", "first_responded_at": None,
        "expected_resolution_by": "2026-11-24T17:00:00Z", "resolved_at": None,
        "replies": [{"author_type": "agent", "body": "We are on it.", "created_at": "2026-11-24T09:05:00Z"}],
        "csat": None}]})

    title: str
    status: Status
    created_at: datetime
    expected_first_response_by: datetime | None
    first_responded_at: datetime | None
    expected_resolution_by: datetime | None
    resolved_at: datetime | None
    replies: list[PublicReply]
    csat: CsatPublic | None
