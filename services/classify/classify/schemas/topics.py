"""Emerging topics (`/v1/topics`)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class TopicPublic(BaseModel):
    id: str = Field(description="The feedback id of the topic's first message in the time range.")
    label: str = Field(description="The message closest to the topic's centre.")
    top_category: str
    volume: int = Field(description="Messages in the current window.")
    previous_volume: int = Field(description="Messages in the window before it.")
    trend: Literal["new", "rising", "stable", "falling"]
    growth: float | None = Field(description="volume / previous_volume - 1 (null when previous is 0).")
    negative_share: float
    sample_feedback_ids: list[str]


class TopicsPublic(BaseModel):
    window_hours: float
    window_start: datetime
    window_end: datetime
    messages: int
    topics: list[TopicPublic]
