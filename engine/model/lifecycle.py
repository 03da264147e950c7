"""The case lifecycle vocabulary (DOMAIN.md, "The case lifecycle").

The public board shows every case in one of these stages, in this order:
reported 上报 → dispatched 分发 → signed 签收 → handling 处置 → called 呼叫 →
consulting 协商 → completed 办结 → reviewed 审核 → evaluated 评价.
``withdrawn`` (撤回) is the terminal stage of a case its reporter withdrew.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    REPORTED = "reported"
    DISPATCHED = "dispatched"
    SIGNED = "signed"
    HANDLING = "handling"
    CALLED = "called"
    CONSULTING = "consulting"
    COMPLETED = "completed"
    REVIEWED = "reviewed"
    EVALUATED = "evaluated"
    WITHDRAWN = "withdrawn"


#: Board order of the stages; a case with several open tasks shows the furthest one.
ORDER: dict[str, int] = {stage.value: index for index, stage in enumerate(Stage)}

CHINESE: dict[str, str] = {
    "reported": "上报",
    "dispatched": "分发",
    "signed": "签收",
    "handling": "处置",
    "called": "呼叫",
    "consulting": "协商",
    "completed": "办结",
    "reviewed": "审核",
    "evaluated": "评价",
    "withdrawn": "撤回",
}


def furthest(stages: list[str]) -> str | None:
    """The stage furthest along the board among ``stages`` (None if empty)."""
    return max(stages, key=ORDER.__getitem__) if stages else None


#: Facts a diagram element may put on the record when it completes (its ``record`` property).
RECORD_KINDS = (
    "deadline.reminder",  # a step's deadline is near (提醒)
    "deadline.overdue",  # a step is overdue; escalated (超时)
    "deadline.escalated",  # supervision itself is overdue; escalated further (升级)
    "callout.no_response",  # a called department did not report in by its deadline (未报到)
    "callout.rejected",  # a called department rejected the call (拒绝)
    "callout.upheld",  # the command centre upheld a disputed call: the departments report in again
    "evaluation.expired",  # the citizen did not evaluate in time (a return visit follows in the reference)
    "case.reopened",  # a return visit found the problem unsolved: the case goes back to handling (重办)
)
#: Recorded facts that make a case overdue (others, like a rejected call, only notify upward).
#: The boundary timers recording them are also what gives an open task its due time.
OVERDUE_KINDS = ("deadline.overdue", "deadline.escalated", "callout.no_response")
#: Recorded facts whose boundary timers give an open task its due time (``due_at``): the overdue
#: ones, and the end of a window that closes the step without making the case overdue.
DEADLINE_KINDS = (*OVERDUE_KINDS, "evaluation.expired")
