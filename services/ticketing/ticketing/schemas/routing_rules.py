"""Routing rules, their dry run and the priority score it explains."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from closedloop.events import Severity
from ticketing.rules import RuleActions, RuleConditions
from ticketing.schemas.tickets import Priority


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "VIP fraud to trust & safety", "position": 5, "enabled": True,
        "conditions": {"categories": ["security"], "customer_tiers": ["vip"], "keywords": ["fraud"]},
        "actions": {"team": "trust-and-safety", "priority": "P0", "tags": ["fraud"]}}]})

    name: str = Field(min_length=1, max_length=200)
    position: int | None = Field(default=None, ge=0, description="Evaluation order (ascending); default: last.")
    enabled: bool = True
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    actions: RuleActions


class RulePublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "2c5e…", "name": "VIP fraud to trust & safety", "position": 5, "enabled": True,
        "conditions": {"categories": ["security"], "customer_tiers": ["vip"], "keywords": ["fraud"]},
        "actions": {"team": "trust-and-safety", "priority": "P0", "tags": ["fraud"], "assignee": None},
        "created_at": "2026-11-24T09:00:00Z", "updated_at": "2026-11-24T09:00:00Z"}]})

    id: str
    name: str
    position: int
    enabled: bool
    conditions: RuleConditions
    actions: RuleActions
    created_at: datetime
    updated_at: datetime


class DryRunIn(BaseModel):
    """A classified message, as ticketing would receive it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "category": "security/fraud_phishing", "sentiment": "negative", "sentiment_score": 0.9,
        "customer_tier": "vip", "channel": "email", "language": "en", "severity": "critical",
        "text": "Someone used my card for a payment I never made"}]})

    category: str = Field(min_length=1)
    sentiment: Literal["negative", "neutral", "positive"] = "neutral"
    sentiment_score: float = Field(0.5, ge=0, le=1)
    customer_tier: str = "standard"
    channel: str = "api"
    language: str | None = None
    severity: Severity | None = None
    text: str = ""
    subject: str | None = None
    needs_triage: bool = False


class ScorePublic(BaseModel):
    score: int
    priority: Priority
    impact: float
    severity: str
    severity_weight: float
    customer_value: float


class RuleEvaluationPublic(BaseModel):
    rule_id: str
    name: str
    position: int
    matched: bool
    reasons: list[str]


class FiredRule(BaseModel):
    id: str
    name: str
    position: int


class DryRunOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "team": "trust-and-safety", "priority": "P0", "tags": [], "assignee": None, "triage": False,
        "fired_rule": {"id": "2c5e…", "name": "security -> trust-and-safety", "position": 120},
        "score": {"score": 100, "priority": "P0", "impact": 1.0, "severity": "critical", "severity_weight": 1.0,
                  "customer_value": 1.0},
        "evaluations": [{"rule_id": "2c5e…", "name": "security -> trust-and-safety", "position": 120,
                         "matched": True, "reasons": ["category 'security/fraud_phishing' is within 'security'"]}],
        "reasons": ["rule 'security -> trust-and-safety' (position 120) fired: …"]}]})

    team: str
    priority: Priority
    tags: list[str]
    assignee: str | None
    triage: bool
    fired_rule: FiredRule | None
    score: ScorePublic
    evaluations: list[RuleEvaluationPublic] = Field(description="Rules looked at, in order, until one fired.")
    reasons: list[str]
