from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from closedloop.config import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    service_name: str = "notify"
    database_url: str = "sqlite+aiosqlite:///var/notify.db"
    # Webhook endpoints created at start-up if missing (comma-separated URLs), e.g. for the demo.
    seed_webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_timeout_seconds: float = 10.0
    webhook_max_attempts: int = 6
    webhook_backoff_base_seconds: float = 2.0
    webhook_backoff_max_seconds: float = 600.0
    dispatch_poll_seconds: float = 0.5
    dispatch_concurrency: int = 8

    @field_validator("seed_webhook_urls", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value
