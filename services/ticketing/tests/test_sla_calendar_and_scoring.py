"""Pure logic: business-hours arithmetic, priority scoring and routing-rule evaluation."""

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from ticketing.calendar import BusinessHours, add_working_minutes, working_minutes_between
from ticketing.routing import decide_route, load_routing_table
from ticketing.rules import Message, Rule, RuleActions, RuleConditions, evaluate_rule, first_matching_rule
from ticketing.scoring import ScoreInput, ScoringWeights, score_priority

BERLIN = BusinessHours(timezone="Europe/Berlin", holidays=[date(2026, 12, 25)]).calendar()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("start", "minutes", "due"), [
    (utc(2026, 11, 23, 9, 0), 120, utc(2026, 11, 23, 11, 0)),     # Mon 10:00 Berlin + 2h
    (utc(2026, 11, 23, 15, 30), 120, utc(2026, 11, 24, 9, 30)),   # Mon 16:30 Berlin: 30 min today, 90 tomorrow
    (utc(2026, 11, 27, 15, 50), 120, utc(2026, 11, 30, 9, 50)),   # Friday evening -> Monday
    (utc(2026, 11, 28, 12, 0), 15, utc(2026, 11, 30, 8, 15)),     # Saturday: starts Monday 09:00 Berlin
    (utc(2026, 11, 23, 2, 0), 60, utc(2026, 11, 23, 9, 0)),       # night: from opening
    (utc(2026, 12, 24, 15, 0), 120, utc(2026, 12, 28, 9, 0)),     # Thu 16:00 + 2h: Christmas Friday is closed
    (utc(2026, 11, 23, 9, 0), 48 * 60, utc(2026, 12, 1, 9, 0)),   # 48 working hours: 7+8+8+8+8+8, then 1h
])
def test_working_minutes_are_laid_out_on_business_hours(start, minutes, due):
    assert BERLIN.add(start, minutes) == due
    assert BERLIN.between(start, due) == pytest.approx(minutes)


def test_daylight_saving_change_keeps_local_opening_hours():
    # 2026-03-27 is a Friday (UTC+1), Monday 2026-03-30 is summer time (UTC+2): 09:00 local = 07:00 UTC.
    assert BERLIN.add(utc(2026, 3, 27, 15, 30), 60) == utc(2026, 3, 30, 7, 30)


def test_is_open_and_24_7():
    assert BERLIN.is_open(utc(2026, 11, 23, 9, 0))
    assert not BERLIN.is_open(utc(2026, 11, 23, 16, 0))  # 17:00 Berlin: closed
    assert not BERLIN.is_open(utc(2026, 11, 28, 10, 0))  # Saturday
    start = utc(2026, 11, 28, 23, 0)
    assert add_working_minutes(None, start, 15) == start + timedelta(minutes=15)
    assert working_minutes_between(None, start, start + timedelta(hours=2)) == 120


@pytest.mark.parametrize(("spec", "message"), [
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"weekly": {"mon": ["17:00", "09:00"]}}, "before closing"),
    ({"weekly": {"funday": ["09:00", "17:00"]}}, "unknown weekday"),
    ({"weekly": {"mon": ["9am", "17:00"]}}, "pattern"),
])
def test_invalid_business_hours_are_rejected(spec, message):
    with pytest.raises(ValidationError, match=message):
        BusinessHours.model_validate(spec)


@pytest.fixture(scope="module")
def table():
    return load_routing_table()


def test_score_security_payment_critical_vip_is_100_and_ui_profile_is_20(table):
    weights = table.default_weights()
    top = score_priority(weights, ScoreInput("security/fraud_phishing", "negative", 0.9, "vip", severity="critical"))
    assert (top.score, top.priority) == (100, "P0")
    low = score_priority(weights, ScoreInput("account/profile_settings", "neutral", 0.4, "standard"))
    assert (low.score, low.priority) == (20, "P3")
    assert "impact 0.5" in low.reasons[0] and "customer value 0.8" in low.reasons[0]


def test_score_weights_are_configurable(table):
    weights = table.default_weights().model_copy(update={"customer_value": {"standard": 0.4}})
    assert score_priority(weights, ScoreInput("billing/refund", "neutral", 0.5, "standard")).score == 20


