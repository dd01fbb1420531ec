"""The routing rules, weights, auto-reply rules, SLA policies and open incidents a new ticket reads are kept
for `config_cache_seconds` (ticketing.config_cache): a change through this replica counts for the next ticket,
one through another replica within that time, and a rolled-back transaction does not spoil what was kept."""

import asyncio

import pytest

from closedloop.testing import eventually, running_app
from ticketing.testing import classified, make_app, open_from
from ticketing.tickets import open_ticket

LAWYERS = {"name": "lawyers", "position": 0, "conditions": {"keywords": ["lawyer"]},
           "actions": {"team": "trust-and-safety", "tags": ["legal"]}}


def lawyer_letter():
    return classified("billing/refund", text="My lawyer will write to you")


async def test_a_rule_saved_through_this_replica_routes_the_very_next_ticket(database_url, nats_server, clock):
    app = make_app(database_url, nats_server.url, clock, config_cache_seconds=3600)
    async with running_app(app) as client:
        assert (await open_from(app, lawyer_letter())).team == "payments"  # the rules are now kept for an hour
        assert (await client.post("/v1/routing-rules", json=LAWYERS)).status_code == 201
        assert (await open_from(app, lawyer_letter())).team == "trust-and-safety"

        policy = next(p for p in (await client.get("/v1/sla-policies")).json() if p["priority"] == "P2"
                      and p["customer_tier"] is None)
        body = {k: v for k, v in policy.items() if k not in ("id", "created_at", "updated_at")}
        changed = await client.put(f"/v1/sla-policies/{policy['id']}", json={**body, "first_response_minutes": 7})
        assert changed.status_code == 200, changed.text
        ticket = await open_from(app, classified("billing/refund", sentiment="neutral", score=0.5))
        assert ticket.priority == "P2"
        assert (ticket.first_response_due_at - ticket.created_at).total_seconds() == 7 * 60


async def test_a_rule_saved_through_another_replica_counts_within_the_cache_time(database_url, nats_server, clock):
    here = make_app(database_url, nats_server.url, clock, config_cache_seconds=0.5)
    there = make_app(database_url, nats_server.url, clock, config_cache_seconds=0.5)
    async with running_app(here), running_app(there) as other:
        assert (await open_from(here, lawyer_letter())).team == "payments"
        assert (await other.post("/v1/routing-rules", json=LAWYERS)).status_code == 201

        async def routed_by_the_new_rule():
            return (await open_from(here, lawyer_letter())).team == "trust-and-safety"
        await eventually(routed_by_the_new_rule, timeout=5, interval=0.2)


class Abandon(Exception):
    pass


async def test_what_a_rolled_back_transaction_read_stays_usable(app):
    async with running_app(app):
        with pytest.raises(Abandon):
            async with app.state.runtime.sessions() as session, session.begin():
                await open_ticket(session, classified("billing/refund"), app.state.routing_table, app.state.clock,
                                  app.state.ticket_options)
                raise Abandon  # the consumer's batch transaction fails: everything it loaded is expired
        await asyncio.sleep(0)
        ticket = await open_from(app, classified("billing/refund", sentiment="neutral", score=0.5))
        assert ticket.first_response_due_at is not None and ticket.resolution_due_at is not None
