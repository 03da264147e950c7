"""Injected time.

Every part of govflow that asks "what time is it?" asks a :class:`Clock`.
Tests and the simulator use :class:`ManualClock` and move it ("when 11 minutes
pass"). Code that cannot be handed a clock (SpiffWorkflow's timer module)
reads the clock bound to the current context (:func:`bound`, :func:`bound_clock`);
:mod:`govflow.engine.workflow.spiff_clock` installs that bridge. Outside a
binding it is real time.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import threading
from collections.abc import Iterator
from typing import Protocol

UTC = _dt.UTC


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


def bound_clock() -> Clock | None:
    """The clock bound to this context, or None outside :func:`bound`."""
    return _current.get()


def current() -> Clock:
    """The clock bound to this context (system time when none is bound)."""
    return _current.get() or SystemClock()


def to_utc(value: _dt.datetime) -> _dt.datetime:
    """Normalise a datetime to aware UTC (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: _dt.datetime) -> str:
    """ISO-8601 UTC with a trailing ``Z`` (string order is time order)."""
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
