"""Incidents, declared or proposed from a spike alert and confirmed."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from closedloop.pagination import Page


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "title": "Card payments failing", "description": "PSP outage since 09:40, failover in progress.",
        "public_message": {"en": "We know card payments are failing right now and are fixing it. "
                                 "No need to retry; we will write when it works again.",
                           "zh": "我们已知悉目前银行卡支付失败的问题，正在修复中。无需重试，恢复后我们会通知您。"},
        "categories": ["billing/payment_failure"], "keywords": ["payment failed"]}]})

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=20000, description="Internal: what is going on.")
    public_message: dict[str, str] = Field(min_length=1, description="What customers are told, by language "
                                                                     "(en used when theirs is missing).")
    categories: list[str] = Field(default_factory=list, description="Taxonomy keys (any level) it covers.")
    keywords: list[str] = Field(default_factory=list, description="Any of these in the text also matches.")


class IncidentPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, min_length=1, max_length=20000)
    public_message: dict[str, str] | None = Field(default=None, min_length=1)
    categories: list[str] | None = None
    keywords: list[str] | None = None


class IncidentConfirmIn(BaseModel):
    """An operator turns a spike alert into a declared incident."""

    model_config = ConfigDict(extra="forbid")

    public_message: dict[str, str] = Field(min_length=1)
    categories: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    description: str | None = Field(default=None, max_length=20000)


class IncidentPublic(BaseModel):
    id: str
    title: str
    description: str
    public_message: dict[str, str]
    categories: list[str]
    keywords: list[str]
    status: Literal["proposed", "open", "resolved"]
    source: Literal["declared", "alert"]
    alert: dict[str, object] | None
    confirmed_by: str | None
    created_at: datetime
    updated_at: datetime
    ticket_count: int = Field(0, description="Tickets linked to it.")


class IncidentPage(Page[IncidentPublic]):
    """A page of incidents, newest first."""
