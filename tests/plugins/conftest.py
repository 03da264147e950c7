"""Fixtures for plugin tests: the application's caches and the view hooks receive of the reference pack."""

from __future__ import annotations

import pytest

from govflow.engine.cache import Caches
from govflow.plugins import PackView


@pytest.fixture
def caches() -> Caches:
    return Caches()


@pytest.fixture
def reference_view(reference_pack, caches) -> PackView:
    return PackView.of(reference_pack, caches)
