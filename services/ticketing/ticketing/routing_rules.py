"""The routing rules and priority-scoring weights stored in the database: what `tickets.open_ticket`
routes with, and their editing over the API. The rules themselves (conditions, actions, their
evaluation) are `rules.py`; the routing decision is `routing.decide_route`.

The edits own their transaction (`async with session.begin():`); the loaders run in the caller's."""

from datetime import datetime
from uuid import uuid4

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.api import get_or_404
from closedloop.errors import field_problem
from ticketing.config_cache import cached
from ticketing.models import RoutingRule, Setting
from ticketing.routing import Decision, RoutingTable, decide_route
from ticketing.rules import Message, Rule, RuleActions, RuleConditions
from ticketing.schemas.routing_rules import RuleIn
from ticketing.scoring import ScoringWeights

SCORING_KEY = "priority_scoring"


async def load_rules(session: AsyncSession) -> list[Rule]:
    return [Rule(id=r.id, name=r.name, position=r.position, enabled=r.enabled,
                 conditions=RuleConditions.model_validate(r.conditions),
                 actions=RuleActions.model_validate(r.actions)) for r in await list_rules(session)]


async def load_weights(session: AsyncSession, table: RoutingTable) -> ScoringWeights:
    stored = await session.get(Setting, SCORING_KEY)
    return ScoringWeights.model_validate(stored.document) if stored else table.default_weights()


async def route_message(session: AsyncSession, table: RoutingTable, message: Message) -> Decision:
    rules = await cached(session, "routing_rules", lambda: load_rules(session))
    weights = await cached(session, "scoring_weights", lambda: load_weights(session, table))
    return decide_route(table, rules, weights, message)


async def list_rules(session: AsyncSession) -> list[RoutingRule]:
    """In evaluation order."""
    return list(await session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)))


async def get_rule(session: AsyncSession, rule_id: str) -> RoutingRule:
    return await get_or_404(session, RoutingRule, rule_id, "Routing rule")


def _check_teams(table: RoutingTable, rule: RuleIn) -> None:
    if rule.actions.team is not None and rule.actions.team not in table.teams:
        raise field_problem("body.actions.team", f"unknown team; one of {sorted(table.teams)}",
                            detail=f"body.actions.team: unknown team {rule.actions.team!r}")


async def create_rule(session: AsyncSession, rule: RuleIn, table: RoutingTable, now: datetime) -> RoutingRule:
    """A new rule at `rule.position`, or after the last one."""
    _check_teams(table, rule)
    async with session.begin():
        if rule.position is not None:
            position = rule.position
        else:
            position = ((await session.scalar(select(func.max(RoutingRule.position)))) or 0) + 10
        row = RoutingRule(id=str(uuid4()), name=rule.name, position=position, enabled=rule.enabled,
                          conditions=rule.conditions.model_dump(exclude_defaults=True),
                          actions=rule.actions.model_dump(exclude_defaults=True), created_at=now, updated_at=now)
        session.add(row)
    return row


async def replace_rule(session: AsyncSession, rule_id: str, rule: RuleIn, table: RoutingTable,
                       now: datetime) -> RoutingRule:
    async with session.begin():
        row = await get_rule(session, rule_id)
        _check_teams(table, rule)
        row.name, row.enabled = rule.name, rule.enabled
        row.position = rule.position if rule.position is not None else row.position
        row.conditions = rule.conditions.model_dump(exclude_defaults=True)
        row.actions = rule.actions.model_dump(exclude_defaults=True)
        row.updated_at = now
    return row


async def delete_rule(session: AsyncSession, rule_id: str) -> None:
    async with session.begin():
        await session.delete(await get_rule(session, rule_id))


async def save_weights(session: AsyncSession, weights: ScoringWeights, now: datetime) -> None:
    """Replace the weights; tickets opened from now on are scored with them."""
    document = weights.model_dump(mode="json")
    async with session.begin():
        stored = await session.get(Setting, SCORING_KEY)
        if stored is None:
            session.add(Setting(key=SCORING_KEY, document=document, updated_at=now, updated_by="api"))
        else:
            stored.document, stored.updated_at = document, now
