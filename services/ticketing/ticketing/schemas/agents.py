"""Agents: teams, skills, languages, capacity and availability."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from closedloop.limits import SafeId

AgentStatus = Literal["online", "away", "offline"]


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "bob@example.com", "name": "Bob", "teams": ["payments"], "skills": ["billing", "security/fraud_phishing"],
        "languages": ["en", "de"], "capacity": 8, "status": "online"}]})

    id: SafeId = Field(examples=["bob@example.com"])
    name: str = Field(min_length=1, max_length=200)
    teams: list[str] = Field(min_length=1)
    skills: list[str] = Field(default_factory=list, description="Taxonomy keys (any level) or tags.")
    languages: list[str] = Field(default_factory=list)
    capacity: int = Field(5, ge=0, le=1000, description="Most active tickets at once.")
    status: AgentStatus = "online"


class AgentPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "offline"}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    teams: list[str] | None = Field(default=None, min_length=1)
    skills: list[str] | None = None
    languages: list[str] | None = None
    capacity: int | None = Field(default=None, ge=0, le=1000)
    status: AgentStatus | None = None


class AgentPublic(AgentIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "bob@example.com", "name": "Bob", "teams": ["payments"], "skills": ["billing"], "languages": ["en"],
        "capacity": 8, "status": "online", "load": 3, "last_assigned_at": "2026-11-24T09:00:00Z",
        "reassigned": 0}]})

    load: int = Field(description="Active tickets assigned now.")
    last_assigned_at: datetime | None
    reassigned: int = Field(0, description="Tickets (re)assigned by this change.")
