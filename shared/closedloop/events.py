"""Versioned integration events: the contract between services.

Events are immutable and named in the past tense. A breaking change gets a new class and subject
(`...V2` / `.v2`); additive fields may be added to an existing version, so consumers ignore
unknown fields.
"""

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["web", "app", "email", "chat", "app_review", "survey", "api"]
SentimentLabel = Literal["negative", "neutral", "positive"]
Priority = Literal["P0", "P1", "P2", "P3"]
Severity = Literal["low", "medium", "high", "critical"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    nats_subject: ClassVar[str]

    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: datetime = Field(default_factory=utcnow)


class CustomerRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    tier: str = "standard"
    email: str | None = None
    name: str | None = None
    # Additive (ingest issue 5): from the customer profile ingest keeps.
    locale: str | None = None  # BCP 47, e.g. "pt-BR": the language to answer the customer in
    value: float | None = None  # e.g. annual revenue; a hint for priority


# --- feedback domain (published by ingest and classify) -------------------------------------


class FeedbackReceivedV1(Event):
    nats_subject: ClassVar[str] = "feedback.received.v1"

    feedback_id: UUID
    channel: Channel
    text: str
    subject: str | None = None
    customer: CustomerRef
    rating: float | None = None
    language: str | None = None
    external_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    received_at: datetime
    # Additive (ingest issue 5): the standard record of every channel. `text` and `subject` have
    # e-mail addresses, phone and card numbers masked; `pii_masked` names the kinds found.
    source_id: str | None = None  # the id in the source system (same as external_id)
    thread_id: str | None = None  # e-mail thread (first Message-ID) or chat conversation
    app_version: str | None = None
    platform: str | None = None  # ios, android, web, ...
    nps: int | None = None  # 0-10
    csat: int | None = None  # 1-5
    pii_masked: list[str] = Field(default_factory=list)


class Classification(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    category: str  # leaf key of the taxonomy, e.g. "billing/payment_failure"
    category_label: str
    top_level: str
    confidence: float
    sentiment: SentimentLabel
    sentiment_score: float
    taxonomy_version: str
    model_version: str
    # Added by classify's engine (optional, so older producers and consumers keep working).
    # True when the category is "needs_triage": the model was not sure enough, or category mode is not autofill.
    needs_triage: bool = False
    # Predictions left to a human (per-field mode "suggest", or a category below the triage threshold),
    # e.g. {"category": {"value": "billing/refund", "confidence": 0.41}}.
    suggestions: dict[str, Any] = Field(default_factory=dict)
    severity: Severity | None = None  # from urgency signals; ticketing may raise priority on it
    signals: list[str] = Field(default_factory=list)  # security, data_loss, outage, payment_failure, legal_threat
    emotions: list[str] = Field(default_factory=list)  # anger, frustration, urgency
    language: str | None = None  # ISO 639-1 code detected, "und" when undetermined
    language_confidence: float | None = None


class NearDuplicate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    feedback_id: UUID
    similarity: float


class FeedbackClassifiedV1(Event):
    nats_subject: ClassVar[str] = "feedback.classified.v1"

    feedback_id: UUID
    channel: Channel
    text: str
    subject: str | None = None
    customer: CustomerRef
    classification: Classification
    # The earliest recent message about the same problem (within classify's duplicate window), if any,
    # and the nearest recent messages above the similarity threshold.
    duplicate_of: UUID | None = None
    near_duplicates: list[NearDuplicate] = Field(default_factory=list)


# --- ticket domain (published by ticketing) ------------------------------------------------


class TicketSnapshot(BaseModel):
    """What consumers of ticket events need to know about the ticket, without asking for it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ticket_id: UUID
    feedback_id: UUID | None
    title: str
    status: str
    priority: Priority
    team: str
    category: str
    sentiment: SentimentLabel
    customer: CustomerRef
    assignee: str | None = None
    # Additive (ticketing issue 4): what notify needs without asking ticketing.
    public_token: str | None = None
    team_lead: str | None = None
    first_response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    tags: list[str] = Field(default_factory=list)


class TicketCreatedV1(Event):
    nats_subject: ClassVar[str] = "ticket.created.v1"

    ticket: TicketSnapshot


class TicketAssignedV1(Event):
    nats_subject: ClassVar[str] = "ticket.assigned.v1"

    ticket: TicketSnapshot
    assignee: str
    previous_assignee: str | None = None
    reason: str | None = None


class TicketSlaWarningV1(Event):
    nats_subject: ClassVar[str] = "ticket.sla_warning.v1"

    ticket: TicketSnapshot
    target: Literal["first_response", "resolution"]
    due_at: datetime


class TicketSlaBreachedV1(Event):
    nats_subject: ClassVar[str] = "ticket.sla_breached.v1"

    ticket: TicketSnapshot
    target: Literal["first_response", "resolution"]
    due_at: datetime
    # The team lead notified by the escalation, and the priority before it was raised.
    escalated_to: str | None = None
    previous_priority: Priority | None = None


class TicketResolvedV1(Event):
    nats_subject: ClassVar[str] = "ticket.resolved.v1"

    ticket: TicketSnapshot
    resolved_at: datetime
    # Where the customer rates the resolution (1-5) and follows the ticket.
    csat_url: str | None = None
    status_url: str | None = None


class TicketFeedbackAttachedV1(Event):
    """Feedback that joined an existing open ticket (same problem, same customer) instead of opening one."""

    nats_subject: ClassVar[str] = "ticket.feedback_attached.v1"

    ticket: TicketSnapshot
    feedback_id: UUID
    reason: str


class TicketRecategorizedV1(Event):
    nats_subject: ClassVar[str] = "ticket.recategorized.v1"

    ticket_id: UUID
    feedback_id: UUID | None
    text: str
    previous_category: str
    category: str
    actor: str


# --- alerts and notifications --------------------------------------------------------------


class AlertRaisedV1(Event):
    nats_subject: ClassVar[str] = "alert.raised.v1"

    kind: str
    severity: Literal["warning", "critical"]
    message: str
    metrics: dict[str, float] = Field(default_factory=dict)


class NotificationDeliveredV1(Event):
    nats_subject: ClassVar[str] = "notification.delivered.v1"

    delivery_id: UUID
    source_event_id: UUID
    channel: str
    target: str
    attempts: int


class NotificationFailedV1(Event):
    nats_subject: ClassVar[str] = "notification.failed.v1"

    delivery_id: UUID
    source_event_id: UUID
    channel: str
    target: str
    attempts: int
    error: str


# --- customer domain: data rights (requested by ingest, completed by every service) -------------


class CustomerErasureRequestedV1(Event):
    """Erase (or irreversibly anonymise) everything held about one customer. Carries what ingest knows
    links to them, since classify and notify do not keep customer ids: their feedback and ticket ids."""

    nats_subject: ClassVar[str] = "customer.erasure_requested.v1"

    erasure_id: UUID
    customer_id: str
    customer_email: str | None = None
    feedback_ids: list[str] = Field(default_factory=list)
    ticket_ids: list[str] = Field(default_factory=list)


class CustomerErasureCompletedV1(Event):
    """One service has erased the customer's data; `erased` counts the rows changed per table."""

    nats_subject: ClassVar[str] = "customer.erasure_completed.v1"

    erasure_id: UUID
    service: str
    erased: dict[str, int] = Field(default_factory=dict)


TICKET_EVENTS: tuple[type[Event], ...] = (
    TicketFeedbackAttachedV1,
    TicketCreatedV1,
    TicketAssignedV1,
    TicketSlaWarningV1,
    TicketSlaBreachedV1,
    TicketResolvedV1,
    TicketRecategorizedV1,
)

# One JetStream stream per producing domain; the dead-letter stream collects failures of every consumer.
STREAMS: dict[str, list[str]] = {
    "FEEDBACK": ["feedback.>"],
    "TICKET": ["ticket.>"],
    "ALERT": ["alert.>"],
    "NOTIFICATION": ["notification.>"],
    "CUSTOMER": ["customer.>"],
    "DEADLETTER": ["deadletter.>"],
}
