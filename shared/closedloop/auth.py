"""Who is calling, and may they do this? One model for every service (ADR 0003).

Two kinds of principal reach a service:
- machines with an API key (`X-API-Key: <key>` or `Authorization: Bearer <key>`), each key with scopes
  and optionally an allow-list of channels;
- people with a short-lived signed token from the identity service (`Authorization: Bearer <jwt>`),
  carrying their user id and role; the role maps to scopes here, so every service agrees on it.

Every route declares what it needs, and the declaration is written into the OpenAPI document
(`x-required-permission`) so a test can check that none was forgotten:

    @router.get("/tickets/{id}")
    async def show(principal: Annotated[Principal, Depends(require("tickets:read"))]): ...

    @router.get("/public/tickets/{token}", dependencies=[Depends(public("the token is the secret"))])

Verification is offline: API-key hashes and the token signing keys come from the identity service
through a JetStream key-value bucket that `closedloop.credentials` keeps in memory.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from closedloop.errors import ProblemError

SCOPES: dict[str, str] = {
    "feedback:write": "Send feedback (partners, apps, channel hooks).",
    "feedback:read": "Read feedback, its progress and classifications.",
    "tickets:read": "Read tickets, teams, agents, rules and deliveries.",
    "tickets:write": "Work tickets: status, assignment, replies, merges.",
    "reports:read": "Reports, topics, alerts and model metrics.",
    "config:write": "Routing rules, SLA policies, taxonomy, notification settings, webhooks.",
    "models:write": "Training examples and classifier models.",
    "customers:write": "Customer profiles and data rights (erasure, export).",
    "metrics:read": "Prometheus metrics (`GET /metrics`): the scrape key's only permission.",
    "admin": "Everything, including API keys, users and dead letters.",
}
ADMIN = "admin"
METRICS_READ = "metrics:read"

_AGENT = frozenset({"feedback:read", "tickets:read", "tickets:write", "reports:read"})
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "agent": _AGENT,
    "lead": _AGENT | {"config:write", "models:write"},
    "analyst": frozenset({"reports:read", "tickets:read", "feedback:read"}),
    "admin": frozenset({ADMIN}),
}
ROLES = tuple(ROLE_SCOPES)

# Marker values of `x-required-permission` besides the scopes.
PUBLIC = "public"
AUTHENTICATED = "authenticated"


@dataclass(frozen=True)
class Principal:
    kind: Literal["api_key", "user"]
    id: str
    name: str
    scopes: frozenset[str]
    role: str | None = None
    # None: every channel. A set: an API key that may only send feedback on these channels.
    allowed_channels: frozenset[str] | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def actor(self) -> str:
        """How the audit log names this principal: `user:<id>` or `api_key:<id>`."""
        return f"{self.kind}:{self.id}"

    def has(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes

    def may_use_channel(self, channel: str) -> bool:
        return self.allowed_channels is None or channel in self.allowed_channels

    def ensure_channel(self, channel: str, field_name: str = "body.channel") -> None:
        """403 when an API key restricted to some channels sends on another one."""
        if not self.may_use_channel(channel):
            from closedloop.errors import FieldError

            allowed = ", ".join(sorted(self.allowed_channels or ())) or "none"
            raise ProblemError(403, "Forbidden", f"This API key may not send on channel '{channel}' "
                               f"(allowed: {allowed}).", slug="channel-not-allowed",
                               errors=[FieldError(field=field_name, message=f"channel '{channel}' not allowed")])


def scopes_for_role(role: str) -> frozenset[str]:
    return ROLE_SCOPES.get(role, frozenset())


# --- getting the principal of a request --------------------------------------------------------

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey",
                               description="An API key (machines).")
_bearer = HTTPBearer(auto_error=False, scheme_name="Bearer",
                     description="A person's signed token from the identity service (`POST /v1/auth/token` "
                                 "there), or an API key.")

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer, ApiKey realm="closedloop"'}


def _credential(request: Request) -> str | None:
    api_key = request.headers.get("x-api-key")
    if api_key:
        return api_key.strip()
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def current_principal(request: Request) -> Principal:
    """The authenticated caller, or 401. Worked out once per request whatever asks for it."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    credential = _credential(request)
    if not credential:
        raise ProblemError(401, "Unauthorized", "Send an API key in X-API-Key, or a token as "
                           "'Authorization: Bearer <token>'.", slug="missing-credentials",
                           headers=_UNAUTHORIZED_HEADERS)
    authenticator = request.app.state.authenticator
    principal: Principal | None = authenticator.authenticate(credential)
    if principal is None:
        raise ProblemError(401, "Unauthorized", "The API key or token is not valid (unknown, revoked or expired).",
                           slug="invalid-credentials", headers=_UNAUTHORIZED_HEADERS)
    request.state.principal = principal
    return principal


def forbidden(principal: Principal, scope: str) -> ProblemError:
    who = f"the {'API key' if principal.kind == 'api_key' else 'user'} '{principal.name}'"
    has = ", ".join(sorted(principal.scopes)) or "no permission"
    return ProblemError(403, "Forbidden", f"This needs the permission '{scope}'; {who} has {has}.",
                        slug="missing-permission")


PermissionDependency = Callable[..., Awaitable[Principal]]


def require(scope: str) -> PermissionDependency:
    """A dependency that answers 401 without credentials and 403 without `scope`, and gives the Principal.

    The security schemes carry the scope so it shows in the OpenAPI document too."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")

    async def dependency(
        request: Request,
        _key: Annotated[str | None, Security(_api_key_header, scopes=[scope])] = None,
        _bearer_token: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer, scopes=[scope])] = None,
    ) -> Principal:
        principal = await current_principal(request)
        if not principal.has(scope):
            raise forbidden(principal, scope)
        return principal

    dependency.required_permission = scope  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


def authenticated() -> PermissionDependency:
    """Any authenticated principal (e.g. "who am I?")."""

    async def dependency(
        request: Request,
        _key: Annotated[str | None, Security(_api_key_header)] = None,
        _bearer_token: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    ) -> Principal:
        return await current_principal(request)

    dependency.required_permission = AUTHENTICATED  # type: ignore[attr-defined]
    return dependency


def public(reason: str) -> Callable[[], Awaitable[None]]:
    """Marks a route as public on purpose (health, the customer's token pages, login). `reason` says why."""

    async def dependency() -> None:
        return None

    dependency.required_permission = PUBLIC  # type: ignore[attr-defined]
    dependency.public_reason = reason  # type: ignore[attr-defined]
    return dependency


async def authenticated_baseline(request: Request) -> None:
    """Router-level guard of every `/v1` JSON router: nothing there is reachable without credentials,
    even a route that forgot its `require(...)` (the OpenAPI test catches that one)."""
    await current_principal(request)


# Kept for code written before principals: any valid credential, answered with the principal's id.
async def require_api_key(request: Request) -> str:
    return (await current_principal(request)).id


ApiKeyDep = Annotated[str, Depends(require_api_key)]


def declared_permission(route: object) -> str | None:
    """The permission a route declared through `require`/`authenticated`/`public` (None if it did not)."""
    dependant = getattr(route, "dependant", None)
    stack = [dependant] if dependant is not None else []
    while stack:
        current = stack.pop()
        permission: str | None = getattr(current.call, "required_permission", None)
        if permission:
            return permission
        stack.extend(current.dependencies)
    return None


def needs(scope: str) -> list[Any]:
    """`dependencies=needs("config:write")`: the route needs `scope` but not the Principal itself."""
    return [Depends(require(scope))]
