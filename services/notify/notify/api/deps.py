"""Dependencies the notify routes share (SessionDep and RuntimeDep come from closedloop.api)."""

from typing import Annotated

from closedloop.api import app_state
from closedloop.secretbox import Keyring
from notify.settings import NotifySettings

SettingsDep = Annotated[NotifySettings, app_state("settings")]
# Seals webhook secrets and Slack hook URLs before they are stored (notify.sealed).
KeyringDep = Annotated[Keyring, app_state("keyring")]
