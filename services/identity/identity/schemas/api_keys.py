"""API keys for machines: scopes, an optional channel allow-list; the key itself is shown once."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from closedloop.auth import SCOPES
from closedloop.pagination import Page


def _known_scopes(scopes: list[str]) -> list[str]:
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; known: {', '.join(SCOPES)}")
    return scopes


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "partner acme", "scopes": ["feedback:write"], "channels": ["app", "web"]}]})

    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, max_length=len(SCOPES), description="See `GET /v1/permissions`.")
    channels: list[str] | None = Field(
        default=None, max_length=50,
        description="Only feedback on these channels is accepted with this key (ingest answers 403 otherwise); "
                    "null for every channel.")

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, scopes: list[str]) -> list[str]:
        return _known_scopes(scopes)

    @field_validator("channels")
    @classmethod
    def _channels(cls, channels: list[str] | None) -> list[str] | None:
        if channels is not None and any(not c or len(c) > 50 for c in channels):
            raise ValueError("each channel is 1 to 50 characters")
        return channels


class ApiKeyRotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"grace_seconds": 3600}]})

    grace_seconds: int = Field(default=3600, ge=0, le=30 * 86400,
                               description="How long the old key keeps working, so clients can switch.")


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    scopes: list[str]
    channels: list[str] | None
    last_four: str = Field(description="The key's last four characters, to tell keys apart.")
    created_by: str
    created_at: datetime
    rotated_at: datetime | None
    previous_expires_at: datetime | None = Field(description="Until when the key before the last rotation works.")
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself. Shown this once: only its hash is stored.")


class ApiKeyPage(Page[ApiKeyPublic]):
    pass
