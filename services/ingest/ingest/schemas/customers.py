"""Customer profiles and the erasure of everything held about a customer."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from ingest.models import Customer
from ingest.schemas.feedback import LANGUAGE_TAG


class CustomerProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None
    name: str | None = Field(default=None, max_length=200)
    tier: str = Field(default="standard", min_length=1, max_length=50, examples=["vip", "standard", "enterprise"])
    value: float | None = Field(default=None, ge=0, description="e.g. annual revenue; a priority hint.")
    locale: str | None = Field(default=None, max_length=35, pattern=LANGUAGE_TAG, examples=["pt-BR"])

    @field_validator("tier")
    @classmethod
    def _tier(cls, value: str) -> str:
        value = value.strip().lower()
        if not value:
            raise ValueError("must not be blank")
        return value


class CustomerProfile(BaseModel):
    id: str
    email: str | None
    name: str | None
    tier: str
    value: float | None
    locale: str | None
    created_at: datetime
    updated_at: datetime


# --- erasure -------------------------------------------------------------------------------------


class ErasureServiceStatus(BaseModel):
    status: Literal["pending", "completed"]
    completed_at: datetime | None = None
    erased: dict[str, int] | None = Field(default=None, description="Rows changed per table.")


class ErasureStatus(BaseModel):
    id: str
    status: Literal["pending", "completed"] = Field(description="`completed` once every service reported.")
    requested_at: datetime
    requested_by: str | None
    services: dict[str, ErasureServiceStatus]


def to_profile(customer: Customer) -> CustomerProfile:
    return CustomerProfile(id=customer.id, email=customer.email, name=customer.name, tier=customer.tier,
                           value=customer.value, locale=customer.locale, created_at=customer.created_at,
                           updated_at=customer.updated_at)
