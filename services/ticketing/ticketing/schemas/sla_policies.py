"""SLA policies: targets per priority and customer tier."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ticketing.calendar import BusinessHours
from ticketing.schemas.tickets import Priority


class SlaPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "P1 enterprise", "priority": "P1", "customer_tier": "enterprise", "first_response_minutes": 60,
        "resolution_minutes": 480, "warn_at_share": 0.8, "escalate_on_breach": True,
        "business_hours": {"timezone": "Europe/Berlin",
                           "weekly": {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
                           "holidays": ["2026-12-25"]}}]})

    name: str = Field(min_length=1, max_length=100)
    priority: Priority
    customer_tier: str | None = Field(default=None, description="Null: every tier without a policy of its own.")
    first_response_minutes: int | None = Field(default=None, gt=0, description="Null: no first-response target.")
    resolution_minutes: int | None = Field(default=None, gt=0, description="Null: no resolution target.")
    warn_at_share: float = Field(0.8, gt=0, lt=1, description="Warn when this share of the target has passed.")
    business_hours: BusinessHours | None = Field(default=None, description="Null: 24/7 (calendar time).")
    escalate_on_breach: bool = Field(True, description="At breach raise the priority and notify the team lead.")


class SlaPolicyPublic(SlaPolicyIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "7d1a…", "name": "P1", "priority": "P1", "customer_tier": None, "first_response_minutes": 120,
        "resolution_minutes": 960, "warn_at_share": 0.8, "escalate_on_breach": True,
        "business_hours": {"timezone": "UTC", "weekly": {"mon": ["09:00", "17:00"]}, "holidays": []},
        "created_at": "2026-11-24T09:00:00Z", "updated_at": "2026-11-24T09:00:00Z"}]})

    id: str
    created_at: datetime
    updated_at: datetime
