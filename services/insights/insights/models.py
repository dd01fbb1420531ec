"""The read model: pre-aggregated sums per time bucket and dimension, plus the per-item facts the
analyses need (tickets for drivers and the funnel, customers for segments, needs for opportunities),
and what insights has raised (anomalies, churn flags, opportunities, reports) so nothing is raised twice."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Float, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.db import ServiceBase, UTCDateTime, new_metadata
from closedloop.messaging.models import messaging_models
from closedloop.messaging.tables import AutoIncrementId
from insights.dimensions import RAW_METRICS


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


OutboxMessage, InboxMessage, outbox = messaging_models(Base)


class Aggregate(Base):
    """The sums (one column per raw metric, see dimensions.RAW_METRICS) of the events in the bucket starting
    at `bucket` (an hour or a day, UTC) whose dimension `d1` is `v1` (and `d2` is `v2` for a pair; ''
    otherwise; d1 'all' for the total). A dashboard query reads buckets x values rows, never items, so it
    costs the same at any volume."""

    __table__ = Table(
        "aggregates", Base.metadata,
        Column("grain", String(1), primary_key=True),  # h | d
        Column("d1", String(20), primary_key=True),
        Column("d2", String(20), primary_key=True),
        Column("v1", String(200), primary_key=True),
        Column("v2", String(200), primary_key=True),
        Column("bucket", UTCDateTime(), primary_key=True),
        *(Column(name, Float, nullable=False, server_default="0") for name in RAW_METRICS),
        # SQLite: the primary key is the table (one b-tree to update per upsert instead of a table and an index).
        sqlite_with_rowid=False,
    )


class FeedbackFact(Base):
    __tablename__ = "feedback_facts"
    __table_args__ = (Index("ix_feedback_facts_customer", "customer_id", "received_at"),)

    feedback_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str | None] = mapped_column(String(50))
    value: Mapped[float | None] = mapped_column(Float)
    region: Mapped[str | None] = mapped_column(String(50))
    product: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str | None] = mapped_column(String(20))
    nps: Mapped[int | None] = mapped_column(Integer)
    csat: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(200))
    sentiment: Mapped[str | None] = mapped_column(String(20))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    classified: Mapped[bool] = mapped_column(Boolean, default=False)


class TicketFact(Base):
    __tablename__ = "ticket_facts"
    __table_args__ = (Index("ix_ticket_facts_feedback", "feedback_id"), Index("ix_ticket_facts_created", "created_at"))

    ticket_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    feedback_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    team: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(200))
    sentiment: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(5))
    customer_id: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str | None] = mapped_column(String(50))
    assignee: Mapped[str | None] = mapped_column(String(200))
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolutions: Mapped[int] = mapped_column(Integer, default=0)
    reopens: Mapped[int] = mapped_column(Integer, default=0)
    reassignments: Mapped[int] = mapped_column(Integer, default=0)
    breaches: Mapped[int] = mapped_column(Integer, default=0)
    agent_replies: Mapped[int] = mapped_column(Integer, default=0)
    csat: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))


class PendingContribution(Base):
    """Ticket-side sums waiting for their feedback's dimensions (channel, region, ...): the two arrive
    on different streams, in either order. Applied and deleted when the feedback fact arrives."""

    __tablename__ = "pending_contributions"
    __table_args__ = (Index("ix_pending_contributions_feedback", "feedback_id"),)

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    feedback_id: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    dims: Mapped[dict[str, str]] = mapped_column(JSON)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON)


class CustomerFact(Base):
    __tablename__ = "customer_facts"

    customer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tier: Mapped[str | None] = mapped_column(String(50))
    value: Mapped[float | None] = mapped_column(Float)
    first_contact_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_contact_at: Mapped[datetime] = mapped_column(UTCDateTime())
    contacts: Mapped[int] = mapped_column(Integer, default=0)
    negatives: Mapped[int] = mapped_column(Integer, default=0)


class NeedMention(Base):
    """A feature request or unmet need, kept with its wording for clustering into opportunities."""

    __tablename__ = "need_mentions"
    __table_args__ = (Index("ix_need_mentions_received", "received_at"),)

    feedback_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(200))
    value: Mapped[float | None] = mapped_column(Float)
    category: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RaisedAnomaly(Base):
    """One row per anomaly ever raised; the key (series and window) is what makes replicas raise it once."""

    __tablename__ = "raised_anomalies"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    observed: Mapped[dict[str, float]] = mapped_column(JSON)
    expected: Mapped[dict[str, float]] = mapped_column(JSON)
    z: Mapped[float] = mapped_column(Float)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RaisedChurnRisk(Base):
    __tablename__ = "raised_churn_risks"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # customer and detection window
    customer_id: Mapped[str] = mapped_column(String(200))
    risk_score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RaisedOpportunity(Base):
    __tablename__ = "raised_opportunities"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # theme and week
    title: Mapped[str] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportSubscriber(Base):
    """A lead who receives the weekly report, in their language."""

    __tablename__ = "report_subscribers"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(10))  # en | zh
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportRun(Base):
    """The weekly report of one week, sent once (the key keeps a second replica from sending it again)."""

    __tablename__ = "report_runs"

    week_start: Mapped[str] = mapped_column(String(10), primary_key=True)  # ISO date of the Monday
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_to: Mapped[list[str]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)


class InsightsConfig(Base):
    """Settings changed at run time over the API (anomaly sensitivity, churn thresholds)."""

    __tablename__ = "insights_config"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
