from datetime import datetime

from pydantic import AnyHttpUrl, BaseModel, Field


class WebhookCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["CRM sync"])
    url: AnyHttpUrl = Field(examples=["https://hooks.example.com/closedloop"])
    event_types: list[str] = Field(default_factory=lambda: ["ticket.*"], min_length=1,
                                   examples=[["ticket.created.v1", "alert.*"]],
                                   description="Glob patterns over event subjects.")
    secret: str | None = Field(default=None, min_length=16, max_length=200,
                               description="Signing secret; generated when omitted.")


class WebhookPublic(BaseModel):
    id: str
    name: str
    url: str
    event_types: list[str]
    active: bool
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="Shown only once: keep it to verify signatures.")


class DeliveryPublic(BaseModel):
    id: str
    endpoint_id: str
    source_event_id: str
    event_type: str
    target: str
    status: str = Field(description="pending, delivered, or failed (dead-lettered; can be replayed)")
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryDetail(DeliveryPublic):
    payload: str


class DeliveryPage(BaseModel):
    items: list[DeliveryPublic]
    total: int
