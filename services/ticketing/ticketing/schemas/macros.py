"""Macros (reply templates per language) and the replies suggested for a ticket."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MacroLanguage = Field(min_length=2, max_length=20, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
                      description="BCP 47, e.g. en, zh, zh-CN.")


class MacroIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "Refund on its way", "language": "en", "category": "billing/refund", "emotions": [],
        "body": "Hello {{ customer_name }}, your refund for ticket {{ ticket_number }} is on its way. "
                "Follow it here: {{ status_link }}"}]})

    name: str = Field(min_length=1, max_length=200)
    language: str = MacroLanguage
    category: str | None = Field(default=None, min_length=1, max_length=200,
                                 description="A taxonomy key (any level) it is written for; null: any category.")
    emotions: list[Literal["anger", "frustration", "urgency"]] = Field(
        default_factory=list, description="Written for a customer showing these emotions.")
    body: str = Field(min_length=1, max_length=20000, description=(
        "Text with placeholders {{ customer_name }}, {{ ticket_number }}, {{ expected_time }}, {{ status_link }}."))
    active: bool = True


class MacroPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    language: str | None = Field(default=None, min_length=2, max_length=20,
                                 pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    category: str | None = Field(default=None, min_length=1, max_length=200)
    emotions: list[Literal["anger", "frustration", "urgency"]] | None = None
    body: str | None = Field(default=None, min_length=1, max_length=20000)
    active: bool | None = None


class MacroPublic(MacroIn):
    id: str
    builtin: bool
    created_at: datetime
    updated_at: datetime


class SuggestedReply(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "macro_id": "0b5b2c4e-5d1e-5b7a-9d8e-1f2a3b4c5d6e", "name": "Duplicate charge reversed", "language": "en",
        "score": 0.71, "prior": 0.77, "similar_uses": 4,
        "reasons": ["written for billing/unexpected_charge", "chosen 4 times on similar tickets"],
        "text": "Hello Ana, You were right: the payment was taken twice. …"}]})

    macro_id: str
    name: str
    language: str
    score: float = Field(description="0–1; the prior pulled towards what agents chose on similar tickets.")
    prior: float = Field(description="What the macro was written for (category, emotions), 0–1.")
    similar_uses: int = Field(description="Times agents sent it on tickets of the same category (or top level).")
    reasons: list[str]
    text: str = Field(description="The macro with this ticket's placeholders filled in; the agent edits it and "
                                  "sends the final text as a comment with `macro_id`.")
