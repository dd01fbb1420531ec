"""Routing a classified message to a team with a priority, from a YAML routing table.

Pure functions over plain data, so the rules are easy to test and to explain (`RoutingDecision.reasons`).
"""

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from closedloop.events import Priority

PRIORITIES: tuple[Priority, ...] = ("P0", "P1", "P2", "P3")


class Route(BaseModel):
    team: str
    priority: Priority


class Team(BaseModel):
    name: str
    lead: str | None = None


class Adjustments(BaseModel):
    negative_sentiment_min_score: float = 0.75
    priority_tiers: list[str] = Field(default_factory=lambda: ["vip", "enterprise"])
    positive_is_p3: bool = True


class RoutingTable(BaseModel):
    fallback: Route
    teams: dict[str, Team]
    routes: dict[str, Route]
    adjustments: Adjustments = Field(default_factory=Adjustments)

    def model_post_init(self, _: object) -> None:
        unknown = {r.team for r in [self.fallback, *self.routes.values()]} - set(self.teams)
        if unknown:
            raise ValueError(f"routes name teams that are not defined: {sorted(unknown)}")


def load_routing_table(path: str | Path | None = None) -> RoutingTable:
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("ticketing.data").joinpath("routing.yaml").read_text(encoding="utf-8")
    return RoutingTable.model_validate(yaml.safe_load(text))


@dataclass(frozen=True)
class RoutingInput:
    category: str
    sentiment: str
    sentiment_score: float
    customer_tier: str


@dataclass(frozen=True)
class RoutingDecision:
    team: str
    priority: Priority
    matched_route: str | None
    reasons: list[str] = field(default_factory=list)


def _raise_one_level(priority: Priority, floor: Priority = "P1") -> Priority:
    index = PRIORITIES.index(priority)
    return PRIORITIES[max(index - 1, PRIORITIES.index(floor))] if index > PRIORITIES.index(floor) else priority


def route_ticket(table: RoutingTable, message: RoutingInput) -> RoutingDecision:
    reasons: list[str] = []
    matched = None
    parts = message.category.split("/")
    for depth in range(len(parts), 0, -1):  # most specific first
        key = "/".join(parts[:depth])
        if key in table.routes:
            matched = key
            break
    route = table.routes[matched] if matched else table.fallback
    reasons.append(f"category {message.category!r} matched route {matched!r}" if matched
                   else f"no route for category {message.category!r}: fallback")
    priority = route.priority

    adjust = table.adjustments
    if message.sentiment == "positive" and adjust.positive_is_p3 and priority != "P0":
        priority = "P3"
        reasons.append("positive feedback: P3")
    if message.sentiment == "negative" and message.sentiment_score >= adjust.negative_sentiment_min_score:
        raised = _raise_one_level(priority)
        if raised != priority:
            reasons.append(f"strongly negative ({message.sentiment_score:.2f}): {priority} -> {raised}")
            priority = raised
    if message.customer_tier.lower() in adjust.priority_tiers:
        raised = _raise_one_level(priority)
        if raised != priority:
            reasons.append(f"customer tier {message.customer_tier!r}: {priority} -> {raised}")
            priority = raised
    return RoutingDecision(team=route.team, priority=priority, matched_route=matched, reasons=reasons)
