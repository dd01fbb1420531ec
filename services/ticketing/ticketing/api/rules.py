"""Routing rules (ordered, evaluated top to bottom), their dry run, and the priority-scoring weights, over
HTTP; the work is in `ticketing.routing_rules`."""

from fastapi import Response

from closedloop.api import SessionDep, api_router
from closedloop.auth import needs
from closedloop.errors import problem_responses
from ticketing import routing_rules
from ticketing.api.deps import NowDep, TableDep
from ticketing.models import RoutingRule
from ticketing.rules import Message, RuleActions, RuleConditions
from ticketing.schemas.routing_rules import (
    DryRunIn,
    DryRunOut,
    FiredRule,
    RuleEvaluationPublic,
    RuleIn,
    RulePublic,
    ScorePublic,
)
from ticketing.scoring import ScoringWeights

router = api_router("routing")


def _public(row: RoutingRule) -> RulePublic:
    return RulePublic(id=row.id, name=row.name, position=row.position, enabled=row.enabled,
                      conditions=RuleConditions.model_validate(row.conditions),
                      actions=RuleActions.model_validate(row.actions), created_at=row.created_at,
                      updated_at=row.updated_at)


@router.get("/routing-rules", dependencies=needs("tickets:read"),
            response_model=list[RulePublic], summary="Routing rules in evaluation order")
async def list_rules(session: SessionDep) -> list[RulePublic]:
    return [_public(r) for r in await routing_rules.list_rules(session)]


@router.post("/routing-rules", dependencies=needs("config:write"), response_model=RulePublic, status_code=201,
             summary="Add a routing rule (the first rule whose conditions all hold fires)")
async def create_rule(rule: RuleIn, session: SessionDep, table: TableDep, now: NowDep) -> RulePublic:
    return _public(await routing_rules.create_rule(session, rule, table, now))


@router.get("/routing-rules/{rule_id}", dependencies=needs("tickets:read"),
            response_model=RulePublic, responses=problem_responses(404),
            summary="One routing rule")
async def get_rule(rule_id: str, session: SessionDep) -> RulePublic:
    return _public(await routing_rules.get_rule(session, rule_id))


@router.put("/routing-rules/{rule_id}", dependencies=needs("config:write"),
            response_model=RulePublic, responses=problem_responses(404),
            summary="Replace a routing rule (also to move it: change `position`)")
async def replace_rule(rule_id: str, rule: RuleIn, session: SessionDep, table: TableDep, now: NowDep) -> RulePublic:
    return _public(await routing_rules.replace_rule(session, rule_id, rule, table, now))


@router.delete("/routing-rules/{rule_id}", dependencies=needs("config:write"),
               status_code=204, responses=problem_responses(404),
               summary="Delete a routing rule")
async def delete_rule(rule_id: str, session: SessionDep) -> Response:
    await routing_rules.delete_rule(session, rule_id)
    return Response(status_code=204)


@router.post("/routing-rules/dry-run", dependencies=needs("tickets:read"), response_model=DryRunOut,
             summary="Which rule would fire for a classified message, why, and the resulting priority")
async def dry_run(message: DryRunIn, session: SessionDep, table: TableDep) -> DryRunOut:
    decision = await routing_rules.route_message(session, table, Message(**message.model_dump()))
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
    return await routing_rules.load_weights(session, table)


@router.put("/priority-scoring", dependencies=needs("config:write"), response_model=ScoringWeights,
            summary="Replace the priority-scoring weights (applies to tickets opened from now on)")
async def put_weights(weights: ScoringWeights, session: SessionDep, now: NowDep) -> ScoringWeights:
    await routing_rules.save_weights(session, weights, now)
    return weights
