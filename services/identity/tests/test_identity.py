"""The identity service with a real nats-server and a real database: people log in and get tokens that
another service (ingest, in the same test) verifies offline; API keys are created, listed without their
secret, rotated with a grace period and revoked; the development key works only in development mode."""

import asyncio
from contextlib import AsyncExitStack

import pytest
from cryptography.fernet import Fernet

from closedloop.config import DEV_API_KEY
from closedloop.testing import eventually, running_app
from identity.accounts import DEMO_USERS
from identity.main import create_app
from identity.settings import IdentitySettings
from ingest.main import create_app as create_ingest
from ingest.settings import IngestSettings

PROBLEM = "application/problem+json"
FEEDBACK = {"channel": "app", "text": "The export button does nothing", "customer": {"id": "c-1"}}


def identity_settings(database_url: str, nats_url: str, **overrides: object) -> IdentitySettings:
    return IdentitySettings(database_url=database_url, nats_url=nats_url, log_json=False, seed_demo_users=True,
                            publish_interval_seconds=0.5, **overrides)


@pytest.fixture
def ingest_app(tmp_path, nats_server):
    return create_ingest(IngestSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}",
                                        nats_url=nats_server.url, log_json=False, identity_refresh_seconds=0.2))


def demo(role: str) -> tuple[str, str]:
    login_name, _, password = DEMO_USERS[role]
    return login_name, password


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-API-Key": ""}


async def login(client, username: str, password: str):
    return await client.post("/v1/auth/token", json={"username": username, "password": password})


async def test_people_log_in_and_other_services_verify_their_token_offline(database_url, nats_server, ingest_app):
    identity = create_app(identity_settings(database_url, nats_server.url))
    async with AsyncExitStack() as stack:
        idp = await stack.enter_async_context(running_app(identity))
        ingest = await stack.enter_async_context(running_app(ingest_app))

        wrong = await login(idp, "agent@example.com", "not the password")
        assert wrong.status_code == 401 and wrong.headers["content-type"] == PROBLEM
        assert (await login(idp, "nobody", "whatever-password")).status_code == 401

        answer = await login(idp, *demo("agent"))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["user"]["role"] == "agent" and body["expires_in"] == 900
        assert "tickets:write" in body["scopes"] and "config:write" not in body["scopes"]
        token = body["access_token"]

        me = (await idp.get("/v1/auth/me", headers=bearer(token))).json()
        assert (me["kind"], me["id"], me["role"]) == ("user", "agent@example.com", "agent")
        jwks = (await idp.get("/.well-known/jwks.json")).json()
        assert jwks["keys"][0]["alg"] == "EdDSA" and jwks["keys"][0]["kid"]

        # ingest knows nothing but the published public key: it verifies the token itself.
        async def token_accepted():
            response = await ingest.get("/v1/feedback/none", headers=bearer(token))
            return response.status_code == 404
        await eventually(token_accepted, timeout=15)
        # An agent may read feedback but not send it as a partner would.
        sent = await ingest.post("/v1/feedback", json=FEEDBACK, headers=bearer(token))
        assert sent.status_code == 403 and "feedback:write" in sent.json()["detail"]
        tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        assert (await ingest.get("/v1/feedback/none", headers=bearer(tampered))).status_code == 401

        refreshed = await idp.post("/v1/auth/refresh", headers=bearer(token))
        assert refreshed.status_code == 200 and refreshed.json()["access_token"] != token

        # A disabled account can no longer log in or refresh.
        assert (await idp.patch("/v1/users/agent@example.com", json={"disabled": True})).status_code == 200
        assert (await login(idp, *demo("agent"))).status_code == 401
        assert (await idp.post("/v1/auth/refresh", headers=bearer(token))).status_code == 401

        # Users are an admin's business: an agent's token gets 403 naming the permission.
        analyst = (await login(idp, *demo("analyst"))).json()["access_token"]
        listed = await idp.get("/v1/users", headers=bearer(analyst))
        assert listed.status_code == 403 and "'admin'" in listed.json()["detail"]

    # identity is gone; ingest still verifies tokens from its copy of the keys.
    async with running_app(ingest_app) as ingest:
        async def still_accepted():
            return (await ingest.get("/v1/feedback/none", headers=bearer(analyst))).status_code == 404
        await eventually(still_accepted, timeout=15)


