from classify.models import Base
from classify.settings import ClassifySettings
from closedloop.migrations import run_alembic_env

run_alembic_env(Base.metadata, ClassifySettings().database_url)
