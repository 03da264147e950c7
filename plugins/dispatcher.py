"""The engine's dispatcher and notifier, answered by the hooks of the plugins acting for each pack.

Both isolate plugin failures: a dispatch plugin that raises sends the case to
the command centre with the plugin and its error on the record; a notifier
that raises is logged by name and never undoes the committed change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from govflow.engine.cache import Caches
from govflow.engine.model.dispatch import Classification, Location, Report, Routing
from govflow.engine.model.errors import PluginFailed

from .selection import PackPlugins, call_hook
from .view import PackView

if TYPE_CHECKING:
    from govflow.engine.packs.loader import LoadedPack, Manifest

log = logging.getLogger("govflow.plugins")

Event = dict[str, Any]


class PluginDispatcher:
    """The engine's Dispatcher: the classify, locate and route hooks of the pack's plugins.

    Every hook receives the pack's :class:`~govflow.plugins.view.PackView`
    (built once per pack version in ``caches``). A plugin that raises does not
    fail the report: the case goes to the command centre for dispatch by a
    person, and the routing's ``how`` (recorded on the case's
    ``case.unroutable`` event) names the plugin and its error.
    """

    def __init__(self, plugins: PackPlugins, caches: Caches, history: Any = None) -> None:
        self.plugins = plugins
        self.caches = caches
        self.history = history

    def dispatch(self, pack: LoadedPack, report: Report) -> Routing:
        m = pack.manifest
        view = PackView.of(pack, self.caches)
        matter = street = None
        candidates: tuple[dict[str, Any], ...] = ()
        evidence: tuple[str, ...] = ()
        located: str | None = None
        streets: tuple[str, ...] = ()
        try:
            classified = self.plugins.call(m, "govflow_classify", pack=view, report=report, history=self.history)
            if isinstance(classified, Classification):
                matter, how, evidence = classified.matter, classified.how, classified.evidence
                matters = pack.catalog.matters
                candidates = tuple(
                    {"matter": code, "name": matters[code].name, "p": round(float(p), 3)}
                    for code, p in classified.candidates
                    if code in matters
                )
            else:
                matter, how = classified if classified else (None, "no matter recognised")
            if matter is not None and matter not in pack.catalog.matters:
                matter, how = None, f"plugin answered unknown matter {matter!r}"
            found = self.plugins.call(m, "govflow_locate", pack=view, report=report)
            if isinstance(found, Location):
                street, located = found.street, found.how
                streets = tuple(s for s in found.candidates if s in pack.catalog.streets)
            else:
                street = found
            if street is not None and street not in pack.catalog.streets:
                street = None
            owner, router = self.plugins.call_answered(
                m, "govflow_route", pack=view, report=report, matter=matter, street=street
            )
        except PluginFailed as exc:
            log.warning("dispatch plugin failed for pack %s %s: %s", m.name, m.version, exc.message)
            return Routing(
                matter,
                street,
                None,
                f"dispatch failed: {exc.message}; sent to the command centre",
                candidates,
                evidence,
            )
        by_whom = f"plugin {router}" if router is not None else "a plugin"
        if owner is not None and owner not in pack.catalog.units:
            owner, how = None, f"{how}; {by_whom} answered unknown unit {owner!r}"
        where = f"street {street}" if street else "no street located"
        by = f"; owner {owner} decided by {by_whom}" if owner is not None and owner != street else ""
        return Routing(matter, street, owner, f"{how}; {where}{by}", candidates, evidence, located, streets)


class PluginNotifier:
    """A case-service listener: ``govflow_case_events`` of the plugins acting for each case's pack.

    ``packs_of(events)`` groups committed events by the manifest of their
    case's pack version; it is asked only when some notifier does not act for
    every pack. A plugin that raises is logged with its name; the change it
    heard of stays committed.
    """

    def __init__(
        self, plugins: PackPlugins, packs_of: Callable[[list[Event]], list[tuple[Manifest, list[Event]]]]
    ) -> None:
        self.plugins = plugins
        self.packs_of = packs_of

    def __call__(self, events: Iterable[Event]) -> None:
        events = list(events)
        try:
            if self.plugins.all_always_on("govflow_case_events"):
                call_hook(self.plugins.pm.hook.govflow_case_events, events=events)
                return
            for manifest, group in self.packs_of(events):
                self.plugins.call(manifest, "govflow_case_events", events=group)
        except PluginFailed as exc:
            log.error("%s; the events stay committed", exc.message)
        except Exception:  # grouping the events failed: a notifier must never undo a committed change
            log.exception("notifying plugins of committed events failed")


__all__ = ["PluginDispatcher", "PluginNotifier"]
