from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from closedloop.config import DEV_API_KEY, ServiceSettings

DEMO_USERS = (
    "agent@example.com:agent:agent:Alex Agent",
    "lead@example.com:lead:lead:Lee Lead",
    "analyst@example.com:analyst:analyst:Ana Analyst",
    "admin@example.com:admin:admin:Ada Admin",
)


class ConsoleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore")

    service_name: str = "console"
    database_url: str = "sqlite+aiosqlite:///var/console.db"
    # The public HTTP APIs the console calls on the user's behalf (it never reads their databases).
    ingest_url: str = "http://127.0.0.1:8001"
    classify_url: str = "http://127.0.0.1:8002"
    ticketing_url: str = "http://127.0.0.1:8003"
    notify_url: str = "http://127.0.0.1:8004"
    insights_url: str = "http://127.0.0.1:8005"
    # Where people log in (POST {identity_url}/v1/auth/token returns a short-lived JWT, refreshed with
    # /v1/auth/refresh). Empty: the development stand-in below is used, which calls the services with
    # `service_api_key`.
    identity_url: str = ""
    # Refresh a person's token when it has less than this left (tokens live 15 minutes).
    token_refresh_margin_seconds: float = 120.0
    # Development stand-in for the identity service: `login:password:role:display name`, comma-separated.
    # Only used while identity_url is empty; never in production.
    demo_users: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEMO_USERS))
    service_api_key: str = DEV_API_KEY
    # Shown under the sign-in form, e.g. the demo accounts of a local run. Empty: the demo users above
    # when they are in use, else nothing.
    login_hint: str = ""
    session_hours: float = 12.0
    # Secure cookies need HTTPS; the local run is plain HTTP.
    cookie_secure: bool = False
    default_locale: str = "en"
    default_timezone: str = "UTC"
    # A ticket counts as "breaching soon" when its next SLA due time is within this many minutes.
    breaching_soon_minutes: int = 60
    upstream_timeout_seconds: float = 10.0

    @field_validator("demo_users", mode="before")
    @classmethod
    def _split_users(cls, value: object) -> object:
        if isinstance(value, str):
            return [user.strip() for user in value.split(",") if user.strip()]
        return value
