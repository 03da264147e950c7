"""Firing due timers from the database.

A case's earliest pending timer is kept in ``cases.next_due``. :func:`fire_due`
picks cases whose ``next_due`` has passed, in batches, and runs the command
path for each with no input (``CaseService.tick``). Because every write goes
through the optimistic-lock version, two workers that pick the same case cannot
both apply it: the loser gets ``ConcurrentUpdate`` and moves on.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import select

from .cases import CaseService
from .db import CaseRow
from .errors import ConcurrentUpdate, GovflowError

log = logging.getLogger("govflow.timers")


@dataclass
class TickReport:
    due: int = 0
    fired: int = 0
    conflicts: int = 0
    failed: int = 0


def due_case_ids(service: CaseService, limit: int) -> list:
    now = service.clock.now()
    query = select(CaseRow.id).where(CaseRow.next_due <= now).order_by(CaseRow.next_due).limit(limit)
    with service.db.connect() as conn:
        return list(conn.execute(query).scalars())


def fire_due(service: CaseService, *, batch: int = 200) -> TickReport:
    report = TickReport()
    ids = due_case_ids(service, batch)
    report.due = len(ids)
    for case_id in ids:
        try:
            if service.tick(case_id) is not None:
                report.fired += 1
        except ConcurrentUpdate:
            report.conflicts += 1
        except GovflowError:
            report.failed += 1
            log.exception("timer of case %s failed", case_id)
    return report


class TimerLoop(threading.Thread):
    """The in-process timer loop of ``govflow serve``."""

    def __init__(self, service: CaseService, interval: float) -> None:
        super().__init__(name="govflow-timers", daemon=True)
        self.service, self.interval = service, interval
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                fire_due(self.service)
            except Exception:  # keep the loop alive; the next tick retries
                log.exception("timer loop tick failed")

    def stop(self) -> None:
        self._stop.set()
