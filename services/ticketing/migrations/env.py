from closedloop.migrations import run_alembic_env
from ticketing.models import Base
from ticketing.settings import TicketingSettings

run_alembic_env(Base.metadata, TicketingSettings().database_url)
