"""Routing a classified message to a team with a priority.

The YAML routing table (`data/routing.yaml`) holds the teams, the fallback and triage teams, and the
defaults the database is seeded with: its category routes become the first routing rules, its
route priorities the usual severity of each category in the priority score. `decide_route` is what
tickets use: triage, then the ordered rules from the database, then the fallback, with the
priority from the score unless the rule fixes one.

Pure functions over plain data, so the rules are easy to test and to explain (`reasons`).
"""

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from closedloop.events import Priority
from ticketing.rules import Message, Rule, RuleActions, RuleConditions, RuleEvaluation, first_matching_rule
from ticketing.scoring import PRIORITY_SEVERITY, Score, ScoreInput, ScoringWeights, score_priority

PRIORITIES: tuple[Priority, ...] = ("P0", "P1", "P2", "P3")


class Route(BaseModel):
    team: str
    priority: Priority


class Team(BaseModel):
    name: str
    lead: str | None = None


class Adjustments(BaseModel):
    # The score's default threshold for strongly negative feedback (ScoringWeights).
    negative_sentiment_min_score: float = 0.75


class RoutingTable(BaseModel):
    fallback: Route
    teams: dict[str, Team]
    routes: dict[str, Route]
    adjustments: Adjustments = Field(default_factory=Adjustments)
    # Where `needs_triage` messages go; None: the fallback team.
    triage_team: str | None = None
    # Priority-scoring weights; missing category severities come from the route priorities.
    scoring: dict[str, object] = Field(default_factory=dict)

    def model_post_init(self, _: object) -> None:
        named = {r.team for r in [self.fallback, *self.routes.values()]}
        if self.triage_team is not None:
            named.add(self.triage_team)
        unknown = named - set(self.teams)
        if unknown:
            raise ValueError(f"routes name teams that are not defined: {sorted(unknown)}")

    def default_weights(self) -> ScoringWeights:
        weights = ScoringWeights.model_validate(self.scoring)
        severities = {key: PRIORITY_SEVERITY[route.priority] for key, route in self.routes.items()}
        weights.category_severity = {**severities, **weights.category_severity}
        weights.default_severity = PRIORITY_SEVERITY[self.fallback.priority]
        weights.negative_sentiment_min_score = self.adjustments.negative_sentiment_min_score
        return weights

    def default_rules(self) -> list[Rule]:
        """The category routes as rules, most specific first (so `technical/outage` beats `technical`)."""
        keys = sorted(self.routes, key=lambda key: (-key.count("/"), key))
        return [Rule(id=f"default-{index + 1:03d}", name=f"{key} -> {self.routes[key].team}",
                     position=(index + 1) * 10, conditions=RuleConditions(categories=[key]),
                     actions=RuleActions(team=self.routes[key].team)) for index, key in enumerate(keys)]

    def lead_of(self, team: str) -> str | None:
        known = self.teams.get(team)
        return known.lead if known else None


def load_routing_table(path: str | Path | None = None) -> RoutingTable:
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("ticketing.data").joinpath("routing.yaml").read_text(encoding="utf-8")
    return RoutingTable.model_validate(yaml.safe_load(text))


@dataclass
class Decision:
    team: str
    priority: Priority
    score: Score
    rule: Rule | None
    tags: list[str]
    assignee: str | None
    triage: bool
    evaluations: list[RuleEvaluation]
    reasons: list[str]


def decide_route(table: RoutingTable, rules: list[Rule], weights: ScoringWeights, message: Message) -> Decision:
    """Team, priority, tags and assignee for one message, and why."""
    reasons: list[str] = []
    score = score_priority(weights, ScoreInput(category=message.category, sentiment=message.sentiment,
                                               sentiment_score=message.sentiment_score,
                                               customer_tier=message.customer_tier, severity=message.severity))
    if message.needs_triage:
        team = table.triage_team or table.fallback.team
        reasons.append(f"classification needs triage: team {team!r}, no rule applied")
        return Decision(team, score.priority, score, None, [], None, True, [], reasons + score.reasons)
    outcome = first_matching_rule(rules, message)
    rule = outcome.fired
    actions = rule.actions if rule else RuleActions()
    if rule:
        reasons.append(f"rule {rule.name!r} (position {rule.position}) fired: "
                       + "; ".join(outcome.evaluations[-1].reasons))
    else:
        reasons.append(f"no rule matched category {message.category!r}: fallback")
    team = actions.team or table.fallback.team
    if rule and not actions.team:
        reasons.append(f"rule sets no team: fallback team {team!r}")
    priority = score.priority
    reasons.extend(score.reasons)
    if actions.priority:
        reasons.append(f"rule fixes priority {actions.priority} (score said {score.priority})")
        priority = actions.priority
    return Decision(team, priority, score, rule, list(actions.tags), actions.assignee, False,
                    outcome.evaluations, reasons)
