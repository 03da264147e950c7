"""Limits and vocabularies of what callers send, owned by the engine.

The engine checks every input against these; the API's schemas import them
(so the OpenAPI document states the same limits the engine enforces). One
definition each, used everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

#: channels a report may arrive by (12345 hotline, WeChat, app, Weibo, grid worker, sensor, web, walk-in)
CHANNELS = ("hotline_12345", "wechat", "app", "weibo", "grid_worker", "sensor", "web", "walk_in")
#: channels only the engine itself uses (a campaign case opened from an early warning, 专项治理)
SYSTEM_CHANNELS = ("campaign",)
#: a report's description
DESCRIPTION_MAX = 4000
#: a report's location, in degrees (WGS 84)
LAT_MIN, LAT_MAX = -90, 90
LNG_MIN, LNG_MAX = -180, 180
#: reasons (withdrawal, call-out, delegation)
REASON_MAX = 1000
#: a cooperating department's part of a joint disposal (配合)
PART_MAX = 2000
#: a rating's comment
COMMENT_MAX = 1000
#: a call-out's meeting place
MEETING_PLACE_MAX = 256
#: departments called in one call-out
MAX_DEPARTMENTS = 10
#: the rating scale (评价)
SCORE_MIN, SCORE_MAX = 1, 5
#: the three tiers of matters: 马上办 (simple), 快速办 (complex), 限时办 (difficult)
TIERS = ("simple", "complex", "difficult")

# -- what no text may hold --------------------------------------------------------------------
#: characters refused in every text a caller sends: C0 controls but tab, line feed and carriage
#: return; DEL; C1 controls; lone surrogates (no database stores them the same way: PostgreSQL
#: refuses NUL in text, SQLite keeps it, neither encodes a lone surrogate)
FORBIDDEN_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: nesting levels of free-form data a caller sends (a task's form data)
DATA_DEPTH_MAX = 16
#: the largest integer magnitude in free-form data (what every JSON reader keeps exact)
INTEGER_MAX = 2**53
#: an Idempotency-Key (reports): 1-128 visible ASCII characters; the engine checks it for every
#: caller of ``CaseService.report``, the API's header declares the same bounds
IDEMPOTENCY_KEY_MAX = 128
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"


def forbidden_character(text: str) -> str | None:
    """Why ``text`` is refused (the first forbidden character and where), or None."""
    found = FORBIDDEN_CHARACTERS.search(text)
    if found is None:
        return None
    return f"control character U+{ord(found.group()):04X} at position {found.start()} is not allowed"


def data_errors(value: Any, loc: Sequence[str | int], depth: int = 0) -> list[dict[str, Any]]:
    """``{loc, msg}`` for each string holding a forbidden character, non-finite number, integer beyond
    :data:`INTEGER_MAX`, or nesting deeper than :data:`DATA_DEPTH_MAX`, in ``value`` (a string, a
    number, or lists and mappings of them)."""
    if isinstance(value, str):
        why = forbidden_character(value)
        return [] if why is None else [{"loc": list(loc), "msg": why}]
    if isinstance(value, float) and not math.isfinite(value):
        return [{"loc": list(loc), "msg": "numbers must be finite"}]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INTEGER_MAX:
        return [{"loc": list(loc), "msg": f"integers must lie within ±{INTEGER_MAX}"}]
    if isinstance(value, dict | list | tuple) and depth >= DATA_DEPTH_MAX:
        return [{"loc": list(loc), "msg": f"nested more than {DATA_DEPTH_MAX} levels deep"}]
    errors: list[dict[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and (why := forbidden_character(key)) is not None:
                errors.append({"loc": [*loc, key], "msg": f"key: {why}"})
            errors += data_errors(item, [*loc, key], depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            errors += data_errors(item, [*loc, index], depth + 1)
    return errors


def fields_errors(**fields: Any) -> list[dict[str, Any]]:
    """:func:`data_errors` of each named field (None fields are skipped)."""
    return [error for name, value in fields.items() if value is not None for error in data_errors(value, [name])]
