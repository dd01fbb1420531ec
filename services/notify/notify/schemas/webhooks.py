"""Webhook endpoints and their circuit breakers."""

from datetime import datetime
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, Field


class CircuitPublic(BaseModel):
    state: Literal["closed", "open", "half_open"]
    consecutive_failures: int
    open_until: datetime | None


class WebhookIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["CRM sync"])
    url: AnyHttpUrl = Field(examples=["https://hooks.example.com/closedloop"])
    event_types: list[str] = Field(default_factory=lambda: ["ticket.*"], min_length=1,
                                   examples=[["ticket.created.v1", "alert.*"]],
                                   description="Glob patterns over event subjects.")
    secret: str | None = Field(default=None, min_length=16, max_length=200,
                               description="Signing secret; generated when omitted.")
    customer_channels: list[Literal["chat", "app", "app_review", "web", "api", "survey"]] = Field(
        default_factory=list, examples=[["chat", "app"]],
        description="A partner's endpoint that answers customers on these channels: agents' replies to tickets "
                    "from them are delivered here (ticket.replied.v1, with the conversation's thread_id).")


class WebhookPublic(BaseModel):
    id: str
    name: str
    url: str
    event_types: list[str]
    customer_channels: list[str] = Field(default_factory=list)
    active: bool
    created_at: datetime
    circuit: CircuitPublic | None = Field(default=None, description="The endpoint's circuit breaker.")


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="Shown only once: keep it to verify signatures.")
