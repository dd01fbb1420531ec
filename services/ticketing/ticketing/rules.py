"""Routing rules: ordered conditions → actions, evaluated top to bottom; the first rule whose
conditions all hold fires. Pure functions over plain data, each decision explained in words."""

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from closedloop.events import Priority
from closedloop.limits import SafeId

Sentiment = str


class RuleConditions(BaseModel):
    """Every condition given must hold (AND); within a list any value may match (OR).
    An empty condition set matches every message."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "categories": ["security", "billing/payment_failure"], "customer_tiers": ["vip"],
        "keywords": ["fraud", "stolen"],
    }]})

    categories: list[str] = Field(default_factory=list, description=(
        "Taxonomy keys at any level: `billing` matches `billing` and every `billing/...` leaf."))
    sentiments: list[str] = Field(default_factory=list, examples=[["negative"]])
    languages: list[str] = Field(default_factory=list, examples=[["de", "fr"]])
    channels: list[str] = Field(default_factory=list, examples=[["email", "chat"]])
    customer_tiers: list[str] = Field(default_factory=list, examples=[["vip", "enterprise"]])
    severities: list[str] = Field(default_factory=list, examples=[["critical", "high"]])
    keywords: list[str] = Field(default_factory=list, description="Any of these words or phrases in the "
                                "subject or text (case-insensitive).")

    @field_validator("categories", "sentiments", "languages", "channels", "customer_tiers", "severities",
                     "keywords")
    @classmethod
    def _clean(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in values]
        if any(not v for v in cleaned):
            raise ValueError("values must not be empty")
        return cleaned


class RuleActions(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"team": "trust-and-safety", "priority": "P0", "tags": ["fraud"], "assignee": None}]})

    team: str | None = Field(default=None, description="Route to this team.")
    priority: Priority | None = Field(default=None, description="Fixed priority instead of the score.")
    tags: list[str] = Field(default_factory=list)
    assignee: SafeId | None = Field(default=None, description="Assign to this agent id.")


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    position: int
    conditions: RuleConditions
    actions: RuleActions
    enabled: bool = True


@dataclass(frozen=True)
class Message:
    """What routing knows about a classified feedback item."""

    category: str
    sentiment: str
    sentiment_score: float
    customer_tier: str
    channel: str = "api"
    language: str | None = None
    severity: str | None = None
    text: str = ""
    subject: str | None = None
    needs_triage: bool = False


@dataclass(frozen=True)
class RuleEvaluation:
    rule: Rule
    matched: bool
    reasons: list[str]


def _in_category(category: str, prefixes: list[str]) -> str | None:
    category = category.lower()
    return next((p for p in prefixes if category == p or category.startswith(p + "/")), None)


def evaluate_rule(rule: Rule, message: Message) -> RuleEvaluation:
    """Check each condition, saying why it holds or not; stops at the first that fails."""
    c = rule.conditions
    reasons: list[str] = []

    def check(name: str, allowed: list[str], actual: str | None) -> bool:
        if not allowed:
            return True
        ok = actual is not None and actual.lower() in allowed
        reasons.append(f"{name} {actual!r} {'is' if ok else 'is not'} in {allowed}")
        return ok

    if not rule.enabled:
        return RuleEvaluation(rule, False, ["rule is disabled"])
    if c.categories:
        hit = _in_category(message.category, c.categories)
        reasons.append(f"category {message.category!r} is within {hit!r}" if hit
                       else f"category {message.category!r} is not within {c.categories}")
        if not hit:
            return RuleEvaluation(rule, False, reasons)
    for name, allowed, actual in (
        ("sentiment", c.sentiments, message.sentiment),
        ("language", c.languages, message.language),
        ("channel", c.channels, message.channel),
        ("customer tier", c.customer_tiers, message.customer_tier),
        ("severity", c.severities, message.severity),
    ):
        if not check(name, allowed, actual):
            return RuleEvaluation(rule, False, reasons)
    if c.keywords:
        haystack = f"{message.subject or ''}\n{message.text}".lower()
        found = [k for k in c.keywords if k in haystack]
        reasons.append(f"text contains {found}" if found else f"text contains none of {c.keywords}")
        if not found:
            return RuleEvaluation(rule, False, reasons)
    if not reasons:
        reasons.append("no conditions: matches every message")
    return RuleEvaluation(rule, True, reasons)


@dataclass
class RuleOutcome:
    fired: Rule | None
    evaluations: list[RuleEvaluation] = field(default_factory=list)


def first_matching_rule(rules: list[Rule], message: Message) -> RuleOutcome:
    outcome = RuleOutcome(fired=None)
    for rule in sorted(rules, key=lambda r: (r.position, r.id)):
        evaluation = evaluate_rule(rule, message)
        outcome.evaluations.append(evaluation)
        if evaluation.matched:
            outcome.fired = rule
            break
    return outcome
