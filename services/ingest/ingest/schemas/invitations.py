"""Feedback invitations: may a customer be asked for feedback now?"""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from closedloop.events import Channel
from closedloop.limits import SafeId


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: SafeId
    channel: Channel = "email"
    campaign: str | None = Field(default=None, max_length=200, examples=["post-resolution-csat"])
    dry_run: bool = Field(default=False, description="Only answer whether it is allowed; record nothing.")


class InvitationDecision(BaseModel):
    allowed: bool
    reason: str
    invitation_id: str | None = Field(default=None, description="The recorded invitation when allowed.")
    last_invited_at: datetime | None = None
    next_allowed_at: datetime | None = Field(default=None, description="When this customer may be asked again.")
