"""Priority scoring: score = 100 × impact × severity × customer value, then P0–P3 by thresholds.

- impact: how much is at stake in the affected area (category, most specific prefix wins);
- severity: how badly it is broken — classify's `severity` when it sends one, otherwise the
  category's usual severity, moved by sentiment (strongly negative: one level up, at most to
  `high`; positive: `low` unless the category is critical);
- customer value: by customer tier.

With the default weights a VIP's security/payment incident with critical severity scores 100 (P0)
and a medium UI/profile issue of a standard customer scores 20 (P3).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from closedloop.events import Priority, Severity

SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
PRIORITY_SEVERITY: dict[str, Severity] = {"P0": "critical", "P1": "high", "P2": "medium", "P3": "low"}


# A weight between 0 and 1, in the schema too (the validator below still names the key in its message).
Factor = Annotated[float, Field(ge=0, le=1)]


def _default_severity_weights() -> dict[Severity, float]:
    return {"critical": 1.0, "high": 0.75, "medium": 0.5, "low": 0.25}


class Thresholds(BaseModel):
    P0: float = 80
    P1: float = 45
    P2: float = 25

    @model_validator(mode="after")
    def _descending(self) -> "Thresholds":
        if not self.P0 > self.P1 > self.P2 >= 0:
            raise ValueError("thresholds must satisfy P0 > P1 > P2 >= 0")
        return self


class ScoringWeights(BaseModel):
    """Weights of the priority score; every factor is between 0 and 1."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "impact": {"security": 1.0, "billing": 1.0, "product/usability": 0.5},
        "default_impact": 0.8,
        "category_severity": {"technical/outage": "critical", "billing/payment_failure": "high"},
        "default_severity": "medium",
        "severity": {"critical": 1.0, "high": 0.75, "medium": 0.5, "low": 0.25},
        "customer_value": {"vip": 1.0, "enterprise": 1.0, "standard": 0.8},
        "default_customer_value": 0.8,
        "thresholds": {"P0": 80, "P1": 45, "P2": 25},
        "negative_sentiment_min_score": 0.75,
    }]})

    impact: dict[str, Factor] = Field(default_factory=dict, description="Category prefix → impact (0–1).")
    default_impact: float = Field(0.8, ge=0, le=1)
    category_severity: dict[str, Severity] = Field(default_factory=dict,
                                                   description="Category prefix → usual severity.")
    default_severity: Severity = "medium"
    severity: dict[Severity, Factor] = Field(default_factory=_default_severity_weights)
    customer_value: dict[str, Factor] = Field(
        default_factory=lambda: {"vip": 1.0, "enterprise": 1.0, "standard": 0.8, "free": 0.6},
        description="Customer tier (lower case) → value (0–1).")
    default_customer_value: float = Field(0.8, ge=0, le=1)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    negative_sentiment_min_score: float = Field(0.75, ge=0, le=1)

    @model_validator(mode="after")
    def _factors_in_range(self) -> "ScoringWeights":
        for name in ("impact", "severity", "customer_value"):
            for key, value in getattr(self, name).items():
                if not 0 <= value <= 1:
                    raise ValueError(f"{name}.{key} must be between 0 and 1")
        missing = set(SEVERITIES) - set(self.severity)
        if missing:
            raise ValueError(f"severity weights missing for {sorted(missing)}")
        return self


def most_specific(mapping: Mapping[str, object], category: str) -> str | None:
    parts = category.split("/")
    for depth in range(len(parts), 0, -1):
        key = "/".join(parts[:depth])
        if key in mapping:
            return key
    return None


@dataclass(frozen=True)
class ScoreInput:
    category: str
    sentiment: str
    sentiment_score: float
    customer_tier: str
    severity: str | None = None  # from classify, when it sends one


@dataclass(frozen=True)
class Score:
    score: int
    priority: Priority
    impact: float
    severity: Severity
    severity_weight: float
    customer_value: float
    reasons: list[str] = field(default_factory=list)


def _severity(weights: ScoringWeights, message: ScoreInput, reasons: list[str]) -> Severity:
    if message.severity in SEVERITIES:
        reasons.append(f"severity {message.severity!r} from classification")
        return message.severity
    key = most_specific(weights.category_severity, message.category)
    usual: Severity = weights.category_severity[key] if key else weights.default_severity
    reasons.append(f"usual severity of {key or 'any category'!r}: {usual}")
    if message.sentiment == "positive" and usual != "critical":
        reasons.append("positive feedback: severity low")
        return "low"
    if message.sentiment == "negative" and message.sentiment_score >= weights.negative_sentiment_min_score:
        raised = SEVERITIES[max(SEVERITIES.index(usual) - 1, SEVERITIES.index("high"))]
        if SEVERITIES.index(raised) < SEVERITIES.index(usual):
            reasons.append(f"strongly negative ({message.sentiment_score:.2f}): severity {usual} -> {raised}")
            return raised
    return usual


def priority_for(weights: ScoringWeights, score: float) -> Priority:
    t = weights.thresholds
    return "P0" if score >= t.P0 else "P1" if score >= t.P1 else "P2" if score >= t.P2 else "P3"


def score_priority(weights: ScoringWeights, message: ScoreInput) -> Score:
    reasons: list[str] = []
    impact_key = most_specific(weights.impact, message.category)
    impact = weights.impact[impact_key] if impact_key else weights.default_impact
    severity = _severity(weights, message, reasons)
    value = weights.customer_value.get(message.customer_tier.lower(), weights.default_customer_value)
    raw = 100 * impact * weights.severity[severity] * value
    score = round(raw)
    priority = priority_for(weights, raw)
    reasons.insert(0, f"score {score} = 100 × impact {impact:g} ({impact_key or 'default'}) × severity "
                      f"{weights.severity[severity]:g} ({severity}) × customer value {value:g} "
                      f"({message.customer_tier}) -> {priority}")
    return Score(score, priority, impact, severity, weights.severity[severity], value, reasons)
