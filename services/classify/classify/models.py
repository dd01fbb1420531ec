"""Classify's own tables."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from closedloop.db import ServiceBase, UTCDateTime, new_metadata
from closedloop.messaging.models import messaging_models
from closedloop.messaging.tables import AutoIncrementId


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


OutboxMessage, InboxMessage, outbox = messaging_models(Base)


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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # Added in 0002 (nullable: rows written before it have none of these).
    needs_triage: Mapped[bool] = mapped_column(Boolean, default=False)
    suggestions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    severity: Mapped[str | None] = mapped_column(String(20))
    signals: Mapped[list[str] | None] = mapped_column(JSON)
    emotions: Mapped[list[str] | None] = mapped_column(JSON)
    language: Mapped[str | None] = mapped_column(String(10))
    language_confidence: Mapped[float | None] = mapped_column(Float)
    duplicate_of: Mapped[str | None] = mapped_column(String(36))
    near_duplicates: Mapped[list[Any] | None] = mapped_column(JSON)
    # float32 unit vector of the text: near-duplicates and topics are computed from it.
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)


class TaxonomyVersion(Base):
    """Every taxonomy ever used; exactly one is active. Past classifications name theirs."""

    __tablename__ = "taxonomy_versions"

    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"categories": [...]} as in the YAML file
    source: Mapped[str] = mapped_column(String(20))  # file | api
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TrainingExample(Base):
    __tablename__ = "training_examples"
    __table_args__ = (Index("ix_training_examples_text_hash_label", "text_hash", "label", unique=True),)

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), index=True)
    source: Mapped[str] = mapped_column(String(20))  # api | recategorized
    feedback_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Cached embedding (and the model that made it): retraining does not re-encode old examples.
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    embedding_model: Mapped[str | None] = mapped_column(String(200))


class ModelVersion(Base):
    """A training run and the model it produced (artefact stored as a blob: every replica can load it)."""

    __tablename__ = "model_versions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    status: Mapped[str] = mapped_column(String(20), index=True)  # queued | training | ready | failed
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(100), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    taxonomy_version: Mapped[str] = mapped_column(String(40))
    embedding_model: Mapped[str] = mapped_column(String(200))
    n_examples: Mapped[int | None] = mapped_column(Integer)
    artefact: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConfigEntry(Base):
    """Run-time overrides of settings (threshold, field modes) set over the API, shared by replicas."""

    __tablename__ = "engine_config"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)  # as migration 0002 created it
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AlertRecord(Base):
    """Alerts raised, so a condition that lasts is announced once per cooldown, not every check."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON)
    event_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
