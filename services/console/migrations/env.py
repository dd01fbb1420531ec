from closedloop.migrations import run_alembic_env
from console.models import Base
from console.settings import ConsoleSettings

run_alembic_env(Base.metadata, ConsoleSettings().database_url)
