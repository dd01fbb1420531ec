"""The taxonomy: its versions and their nodes (`/v1/taxonomy`)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from closedloop.limits import exactly_one_of


class TaxonomyNodeIn(BaseModel):
    path: str = Field(min_length=1, max_length=200, examples=["billing/refund"])
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000,
                                    examples=["The customer wants money back for a purchase."])
    examples: list[str] = Field(default_factory=list, max_length=200, examples=[["I want my money back"]])


class TaxonomyIn(BaseModel):
    """Flat `nodes` with paths (parents implied), or the file shape `categories` (a tree)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"nodes": [
        {"path": "billing/refund", "description": "Wants money back.", "examples": ["I want a refund"]},
        {"path": "billing/payment_failure", "description": "A payment did not go through."},
    ]}], **exactly_one_of("nodes", "categories")})

    nodes: list[TaxonomyNodeIn] | None = Field(default=None, min_length=1, max_length=5000)
    categories: list[dict[str, Any]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_shape(self) -> "TaxonomyIn":
        if (self.nodes is None) == (self.categories is None):
            raise ValueError("send either `nodes` or `categories`")
        return self


class TaxonomyNodePublic(BaseModel):
    key: str
    path: str
    name: str
    description: str
    parent: str | None
    leaf: bool
    examples: list[str]


class TaxonomyPublic(BaseModel):
    version: str
    active: bool = True
    source: str | None = None
    created: bool | None = Field(default=None, description="On PUT: whether this content was a new version.")
    created_at: datetime | None = None
    nodes: list[TaxonomyNodePublic]


class TaxonomyVersionSummary(BaseModel):
    version: str
    source: str
    active: bool
    leaves: int
    created_at: datetime
    activated_at: datetime | None
