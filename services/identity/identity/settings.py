from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from closedloop.config import ServiceSettings


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    service_name: str = "identity"
    # Logins are limited per client IP (the only routes with a rate limit here).
    rate_limit_ip_per_minute: float = 30.0
    rate_limit_ip_burst: int = 20
    database_url: str = "sqlite+aiosqlite:///var/identity.db"

    # People's tokens: short-lived, EdDSA-signed; the signing key is replaced every
    # `signing_key_rotate_hours` and its public half stays published until no token it signed can be valid.
    token_ttl_seconds: int = 900
    # A token can be refreshed (POST /v1/auth/refresh) until this long after the password or OIDC login.
    session_max_seconds: int = 12 * 3600
    signing_key_rotate_hours: float = 24.0
    # How often the API-key and signing-key documents are written to the IDENTITY bucket even without a
    # change (they are also written right after every change); repairs a write lost while NATS was down.
    publish_interval_seconds: float = 10.0

    # Demo accounts agent/lead/analyst/admin with the passwords printed by `make run` (development only).
    seed_demo_users: bool = False
    # First admin of a production installation: created when no user exists yet.
    bootstrap_admin_username: str = ""
    bootstrap_admin_password: str = ""

    # OpenID Connect login against an existing identity provider (e.g. Keycloak): off while issuer is empty.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    # Where the IdP sends the browser back: this service's /v1/auth/oidc/callback as reached from outside.
    oidc_redirect_uri: str = ""
    oidc_scopes: str = "openid profile email"
    # Dotted path of the claim holding the user's roles (Keycloak: realm_access.roles), and how IdP role
    # names map to ours; the most powerful mapped role wins, a user with none is refused.
    oidc_role_claim: str = "realm_access.roles"
    oidc_role_map: dict[str, str] = Field(default_factory=lambda: {
        "closedloop-admin": "admin", "closedloop-lead": "lead", "closedloop-agent": "agent",
        "closedloop-analyst": "analyst"})
    # After the callback the browser goes to one of these (the console), with a one-time login code.
    oidc_allowed_return_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    oidc_http_timeout_seconds: float = 10.0

    @field_validator("oidc_allowed_return_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
