from datetime import datetime

from pydantic import BaseModel, Field


class CustomerPublic(BaseModel):
    id: str
    tier: str
    email: str | None
    name: str | None


class TicketPublic(BaseModel):
    id: str
    feedback_id: str | None
    title: str
    description: str
    channel: str
    customer: CustomerPublic
    category: str
    category_label: str
    category_confidence: float
    sentiment: str
    sentiment_score: float
    priority: str = Field(description="P0 (outage, data loss, security) .. P3")
    team: str
    routing_reason: str
    status: str
    assignee: str | None
    public_token: str
    created_at: datetime
    updated_at: datetime


class TicketPage(BaseModel):
    items: list[TicketPublic]
    total: int = Field(description="How many tickets match the filters, over all pages.")
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class TeamPublic(BaseModel):
    key: str
    name: str
    lead: str | None
