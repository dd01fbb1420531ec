from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from closedloop.auth import ROLES, SCOPES
from closedloop.limits import exactly_one_of

Role = Literal["agent", "lead", "analyst", "admin"]
assert set(ROLES) == {"agent", "lead", "analyst", "admin"}
UserId = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$",
               description="The login name; also the id the audit logs record (`user:<id>`).",
               examples=["ana"])


def _known_scopes(scopes: list[str]) -> list[str]:
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; known: {', '.join(SCOPES)}")
    return scopes


# --- login ------------------------------------------------------------------------------------------------


class TokenRequest(BaseModel):
    """Either a local account's username and password, or the one-time `login_code` that the
    OpenID Connect callback handed to the console."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"username": "agent@example.com", "password": "agent"}],
        **exactly_one_of(("username", "password"), "login_code")})

    username: str | None = Field(default=None, min_length=1, max_length=200)
    password: str | None = Field(default=None, min_length=1, max_length=1000)
    login_code: str | None = Field(default=None, min_length=1, max_length=200)


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "id": "ana", "display_name": "Ana Agent", "email": "ana@example.com", "role": "agent", "source": "local",
        "disabled": False, "created_at": "2026-12-02T01:00:00Z", "updated_at": "2026-12-02T01:00:00Z",
        "last_login_at": None}]})

    id: str
    display_name: str
    email: str | None
    role: str
    source: str
    disabled: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


class TokenResponse(BaseModel):
    access_token: str = Field(description="Send as `Authorization: Bearer <token>` to every service.")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the token expires; refresh it before.")
    user: UserPublic
    scopes: list[str]


class WhoAmI(BaseModel):
    kind: str
    id: str
    name: str
    role: str | None
    scopes: list[str]
    allowed_channels: list[str] | None


class PermissionsPublic(BaseModel):
    scopes: dict[str, str]
    roles: dict[str, list[str]]


# --- users ------------------------------------------------------------------------------------------------


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"id": "ana", "display_name": "Ana Agent", "role": "agent", "password": "a long passphrase"}]})

    id: str = UserId
    display_name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    role: Role
    password: str = Field(min_length=10, max_length=1000)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "lead"}]})

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    role: Role | None = None
    password: str | None = Field(default=None, min_length=10, max_length=1000)
    disabled: bool | None = None


# --- API keys ---------------------------------------------------------------------------------------------


class ApiKeyCreate(BaseModel):
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


class ApiKeyRotate(BaseModel):
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
