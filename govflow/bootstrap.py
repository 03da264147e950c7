"""The composition root: wires the database, packs, plugins, clock and services.

Nothing else in govflow creates engines, plugin managers or connections; tests
and the CLI call :func:`build` with what they want (a test database URL, a
manual clock, extra plugins).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy
from sqlalchemy.engine import Engine

from govflow.engine.cases import CaseService
from govflow.engine.clock import Clock, SystemClock, install_spiff_clock
from govflow.engine.db import make_engine
from govflow.engine.dispatch import Report, Routing
from govflow.engine.packs import LoadedPack, read_folder
from govflow.engine.queries import CaseQueries
from govflow.engine.registry import PackRegistry
from govflow.plugins import plugin_manager

log = logging.getLogger("govflow")


class PluginDispatcher:
    """The engine's Dispatcher, answered by the classify/locate/route hooks."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.hook = pm.hook

    def dispatch(self, pack: LoadedPack, report: Report) -> Routing:
        classified = self.hook.govflow_classify(pack=pack, report=report)
        matter, how = classified if classified else (None, "no matter recognised")
        if matter is not None and matter not in pack.catalog.matters:
            matter, how = None, f"plugin answered unknown matter {matter!r}"
        street = self.hook.govflow_locate(pack=pack, report=report)
        if street is not None and street not in pack.catalog.streets:
            street = None
        owner = self.hook.govflow_route(pack=pack, report=report, matter=matter, street=street)
        if owner is not None and owner not in pack.catalog.units:
            owner = None
        where = f"street {street}" if street else "no street located"
        return Routing(matter, street, owner, f"{how}; {where}")


@dataclass
class App:
    """Everything a process of govflow needs, built once."""

    db: Engine
    packs: PackRegistry
    cases: CaseService
    queries: CaseQueries
    plugins: pluggy.PluginManager
    clock: Clock


def build(database_url: str, *, clock: Clock | None = None, extra_plugins: list[Any] | None = None, db: Engine | None = None) -> App:
    install_spiff_clock()
    clock = clock or SystemClock()
    pm = plugin_manager(extra=extra_plugins)
    services: dict[str, Any] = {}
    for result in pm.hook.govflow_service_functions():
        services.update(result or {})
    engine = db or make_engine(database_url)
    plugin_names = [name for name, _ in pm.list_name_plugin()]
    packs = PackRegistry(
        engine, services=services, available_plugins=plugin_names,
        calendar_factory=lambda district, settings: pm.hook.govflow_calendar(district=district, settings=dict(settings)),
    )

    def notify(events: Any) -> None:
        try:
            pm.hook.govflow_case_events(events=list(events))
        except Exception:  # a notifier must never undo a committed change
            log.exception("a govflow_case_events plugin failed")

    cases = CaseService(db=engine, packs=packs, dispatcher=PluginDispatcher(pm), clock=clock, listeners=[notify])
    return App(engine, packs, cases, CaseQueries(cases), pm, clock)


def deploy_folder(app: App, path: Path, *, actor: str = "system.cli") -> LoadedPack:
    """Validate a pack folder, store it as a version and make it active for its district."""
    pack = app.packs.compile(read_folder(path))
    app.packs.deploy(pack, actor=actor, now=app.clock.now())
    return pack
