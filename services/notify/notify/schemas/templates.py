"""Notification templates and their previews."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from notify.schemas.checks import LANGUAGE


class TemplateBody(BaseModel):
    subject: str | None = Field(default=None, max_length=2000, description="Required for e-mail.",
                                examples=["We received your message: {{ ticket.title }}"])
    body_text: str = Field(min_length=1, max_length=100_000,
                           examples=["Hello {{ customer.name }}, follow your ticket at {{ status_url }}"])
    body_html: str | None = Field(default=None, max_length=200_000, description="E-mail only; autoescaped.")


class TemplateIn(TemplateBody):
    key: str = Field(min_length=1, max_length=200, examples=["ticket.created.v1"],
                     description="An event type (the default recipients' template) or a name that subscriptions "
                                 "refer to; `event` is the generic fallback.")
    channel: Literal["email", "slack"]
    language: str = Field(pattern=LANGUAGE, examples=["es"])

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return value.lower()


class TemplatePublic(TemplateIn):
    id: str
    builtin: bool = Field(description="Shipped with notify (and restored at start-up if deleted).")
    created_at: datetime
    updated_at: datetime


class PreviewIn(BaseModel):
    data: dict[str, Any] = Field(default_factory=dict,
                                 description="Values merged over the sample data, e.g. "
                                             '{"customer": {"name": "Jo"}, "ticket": {"priority": "P0"}}.',
                                 examples=[{"customer": {"name": "Jo"}}])


class UnsavedPreviewIn(TemplateIn, PreviewIn):
    pass


class PreviewPublic(BaseModel):
    language: str
    subject: str | None
    text: str
    html: str | None
    slack: dict[str, Any] | None = Field(default=None, description="The Slack message JSON (slack templates).")
    context: dict[str, Any] = Field(description="The data the template was rendered with.")
