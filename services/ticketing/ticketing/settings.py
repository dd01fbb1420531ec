from pydantic_settings import SettingsConfigDict

from closedloop.config import ServiceSettings


class TicketingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETING_", extra="ignore")

    service_name: str = "ticketing"
    # The public ticket pages are limited per client IP (the only routes with a rate limit here).
    rate_limit_ip_per_minute: float = 120.0
    rate_limit_ip_burst: int = 30
    database_url: str = "sqlite+aiosqlite:///var/ticketing.db"
    # A YAML routing table; empty means the one shipped in ticketing/data/routing.yaml. It names the
    # teams and seeds the routing rules and scoring weights (edited over the API afterwards).
    routing_table_path: str = ""
    # How often the SLA timer looks for tickets to warn about or escalate.
    sla_timer_poll_seconds: float = 5.0
    sla_timer_batch_size: int = 100
    # At the first-response warning, give a ticket its agent has not answered to another available agent.
    reassign_on_first_response_warning: bool = False
    # New feedback of the same customer and category within this many hours joins their open ticket.
    duplicate_window_hours: float = 72.0
    # classify's duplicate link to another customer's open ticket: attach there (true) or open a linked ticket.
    attach_duplicates_across_customers: bool = False
    # How long a replica keeps the routing rules, scoring weights, auto-reply rules, SLA policies and open
    # incidents it read for new tickets (ticketing.config_cache); a change made through this replica counts at once.
    config_cache_seconds: float = 5.0
    # Base of the links customers get (public status page, CSAT).
    public_base_url: str = "http://127.0.0.1:8003"
