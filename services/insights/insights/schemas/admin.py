"""Bodies of the admin routes."""

from datetime import datetime

from pydantic import BaseModel, Field


class ConsumerLagPublic(BaseModel):
    durable: str
    stream: str
    pending: int | None = Field(description="Messages in the stream not yet delivered to the read model.")
    unacknowledged: int | None
    stream_last_sequence: int | None
    handled_up_to: int | None
    error: str | None = None


class ReadModelStatus(BaseModel):
    behind_messages: int = Field(description="Sum of pending and unacknowledged messages over all streams.")
    caught_up: bool
    latest_data_at: datetime | None = Field(description="The latest hour with data ('as of' of the analyses).")
    feedback_items: int
    tickets: int
    rebuilding: bool
    consumers: list[ConsumerLagPublic]
