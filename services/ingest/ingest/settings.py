from pydantic_settings import SettingsConfigDict

from closedloop.config import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    service_name: str = "ingest"
    database_url: str = "sqlite+aiosqlite:///var/ingest.db"
    max_text_chars: int = 10_000
    idempotency_key_max_length: int = 200
