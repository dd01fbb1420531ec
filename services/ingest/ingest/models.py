"""Ingest's own tables: feedback as received, idempotency keys, duplicates, customers, invitations."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.db import ServiceBase, UTCDateTime, new_metadata
from closedloop.messaging.models import messaging_models


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


OutboxMessage, InboxMessage, outbox = messaging_models(Base)

# Progress a customer can see; events may arrive out of order, so status only moves forward.
STATUS_ORDER = ("received", "classified", "ticket_opened", "resolved")


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_feedback_channel_external_id"),
        Index("ix_feedback_customer_id", "customer_id"),
        Index("ix_feedback_customer_text", "customer_id", "text_hash", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    # `text`/`subject` are what travels downstream (personal data masked); the originals stay here only.
    text: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(500))
    customer_id: Mapped[str] = mapped_column(String(200))
    customer_tier: Mapped[str] = mapped_column(String(50))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    rating: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(20))
    external_id: Mapped[str | None] = mapped_column(String(200))
    extra: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="received")
    category: Mapped[str | None] = mapped_column(String(200))
    sentiment: Mapped[str | None] = mapped_column(String(20))
    ticket_id: Mapped[str | None] = mapped_column(String(36))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Added by 0002: the standard record of every channel.
    original_text: Mapped[str | None] = mapped_column(Text)
    original_subject: Mapped[str | None] = mapped_column(String(500))
    pii_masked: Mapped[list[str] | None] = mapped_column(JSON)
    text_hash: Mapped[str | None] = mapped_column(String(64))
    thread_id: Mapped[str | None] = mapped_column(String(500))
    app_version: Mapped[str | None] = mapped_column(String(50))
    platform: Mapped[str | None] = mapped_column(String(50))
    nps: Mapped[int | None] = mapped_column(Integer)
    csat: Mapped[int | None] = mapped_column(Integer)
    customer_locale: Mapped[str | None] = mapped_column(String(35))
    customer_value: Mapped[float | None] = mapped_column(Float)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Added by 0004: first-class dimensions for insights (optional).
    region: Mapped[str | None] = mapped_column(String(50))
    product: Mapped[str | None] = mapped_column(String(100))


class FeedbackDuplicate(Base):
    """A submission recorded as a repeat of an earlier feedback item instead of a new one."""

    __tablename__ = "feedback_duplicates"
    __table_args__ = (Index("ix_feedback_duplicates_feedback_id", "feedback_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    feedback_id: Mapped[str] = mapped_column(String(36))
    reason: Mapped[str] = mapped_column(String(20))  # same_text
    channel: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Customer(Base):
    """A customer profile; it fills in what a feedback request leaves out and travels with its event."""

    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_email", "email"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(50))
    value: Mapped[float | None] = mapped_column(Float)
    locale: Mapped[str | None] = mapped_column(String(35))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Invitation(Base):
    """A feedback invitation sent to a customer; none goes out twice within the cool-down."""

    __tablename__ = "feedback_invitations"
    __table_args__ = (Index("ix_feedback_invitations_customer", "customer_id", "invited_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    campaign: Mapped[str | None] = mapped_column(String(200))
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    feedback_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Erasure(Base):
    """A customer's erasure request and, per service, when it completed. The customer id itself is not
    kept: only its SHA-256, so the status can be looked up by the id the caller still knows."""

    __tablename__ = "erasures"
    __table_args__ = (Index("ix_erasures_customer_hash", "customer_hash"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_hash: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str | None] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # {"ingest": {"completed_at": "...", "erased": {"feedback": 3, ...}}, ...}
    services: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
