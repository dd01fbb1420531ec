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
    # Additive (insights issue 15): first-class dimensions of the insights read model.
    region: str | None = None
    product: str | None = None


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
    # Additive (issue 10): where the feedback came from, so answers go back into the same conversation.
    thread_id: str | None = None  # e-mail thread (first Message-ID) or chat/app conversation id
    source_id: str | None = None  # the id in the source system; for e-mail the message's own Message-ID


class FeedbackReplyReceivedV1(Event):
    """A customer's answer to one of our messages about a ticket (recognised by ingest from the e-mail's
    In-Reply-To/References, the ticket address in To, the ticket reference in the subject, or a known
    chat/app thread). It continues that ticket instead of opening one, so classify does not see it."""

    nats_subject: ClassVar[str] = "feedback.reply_received.v1"

    feedback_id: UUID
    ticket_id: UUID
    channel: Channel
    text: str  # quoted history stripped, personal data masked (as for feedback.received.v1)
    subject: str | None = None
    customer: CustomerRef
    language: str | None = None
    thread_id: str | None = None
    message_id: str | None = None  # the reply's own Message-ID (e-mail)
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    matched_by: Literal["in_reply_to", "references", "to_address", "subject", "thread_id"]
    received_at: datetime


class FeedbackCsatAnsweredV1(Event):
    """A CSAT survey answer (ingest's survey channel) about a ticket: ticketing records it as the
    ticket's CSAT, as if given on the ticket's page."""

    nats_subject: ClassVar[str] = "feedback.csat_answered.v1"

    feedback_id: UUID
    ticket: str  # as the survey named it: the ticket id, its public token or its reference
    score: int = Field(ge=1, le=5)
    comment: str | None = None
    customer: CustomerRef
    received_at: datetime


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
    # Additive (issue 10): how to answer the customer. `channel` is where the feedback came from;
    # `thread_id`/`source_message_id` thread our answers into that conversation; the links are built
    # by ticketing from its one public base URL, so every message carries the same, right links.
    channel: str | None = None
    language: str | None = None
    reference: str | None = None  # the ticket number customers see, e.g. "3F2B9C1E"
    thread_id: str | None = None
    source_message_id: str | None = None
    status_url: str | None = None
    csat_url: str | None = None
    incident_id: str | None = None


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


class TicketRepliedV1(Event):
    """A public message to the customer was accepted for delivery: an agent's reply, the resolution
    message, or an auto-reply. Internal notes never produce it. Notify delivers it over `channel`."""

    nats_subject: ClassVar[str] = "ticket.replied.v1"

    ticket: TicketSnapshot
    comment_id: int
    author: str  # display name shown to the customer (never an agent's e-mail address)
    author_type: Literal["agent", "system"]
    text: str  # what the agent finally wrote (after editing any macro)
    language: str | None = None
    channel: str  # email, chat, app, web, ...: where the customer is answered
    visibility: Literal["public"] = "public"
    kind: Literal["reply", "resolution", "auto_reply"] = "reply"
    macro_id: str | None = None
    auto_reply_rule: str | None = None  # praise, incident
    first_response: bool = False


class TicketCustomerRepliedV1(Event):
    """The customer's answer joined to a ticket (e-mail reply, chat/app message, or the status page)."""

    nats_subject: ClassVar[str] = "ticket.customer_replied.v1"

    ticket: TicketSnapshot
    comment_id: int
    feedback_id: UUID | None = None  # the ingest feedback item it came as (none from the status page)
    text: str
    channel: str
    language: str | None = None
    message_id: str | None = None  # an e-mail reply's Message-ID: the next answer is threaded to it
    reopened: bool = False  # the ticket was resolved, closed or pending and is open again


class TicketCsatReceivedV1(Event):
    nats_subject: ClassVar[str] = "ticket.csat_received.v1"

    ticket: TicketSnapshot
    score: int = Field(ge=1, le=5)
    comment: str | None = None
    source: Literal["page", "survey"]
    replaced_score: int | None = None  # a later rating replaces an earlier one


# --- alerts and notifications --------------------------------------------------------------


