from pydantic import Field
from pydantic_settings import SettingsConfigDict

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
