"""Bodies of the reports routes."""

from typing import Literal

from pydantic import BaseModel, Field

# The languages the weekly report is written in.
Language = Literal["en", "zh"]


class SubscriberIn(BaseModel):
    model_config = {"extra": "forbid"}

    name: str | None = Field(default=None, max_length=200)
    language: Language = "en"


class SubscriberPublic(BaseModel):
    email: str
    name: str | None
    language: str
