"""Dependencies the identity routes share (SessionDep and RuntimeDep come from closedloop.api)."""

from typing import Annotated

from closedloop.api import app_state
from identity.publisher import CredentialPublisher
from identity.settings import IdentitySettings

SettingsDep = Annotated[IdentitySettings, app_state("settings")]
# Tells this process and the other services at once that keys changed.
PublisherDep = Annotated[CredentialPublisher, app_state("publisher")]