async def test_api_keys_are_shown_once_rotated_and_revoked_everywhere(database_url, nats_server, ingest_app):
    identity = create_app(identity_settings(database_url, nats_server.url))
    async with running_app(identity) as idp, running_app(ingest_app) as ingest:
        created = await idp.post("/v1/api-keys", json={"name": "partner acme", "scopes": ["feedback:write"],
                                                        "channels": ["app", "web"]})
        assert created.status_code == 201, created.text
        key, key_id = created.json()["key"], created.json()["id"]
        assert key.startswith(f"clk_{key_id}_")
        listed = (await idp.get("/v1/api-keys")).json()["items"]
        assert [k["id"] for k in listed] == [key_id]
        assert key not in str(listed) and "key" not in listed[0]
        bad = await idp.post("/v1/api-keys", json={"name": "x", "scopes": ["tickets:everything"]})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.scopes"

        partner = {"X-API-Key": key}

        async def accepted_on_ingest():
            return (await ingest.post("/v1/feedback", json=FEEDBACK, headers=partner)).status_code in (200, 202)
        await eventually(accepted_on_ingest, timeout=15)
        # The channel allow-list: app and web only.
        email = await ingest.post("/v1/feedback", json={**FEEDBACK, "channel": "email"}, headers=partner)
        assert email.status_code == 403 and email.json()["errors"][0]["field"] == "body.channel"
        survey = await ingest.post("/v1/channels/survey", json={"response_id": "r1", "nps": 3, "comment": "meh",
                                                                 "customer": {"id": "c-2"}}, headers=partner)
        assert survey.status_code == 403, survey.text
        batch = await ingest.post("/v1/feedback/batch", headers=partner, json={"items": [
            FEEDBACK, {**FEEDBACK, "channel": "chat", "text": "another one"}]})
        assert batch.status_code == 403 and batch.json()["errors"][0]["field"] == "body.items.1.channel"
        # It is a partner key: reading feedback is not in its scopes.
        assert (await ingest.get("/v1/feedback/x", headers=partner)).status_code == 403

        # Rotation with a grace period: old and new both work, then (grace 0) only the newest.
        rotated = (await idp.post(f"/v1/api-keys/{key_id}/rotate", json={"grace_seconds": 600})).json()
        new_key = rotated["key"]
        assert new_key != key and rotated["previous_expires_at"]

        async def new_key_works():
            return (await ingest.get("/v1/customers/c-1", headers={"X-API-Key": new_key})).status_code == 403
        await eventually(new_key_works, timeout=15)
        assert (await ingest.get("/v1/customers/c-1", headers=partner)).status_code == 403  # still valid: 403 not 401
        newest = (await idp.post(f"/v1/api-keys/{key_id}/rotate", json={"grace_seconds": 0})).json()["key"]

        async def old_keys_refused():
            old = await ingest.get("/v1/customers/c-1", headers={"X-API-Key": new_key})
            return old.status_code == 401
        await eventually(old_keys_refused, timeout=15)

        # Revoked: refused by every service within about a second.
        assert (await idp.delete(f"/v1/api-keys/{key_id}")).status_code == 204

        async def revoked():
            response = await ingest.post("/v1/feedback", json=FEEDBACK, headers={"X-API-Key": newest})
            return response.status_code == 401 and response.headers["content-type"] == PROBLEM
        await eventually(revoked, timeout=15)
        assert (await idp.get(f"/v1/api-keys/{key_id}")).json()["revoked_at"] is not None
        # Revoking it again changes nothing and answers at once. (It held the request's transaction open while
        # republishing the keys, which needs the one SQLite writer connection too: 30 s, then a 503.)
        again = await asyncio.wait_for(idp.delete(f"/v1/api-keys/{key_id}"), timeout=10)
        assert again.status_code == 204


