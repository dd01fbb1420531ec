"""OpenID Connect login against an existing identity provider (Keycloak, Entra ID, Okta, ...).

Authorization-code flow with PKCE (S256), `state` against CSRF and `nonce` against replay; the
provider's endpoints come from its discovery document and the id_token is verified with its JWKS
(signature, issuer, audience, expiry, nonce). The person's role comes from a claim
(`IDENTITY_OIDC_ROLE_CLAIM`, Keycloak's realm roles by default) through `IDENTITY_OIDC_ROLE_MAP`;
someone with no mapped role is refused. Identity then issues its own token, as for a local account,
so the services need to know nothing about the provider.
"""

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from closedloop.errors import ProblemError
from identity.settings import IdentitySettings

ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
# The most powerful mapped role wins when a person has several.
ROLE_ORDER = ("admin", "lead", "agent", "analyst")
_CACHE_SECONDS = 3600
_cache: dict[str, tuple[float, Any]] = {}


class OidcError(ProblemError):
    def __init__(self, status: int, detail: str, slug: str = "oidc-login-failed") -> None:
        super().__init__(status, "OpenID Connect login failed" if status != 404 else "Not Found", detail, slug=slug)


def enabled(settings: IdentitySettings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_uri)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def _get_json(settings: IdentitySettings, url: str, cached: bool = True) -> Any:
    hit = _cache.get(url)
    if cached and hit and hit[0] > time.monotonic():
        return hit[1]
    try:
        async with httpx.AsyncClient(timeout=settings.oidc_http_timeout_seconds) as client:
            response = await client.get(url)
            response.raise_for_status()
            document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcError(502, f"The identity provider did not answer {url}: {exc}", "oidc-provider-unavailable") \
            from exc
    _cache[url] = (time.monotonic() + _CACHE_SECONDS, document)
    return document


async def discovery(settings: IdentitySettings) -> dict[str, Any]:
    document = await _get_json(settings, settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration")
    if document.get("issuer") != settings.oidc_issuer:
        raise OidcError(502, "The provider's discovery document names another issuer.")
    return document


async def authorization_url(settings: IdentitySettings, state: str, nonce: str, challenge: str) -> str:
    config = await discovery(settings)
    query = {"response_type": "code", "client_id": settings.oidc_client_id,
             "redirect_uri": settings.oidc_redirect_uri, "scope": settings.oidc_scopes, "state": state,
             "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"}
    return f"{config['authorization_endpoint']}?{urlencode(query)}"


async def exchange_code(settings: IdentitySettings, code: str, verifier: str) -> str:
    """Trade the authorization code (and the PKCE verifier) for the id_token."""
    config = await discovery(settings)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": settings.oidc_redirect_uri,
            "client_id": settings.oidc_client_id, "code_verifier": verifier}
    # No secret: a public client, no client authentication (this client has no default auth).
    auth = ((settings.oidc_client_id, settings.oidc_client_secret) if settings.oidc_client_secret
            else httpx.USE_CLIENT_DEFAULT)
    try:
        async with httpx.AsyncClient(timeout=settings.oidc_http_timeout_seconds) as client:
            response = await client.post(config["token_endpoint"], data=form, auth=auth)
    except httpx.HTTPError as exc:
        raise OidcError(502, f"The identity provider's token endpoint did not answer: {exc}",
                        "oidc-provider-unavailable") from exc
    if response.status_code != 200:
        raise OidcError(401, f"The identity provider refused the code ({response.status_code}).")
    id_token = response.json().get("id_token")
    if not isinstance(id_token, str):
        raise OidcError(502, "The identity provider's answer has no id_token.")
    return id_token


async def verify_id_token(settings: IdentitySettings, id_token: str, nonce: str) -> dict[str, Any]:
    config = await discovery(settings)
    try:
        kid = jwt.get_unverified_header(id_token).get("kid")
        key = None
        for cached in (True, False):  # a kid we do not know yet: the provider rotated, fetch again once
            jwks = jwt.PyJWKSet.from_dict(await _get_json(settings, config["jwks_uri"], cached=cached))
            key = next((k for k in jwks.keys if k.key_id == kid or kid is None), None)
            if key is not None:
                break
        if key is None:
            raise OidcError(401, "The id_token is signed with a key the provider does not publish.")
        claims = jwt.decode(id_token, key.key, algorithms=ID_TOKEN_ALGORITHMS, audience=settings.oidc_client_id,
                            issuer=settings.oidc_issuer, leeway=settings.token_leeway_seconds,
                            options={"require": ["exp", "iat", "sub", "aud", "iss"]})
    except jwt.PyJWTError as exc:
        raise OidcError(401, f"The id_token is not valid: {exc}") from exc
    if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise OidcError(401, "The id_token's nonce does not match this login.")
    # OpenID Connect Core 3.1.3.7: with several audiences, the token must be issued to us (azp).
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != settings.oidc_client_id:
        raise OidcError(401, "The id_token has several audiences and its azp is not this client.")
    return claims


def claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def map_role(settings: IdentitySettings, claims: dict[str, Any]) -> str:
    raw = claim(claims, settings.oidc_role_claim)
    names = [raw] if isinstance(raw, str) else [str(r) for r in raw] if isinstance(raw, list) else []
    mapped = {settings.oidc_role_map[name] for name in names if name in settings.oidc_role_map}
    for role in ROLE_ORDER:
        if role in mapped:
            return role
    raise OidcError(403, f"No Closedloop role in the claim '{settings.oidc_role_claim}' "
                         f"(mapped: {', '.join(sorted(settings.oidc_role_map))}).", "no-role")
