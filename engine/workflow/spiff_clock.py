"""SpiffWorkflow's timers on govflow's injected clock.

SpiffWorkflow's timer module calls ``datetime.now(timezone.utc)`` directly and
has no clock hook, so :func:`install_spiff_clock` replaces that module's
``datetime`` with a subclass whose ``now()`` reads the clock bound to the
current context (:func:`govflow.engine.model.clock.bound`). Outside a binding
it is real time.
"""

from __future__ import annotations

import datetime as _dt

from govflow.engine.model.clock import bound_clock


class _ClockedDatetime(_dt.datetime):
    """A ``datetime`` whose ``now()`` follows the bound govflow clock."""

    @classmethod
    def now(cls, tz: _dt.tzinfo | None = None) -> _dt.datetime:  # type: ignore[override]
        clock = bound_clock()
        if clock is None:
            return _dt.datetime.now(tz)
        current = clock.now()
        return current.astimezone(tz) if tz is not None else current.astimezone().replace(tzinfo=None)


def install_spiff_clock() -> None:
    """Route SpiffWorkflow's timer ``datetime.now`` through the bound clock.

    Fails loudly if the module no longer has the shape this was written for
    (an upgrade of SpiffWorkflow must be looked at, not silently mis-timed).
    """
    from SpiffWorkflow.bpmn.specs.event_definitions import timer

    current = getattr(timer, "datetime", None)
    if current is _ClockedDatetime:
        return
    if current is not _dt.datetime:
        raise RuntimeError(
            "SpiffWorkflow's timer module no longer imports datetime.datetime as 'datetime'; "
            "the injected clock cannot be installed (check the SpiffWorkflow version)"
        )
    timer.datetime = _ClockedDatetime
