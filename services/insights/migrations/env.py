from closedloop.migrations import run_alembic_env
from insights.models import Base
from insights.settings import InsightsSettings

run_alembic_env(Base.metadata, InsightsSettings().database_url)
