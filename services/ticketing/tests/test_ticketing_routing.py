"""Unit tests of ticket routing: team and priority from category, sentiment and customer tier."""

import pytest

from ticketing.routing import RoutingInput, RoutingTable, load_routing_table, route_ticket
from ticketing.tickets import TITLE_CHARS, make_title


@pytest.fixture(scope="module")
def table() -> RoutingTable:
    return load_routing_table()  # the table shipped in ticketing/data/routing.yaml


def route(table, category, sentiment="neutral", score=0.5, tier="standard"):
    return route_ticket(table, RoutingInput(category=category, sentiment=sentiment, sentiment_score=score,
                                            customer_tier=tier))


@pytest.mark.parametrize(("category", "team", "priority", "matched"), [
    ("technical/outage", "sre", "P0", "technical/outage"),
    ("technical/slow_app", "engineering-support", "P2", "technical"),
    ("technical", "engineering-support", "P2", "technical"),
    ("billing/payment_failure", "payments", "P1", "billing/payment_failure"),
    ("billing/invoice", "payments", "P2", "billing"),
    ("security/account_compromise", "trust-and-safety", "P0", "security/account_compromise"),
    ("security/account_compromise/extra", "trust-and-safety", "P0", "security/account_compromise"),
])
def test_most_specific_route_wins(table, category, team, priority, matched):
    decision = route(table, category)
    assert (decision.team, decision.priority, decision.matched_route) == (team, priority, matched)
    assert repr(matched) in decision.reasons[0]


@pytest.mark.parametrize("category", ["unheard_of/thing", "unheard_of", "billingx/refund", ""])
def test_unknown_category_goes_to_the_fallback(table, category):
    decision = route(table, category)
    assert (decision.team, decision.priority, decision.matched_route) == ("general-support", "P2", None)
    assert "fallback" in decision.reasons[0]


@pytest.mark.parametrize(("category", "score", "priority"), [
    ("billing/refund", 0.9, "P1"),     # P2 -> P1
    ("billing/refund", 0.75, "P1"),    # the threshold itself counts as strongly negative
    ("billing/refund", 0.74, "P2"),    # mildly negative: unchanged
    ("product/idea", 0.99, "P2"),      # P3 -> P2: only one level
    ("billing/payment_failure", 0.99, "P1"),  # P1 is never raised to P0 on sentiment alone
    ("technical/outage", 0.99, "P0"),  # P0 stays P0
])
def test_strongly_negative_raises_one_level_but_never_to_p0(table, category, score, priority):
    decision = route(table, category, sentiment="negative", score=score)
    assert decision.priority == priority
    raised = any("strongly negative" in reason for reason in decision.reasons)
    assert raised == (priority != route(table, category).priority)


@pytest.mark.parametrize(("tier", "priority"), [
    ("standard", "P2"), ("vip", "P1"), ("VIP", "P1"), ("Enterprise", "P1"), ("gold", "P2"),
])
def test_priority_tiers_raise_one_level(table, tier, priority):
    decision = route(table, "billing/refund", tier=tier)
    assert decision.priority == priority
    assert any("customer tier" in reason for reason in decision.reasons) == (priority == "P1")


def test_negative_vip_is_raised_at_most_to_p1(table):
    assert route(table, "billing/refund", sentiment="negative", score=0.95, tier="vip").priority == "P1"
    assert route(table, "product/idea", sentiment="negative", score=0.95, tier="vip").priority == "P1"
    assert route(table, "billing/payment_failure", sentiment="negative", score=0.95, tier="vip").priority == "P1"


@pytest.mark.parametrize(("category", "priority"), [
    ("billing/payment_failure", "P3"), ("billing/refund", "P3"), ("general/praise", "P3"),
    ("technical/outage", "P0"), ("security/account_compromise", "P0"),
])
def test_positive_feedback_is_p3_but_p0_stays_p0(table, category, priority):
    decision = route(table, category, sentiment="positive", score=0.95)
    assert decision.priority == priority
    assert decision.team == route(table, category).team


def test_adjustments_come_from_the_table():
    table = RoutingTable.model_validate({
        "fallback": {"team": "a", "priority": "P2"},
        "teams": {"a": {"name": "A"}},
        "routes": {},
        "adjustments": {"negative_sentiment_min_score": 0.5, "priority_tiers": ["gold"], "positive_is_p3": False},
    })
    assert route(table, "x", sentiment="negative", score=0.6).priority == "P1"
    assert route(table, "x", tier="gold").priority == "P1"
    assert route(table, "x", tier="vip").priority == "P2"
    assert route(table, "x", sentiment="positive", score=0.99).priority == "P2"


@pytest.mark.parametrize("table_data", [
    {"fallback": {"team": "a", "priority": "P2"}, "teams": {"a": {"name": "A"}},
     "routes": {"billing": {"team": "ghosts", "priority": "P1"}}},
    {"fallback": {"team": "nobody", "priority": "P2"}, "teams": {"a": {"name": "A"}}, "routes": {}},
], ids=["route", "fallback"])
def test_a_table_naming_an_undefined_team_is_rejected(table_data):
    with pytest.raises(ValueError, match="not defined"):
        RoutingTable.model_validate(table_data)


def test_loading_a_yaml_table_with_an_undefined_team_fails(tmp_path):
    path = tmp_path / "routing.yaml"
    path.write_text("fallback: {team: support, priority: P2}\n"
                    "teams: {support: {name: Support}}\n"
                    "routes: {billing: {team: payments, priority: P1}}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="payments"):
        load_routing_table(path)


def test_a_custom_yaml_table_is_used(tmp_path):
    path = tmp_path / "routing.yaml"
    path.write_text("fallback: {team: support, priority: P3}\n"
                    "teams: {support: {name: Support}, money: {name: Money}}\n"
                    "routes: {billing: {team: money, priority: P1}}\n", encoding="utf-8")
    table = load_routing_table(path)
    assert route(table, "billing/refund").team == "money"
    assert route(table, "technical/outage").priority == "P3"


def test_shipped_table_defines_every_team_it_routes_to(table):
    assert {r.team for r in table.routes.values()} | {table.fallback.team} <= set(table.teams)


@pytest.mark.parametrize(("subject", "text", "title"), [
    ("Double charge", "I was charged twice", "Double charge"),
    (None, "First line\nsecond line", "First line"),
    (None, "x" * 500, "x" * (TITLE_CHARS - 1) + "…"),
    (None, "y" * TITLE_CHARS, "y" * TITLE_CHARS),
])
def test_ticket_title(subject, text, title):
    assert make_title(subject, text) == title
