"""Ticketing's own tables."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.db import ServiceBase, UTCDateTime, new_metadata
from closedloop.events import Priority, SentimentLabel
from closedloop.messaging.models import messaging_models
from closedloop.messaging.tables import AutoIncrementId


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


OutboxMessage, InboxMessage, outbox = messaging_models(Base)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status_priority", "status", "priority"),
        Index("ix_tickets_team", "team"),
        Index("ix_tickets_created_at", "created_at"),
        Index("ix_tickets_assignee", "assignee"),
        Index("ix_tickets_customer_category", "customer_id", "category"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # One ticket per feedback item: the unique key is the last line of defence against doubles.
    feedback_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    public_token: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str] = mapped_column(String(200))
    customer_tier: Mapped[str] = mapped_column(String(50))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(200))
    category_label: Mapped[str] = mapped_column(String(200))
    category_confidence: Mapped[float] = mapped_column(Float)
    sentiment: Mapped[SentimentLabel] = mapped_column(String(20))
    sentiment_score: Mapped[float] = mapped_column(Float)
    priority: Mapped[Priority] = mapped_column(String(2))
    team: Mapped[str] = mapped_column(String(100))
    routing_reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    assignee: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Added in 0002: routing details, SLA due times (copied from the clocks), lifecycle times.
    language: Mapped[str | None] = mapped_column(String(20), default=None)
    severity: Mapped[str | None] = mapped_column(String(20), default=None)
    tags: Mapped[list[str] | None] = mapped_column(JSON, default=list)
    priority_score: Mapped[int | None] = mapped_column(Integer, default=None)
    rule_id: Mapped[str | None] = mapped_column(String(36), default=None)
    sla_policy: Mapped[str | None] = mapped_column(String(100), default=None)
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    sla_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    first_responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    merged_into: Mapped[str | None] = mapped_column(String(36), default=None)
    # Added in 0003: the conversation the feedback came from (answers go back into it), what the
    # customer felt (for suggested replies), and the declared incident the ticket belongs to.
    thread_id: Mapped[str | None] = mapped_column(String(500), default=None)
    source_message_id: Mapped[str | None] = mapped_column(String(500), default=None)
    emotions: Mapped[list[str] | None] = mapped_column(JSON, default=list)
    incident_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)


class RoutingRule(Base):
    __tablename__ = "routing_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON)
    actions: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Setting(Base):
    """Small JSON documents edited over the API (e.g. the priority-scoring weights)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))


class SlaPolicy(Base):
    __tablename__ = "sla_policies"
    __table_args__ = (UniqueConstraint("priority", "customer_tier", name="uq_sla_policies_priority_tier"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    priority: Mapped[str] = mapped_column(String(2))
    # NULL: every tier without a policy of its own.
    customer_tier: Mapped[str | None] = mapped_column(String(50))
    first_response_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)
    warn_at_share: Mapped[float] = mapped_column(Float, default=0.8)
    # NULL: 24/7 (calendar time); otherwise a BusinessHours document.
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    escalate_on_breach: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SlaClock(Base):
    """One running target of one ticket. `warned_at` / `breached_at` are written in the same
    transaction as the outbox event, so each is announced once, whatever the number of replicas."""

    __tablename__ = "sla_clocks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "target", name="uq_sla_clocks_ticket_target"),
        Index("ix_sla_clocks_due", "stopped_at", "paused_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(36), ForeignKey("tickets.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(20))  # first_response | resolution
    policy: Mapped[str] = mapped_column(String(100))
    target_minutes: Mapped[int] = mapped_column(Integer)
    warn_at_share: Mapped[float] = mapped_column(Float)
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # copied from the policy
    escalate_on_breach: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    warn_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    teams: Mapped[list[str]] = mapped_column(JSON)
    skills: Mapped[list[str]] = mapped_column(JSON)
    languages: Mapped[list[str]] = mapped_column(JSON)
    capacity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # online | away | offline
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Comment(Base):
    __tablename__ = "ticket_comments"

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(36), ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(200))
    author_type: Mapped[str] = mapped_column(String(20))  # agent | customer | system
    public: Mapped[bool] = mapped_column(Boolean)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Added in 0003. A public agent/system message is announced as ticket.replied.v1 (`event_id`) and
    # its delivery to the customer followed from notify's events: pending → delivered | undelivered.
    kind: Mapped[str | None] = mapped_column(String(20), default=None)  # reply, resolution, auto_reply
    channel: Mapped[str | None] = mapped_column(String(20), default=None)
    event_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    delivery_status: Mapped[str | None] = mapped_column(String(20), default=None)
    delivery_error: Mapped[str | None] = mapped_column(Text, default=None)
    macro_id: Mapped[str | None] = mapped_column(String(36), default=None)
    feedback_id: Mapped[str | None] = mapped_column(String(36), default=None)  # a customer's reply by e-mail/chat
    message_id: Mapped[str | None] = mapped_column(String(500), default=None)


class AuditEntry(Base):
    __tablename__ = "ticket_audit"

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(36), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TicketLink(Base):
    __tablename__ = "ticket_links"

    ticket_id: Mapped[str] = mapped_column(String(36), ForeignKey("tickets.id", ondelete="CASCADE"),
                                           primary_key=True)
    related_id: Mapped[str] = mapped_column(String(36), ForeignKey("tickets.id", ondelete="CASCADE"),
                                            primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AttachedFeedback(Base):
    """Feedback that joined an existing ticket instead of opening one (a duplicate)."""

    __tablename__ = "ticket_feedback"

    feedback_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(36), ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(200))
    attached_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CsatResponse(Base):
    __tablename__ = "csat_responses"

    ticket_id: Mapped[str] = mapped_column(String(36), ForeignKey("tickets.id", ondelete="CASCADE"),
                                           primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str | None] = mapped_column(String(20), default="page")  # page | survey (0003)


class Macro(Base):
    """A reply template in one language; placeholders are filled for the ticket, the agent edits the
    result, and what the agent finally sends is the reply."""

    __tablename__ = "macros"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(20))
    # A taxonomy key (any level) the macro is written for; NULL: any category.
    category: Mapped[str | None] = mapped_column(String(200))
    emotions: Mapped[list[str]] = mapped_column(JSON)  # e.g. ["anger"]: written for an upset customer
    body: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MacroUse(Base):
    """An agent sent a reply from this macro on a ticket like this: what suggestions learn from."""

    __tablename__ = "macro_uses"
    __table_args__ = (Index("ix_macro_uses_category", "category"),)

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    macro_id: Mapped[str] = mapped_column(String(36), ForeignKey("macros.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[str] = mapped_column(String(36))
    category: Mapped[str] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(20))
    emotions: Mapped[list[str]] = mapped_column(JSON)
    sentiment: Mapped[str | None] = mapped_column(String(20))
    used_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Incident(Base):
    """A declared incident: feedback that matches it while it is open gets its public message."""

    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)  # internal
    # {"en": "...", "zh": "..."}: what customers are told; the fallback language's text when theirs is missing.
    public_message: Mapped[dict[str, str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)  # taxonomy keys (any level) it covers
    keywords: Mapped[list[str]] = mapped_column(JSON)  # any of them in the text also matches
    status: Mapped[str] = mapped_column(String(20))  # proposed (from a spike alert) | open | resolved
    source: Mapped[str] = mapped_column(String(20))  # declared | alert
    alert: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    confirmed_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