def test_sentiment_moves_severity_but_never_to_critical(table):
    weights = table.default_weights()
    calm = score_priority(weights, ScoreInput("billing/payment_failure", "neutral", 0.5, "vip"))
    angry = score_priority(weights, ScoreInput("billing/payment_failure", "negative", 0.99, "vip"))
    assert calm.severity == angry.severity == "high"  # high stays high: sentiment alone never makes P0
    assert angry.priority == "P1"
    assert score_priority(weights, ScoreInput("billing/refund", "negative", 0.8, "standard")).severity == "high"
    assert score_priority(weights, ScoreInput("technical/outage", "positive", 0.9, "standard")).priority == "P0"


def test_invalid_weights_are_rejected():
    with pytest.raises(ValidationError, match=r"impact\.billing\n  Input should be less than or equal to 1"):
        ScoringWeights(impact={"billing": 3})
    with pytest.raises(ValidationError, match="P0 > P1 > P2"):
        ScoringWeights(thresholds={"P0": 10, "P1": 45, "P2": 25})


def rule(name, position=10, **conditions):
    actions = conditions.pop("actions", {"team": "payments"})
    return Rule(id=name, name=name, position=position, conditions=RuleConditions(**conditions),
                actions=RuleActions(**actions))


MSG = Message(category="billing/refund", sentiment="negative", sentiment_score=0.9, customer_tier="VIP",
              channel="email", language="de", severity="high", text="I want my MONEY back", subject="Refund")


@pytest.mark.parametrize(("conditions", "matched"), [
    ({}, True),
    ({"categories": ["billing"]}, True),
    ({"categories": ["billing/refund"]}, True),
    ({"categories": ["bill"]}, False),
    ({"categories": ["technical", "billing"]}, True),
    ({"sentiments": ["negative"]}, True),
    ({"sentiments": ["positive"]}, False),
    ({"languages": ["de", "fr"]}, True),
    ({"languages": ["en"]}, False),
    ({"channels": ["chat"]}, False),
    ({"customer_tiers": ["vip"]}, True),
    ({"severities": ["critical"]}, False),
    ({"keywords": ["money back"]}, True),
    ({"keywords": ["lawyer"]}, False),
    ({"categories": ["billing"], "customer_tiers": ["vip"], "keywords": ["nothing-like-this"]}, False),
])
def test_rule_conditions(conditions, matched):
    evaluation = evaluate_rule(rule("r", **conditions), MSG)
    assert evaluation.matched is matched
    assert evaluation.reasons


def test_first_matching_rule_in_position_order_and_disabled_rules_are_skipped():
    rules = [rule("late", 30), rule("early", 10, categories=["technical"]), rule("middle", 20)]
    outcome = first_matching_rule(rules, MSG)
    assert outcome.fired.name == "middle"
    assert [e.rule.name for e in outcome.evaluations] == ["early", "middle"]
    disabled = Rule(id="x", name="x", position=15, conditions=RuleConditions(), actions=RuleActions(), enabled=False)
    assert first_matching_rule([*rules, disabled], MSG).fired.name == "middle"


def test_decide_route_triage_fallback_and_fixed_priority(table):
    weights = table.default_weights()
    rules = table.default_rules()
    triage = decide_route(table, rules, weights, Message("billing/refund", "neutral", 0.5, "standard",
                                                         needs_triage=True))
    assert (triage.team, triage.triage, triage.rule) == ("triage", True, None)
    fallback = decide_route(table, rules, weights, Message("weather/rain", "neutral", 0.5, "standard"))
    assert (fallback.team, fallback.rule) == ("general-support", None)
    fixed = [rule("vip refunds", 1, categories=["billing/refund"], customer_tiers=["vip"],
                  actions={"team": "customer-success", "priority": "P0", "tags": ["vip"]}), *rules]
    decision = decide_route(table, fixed, weights, MSG)
    assert (decision.team, decision.priority, decision.tags) == ("customer-success", "P0", ["vip"])
    assert any("fixes priority P0" in r for r in decision.reasons)


def test_seeded_rules_reproduce_the_routing_table(table):
    """The rules seeded from routing.yaml route every category like the table's own prefix routing."""
    def table_route(category: str) -> tuple[str, str]:
        """The table's own routing: the most specific category prefix with a route, else the fallback."""
        parts = category.split("/")
        keys = ("/".join(parts[:depth]) for depth in range(len(parts), 0, -1))
        route = next((table.routes[key] for key in keys if key in table.routes), table.fallback)
        return route.team, route.priority

    rules = table.default_rules()
    for category in ["technical/outage", "technical/bug", "billing/refund", "security/account_compromise",
                     "security/vulnerability", "orders/wrong_item", "general/praise", "x/y"]:
        decision = decide_route(table, rules, table.default_weights(), Message(category, "neutral", 0.5, "standard"))
        assert (decision.team, decision.priority) == table_route(category), category
