"""Unit tests of the routing table (teams, routes, fallback, loading it from YAML) and of ticket titles."""

import pytest

from ticketing.routing import RoutingTable, decide_route, load_routing_table
from ticketing.rules import Message
from ticketing.tickets import TITLE_CHARS, make_title


@pytest.fixture(scope="module")
def table() -> RoutingTable:
    return load_routing_table()  # the table shipped in ticketing/data/routing.yaml


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
    rules, weights = table.default_rules(), table.default_weights()
    assert decide_route(table, rules, weights, Message("billing/refund", "neutral", 0.5, "standard")).team == "money"
    assert decide_route(table, rules, weights, Message("technical/outage", "neutral", 0.5, "standard")).team == \
        "support", "no route: the fallback"


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
