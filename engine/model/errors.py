"""The one error tree of govflow.

Every failure the engine reports is one of these classes; the API maps them to
RFC 9457 problem details in exactly one place (``govflow.api.problems``), keyed
on the base classes below. Each error carries the context a reader needs (case
id, task, pack file and line) in ``context``.

::

    GovflowError                      base of everything the engine raises on purpose
    ├── InvalidInput                  a caller sent something malformed or out of range (422)
    │   ├── FormValidationError       task form data does not match the task's form
    │   └── UnroutableInput           e.g. an unknown unit or matter code was named
    ├── NotFound                      no such case / task / pack (404); forged ids land here
    ├── Unauthenticated               no or unknown bearer token (401)
    ├── PermissionDenied              the principal may not do this here (403), with the reason
    ├── Conflict                      the state moved under the caller (409)
    │   ├── ConcurrentUpdate          optimistic lock lost: someone else wrote first
    │   ├── InvalidTransition         the case/task is not in a state that allows this
    │   └── IdempotencyMismatch       an Idempotency-Key reused with a different request
    ├── PackError                     a process pack is invalid (422 on deploy); carries issues
    └── EngineFault                   a diagram or plugin failed while running (500, case untouched)
        ├── PluginFailed              a plugin raised inside a hook; names the plugin and the hook
        └── DiagramFailed             diagram code failed during a command (409 naming the element;
            │                         an incident when a timer or worker ran it)
            └── LimitExceeded         diagram code hit a limit the pack cannot lift (size, steps,
                                      time, memory)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class GovflowError(Exception):
    """Base class: a failure govflow reports on purpose, with context."""

    title = "govflow error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:  # pragma: no cover - trivial
        if not self.context:
            return self.message
        ctx = ", ".join(f"{k}={v}" for k, v in self.context.items())
        return f"{self.message} ({ctx})"


class InvalidInput(GovflowError):
    """The caller sent something malformed or out of range."""

    title = "Invalid input"

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None, **context: Any):
        super().__init__(message, **context)
        self.errors = errors or []


class FormValidationError(InvalidInput):
    """Task form data does not match what the task expects."""

    title = "Task form data is invalid"


class UnroutableInput(InvalidInput):
    """An id named by the caller (unit, matter, street) does not exist in the pack."""

    title = "Unknown reference"


class NotFound(GovflowError):
    """No such case, task or pack version (or the id is malformed)."""

    title = "Not found"


class Unauthenticated(GovflowError):
    """No bearer token, or one that maps to no active principal."""

    title = "Authentication required"


class PermissionDenied(GovflowError):
    """The principal may not perform this action on this object; ``reason`` says why."""

    title = "Permission denied"


class Conflict(GovflowError):
    """The request conflicts with the current state."""

    title = "Conflict"


class ConcurrentUpdate(Conflict):
    """Optimistic locking: the case changed since it was read; nothing was written."""

    title = "Concurrent update"


class InvalidTransition(Conflict):
    """The case or task is not in a state that allows this action."""

    title = "Invalid transition"


class IdempotencyMismatch(Conflict):
    """An Idempotency-Key was reused with a different request body."""

    title = "Idempotency key reused"


@dataclass(frozen=True)
class PackIssue:
    """One thing wrong with a pack: where it is and what is wrong.

    ``pack`` names the base pack ("reference 1.0.0") when the file and line are the base's,
    not the validated pack's own (a pack that ``extends`` another inherits its files).
    """

    file: str
    message: str
    line: int | None = None
    element: str | None = None
    pack: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        if self.pack:
            where = f"{where} (base pack {self.pack})"
        elem = f" [{self.element}]" if self.element else ""
        return f"{where}{elem}: {self.message}"


class PackError(GovflowError):
    """A process pack (or one diagram) is invalid; ``issues`` lists every problem found."""

    title = "Invalid process pack"

    def __init__(self, message: str, issues: list[PackIssue] | None = None, **context: Any):
        super().__init__(message, **context)
        self.issues: list[PackIssue] = list(issues or [])

    def __str__(self) -> str:
        lines = [self.message] + [f"  {issue}" for issue in self.issues]
        return "\n".join(lines)


class EngineFault(GovflowError):
    """A diagram expression, script or plugin failed while running; the case was not changed."""

    title = "Engine fault"


class PluginFailed(EngineFault):
    """A plugin raised inside a hook; ``plugin`` and ``hook`` name it for the record.

    Raised by ``govflow.plugins`` around every hook call. Where the failure is
    isolated (dispatch: the case goes to the command centre; notifications: the
    change stays committed) the message lands on the record or in the log;
    elsewhere (a pack's calendar or service functions at compile time) it
    propagates like any engine fault. ``plugin`` is ``None`` when no
    implementation of the hook could be found in the traceback (e.g. pluggy
    itself refused the call).
    """

    title = "Plugin failed"

    def __init__(self, plugin: str | None, hook: str, exc: BaseException) -> None:
        who = f"plugin {plugin}" if plugin is not None else "a plugin"
        super().__init__(f"{who} failed in {hook}: {type(exc).__name__}: {exc}", plugin=plugin, hook=hook)
        self.plugin, self.hook = plugin, hook


class DiagramFailed(EngineFault):
    """Code of the diagram (an expression, a script, a service call) failed while a command ran it.

    ``element`` names the diagram element. Nothing was written: a user's command answers 409, a
    timer or worker run opens an incident on the case.
    """

    title = "Diagram failed"


class LimitExceeded(DiagramFailed):
    """Diagram code hit a limit no pack can lift: a too large result, the step, time or memory
    budget of one command."""

    title = "Diagram limit exceeded"
