"""Dependencies the ingest routes share (SessionDep and RuntimeDep come from closedloop.api)."""

from typing import Annotated

from closedloop.api import app_state
from ingest.settings import IngestSettings

SettingsDep = Annotated[IngestSettings, app_state("settings")]
