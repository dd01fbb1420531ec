"""Secrets at rest: webhook signing secrets and Slack hook URLs are never in the database in clear, never
returned after creation, and signing still verifies — also after a key rotation and after the migration
that seals rows written before encryption."""

import json
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import make_url

from closedloop.db import create_engine
from closedloop.events import TicketCreatedV1
from closedloop.secretbox import DEVELOPMENT_KEY, Keyring, KeyringMissing, fingerprint
from closedloop.testing import eventually, running_app, schema_differences
from closedloop.testing import migrate as migrate_service
from notify import signing
from notify.main import SERVICE_DIR, create_app
from notify.models import Base
from notify.settings import NotifySettings

SLACK_PATH = "/slack/services/T0001/B0002/xoxbsecretpathpart"


async def stored_text(database_url: str) -> str:
    """Every value of every row of the tables that hold secrets, plus the raw SQLite files: where a secret
    in clear would show."""
    engine = create_engine(database_url)
    parts = []
    try:
        async with engine.connect() as connection:
            for table in ("webhook_endpoints", "subscriptions", "deliveries", "outbox"):
                for row in (await connection.execute(text(f"SELECT * FROM {table}"))).all():
                    parts.extend(str(value) for value in row)
    finally:
        await engine.dispose()
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        for suffix in ("", "-wal"):
            path = Path(f"{url.database}{suffix}")
            if path.exists():  # noqa: ASYNC240 (a test reading a small file)
                parts.append(path.read_bytes().decode("latin-1"))  # noqa: ASYNC240
    return "\n".join(parts)


async def test_secrets_are_sealed_at_rest_never_returned_and_signing_verifies(make_app, http_receiver, notify_kit,
                                                                              database_url):
    key = Fernet.generate_key().decode()
    app = make_app(secret_keys=[key])
    slack_url = http_receiver.url(SLACK_PATH)
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        created = await client.post("/v1/webhooks", json={"name": "crm", "url": http_receiver.url("/hook"),
                                                          "secret": "a-partner-chosen-secret-0123456789"})
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert secret == "a-partner-chosen-secret-0123456789"
        generated = (await client.post("/v1/webhooks", json={"name": "bi", "url": http_receiver.url("/bi")})).json()
        subscription = await client.post("/v1/subscriptions", json={
            "name": "ops", "event_types": ["ticket.created.v1"], "channel": "slack", "target": slack_url})
        assert subscription.status_code == 201, subscription.text
        assert subscription.json()["target"] == "slack-hook:" + fingerprint(slack_url)

        await notify_kit.publish(app, TicketCreatedV1(ticket=notify_kit.snapshot()))
        delivered = await eventually(lambda: _at_least(client, notify_kit, 3), timeout=15)
        for request in http_receiver.received("/hook"):
            assert signing.verify(secret, request.body, request.headers[signing.HEADER])
        [to_bi] = http_receiver.received("/bi")
        assert signing.verify(generated["secret"], to_bi.body, to_bi.headers[signing.HEADER])
        assert len(http_receiver.received(SLACK_PATH)) == 1, "the Slack hook got its message"

        answers = [(await client.get(path)).text for path in
                   ("/v1/webhooks", "/v1/subscriptions", f"/v1/subscriptions/{subscription.json()['id']}",
                    "/v1/deliveries")]
        answers += [(await client.get(f"/v1/deliveries/{d['id']}")).text for d in delivered]
        for answer in answers:
            assert secret not in answer and generated["secret"] not in answer
            assert "xoxbsecretpathpart" not in answer, "a Slack hook URL is a credential: never shown again"
        notified = await app.state.runtime.broker.js.get_last_msg("NOTIFICATION", "notification.delivered.v1")
        assert "xoxbsecretpathpart" not in notified.data.decode()

    at_rest = await stored_text(database_url)
    assert "enc:v1:" in at_rest
    for clear in (secret, generated["secret"], "xoxbsecretpathpart"):
        assert clear not in at_rest


async def _at_least(client, notify_kit, count: int):
    page = await notify_kit.deliveries(client, status="delivered")
    return page["items"] if page["total"] >= count else None


