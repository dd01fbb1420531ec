"""Deliveries: every notification notify planned, on every channel."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from closedloop.pagination import Page

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


class DeliveryPage(Page[DeliveryPublic]):
    pass
