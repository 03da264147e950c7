"""The plugin contract of govflow: every hook, in one module.

A district plugin is an ordinary Python package exposing an entry point in the
``govflow`` group; it implements some of these hooks with
``from govflow.plugins import hookimpl``. govflow's own behaviour (dispatch,
the working-day calendar) ships as plugins registered exactly the same way
(see ``builtin/``).

Hooks marked *first result wins* stop at the first implementation that returns
something other than ``None``; later-registered plugins are asked first, so a
district plugin overrides a built-in by answering, and defers by returning None.
Every call goes through pluggy's own hook caller, so ``tryfirst``/``trylast``
and hook wrappers (``@hookimpl(wrapper=True)``, and old-style
``hookwrapper=True``) work as pluggy documents.

Which plugins act for a pack (``govflow.plugins.PackPlugins``): the built-ins
act for every pack unless its ``pack.yaml`` lists them under
``disabled_plugins``; a district's own plugins (entry points) act only for packs
that list them under ``plugins``. This holds for every hook, the calendar
included.

The pack a hook receives is a :class:`govflow.plugins.PackView`: the pack's
``name``, ``version``, ``district``, ``catalog``, read-only ``settings`` and
``territory``, ``decide(decision, inputs)`` for its DMN decisions, and
``cache(name, build)`` to keep what the plugin derives from the pack version
(plugins keep no module-level caches). Never the compiled pack itself.

A plugin that raises is named: the error becomes
:class:`govflow.engine.model.errors.PluginFailed` with the plugin and the hook.
While a case is being dispatched this does not fail the report: the case goes
to the command centre and the record names the plugin and its error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from govflow.engine.cases.history import CaseHistory
    from govflow.engine.model.dispatch import Report
    from govflow.plugins.view import PackView

PROJECT = "govflow"
hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec(firstresult=True)
def govflow_classify(pack: PackView, report: Report, history: CaseHistory | None) -> tuple[str, str] | None:
    """Decide the matter (事项) of a new case.

    Called once per report that needs dispatching, first of the three dispatch
    hooks. ``history`` gives the district's past cases
    (``history.past_cases(pack.district)``) for matching against them; it may
    be ``None`` (e.g. offline evaluation). Return ``(matter_code, how)`` where
    ``how`` says on the record how it was decided (e.g. ``"keywords: 井盖"``),
    or ``None`` to let the next plugin decide. When no plugin decides, or the
    answer is not a matter of ``pack.catalog``, the case has no matter and goes
    to the command centre. *First result wins.*
    """


@hookspec(firstresult=True)
def govflow_locate(pack: PackView, report: Report) -> str | None:
    """Decide the street (街镇) whose territory the case lies in.

    Called once per report that needs dispatching, after classify. Return a
    street unit code of ``pack.catalog`` or ``None`` (not locatable; an unknown
    code counts as ``None``). *First result wins.*
    """


@hookspec(firstresult=True)
def govflow_route(pack: PackView, report: Report, matter: str | None, street: str | None) -> str | None:
    """Decide the owner unit of a case from its matter and street (属地兜底).

    Called once per report that needs dispatching, after locate, with what
    classify and locate decided (either may be ``None``). Return a unit code of
    ``pack.catalog``, or ``None`` to send the case to the command centre for
    dispatch by a person. The record names the plugin that answered when the
    owner is not the street itself. *First result wins.*
    """


@hookspec
def govflow_case_events(events: list[dict[str, Any]]) -> None:
    """Hear of events just committed to a case's record (notifications).

    Called after the transaction that appended them committed, with the events
    of the cases whose pack the plugin acts for; every plugin is called and
    results are ignored. An exception is logged with the plugin's name and does
    not undo the change.
    """


@hookspec
def govflow_warnings(warnings: list[dict[str, Any]]) -> None:
    """Hear of early warnings (预警) just recorded for a district (``govflow warnings scan``).

    Each warning has ``id``, ``district``, ``kind`` (burst, rising, repeat),
    ``unit``, ``matter``, ``place`` and its ``evidence`` (counts, baseline,
    probability, related case ids — never personal data). Called for the plugins
    acting for the district's active pack; every plugin is called, results are
    ignored, an exception is logged and undoes nothing.
    """


@hookspec
def govflow_service_functions() -> dict[str, Any]:
    """Python functions BPMN service tasks may call by name (the safe alternative to scripts).

    Called once when a pack version is compiled, for the plugins acting for
    that pack. Return ``{name: callable}``; the results of all plugins are
    merged (every plugin is called).
    """


@hookspec(firstresult=True)
def govflow_calendar(district: str, settings: dict[str, Any]) -> Any | None:
    """The working-day calendar of a district (for deadlines in working hours/days).

    Called once when a pack version is compiled — before the pack exists, so
    with its district code and a copy of its manifest ``settings`` rather than a
    view — and only for the plugins acting for that pack. Return an object with
    ``is_workday(day: datetime.date) -> bool``
    (``govflow.engine.model.calendar.WorkCalendar``), or ``None`` to defer;
    Monday–Friday when nothing answers. The built-in ``calendar`` plugin
    (``trylast``) answers with China's statutory holidays and adjusted working
    days (chinese-calendar) plus the pack's ``settings.closures`` (local
    non-working dates) and ``settings.extra_workdays``. *First result wins.*
    """


@hookspec
def govflow_outbox_sinks() -> list[Any] | None:
    """Sinks that take every committed event from the outbox (a message broker, an archive).

    Called once when a delivery worker starts (``govflow worker``, ``govflow serve``):
    every plugin is called and the lists are joined. A sink is an object with ``name`` (unique and
    stable: its position in the outbox is kept under it; never starting with ``webhook:``),
    ``condition()`` (a SQLAlchemy condition on ``feed_events`` or ``None`` for every event),
    ``wants(kind) -> bool`` and ``deliver(event) -> int | None``, which hands one event (its
    public form: no personal data) over or raises
    ``govflow.engine.integrations.delivery.DeliveryFailed``. The worker gives it the events in
    per-case order, at least once, retries with back-off and parks what keeps failing as dead
    letters (``govflow outbox replay``). Return ``[]`` or ``None`` when not configured.
    """
