"""Logging in: the token request and answer, who-am-I and the permission model."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from closedloop.limits import exactly_one_of
from identity.schemas.users import UserPublic


class TokenIn(BaseModel):
    """Either a local account's username and password, or the one-time `login_code` that the
    OpenID Connect callback handed to the console."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"username": "agent@example.com", "password": "agent"}],
        **exactly_one_of(("username", "password"), "login_code")})

    username: str | None = Field(default=None, min_length=1, max_length=200)
    password: str | None = Field(default=None, min_length=1, max_length=1000)
    login_code: str | None = Field(default=None, min_length=1, max_length=200)


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
