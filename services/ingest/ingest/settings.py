from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from closedloop.config import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    service_name: str = "ingest"
    database_url: str = "sqlite+aiosqlite:///var/ingest.db"
    max_text_chars: int = 10_000
    idempotency_key_max_length: int = 200
    # The same customer sending the same text again within this window is a duplicate, not a new item.
    duplicate_window_seconds: float = 24 * 3600
    # A customer is not invited to give feedback twice within this many days.
    invitation_cooldown_days: float = 30
    # Per-channel webhook secrets as JSON, e.g. INGEST_CHANNEL_SECRETS='{"email": "s3cret"}'. A channel with a
    # secret requires `Closedloop-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
    channel_secrets: dict[str, str] = Field(default_factory=dict)
    signature_tolerance_seconds: int = 300
    batch_max_items: int = 1000
    # Data rights: the services an erasure must complete in, and where the export asks the others.
    erasure_services: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["ingest", "classify", "ticketing", "notify"])
    classify_url: str = "http://127.0.0.1:8002"
    ticketing_url: str = "http://127.0.0.1:8003"
    notify_url: str = "http://127.0.0.1:8004"
    export_max_items: int = 5000
    # Retention in days (0 = forever): the unmasked original texts, and idempotency keys.
    original_text_retention_days: float = 90.0
    idempotency_key_retention_days: float = 7.0

    @field_validator("erasure_services", mode="before")
    @classmethod
    def _split_services(cls, value: object) -> object:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    def service_urls(self) -> dict[str, str]:
        return {"classify": self.classify_url, "ticketing": self.ticketing_url, "notify": self.notify_url}
