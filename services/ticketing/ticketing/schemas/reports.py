"""The reports for team leads and support managers."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Durations(BaseModel):
    count: int
    median_minutes: float | None
    p90_minutes: float | None


class ResponseTimesGroup(BaseModel):
    team: str | None = None
    priority: str | None = None
    first_response: Durations
    resolution: Durations


class ResponseTimesReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "since": "2026-11-17T00:00:00Z", "until": "2026-11-24T00:00:00Z",
        "overall": {"first_response": {"count": 40, "median_minutes": 22.5, "p90_minutes": 95.0},
                    "resolution": {"count": 31, "median_minutes": 300.0, "p90_minutes": 1440.0}},
        "by_team": [], "by_priority": []}]})

    since: datetime
    until: datetime
    overall: ResponseTimesGroup
    by_team: list[ResponseTimesGroup]
    by_priority: list[ResponseTimesGroup]


class ComplianceRow(BaseModel):
    team: str
    priority: str
    target: str
    met: int = Field(description="Targets reached before their due time.")
    breached: int
    compliance: float | None = Field(description="met / (met + breached); null when nothing finished yet.")


class ComplianceReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "since": "2026-11-17T00:00:00Z", "until": "2026-11-24T00:00:00Z", "overall": 0.93,
        "rows": [{"team": "payments", "priority": "P1", "target": "first_response", "met": 14, "breached": 1,
                  "compliance": 0.933}]}]})

    since: datetime
    until: datetime
    overall: float | None
    rows: list[ComplianceRow]


class BacklogGroup(BaseModel):
    key: str
    open_tickets: int
    breached: int
    oldest_created_at: datetime | None


class BacklogReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "total": 12, "unassigned": 3, "by_status": {"new": 3, "open": 7, "pending": 2},
        "by_team": [{"key": "payments", "open_tickets": 5, "breached": 1,
                     "oldest_created_at": "2026-11-20T10:00:00Z"}], "by_priority": []}]})

    total: int
    unassigned: int
    by_status: dict[str, int]
    by_team: list[BacklogGroup]
    by_priority: list[BacklogGroup]


class CsatGroup(BaseModel):
    key: str
    responses: int
    average: float | None


class CsatReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "since": "2026-11-17T00:00:00Z", "until": "2026-11-24T00:00:00Z", "responses": 20, "average": 4.3,
        "satisfied_share": 0.85, "distribution": {"1": 1, "2": 0, "3": 2, "4": 5, "5": 12},
        "by_team": [{"key": "payments", "responses": 8, "average": 4.5}]}]})

    since: datetime
    until: datetime
    responses: int
    average: float | None
    satisfied_share: float | None = Field(description="Share of 4 and 5 scores.")
    distribution: dict[str, int]
    by_team: list[CsatGroup]


class TopIssue(BaseModel):
    category: str
    category_label: str
    count: int = Field(description="Tickets and attached duplicates opened in the period.")
    previous_count: int = Field(description="The same in the period of equal length before.")
    change: float | None = Field(description="(count - previous) / previous; null when there was none before.")
    trend: str = Field(description="new, up, down or flat", examples=["up"])


class TopIssuesReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "since": "2026-11-17T00:00:00Z", "until": "2026-11-24T00:00:00Z",
        "items": [{"category": "billing/unexpected_charge", "category_label": "Unexpected or duplicate charge",
                   "count": 42, "previous_count": 20, "change": 1.1, "trend": "up"}]}]})

    since: datetime
    until: datetime
    items: list[TopIssue]
