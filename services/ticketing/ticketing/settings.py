from pydantic_settings import SettingsConfigDict

from closedloop.config import ServiceSettings


class TicketingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETING_", extra="ignore")

    service_name: str = "ticketing"
    database_url: str = "sqlite+aiosqlite:///var/ticketing.db"
    # A YAML routing table; empty means the one shipped in ticketing/data/routing.yaml.
    routing_table_path: str = ""
