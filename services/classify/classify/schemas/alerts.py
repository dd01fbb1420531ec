"""Spike alerts (`/v1/alerts`)."""

from datetime import datetime

from pydantic import BaseModel

from closedloop.pagination import Page


class AlertPublic(BaseModel):
    id: int
    kind: str
    severity: str
    message: str
    metrics: dict[str, float]
    event_id: str
    created_at: datetime


class AlertPage(Page[AlertPublic]):
    """Spike alerts, newest first."""
