"""Users: local accounts and people who logged in through OpenID Connect, each with one role."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from closedloop.auth import ROLES
from closedloop.pagination import Page

Role = Literal["agent", "lead", "analyst", "admin"]
assert set(ROLES) == {"agent", "lead", "analyst", "admin"}
UserId = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$",
               description="The login name; also the id the audit logs record (`user:<id>`).",
               examples=["ana"])


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"id": "ana", "display_name": "Ana Agent", "role": "agent", "password": "a long passphrase"}]})

    id: str = UserId
    display_name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    role: Role
    password: str = Field(min_length=10, max_length=1000)


class UserPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "lead"}]})

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    role: Role | None = None
    password: str | None = Field(default=None, min_length=10, max_length=1000)
    disabled: bool | None = None


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


class UserPage(Page[UserPublic]):
    pass
