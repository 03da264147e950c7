"""Injected time.

Every part of govflow that asks "what time is it?" asks a :class:`Clock`.
Tests and the simulator use :class:`ManualClock` and move it ("when 11 minutes
pass"). SpiffWorkflow's timer module calls ``datetime.now(timezone.utc)``
directly and has no clock hook, so :func:`install_spiff_clock` replaces that
module's ``datetime`` with a subclass whose ``now()`` reads the clock bound to
the current context (see :func:`bound`). Outside a binding it is real time.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import threading
from collections.abc import Iterator
from typing import Protocol

UTC = _dt.timezone.utc


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> _dt.datetime: ...


class SystemClock:
    """Wall-clock time (UTC)."""

    def now(self) -> _dt.datetime:
        return _dt.datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; thread-safe."""

    def __init__(self, start: _dt.datetime | None = None) -> None:
        start = start or _dt.datetime(2026, 9, 28, 9, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> _dt.datetime:
        with self._lock:
            return self._now

    def advance(self, delta: _dt.timedelta) -> _dt.datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: _dt.datetime) -> None:
        with self._lock:
            self._now = when.astimezone(UTC)


_current: contextvars.ContextVar[Clock | None] = contextvars.ContextVar("govflow_clock", default=None)


@contextlib.contextmanager
def bound(clock: Clock) -> Iterator[None]:
    """Make ``clock`` the time source for Spiff timer evaluation inside the block."""
    token = _current.set(clock)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> Clock:
    """The clock bound to this context (system time when none is bound)."""
    return _current.get() or SystemClock()


class _ClockedDatetime(_dt.datetime):
    """A ``datetime`` whose ``now()`` follows the bound govflow clock."""

    @classmethod
    def now(cls, tz: _dt.tzinfo | None = None) -> _dt.datetime:  # type: ignore[override]
        clock = _current.get()
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


def to_utc(value: _dt.datetime) -> _dt.datetime:
    """Normalise a datetime to aware UTC (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: _dt.datetime) -> str:
    """ISO-8601 UTC with a trailing ``Z`` (string order is time order)."""
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
