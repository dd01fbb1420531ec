"""Routing rules (ordered, evaluated top to bottom), their dry run, and the priority-scoring weights."""

from uuid import uuid4

from fastapi import Response
from sqlalchemy import func, select

from closedloop.api import SessionDep, api_router, get_or_404
from closedloop.auth import needs
from closedloop.errors import field_problem, problem_responses
from ticketing.api.deps import NowDep, TableDep
from ticketing.models import RoutingRule, Setting
from ticketing.routing import RoutingTable
from ticketing.rules import Message, RuleActions, RuleConditions
from ticketing.schemas import DryRunIn, DryRunOut, FiredRule, RuleEvaluationPublic, RuleIn, RulePublic, ScorePublic
from ticketing.scoring import ScoringWeights
from ticketing.tickets import SCORING_KEY, load_weights, route_message

router = api_router("routing")


def _check_teams(table: RoutingTable, rule: RuleIn) -> None:
    if rule.actions.team is not None and rule.actions.team not in table.teams:
        raise field_problem("body.actions.team", f"unknown team; one of {sorted(table.teams)}",
                            detail=f"body.actions.team: unknown team {rule.actions.team!r}")


def _public(row: RoutingRule) -> RulePublic:
    return RulePublic(id=row.id, name=row.name, position=row.position, enabled=row.enabled,
                      conditions=RuleConditions.model_validate(row.conditions),
                      actions=RuleActions.model_validate(row.actions), created_at=row.created_at,
                      updated_at=row.updated_at)


async def _next_position(session: SessionDep) -> int:
    return ((await session.scalar(select(func.max(RoutingRule.position)))) or 0) + 10


@router.get("/routing-rules", dependencies=needs("tickets:read"),
            response_model=list[RulePublic], summary="Routing rules in evaluation order")
async def list_rules(session: SessionDep) -> list[RulePublic]:
    rows = await session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id))
    return [_public(r) for r in rows]


@router.post("/routing-rules", dependencies=needs("config:write"), response_model=RulePublic, status_code=201,
             summary="Add a routing rule (the first rule whose conditions all hold fires)")
async def create_rule(rule: RuleIn, session: SessionDep, table: TableDep, now: NowDep) -> RulePublic:
    _check_teams(table, rule)
    row = RoutingRule(id=str(uuid4()), name=rule.name,
                      position=rule.position if rule.position is not None else await _next_position(session),
                      enabled=rule.enabled, conditions=rule.conditions.model_dump(exclude_defaults=True),
                      actions=rule.actions.model_dump(exclude_defaults=True), created_at=now, updated_at=now)
    session.add(row)
    await session.commit()
    return _public(row)


async def _rule(session: SessionDep, rule_id: str) -> RoutingRule:
    return await get_or_404(session, RoutingRule, rule_id, "Routing rule")


@router.get("/routing-rules/{rule_id}", dependencies=needs("tickets:read"),
            response_model=RulePublic, responses=problem_responses(404),
            summary="One routing rule")
async def get_rule(rule_id: str, session: SessionDep) -> RulePublic:
    return _public(await _rule(session, rule_id))


@router.put("/routing-rules/{rule_id}", dependencies=needs("config:write"),
            response_model=RulePublic, responses=problem_responses(404),
            summary="Replace a routing rule (also to move it: change `position`)")
async def replace_rule(rule_id: str, rule: RuleIn, session: SessionDep, table: TableDep, now: NowDep) -> RulePublic:
    row = await _rule(session, rule_id)
    _check_teams(table, rule)
    row.name, row.enabled = rule.name, rule.enabled
    row.position = rule.position if rule.position is not None else row.position
    row.conditions = rule.conditions.model_dump(exclude_defaults=True)
    row.actions = rule.actions.model_dump(exclude_defaults=True)
    row.updated_at = now
    await session.commit()
    return _public(row)


@router.delete("/routing-rules/{rule_id}", dependencies=needs("config:write"),
               status_code=204, responses=problem_responses(404),
               summary="Delete a routing rule")
async def delete_rule(rule_id: str, session: SessionDep) -> Response:
    await session.delete(await _rule(session, rule_id))
    await session.commit()
    return Response(status_code=204)


@router.post("/routing-rules/dry-run", dependencies=needs("tickets:read"), response_model=DryRunOut,
             summary="Which rule would fire for a classified message, why, and the resulting priority")
async def dry_run(message: DryRunIn, session: SessionDep, table: TableDep) -> DryRunOut:
    decision = await route_message(session, table, Message(**message.model_dump()))
    score = decision.score
    return DryRunOut(
        team=decision.team, priority=decision.priority, tags=decision.tags, assignee=decision.assignee,
        triage=decision.triage,
        fired_rule=FiredRule(id=decision.rule.id, name=decision.rule.name, position=decision.rule.position)
        if decision.rule else None,
        score=ScorePublic(score=score.score, priority=score.priority, impact=score.impact, severity=score.severity,
                          severity_weight=score.severity_weight, customer_value=score.customer_value),
        evaluations=[RuleEvaluationPublic(rule_id=e.rule.id, name=e.rule.name, position=e.rule.position,
                                          matched=e.matched, reasons=e.reasons) for e in decision.evaluations],
        reasons=decision.reasons,
    )


@router.get("/priority-scoring", dependencies=needs("tickets:read"),
            response_model=ScoringWeights, summary="The priority-scoring weights in use")
async def get_weights(session: SessionDep, table: TableDep) -> ScoringWeights:
    return await load_weights(session, table)


@router.put("/priority-scoring", dependencies=needs("config:write"), response_model=ScoringWeights,
            summary="Replace the priority-scoring weights (applies to tickets opened from now on)")
async def put_weights(weights: ScoringWeights, session: SessionDep, now: NowDep) -> ScoringWeights:
    stored = await session.get(Setting, SCORING_KEY)
    document = weights.model_dump(mode="json")
    if stored is None:
        session.add(Setting(key=SCORING_KEY, document=document, updated_at=now, updated_by="api"))
    else:
        stored.document, stored.updated_at = document, now
    await session.commit()
    return weights
