"""OpenID Connect login end to end against a real provider (conftest's FakeProvider: discovery, JWKS,
authorization code with state, nonce and PKCE S256, a confidential client, RS256 id_tokens): the browser's
redirects are followed by hand, identity talks to the provider over HTTP, and the person's token is then
verified like any other."""

from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from closedloop.testing import running_app
from identity.main import create_app
from identity.settings import IdentitySettings

RETURN_TO = "https://console.example.com/login/done"
REDIRECT_URI = "http://testserver/v1/auth/oidc/callback"


def settings(database_url: str, nats_url: str, provider, **overrides: object) -> IdentitySettings:
    values = dict(database_url=database_url, nats_url=nats_url, log_json=False,
                  oidc_issuer=provider.issuer, oidc_client_id=provider.client_id,
                  oidc_client_secret=provider.client_secret, oidc_redirect_uri=REDIRECT_URI,
                  oidc_allowed_return_urls=[RETURN_TO])
    return IdentitySettings(**{**values, **overrides})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-API-Key": ""}


async def at_provider(idp, return_to: str | None = RETURN_TO) -> str:
    """The browser: identity's login redirect, then the provider's login page, which redirects back with
    a code. Returns the path and query of identity's callback."""
    params = {"return_to": return_to} if return_to else {}
    start = await idp.get("/v1/auth/oidc/login", params=params, headers={"X-API-Key": ""})
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    query = parse_qs(urlparse(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"][0] and query["nonce"][0]
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        back = await browser.get(authorize)
    assert back.status_code == 302, back.text
    callback = urlparse(back.headers["location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == REDIRECT_URI
    assert parse_qs(callback.query)["state"] == query["state"]
    return f"{callback.path}?{callback.query}"


async def test_login_through_the_provider_gives_a_token_with_the_mapped_role(database_url, nats_server,
                                                                             oidc_provider):
    async with running_app(create_app(settings(database_url, nats_server.url, oidc_provider))) as idp:
        callback = await at_provider(idp)
        done = await idp.get(callback, headers={"X-API-Key": ""})
        assert done.status_code == 303, done.text
        returned = urlparse(done.headers["location"])
        assert f"{returned.scheme}://{returned.netloc}{returned.path}" == RETURN_TO
        [code] = parse_qs(returned.query)["login_code"]

        # The provider saw a confidential client, the PKCE verifier and identity's redirect URI.
        [exchange] = oidc_provider.token_requests
        assert exchange["grant_type"] == "authorization_code" and len(exchange["code_verifier"]) >= 43
        assert exchange["redirect_uri"] == REDIRECT_URI

        token = await idp.post("/v1/auth/token", json={"login_code": code}, headers={"X-API-Key": ""})
        assert token.status_code == 200, token.text
        body = token.json()
        assert body["user"]["role"] == "lead" and "config:write" in body["scopes"]
        me = (await idp.get("/v1/auth/me", headers=bearer(body["access_token"]))).json()
        assert (me["kind"], me["id"], me["name"], me["role"]) == ("user", "ana.lima", "Ana Lima", "lead")

        again = await idp.post("/v1/auth/token", json={"login_code": code}, headers={"X-API-Key": ""})
        assert again.status_code == 401, "a login code works once"
        replayed = await idp.get(callback, headers={"X-API-Key": ""})
        assert replayed.status_code == 400 and replayed.json()["type"].endswith("oidc-state-invalid")

        # The provider demotes her and rotates its signing key: the next login follows both.
        oidc_provider.person.roles = ["closedloop-agent"]
        oidc_provider.rotate_key()
        answer = await idp.get(await at_provider(idp, return_to=None), headers={"X-API-Key": ""})
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"] == {**answer.json()["user"], "id": "ana.lima", "role": "agent"}
        users = (await idp.get("/v1/users")).json()["items"]
        assert [(u["id"], u["role"]) for u in users if u["id"] == "ana.lima"] == [("ana.lima", "agent")]


@pytest.mark.parametrize(("misbehaviour", "status", "words"), [
    ("wrong_nonce", 401, "nonce"),
    ("wrong_audience", 401, "audience"),
    ("foreign_azp", 401, "azp"),
    ("expired", 401, "expired"),
    ("no_role", 403, "No Closedloop role"),
    ("wrong_client_secret", 401, "refused the code"),
])
async def test_what_identity_refuses(database_url, nats_server, oidc_provider, misbehaviour, status, words):
    overrides = {}
    if misbehaviour == "no_role":
        oidc_provider.person.roles = ["offline_access"]
    elif misbehaviour == "wrong_client_secret":
        overrides["oidc_client_secret"] = "not-the-client-secret"
    else:
        setattr(oidc_provider, misbehaviour, True)
    async with running_app(create_app(settings(database_url, nats_server.url, oidc_provider, **overrides))) as idp:
        callback = await at_provider(idp)
        answer = await idp.get(callback, headers={"X-API-Key": ""})
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert words.lower() in answer.json()["detail"].lower()
        again = await idp.get(callback, headers={"X-API-Key": ""})
        assert again.status_code == 400, "a state is spent by a failed callback too"
        assert all(u["id"] != "ana.lima" for u in (await idp.get("/v1/users")).json()["items"]), "nobody logged in"


async def test_bad_requests_to_the_login_routes(database_url, nats_server, oidc_provider):
    async with running_app(create_app(settings(database_url, nats_server.url, oidc_provider))) as idp:
        elsewhere = await idp.get("/v1/auth/oidc/login", params={"return_to": "https://evil.example/x"},
                                  headers={"X-API-Key": ""})
        assert elsewhere.status_code == 422 and elsewhere.json()["errors"][0]["field"] == "query.return_to"
        unknown = await idp.get("/v1/auth/oidc/callback", params={"state": "made-up", "code": "x"},
                                headers={"X-API-Key": ""})
        assert unknown.status_code == 400
        callback = await at_provider(idp)
        state = parse_qs(urlparse(callback).query)["state"][0]
        denied = await idp.get("/v1/auth/oidc/callback", params={"state": state, "error": "access_denied"},
                               headers={"X-API-Key": ""})
        assert denied.status_code == 401 and "access_denied" in denied.json()["detail"]


async def test_logins_in_flight_are_deleted_after_a_day(database_url, nats_server, oidc_provider):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, select

    from identity.main import delete_old_logins
    from identity.models import OidcLogin

    app = create_app(settings(database_url, nats_server.url, oidc_provider))
    async with running_app(app) as idp:
        await at_provider(idp)  # a login started and never finished
        await at_provider(idp)
        async with app.state.runtime.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(OidcLogin)) == 2
            now = datetime.now(UTC)
            assert await delete_old_logins(session, now - timedelta(days=1)) == 0
            assert await delete_old_logins(session, now + timedelta(seconds=1)) == 2
            await session.commit()
