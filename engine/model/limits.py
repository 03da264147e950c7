"""Limits and vocabularies of what callers send, owned by the engine.

The engine checks every input against these; the API's schemas import them
(so the OpenAPI document states the same limits the engine enforces). One
definition each, used everywhere.
"""

from __future__ import annotations

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
