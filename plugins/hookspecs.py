"""The plugin contract of govflow: every hook, in one module.

A district plugin is an ordinary Python package exposing an entry point in the
``govflow`` group; it implements some of these hooks with
``from govflow.plugins import hookimpl``. govflow's own behaviour (dispatch)
ships as plugins registered exactly the same way (see ``builtin/``).

Hooks marked *first result wins* stop at the first implementation that returns
something other than ``None``; later-registered plugins are asked first, so a
district plugin overrides a built-in by answering, and defers by returning None.

Which plugins act for a pack (``govflow.bootstrap.PackPlugins``): the built-ins
act for every pack unless its ``pack.yaml`` lists them under
``disabled_plugins``; a district's own plugins (entry points) act only for packs
that list them under ``plugins``. A plugin that raises while a case is being
dispatched does not fail the report: the case goes to the command centre and the
record names the plugin and its error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from govflow.engine.cases.history import CaseHistory
    from govflow.engine.model.dispatch import Report
    from govflow.engine.packs.loader import LoadedPack

PROJECT = "govflow"
hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec(firstresult=True)
def govflow_classify(pack: LoadedPack, report: Report, history: CaseHistory | None) -> tuple[str, str] | None:
    """Decide the matter (事项) of a new case.

    Called once per report that needs dispatching. ``history`` gives the
    district's past cases (``history.past_cases(district)``) for matching
    against them; it may be ``None`` (e.g. offline evaluation). Return ``(matter_code, how)``
    where ``how`` says on the record how it was decided (e.g. ``"keywords: 井盖"``),
    or ``None`` to let the next plugin decide. When no plugin decides, the case has
    no matter and goes to the command centre. *First result wins.*
    """


@hookspec(firstresult=True)
def govflow_locate(pack: LoadedPack, report: Report) -> str | None:
    """Decide the street (街镇) whose territory the case lies in.

    Return a street unit code of ``pack.catalog`` or ``None`` (not locatable).
    *First result wins.*
    """


@hookspec(firstresult=True)
def govflow_route(pack: LoadedPack, report: Report, matter: str | None, street: str | None) -> str | None:
    """Decide the owner unit of a case from its matter and street (属地兜底).

    Return a unit code, or ``None`` to send the case to the command centre for
    dispatch by a person. *First result wins.*
    """


@hookspec
def govflow_case_events(events: list[dict[str, Any]]) -> None:
    """Hear of events just committed to a case's record (notifications).

    Called after the transaction that appended them committed; every plugin is
    called. An exception is logged and does not undo the change.
    """


@hookspec
def govflow_service_functions() -> dict[str, Any]:
    """Python functions BPMN service tasks may call by name (the safe alternative to scripts).

    Return ``{name: callable}``; results from all plugins are merged.
    """


@hookspec(firstresult=True)
def govflow_calendar(district: str, settings: dict[str, Any]) -> Any | None:
    """The working-day calendar of a district (for deadlines in working hours/days).

    Called once when a pack version is compiled, with the pack's district code
    and its manifest ``settings``. Return an object with
    ``is_workday(day: datetime.date) -> bool`` (``govflow.engine.model.calendar.WorkCalendar``),
    or ``None`` to defer. The built-in ``calendar`` plugin answers with China's
    statutory holidays and adjusted working days (chinese-calendar) plus the
    pack's ``settings.closures`` (local non-working dates) and
    ``settings.extra_workdays``. *First result wins.*
    """
