"""Subscriptions: who hears about which events, on which channel."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from closedloop.events import Priority
from notify.schemas.checks import LANGUAGE, check_email, check_http_url, check_timezone
from notify.schemas.deliveries import ChannelName


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


class SubscriptionIn(SubscriptionFields):
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
