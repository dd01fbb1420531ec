import re
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from closedloop.events import Priority

EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
LANGUAGE = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$"


def check_email(value: str) -> str:
    if not EMAIL.match(value):
        raise ValueError("not an e-mail address")
    return value


def check_http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("not an http(s) URL")
    return value


def check_timezone(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


class CircuitPublic(BaseModel):
    state: Literal["closed", "open", "half_open"]
    consecutive_failures: int
    open_until: datetime | None


class WebhookCreate(BaseModel):
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


DeliveryStatus = Literal["pending", "delivered", "failed", "suppressed"]
ChannelName = Literal["webhook", "email", "slack"]


class DeliveryPublic(BaseModel):
    id: str
    channel: ChannelName
    endpoint_id: str | None = Field(description="The webhook endpoint (webhook deliveries only).")
    recipient: str | None = Field(description="E-mail address, Slack hook name (`slack-hook:<fingerprint>`) or "
                                              "webhook URL.")
    subscription_id: str | None
    template_key: str | None
    language: str | None
    ticket_id: str | None
    audience: str | None = Field(default=None, description="customer (the ticket's customer), internal "
                                                            "(assignee, lead, operations) or subscriber.")
    source_event_id: str
    event_type: str
    target: str
    status: DeliveryStatus = Field(description="pending; delivered; failed (dead-lettered after the last attempt "
                                               "or a permanent error; can be replayed); suppressed (never sent, "
                                               "see `reason`)")
    reason: str | None = Field(description="Why it was suppressed (duplicate, frequency_cap, channel_disabled, "
                                           "template_error) or postponed (quiet_hours, circuit open).")
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None = Field(description="HTTP status, or the SMTP reply code for e-mail.")
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryDetail(DeliveryPublic):
    payload: str = Field(description="Exactly what is sent: the signed webhook body, the Slack message JSON, or "
                                     "the e-mail as JSON {subject, text, html}.")


class DeliveryPage(BaseModel):
    items: list[DeliveryPublic]
    total: int


class SubscriptionFields(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["Payments leads on P0/P1"])
    event_types: list[str] = Field(min_length=1, examples=[["ticket.created.v1", "ticket.sla_*"]],
                                   description="Glob patterns over event subjects.")
    teams: list[str] = Field(default_factory=list, description="Only tickets of these teams; empty: every team.")
    priorities: list[Priority] = Field(default_factory=list,
                                       description="Only tickets of these priorities; empty: every priority.")
    channel: ChannelName
    target: str = Field(min_length=1, max_length=2000,
                        description="email: an address; slack: a Slack-compatible incoming-webhook URL; "
                                    "webhook: the id of a registered webhook endpoint (it holds the secret).",
                        examples=["payments-leads@example.com"])
    language: str | None = Field(default=None, pattern=LANGUAGE, examples=["de"])
    timezone: str | None = Field(default=None, max_length=64, examples=["Europe/Berlin"],
                                 description="For quiet hours; the default time zone when omitted.")
    template_key: str | None = Field(default=None, max_length=200,
                                     description="Template to render; the generic `event` template when omitted.")
    active: bool = True


class SubscriptionCreate(SubscriptionFields):
    # What `_target` checks, in the schema: the target's form depends on the channel.
    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"if": {"properties": {"channel": {"const": "email"}}, "required": ["channel"]},
         "then": {"properties": {"target": {"format": "email"}}}},
        {"if": {"properties": {"channel": {"const": "slack"}}, "required": ["channel"]},
         "then": {"properties": {"target": {"pattern": "^https?://"}}}},
    ]})

    @field_validator("target")
    @classmethod
    def _target(cls, value: str, info: ValidationInfo) -> str:
        channel = info.data.get("channel")
        if channel == "email":
            return check_email(value)
        if channel == "slack":
            return check_http_url(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return check_timezone(value)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return value.lower() if value else value


class SubscriptionPublic(SubscriptionFields):
    target: str = Field(description="email: the address; webhook: the endpoint id; slack: the hook's name "
                                    "`slack-hook:<fingerprint>` (the URL is a credential: stored encrypted, never "
                                    "shown again).")
    id: str
    created_at: datetime


class TemplateBody(BaseModel):
    subject: str | None = Field(default=None, max_length=2000, description="Required for e-mail.",
                                examples=["We received your message: {{ ticket.title }}"])
    body_text: str = Field(min_length=1, max_length=100_000,
                           examples=["Hello {{ customer.name }}, follow your ticket at {{ status_url }}"])
    body_html: str | None = Field(default=None, max_length=200_000, description="E-mail only; autoescaped.")


class TemplateCreate(TemplateBody):
    key: str = Field(min_length=1, max_length=200, examples=["ticket.created.v1"],
                     description="An event type (the default recipients' template) or a name that subscriptions "
                                 "refer to; `event` is the generic fallback.")
    channel: Literal["email", "slack"]
    language: str = Field(pattern=LANGUAGE, examples=["es"])

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return value.lower()


class TemplatePublic(TemplateCreate):
    id: str
    builtin: bool = Field(description="Shipped with notify (and restored at start-up if deleted).")
    created_at: datetime
    updated_at: datetime


class PreviewRequest(BaseModel):
    data: dict[str, Any] = Field(default_factory=dict,
                                 description="Values merged over the sample data, e.g. "
                                             '{"customer": {"name": "Jo"}, "ticket": {"priority": "P0"}}.',
                                 examples=[{"customer": {"name": "Jo"}}])


class UnsavedPreviewRequest(TemplateCreate, PreviewRequest):
    pass


class PreviewPublic(BaseModel):
    language: str
    subject: str | None
    text: str
    html: str | None
    slack: dict[str, Any] | None = Field(default=None, description="The Slack message JSON (slack templates).")
    context: dict[str, Any] = Field(description="The data the template was rendered with.")
