"""What the ticket routes take and answer: tickets, their changes and lifecycle, comments, links and
merges, the audit log, SLA clocks and teams."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from closedloop.limits import SafeId
from closedloop.pagination import Page

Priority = Literal["P0", "P1", "P2", "P3"]
Status = Literal["new", "open", "pending", "resolved", "closed"]


# Kept so older clients' bodies stay valid, and ignored: the audit log records the authenticated
# principal (`user:<id>` or `api_key:<id>`), never a name the caller typed.
Actor = Field(default=None, max_length=200, deprecated=True,
              description="Ignored: the audit log records the authenticated caller.")

_TICKET_EXAMPLE: JsonDict = {
    "id": "6f1c3c1e-2b1f-4c4e-9a51-0c7f0d3b2a10", "feedback_id": "0b8e5d8a-8f7e-4c1e-b1a4-2d9f6b1c3e55",
    "title": "My card was charged twice", "description": "My card was charged twice and support does not answer",
    "channel": "app", "customer": {"id": "cust-1", "tier": "vip", "email": "ana@example.com", "name": "Ana"},
    "category": "billing/unexpected_charge", "category_label": "Unexpected or duplicate charge",
    "category_confidence": 0.82, "sentiment": "negative", "sentiment_score": 0.91, "priority": "P1",
    "team": "payments", "routing_reason": "rule 'billing -> payments' (position 130) fired; score 75 …",
    "status": "open", "assignee": "bob@example.com", "public_token": "q5Jb0m3cJ2xk7Qe1xw0d3n5oYy1sTz2R",
    "created_at": "2026-11-24T09:00:00Z", "updated_at": "2026-11-24T09:00:00Z", "language": "en",
    "severity": "high", "tags": ["billing"], "priority_score": 75, "sla_policy": "P1 VIP",
    "first_response_due_at": "2026-11-24T09:30:00Z", "resolution_due_at": "2026-11-24T17:00:00Z",
    "sla_breached": False, "first_responded_at": None, "resolved_at": None, "closed_at": None,
    "merged_into": None, "related_ticket_ids": [], "attached_feedback_ids": [],
}


class CustomerPublic(BaseModel):
    id: str
    tier: str
    email: str | None
    name: str | None


class TicketPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_TICKET_EXAMPLE]})

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
    language: str | None = None
    severity: str | None = None
    tags: list[str] = Field(default_factory=list)
    priority_score: int | None = Field(default=None, description="100 × impact × severity × customer value.")
    sla_policy: str | None = None
    first_response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    sla_breached: bool = False
    first_responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    merged_into: str | None = None
    related_ticket_ids: list[str] = Field(default_factory=list)
    attached_feedback_ids: list[str] = Field(default_factory=list,
                                             description="Feedback that joined this ticket as a duplicate.")


class TicketPage(Page[TicketPublic]):
    """A page of tickets; `total` is always counted (the filters are indexed)."""


class TeamPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"key": "payments", "name": "Payments", "lead": "lead.payments@example.com"}]})

    key: str
    name: str
    lead: str | None


class TicketPatchIn(BaseModel):
    """Only the fields sent are changed. `assignee: null` unassigns."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"priority": "P0", "reason": "customer is losing money every minute"}]})

    actor: str | None = Actor
    reason: str | None = Field(default=None, max_length=2000)
    priority: Priority | None = None
    team: str | None = None
    category: str | None = Field(default=None, min_length=1, max_length=200)
    category_label: str | None = None
    assignee: SafeId | None = None
    tags: list[str] | None = None


class StatusChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "pending"}]})

    status: Status
    actor: str | None = Actor
    message: str | None = Field(default=None, min_length=1, max_length=20000,
                                description="With `resolved`: a public resolution message sent to the customer "
                                            "(announced as ticket.replied.v1, kind `resolution`).")


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"author_type": "agent", "public": True,
         "body": "We refunded the duplicate charge; it shows within 3 days."}]})

    author: str | None = Field(default=None, max_length=200, deprecated=True,
                               description="Ignored: the comment's author is the authenticated caller.")
    author_type: Literal["agent", "customer"] = "agent"
    public: bool = Field(True, description="Public reply (the customer sees it) or internal note.")
    body: str = Field(min_length=1, max_length=20000,
                      description="What is sent: the agent's final text (a macro's text as edited).")
    macro_id: SafeId | None = Field(default=None, max_length=36,
                                    description="The macro the text started from; suggestions learn from it.")


class CommentPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": 1, "author": "user:ana", "author_type": "agent", "public": False,
         "body": "Checked the ledger: duplicate capture.", "created_at": "2026-11-24T09:10:00Z"}]})

    id: int
    author: str
    author_type: str
    public: bool
    body: str
    created_at: datetime
    kind: str | None = Field(default=None, description="Public messages to the customer: reply, resolution or "
                                                        "auto_reply.")
    channel: str | None = Field(default=None, description="Where it was delivered or came from (email, chat, web…).")
    delivery_status: Literal["pending", "delivered", "undelivered"] | None = Field(
        default=None, description="Messages to the customer: pending until notify reports; undelivered when the "
                                  "delivery was dead-lettered or could not be sent (see delivery_error).")
    delivery_error: str | None = None
    macro_id: str | None = None
    feedback_id: str | None = Field(default=None, description="A customer's reply by e-mail or chat: its feedback.")


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"into_ticket_id": "6f1c3c1e-2b1f-4c4e-9a51-0c7f0d3b2a10"}]})

    into_ticket_id: SafeId
    actor: str | None = Actor


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"ticket_id": "6f1c3c1e-2b1f-4c4e-9a51-0c7f0d3b2a10"}]})

    ticket_id: SafeId
    actor: str | None = Actor


class AuditPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": 7, "actor": "user:ana", "action": "priority_overridden",
         "details": {"priority": ["P2", "P0"], "reason": "losing money"}, "created_at": "2026-11-24T09:12:00Z"}]})

    id: int
    actor: str
    action: str
    details: dict[str, object]
    created_at: datetime


class SlaClockPublic(BaseModel):
    target: Literal["first_response", "resolution"]
    policy: str
    target_minutes: int
    started_at: datetime
    warn_at: datetime
    due_at: datetime
    paused_at: datetime | None
    stopped_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None
