from closedloop.migrations import run_alembic_env
from identity.models import Base
from identity.settings import IdentitySettings

run_alembic_env(Base.metadata, IdentitySettings().database_url)
