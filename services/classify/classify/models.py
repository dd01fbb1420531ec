"""Classify's own tables."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.db import ServiceBase, UTCDateTime, new_metadata
from closedloop.messaging.outbox import Outbox
from closedloop.messaging.tables import InboxMixin, OutboxMixin


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


class OutboxMessage(OutboxMixin, Base):
    pass


class InboxMessage(InboxMixin, Base):
    pass


outbox = Outbox(OutboxMessage)


class ClassificationRecord(Base):
    """The result for one feedback item, with the taxonomy and model versions that produced it."""

    __tablename__ = "classifications"

    feedback_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(200))
    category_label: Mapped[str] = mapped_column(String(200))
    top_level: Mapped[str] = mapped_column(String(100))
    confidence: Mapped[float] = mapped_column(Float)
    alternatives: Mapped[list[Any]] = mapped_column(JSON)
    sentiment: Mapped[str] = mapped_column(String(20))
    sentiment_score: Mapped[float] = mapped_column(Float)
    polarity: Mapped[float] = mapped_column(Float)
    taxonomy_version: Mapped[str] = mapped_column(String(40))
    model_version: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