async def test_development_key_is_refused_in_production(tmp_path, nats_server):
    production = create_ingest(IngestSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
                                              nats_url=nats_server.url, log_json=False, environment="production"))
    development = create_ingest(IngestSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.db'}",
                                               nats_url=nats_server.url, log_json=False, environment="development"))
    async with running_app(production) as prod, running_app(development) as dev:
        refused = await prod.post("/v1/feedback", json=FEEDBACK, headers={"X-API-Key": DEV_API_KEY})
        assert refused.status_code == 401 and refused.headers["content-type"] == PROBLEM
        assert (await dev.post("/v1/feedback", json=FEEDBACK, headers={"X-API-Key": DEV_API_KEY})).status_code == 202
        # Without credentials at all: 401 with a challenge; health stays public.
        anonymous = await prod.get("/v1/feedback/x", headers={"X-API-Key": ""})
        assert anonymous.status_code == 401 and "Bearer" in anonymous.headers["www-authenticate"]
        assert (await prod.get("/livez")).status_code == 200


async def test_demo_accounts_only_in_development_and_a_bootstrap_admin(database_url, nats_server):
    settings = identity_settings(database_url, nats_server.url, environment="production",
                                 secret_keys=[Fernet.generate_key().decode()], bootstrap_admin_username="root",
                                 bootstrap_admin_password="a long root password")
    async with running_app(create_app(settings), api_key="") as idp:
        assert (await login(idp, *demo("agent"))).status_code == 401
        token = (await login(idp, "root", "a long root password")).json()["access_token"]
        users = await idp.get("/v1/users", headers=bearer(token))
        assert [u["id"] for u in users.json()["items"]] == ["root"]
        created = await idp.post("/v1/users", headers=bearer(token), json={
            "id": "ana", "display_name": "Ana", "role": "lead", "password": "short"})
        assert created.status_code == 422 and created.json()["errors"][0]["field"] == "body.password"


async def test_signing_keys_are_sealed_at_rest_and_re_sealed_after_a_key_rotation(database_url, nats_server,
                                                                                 ingest_app):
    from sqlalchemy import text

    from closedloop.db import create_engine
    from closedloop.secretbox import Keyring

    async def stored_keys() -> list[str]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                return list((await connection.execute(text("SELECT private_pem FROM signing_keys"))).scalars())
        finally:
            await engine.dispose()

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    async with running_app(create_app(identity_settings(database_url, nats_server.url, secret_keys=[old]))) as idp:
        assert (await login(idp, *demo("agent"))).status_code == 200
    [sealed] = await stored_keys()
    assert sealed.startswith("enc:v1:") and "PRIVATE KEY" not in sealed
    assert "PRIVATE KEY" in Keyring([old]).open(sealed)

    # Rotation: the new secret key first; the start-up pass re-seals, then the old key can go.
    async with running_app(create_app(identity_settings(database_url, nats_server.url, secret_keys=[new, old]))):
        pass
    [resealed] = await stored_keys()
    assert Keyring([new]).open(resealed) == Keyring([old]).open(sealed)
    identity = create_app(identity_settings(database_url, nats_server.url, secret_keys=[new]))
    async with running_app(identity) as idp, running_app(ingest_app) as ingest:
        token = (await login(idp, *demo("agent"))).json()["access_token"]

        async def token_accepted():
            return (await ingest.get("/v1/feedback/none", headers=bearer(token))).status_code == 404
        await eventually(token_accepted, timeout=15)


async def test_users_are_listed_a_page_at_a_time_by_id(database_url, nats_server):
    async with running_app(create_app(identity_settings(database_url, nats_server.url))) as idp:
        for name in ("zoe", "bob", "mia"):
            created = await idp.post("/v1/users", json={"id": name, "display_name": name.title(), "role": "agent",
                                                        "password": "a long passphrase"})
            assert created.status_code == 201, created.text
        seen, cursor, totals = [], None, set()
        while True:
            page = (await idp.get("/v1/users", params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
            seen += [user["id"] for user in page["items"]]
            totals.add(page["total"])
            if not (cursor := page["next_cursor"]):
                break
        everyone = sorted(["zoe", "bob", "mia", *(login_name for login_name, _, _ in DEMO_USERS.values())])
        assert seen == everyone and totals == {len(everyone)}
        forged = await idp.get("/v1/users", params={"cursor": "bm90IGEgY3Vyc29y"})
        assert forged.status_code == 400 and forged.json()["errors"][0]["field"] == "query.cursor"