async def test_key_rotation_reseals_at_start_and_the_old_key_can_go(make_app, http_receiver, notify_kit,
                                                                    database_url):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app = make_app(secret_keys=[old])
    async with running_app(app) as client:
        secret = (await client.post("/v1/webhooks", json={"name": "crm", "url": http_receiver.url("/hook")})).json()[
            "secret"]

    async with running_app(make_app(secret_keys=[new, old])):  # rotation: the new key first, the old one kept
        pass
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            [stored] = (await connection.execute(text("SELECT secret FROM webhook_endpoints"))).scalars().all()
    finally:
        await engine.dispose()
    assert Keyring([new]).open(stored) == secret, "re-sealed under the new key at start-up"

    app = make_app(secret_keys=[new])  # the old key is gone
    async with running_app(app) as client:
        await app.state.runtime.broker.wait_connected(10)
        await notify_kit.publish(app, TicketCreatedV1(ticket=notify_kit.snapshot()))
        await eventually(notify_kit.where(client, status="delivered"), timeout=15)
        [request] = http_receiver.received("/hook")
        assert signing.verify(secret, request.body, request.headers[signing.HEADER])


def test_production_without_keys_refuses_to_start(nats_server, tmp_path):
    settings = NotifySettings(environment="production", database_url=f"sqlite+aiosqlite:///{tmp_path}/n.db",
                              nats_url=nats_server.url, api_keys=["a-production-admin-key-0123456789"])
    try:
        create_app(settings)
    except KeyringMissing as exc:
        assert "NOTIFY_SECRET_KEYS" in str(exc)
    else:
        raise AssertionError("notify started in production with no key to seal its secrets")


async def test_migration_0004_seals_rows_written_in_clear_and_downgrades(database_url):
    await migrate_service(SERVICE_DIR, database_url, "0003")
    now = datetime.now(UTC)
    slack = "https://hooks.slack.com/services/T1/B2/plaintextslacksecret"
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text(
            "INSERT INTO webhook_endpoints (id, name, url, secret, event_types, active, created_at) "
            "VALUES ('e-1', 'crm', 'https://crm.example/hook', 'plaintext-webhook-secret', '[\"ticket.*\"]', true, "
            ":now)"), {"now": now})
        await connection.execute(text(
            "INSERT INTO subscriptions (id, name, event_types, teams, priorities, channel, target, active, "
            "created_at) VALUES ('s-1', 'ops', '[\"ticket.*\"]', '[]', '[]', 'slack', :url, true, :now)"),
            {"url": slack, "now": now})
        await connection.execute(text(
            "INSERT INTO deliveries (id, channel, recipient, source_event_id, event_type, target, payload, status, "
            "attempts, next_attempt_at, created_at) VALUES ('d-1', 'slack', :url, 'ev-1', 'ticket.created.v1', "
            ":url, '{}', 'pending', 0, :now, :now)"), {"url": slack, "now": now})
    await engine.dispose()

    await migrate_service(SERVICE_DIR, database_url, "head")
    keyring = Keyring([DEVELOPMENT_KEY])  # the tests run in development mode without NOTIFY_SECRET_KEYS
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            secret = (await connection.execute(text("SELECT secret FROM webhook_endpoints"))).scalar_one()
            target, sealed = (await connection.execute(text("SELECT target, target_sealed FROM subscriptions"))).one()
            delivery = (await connection.execute(text("SELECT target, recipient FROM deliveries"))).one()
    finally:
        await engine.dispose()
    assert secret.startswith("enc:v1:") and keyring.open(secret) == "plaintext-webhook-secret"
    assert (target, keyring.open(sealed)) == ("slack-hook:" + fingerprint(slack), slack)
    assert tuple(delivery) == (target, target)
    assert "plaintext" not in json.dumps([secret, target, sealed, *delivery])
    assert await schema_differences(database_url, Base.metadata) == []

    await migrate_service(SERVICE_DIR, database_url, "0003", True)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT secret FROM webhook_endpoints"))).scalar_one() == \
                "plaintext-webhook-secret"
            assert (await connection.execute(text("SELECT target FROM deliveries"))).scalar_one() == slack
    finally:
        await engine.dispose()
