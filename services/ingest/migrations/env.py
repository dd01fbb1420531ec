from closedloop.migrations import run_alembic_env
from ingest.models import Base
from ingest.settings import IngestSettings

run_alembic_env(Base.metadata, IngestSettings().database_url)
