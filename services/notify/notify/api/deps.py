"""Dependencies the notify routes share (SessionDep and RuntimeDep come from closedloop.api)."""

from typing import Annotated

from closedloop.api import app_state
from notify.settings import NotifySettings

SettingsDep = Annotated[NotifySettings, app_state("settings")]
