from closedloop.migrations import run_alembic_env
from notify.models import Base
from notify.settings import NotifySettings

run_alembic_env(Base.metadata, NotifySettings().database_url)
