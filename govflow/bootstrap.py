"""The composition root: wires the database, packs, plugins, clock and services.

Nothing else in govflow creates engines, plugin managers or connections; tests
and the CLI call :func:`build` with what they want (a test database URL, a
manual clock, extra plugins).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
from sqlalchemy import select
from sqlalchemy.engine import Engine

from govflow.engine.access.control import AccessControl
from govflow.engine.cache import Caches
from govflow.engine.cases.callouts import CallOuts
from govflow.engine.cases.history import CaseHistory
from govflow.engine.cases.queries import CaseQueries
from govflow.engine.cases.service import CaseService
from govflow.engine.cases.unit_of_work import UnitOfWork
from govflow.engine.integrations.feed import FeedProjector
from govflow.engine.integrations.hub import Integrations, IntegrationSettings
from govflow.engine.model.clock import Clock, SystemClock
from govflow.engine.oversight.projection import project as project_rates
from govflow.engine.oversight.rates import Oversight
from govflow.engine.packs.admin import PackAdmin
from govflow.engine.packs.loader import LoadedPack, Manifest, read_folder
from govflow.engine.packs.registry import PackRegistry
from govflow.engine.store.db import CaseRow, make_engine
from govflow.engine.workflow.spiff_clock import install_spiff_clock
from govflow.plugins import PackPlugins, PluginDispatcher, PluginNotifier, plugin_manager

log = logging.getLogger("govflow")


@dataclass
class App:
    """Everything a process of govflow needs, built once."""

    db: Engine
    packs: PackRegistry
    cases: CaseService
    queries: CaseQueries
    plugins: pluggy.PluginManager
    clock: Clock
    access: AccessControl
    pack_plugins: PackPlugins | None = None
    caches: Caches = field(default_factory=Caches)
    #: set before the first use of ``integrations`` (the CLI reads them from the environment)
    integration_settings: IntegrationSettings = field(default_factory=IntegrationSettings)

    @property
    def uow(self) -> UnitOfWork:
        """The one unit of work every change to a case goes through."""
        return self.cases.uow

    @functools.cached_property
    def pack_admin(self) -> PackAdmin:
        """Pack administration by principals (deploy, activate, roll back, read), Casbin first."""
        return PackAdmin(self.packs, self.access)

    @functools.cached_property
    def oversight(self) -> Oversight:
        """Supervision reads: rates, ranking, the public board, scorecards."""
        return Oversight(
            db=self.db,
            packs=self.packs,
            access=self.access,
            clock=self.clock,
            cases=self.cases,
            notify_warnings=self._notify_warnings,
        )

    def _notify_warnings(self, district: str, warnings: list[dict[str, Any]]) -> None:
        """Hand new warnings to the govflow_warnings hook of the plugins acting for the district."""
        if self.pack_plugins is None:
            return
        try:
            manifest = self.packs.active(district).manifest
            self.pack_plugins.hook(manifest, "govflow_warnings")(warnings=warnings)
        except Exception:  # a notifier must never undo what was recorded
            log.exception("a govflow_warnings plugin failed")

    @functools.cached_property
    def callouts(self) -> CallOuts:
        """Call-outs, delegations and ratings, over the same command path."""
        return CallOuts(self.cases)

    @functools.cached_property
    def integrations(self) -> Integrations:
        """The change feed, webhooks, outbox delivery and Open311 (engine/integrations)."""
        return Integrations(
            db=self.db,
            uow=self.uow,
            packs=self.packs,
            access=self.access,
            cases=self.cases,
            clock=self.clock,
            plugins=self.plugins,
            settings=self.integration_settings,
        )


def build(
    database_url: str, *, clock: Clock | None = None, extra_plugins: list[Any] | None = None, db: Engine | None = None
) -> App:
    install_spiff_clock()
    clock = clock or SystemClock()
    caches = Caches()
    pm = plugin_manager(extra=extra_plugins)
    plugins = PackPlugins.acting(pm, explicit=extra_plugins or [])
    engine = db or make_engine(database_url)
    packs = PackRegistry(
        engine,
        services=plugins.services,
        available_plugins=[name for name, _ in pm.list_name_plugin()],
        calendar_factory=plugins.calendar,
        caches=caches,
    )
    access = AccessControl(engine, catalogs=lambda: [p.catalog for p in packs.loaded()], caches=caches)
    notify = PluginNotifier(plugins, lambda events: _events_by_pack(engine, packs, events))
    dispatcher = PluginDispatcher(plugins, caches, CaseHistory(engine, clock))
    uow = UnitOfWork(db=engine, pack_of=packs.get, clock=clock, listeners=[notify], projectors=[project_rates])
    uow.projectors.append(FeedProjector())  # the change feed and outbox, in the commit's transaction
    cases = CaseService(uow=uow, packs=packs, access=access, dispatcher=dispatcher, clock=clock)
    return App(engine, packs, cases, CaseQueries(cases), pm, clock, access, plugins, caches)


def _events_by_pack(
    db: Engine, packs: PackRegistry, events: list[dict[str, Any]]
) -> list[tuple[Manifest, list[dict[str, Any]]]]:
    """Group committed events by the pack version of their case (for per-pack notifiers)."""
    case_ids = list(dict.fromkeys(e["case_id"] for e in events))
    with db.connect() as conn:
        rows = conn.execute(
            select(CaseRow.id, CaseRow.pack_name, CaseRow.pack_version).where(CaseRow.id.in_(case_ids))
        ).all()
    pack_of = {row.id: (row.pack_name, row.pack_version) for row in rows}
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for event in events:
        if event["case_id"] in pack_of:
            grouped.setdefault(pack_of[event["case_id"]], []).append(event)
    return [(packs.get(*key).manifest, group) for key, group in grouped.items()]


def deploy_folder(app: App, path: Path, *, actor: str = "system.cli") -> LoadedPack:
    """Validate a pack folder, store it as a version and make it active for its district."""
    pack = app.packs.compile(read_folder(path))
    app.packs.deploy(pack, actor=actor, now=app.clock.now())
    return pack
