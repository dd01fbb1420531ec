"""Fixtures classify's test modules share (the real nats-server and databases come from the root conftest)."""

import pytest

from classify.main import shared_language_detector
from classify.ml.language import LanguageDetector
from classify.settings import ClassifySettings


@pytest.fixture(scope="module")
def languages() -> LanguageDetector:
    """The service's own detector, with the languages it is configured for (one copy per process)."""
    return shared_language_detector(ClassifySettings().languages)
