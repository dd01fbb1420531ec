"""Who may do what, across the five services in one process on a real nats-server: a partner key
(feedback:write only) may send feedback and nothing else; people's roles give what the contract says;
the audit log names the authenticated caller, never what the body claims."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from classify.main import create_app as create_classify
from classify.settings import ClassifySettings
from closedloop.config import DEV_API_KEY
from closedloop.credentials import CredentialSync
from closedloop.testing import eventually, running_app
from identity.accounts import DEMO_USERS
from identity.main import create_app as create_identity
from identity.settings import IdentitySettings
from ingest.main import create_app as create_ingest
from ingest.settings import IngestSettings
from notify.main import create_app as create_notify
from notify.settings import NotifySettings
from ticketing.main import create_app as create_ticketing
from ticketing.settings import TicketingSettings
from ticketing.testing import classified, open_from

PROBLEM = "application/problem+json"
FEEDBACK = {"channel": "app", "text": "I was charged twice for one order", "customer": {"id": "c-9"}}

# What a partner key must not do, one call per kind of thing (service, method, path, body, missing scope).
FORBIDDEN_FOR_PARTNER = [
    ("ticketing", "GET", "/v1/tickets", None, "tickets:read"),
    ("ticketing", "GET", "/v1/routing-rules", None, "tickets:read"),
    ("ticketing", "POST", "/v1/routing-rules", {"name": "steal", "conditions": {}, "team": "payments"},
     "config:write"),
    ("ticketing", "DELETE", "/v1/sla-policies/1", None, "config:write"),
    ("ticketing", "PUT", "/v1/priority-scoring", {}, "config:write"),
    ("ticketing", "GET", "/v1/reports/backlog", None, "reports:read"),
    ("classify", "PUT", "/v1/taxonomy", {"categories": []}, "config:write"),
    ("classify", "POST", "/v1/taxonomy/nodes", {"key": "x"}, "config:write"),
    ("classify", "POST", "/v1/models", {}, "models:write"),
    ("classify", "POST", "/v1/training-examples", {"examples": []}, "models:write"),
    ("classify", "POST", "/v1/models/rollback", None, "models:write"),
    ("notify", "POST", "/v1/webhooks", {"url": "http://169.254.169.254/latest", "event_types": ["ticket.*"]},
     "config:write"),
    ("notify", "GET", "/v1/webhooks", None, "config:write"),
    ("notify", "PUT", "/v1/templates/x", {}, "config:write"),
    ("notify", "GET", "/v1/deliveries", None, "tickets:read"),
    ("ingest", "GET", "/v1/feedback/x", None, "feedback:read"),
    ("ingest", "PUT", "/v1/customers/c-9", {"tier": "vip"}, "customers:write"),
    ("identity", "POST", "/v1/api-keys", {"name": "mine", "scopes": ["admin"]}, "admin"),
    ("ingest", "GET", "/v1/dead-letters", None, "admin"),
    ("ticketing", "GET", "/metrics", None, "metrics:read"),
    ("notify", "GET", "/metrics", None, "metrics:read"),
]
SCRAPE_KEY = "prometheus-scrape-key-0123456789abcdef"


@asynccontextmanager
async def credentials_only(app) -> AsyncIterator[httpx.AsyncClient]:
    """classify without its model: only its broker connection and its copy of the credentials run — all
    that deciding 401/403 needs (a refused call never reaches the model), without loading the model."""
    runtime = app.state.runtime
    runtime.broker.start()
    sync = next(worker for worker in runtime.workers if isinstance(worker, CredentialSync))
    sync.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                     headers={"X-API-Key": DEV_API_KEY}) as client:
            yield client
    finally:
        await sync.stop()
        await runtime.broker.close()


async def start(stack: AsyncExitStack, apps: dict, names: tuple[str, ...]) -> dict[str, httpx.AsyncClient]:
    return {name: await stack.enter_async_context(credentials_only(app) if name == "classify" else running_app(app))
            for name, app in apps.items() if name in names}


@pytest.fixture
def apps(tmp_path: Path, nats_server):
    def db(name: str) -> str:
        return f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}"

    common = {"nats_url": nats_server.url, "log_json": False, "identity_refresh_seconds": 0.2,
              "metrics_keys": [SCRAPE_KEY]}
    return {
        "identity": create_identity(IdentitySettings(database_url=db("identity"), seed_demo_users=True, **common)),
        "ingest": create_ingest(IngestSettings(database_url=db("ingest"), **common)),
        "classify": create_classify(ClassifySettings(database_url=db("classify"), **common)),
        "ticketing": create_ticketing(TicketingSettings(database_url=db("ticketing"), **common)),
        "notify": create_notify(NotifySettings(database_url=db("notify"), **common)),
    }


async def test_partner_key_sends_feedback_and_gets_403_naming_the_permission_elsewhere(apps):
    async with AsyncExitStack() as stack:
        clients = await start(stack, apps, ("identity", "ingest", "classify", "ticketing", "notify"))
        created = await clients["identity"].post("/v1/api-keys", json={"name": "partner", "scopes": ["feedback:write"]})
        partner = {"X-API-Key": created.json()["key"]}

        async def everyone_knows_the_key():
            for name in ("ingest", "classify", "ticketing", "notify"):
                if (await clients[name].get("/v1/dead-letters", headers=partner)).status_code != 403:
                    return False
            return True
        await eventually(everyone_knows_the_key, timeout=20)

        sent = await clients["ingest"].post("/v1/feedback", json=FEEDBACK, headers=partner)
        assert sent.status_code == 202, sent.text

        for service, method, path, body, scope in FORBIDDEN_FOR_PARTNER:
            response = await clients[service].request(method, path, json=body, headers=partner)
            where = f"{service} {method} {path}"
            assert response.status_code == 403, f"{where}: {response.status_code} {response.text}"
            assert response.headers["content-type"] == PROBLEM, where
            problem = response.json()
            assert problem["type"].endswith("/missing-permission") and f"'{scope}'" in problem["detail"], where

        # Nothing was changed by the refused calls: the webhook list (read with the admin key) is as seeded.
        hooks = (await clients["notify"].get("/v1/webhooks")).json()
        assert not any("169.254" in hook["url"] for hook in hooks)


async def test_metrics_need_metrics_read_and_the_scrape_key_reads_nothing_else(apps):
    async with AsyncExitStack() as stack:
        clients = await start(stack, apps, ("identity", "ingest", "ticketing", "notify"))
        scrape = {"Authorization": f"Bearer {SCRAPE_KEY}", "X-API-Key": ""}
        for name in ("identity", "ingest", "ticketing", "notify"):
            anonymous = await clients[name].get("/metrics", headers={"X-API-Key": ""})
            assert anonymous.status_code == 401 and anonymous.headers["content-type"] == PROBLEM, name
            scraped = await clients[name].get("/metrics", headers=scrape)
            assert scraped.status_code == 200 and "closedloop_http_requests_total" in scraped.text, name
        refused = await clients["ticketing"].get("/v1/tickets", headers=scrape)
        assert refused.status_code == 403 and "'tickets:read'" in refused.json()["detail"]
        assert (await clients["ingest"].post("/v1/feedback", json=FEEDBACK, headers=scrape)).status_code == 403
        # An identity key with the scope works as well (e.g. one per Prometheus).
        created = await clients["identity"].post("/v1/api-keys", json={"name": "prometheus",
                                                                       "scopes": ["metrics:read"]})
        assert created.status_code == 201, created.text
        key = {"X-API-Key": created.json()["key"]}

        async def scraped_with_the_identity_key():
            return (await clients["ticketing"].get("/metrics", headers=key)).status_code == 200
        await eventually(scraped_with_the_identity_key, timeout=20)


async def test_roles_and_the_audit_log_names_the_authenticated_person(apps):
    async with AsyncExitStack() as stack:
        clients = await start(stack, apps, ("identity", "ticketing", "classify"))

        async def token(user: str) -> dict[str, str]:
            answer = await clients["identity"].post("/v1/auth/token",
                                                    json={"username": DEMO_USERS[user][0],
                                                          "password": DEMO_USERS[user][2]})
            return {"Authorization": f"Bearer {answer.json()['access_token']}", "X-API-Key": ""}

        agent, lead, analyst = await token("agent"), await token("lead"), await token("analyst")

        async def tokens_known():
            return (await clients["ticketing"].get("/v1/tickets", headers=agent)).status_code == 200
        await eventually(tokens_known, timeout=20)

        ticketing, classify = clients["ticketing"], clients["classify"]
        assert (await ticketing.get("/v1/reports/backlog", headers=analyst)).status_code == 200
        assert (await ticketing.get("/v1/routing-rules", headers=analyst)).status_code == 200
        denied = await ticketing.post("/v1/tickets/x/status", json={"status": "open"}, headers=analyst)
        assert denied.status_code == 403 and "'tickets:write'" in denied.json()["detail"]
        assert (await ticketing.put("/v1/priority-scoring", json={}, headers=agent)).status_code == 403
        assert (await classify.put("/v1/taxonomy", json={"nodes": []}, headers=agent)).status_code == 403
        assert (await classify.post("/v1/models", json={}, headers=analyst)).status_code == 403
        # The lead may change configuration (here: the priority weights, sent back as they are).
        weights = (await ticketing.get("/v1/priority-scoring", headers=agent)).json()
        changed = await ticketing.put("/v1/priority-scoring", json=weights, headers=lead)
        assert changed.status_code == 200, changed.text

        # The audit log: a ticket worked by the agent names user:agent, whatever "actor" the body claims.
        ticket_id = (await open_from(apps["ticketing"], classified("billing/refund"))).id
        moved = await ticketing.post(f"/v1/tickets/{ticket_id}/status", headers=agent,
                                     json={"status": "open", "actor": "the-ceo"})
        assert moved.status_code == 200, moved.text
        comment = await ticketing.post(f"/v1/tickets/{ticket_id}/comments", headers=agent,
                                       json={"author": "someone-else", "body": "Looking into it", "public": False})
        assert comment.status_code == 201 and comment.json()["author"] == "user:agent@example.com"
        audit = (await ticketing.get(f"/v1/tickets/{ticket_id}/audit", headers=agent)).json()
        actors = {entry["actor"] for entry in audit if entry["action"] != "created"}
        assert "user:agent@example.com" in actors and "the-ceo" not in actors and "someone-else" not in actors