class AlertRaisedV1(Event):
    nats_subject: ClassVar[str] = "alert.raised.v1"

    kind: str
    severity: Literal["warning", "critical"]
    message: str
    metrics: dict[str, float] = Field(default_factory=dict)
    # Additive (insights issue 15): which series the alert is about, e.g. {"category": "technical/outage"}
    # ({} for the total), and the time window it covers.
    dimension: dict[str, str] = Field(default_factory=dict)
    window_start: datetime | None = None
    window_end: datetime | None = None


class NotificationDeliveredV1(Event):
    nats_subject: ClassVar[str] = "notification.delivered.v1"

    delivery_id: UUID
    source_event_id: UUID
    channel: str
    target: str
    attempts: int
    # Additive (issue 10): which event and ticket it was about, and whether it went to the customer,
    # so ticketing can show a reply as delivered or undelivered.
    event_type: str | None = None
    ticket_id: UUID | None = None
    to_customer: bool = False


class NotificationFailedV1(Event):
    """The delivery is in the dead-letter state (attempts exhausted or a permanent error); it can be replayed."""

    nats_subject: ClassVar[str] = "notification.failed.v1"

    delivery_id: UUID
    source_event_id: UUID
    channel: str
    target: str
    attempts: int
    error: str
    event_type: str | None = None
    ticket_id: UUID | None = None
    to_customer: bool = False


class NotificationSuppressedV1(Event):
    """A message to the customer that was never sent (no address or partner endpoint for the channel,
    e-mail not configured, frequency cap, template error): `reason` says which."""

    nats_subject: ClassVar[str] = "notification.suppressed.v1"

    delivery_id: UUID
    source_event_id: UUID
    channel: str
    target: str
    reason: str
    event_type: str | None = None
    ticket_id: UUID | None = None
    to_customer: bool = False


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


# --- insights (published by insights) ---------------------------------------------------------


class CustomerChurnRiskDetectedV1(Event):
    """A valuable customer shows signs of leaving (e.g. repeated negative feedback, an unresolved SLA
    breach). Raised once per customer and detection window; a CRM webhook can subscribe to it."""

    nats_subject: ClassVar[str] = "customer.churn_risk_detected.v1"

    customer_id: str
    tier: str | None = None
    value: float | None = None
    segment: str  # the RFM segment, e.g. "at_risk"
    risk_score: float  # 0-1
    reasons: list[str] = Field(default_factory=list)  # e.g. "4 negative contacts in 30 days"
    as_of: datetime


class OpportunityDetectedV1(Event):
    """Feature requests or unmet needs that cluster into one theme, sized by volume, trend and the
    summed value of the customers asking."""

    nats_subject: ClassVar[str] = "opportunity.detected.v1"

    opportunity_id: str
    title: str  # the theme's most telling terms
    terms: list[str] = Field(default_factory=list)
    category: str | None = None
    mentions: int
    customers: int
    customer_value: float  # summed value of the distinct customers asking
    trend: float  # mentions in the last 28 days / the 28 days before (inf-safe: 0 before gives the count)
    examples: list[str] = Field(default_factory=list)
    as_of: datetime


TICKET_EVENTS: tuple[type[Event], ...] = (
    TicketFeedbackAttachedV1,
    TicketCreatedV1,
    TicketAssignedV1,
    TicketSlaWarningV1,
    TicketSlaBreachedV1,
    TicketResolvedV1,
    TicketRecategorizedV1,
    TicketRepliedV1,
    TicketCustomerRepliedV1,
    TicketCsatReceivedV1,
)

# What notify says about deliveries (ticketing follows the customer-facing ones).
NOTIFICATION_EVENTS: tuple[type[Event], ...] = (
    NotificationDeliveredV1,
    NotificationFailedV1,
    NotificationSuppressedV1,
)

# One JetStream stream per producing domain; the dead-letter stream collects failures of every consumer.
STREAMS: dict[str, list[str]] = {
    "FEEDBACK": ["feedback.>"],
    "TICKET": ["ticket.>"],
    "ALERT": ["alert.>"],
    "NOTIFICATION": ["notification.>"],
    "CUSTOMER": ["customer.>"],
    "OPPORTUNITY": ["opportunity.>"],
    "DEADLETTER": ["deadletter.>"],
}
