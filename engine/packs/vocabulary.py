"""The vocabulary of the engine–diagram contract, in one document for tools that edit packs.

What a diagram or a pack may say, as the engine checks it: lifecycle stages, task
assignees, recorded facts, declared roles and the elements that may carry them, the
variables every case holds, deadline tiers and units, and the sandbox's rules for
conditions and scripts. The studio builds its pickers and its inline help from it
(``GET /api/v1/packs/vocabulary``), so no list is written twice.
"""

from __future__ import annotations

from typing import Any

from govflow.engine.model.calendar import UNITS
from govflow.engine.model.lifecycle import CHINESE, OVERDUE_KINDS, RECORD_KINDS, Stage
from govflow.engine.model.limits import TIERS
from govflow.engine.model.responsibility import TIME_UNITS
from govflow.engine.workflow import sandbox
from govflow.engine.workflow.bpmn import ASSIGNEES, RESERVED_IDS
from govflow.engine.workflow.roles import (
    CASE_VARIABLES,
    REQUIRED_ROLES,
    ROLE_ELEMENTS,
    ROLES,
    ROUTING_VARIABLES,
    SINGLE_ROLES,
)


def vocabulary() -> dict[str, Any]:
    """Everything a pack editor needs to offer only what validation accepts."""
    return {
        "stages": [{"value": stage.value, "zh": CHINESE[stage.value]} for stage in Stage],
        "assignees": sorted(ASSIGNEES),
        "record_kinds": list(RECORD_KINDS),
        "overdue_kinds": list(OVERDUE_KINDS),
        "roles": [
            {
                "role": role,
                "on": list(ROLE_ELEMENTS[role]),
                "required": role in REQUIRED_ROLES,
                "single": role in SINGLE_ROLES,
            }
            for role in ROLES
        ],
        "case_variables": list(CASE_VARIABLES),
        "routing_variables": list(ROUTING_VARIABLES),
        "tiers": list(TIERS),
        "deadline_units": list(UNITS),
        "time_limit_units": list(TIME_UNITS),
        "timer_functions": ["due", "remind"],
        "reserved_ids": sorted(RESERVED_IDS),
        "sandbox": sandbox.rules(),
    }


__all__ = ["vocabulary"]
