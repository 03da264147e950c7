"""deadlines.feature: tiers, working days, reminders and escalation (steps in conftest.py)."""

from __future__ import annotations

import pytest
from pytest_bdd import scenarios

scenarios("deadlines.feature")

pytestmark = pytest.mark.usefixtures("database", "notifications")
