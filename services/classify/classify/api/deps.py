"""Dependencies the classify routes share (SessionDep and RuntimeDep come from closedloop.api): what
`main.py` built at start-up."""

from typing import Annotated

from classify.ml.engine import ClassificationEngine
from classify.registry import EngineSync
from classify.settings import ClassifySettings
from classify.training_runs import TrainingWorker
from closedloop.api import app_state

SettingsDep = Annotated[ClassifySettings, app_state("settings")]
EngineDep = Annotated[ClassificationEngine, app_state("engine")]
# Refreshes the engine right after this process changed the taxonomy, the model or the config.
SyncDep = Annotated[EngineSync, app_state("sync")]
TrainerDep = Annotated[TrainingWorker, app_state("trainer")]
