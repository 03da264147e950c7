"""The composition root: wires the database, packs, plugins, clock and services.

Nothing else in govflow creates engines, plugin managers or connections; tests
and the CLI call :func:`build` with what they want (a test database URL, a
manual clock, extra plugins).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy
from sqlalchemy import select
from sqlalchemy.engine import Engine

from govflow.engine.cases.callouts import CallOuts
from govflow.engine.cases.history import CaseHistory
from govflow.engine.cases.queries import CaseQueries
from govflow.engine.cases.service import CaseService
from govflow.engine.model.clock import Clock, SystemClock
from govflow.engine.model.dispatch import Report, Routing
from govflow.engine.packs.loader import LoadedPack, Manifest, read_folder
from govflow.engine.packs.registry import PackRegistry
from govflow.engine.store.db import CaseRow, make_engine
from govflow.engine.workflow.spiff_clock import install_spiff_clock
from govflow.plugins import BUILTIN, plugin_manager

log = logging.getLogger("govflow")


class PluginFailed(Exception):
    """A plugin raised inside a hook; carries the plugin's name for the record."""

    def __init__(self, plugin: str, hook: str, exc: BaseException) -> None:
        super().__init__(f"plugin {plugin} failed in {hook}: {type(exc).__name__}: {exc}")
        self.plugin, self.hook = plugin, hook


class PackPlugins:
    """Which plugins act for which pack (per-district plugin selection).

    * Built-in plugins (``govflow.plugins.BUILTIN``) and plugins handed to
      :func:`build` explicitly act for every pack, unless the pack lists them
      under ``disabled_plugins``.
    * Plugins found through entry points (a district's own packages) act only
      for packs that list them under ``plugins``.

    Each pack gets a pluggy subset hook caller (``pm.subset_hook_caller``)
    without the plugins that do not act for it; callers are cached per set.
    """

    def __init__(self, pm: pluggy.PluginManager, always_on: set[str]) -> None:
        self.pm = pm
        self.always_on = set(always_on)
        self._callers: dict[tuple[str, frozenset[str]], Any] = {}

    def excluded(self, manifest: Manifest) -> frozenset[str]:
        """Names of registered plugins that must not act for a pack with this manifest."""
        enabled, disabled = set(manifest.plugins), set(manifest.disabled_plugins)
        return frozenset(
            name
            for name, plugin in self.pm.list_name_plugin()
            if plugin is not None and (name in disabled or (name not in self.always_on and name not in enabled))
        )

    def hook(self, manifest: Manifest, name: str) -> Any:
        """The hook caller ``name`` restricted to the plugins acting for ``manifest``."""
        excluded = self.excluded(manifest)
        key = (name, excluded)
        caller = self._callers.get(key)
        if caller is None:
            if excluded:
                caller = self.pm.subset_hook_caller(name, [self.pm.get_plugin(n) for n in excluded])
            else:
                caller = getattr(self.pm.hook, name)
            self._callers[key] = caller
        return caller

    def all_always_on(self, name: str) -> bool:
        """True when every implementation of hook ``name`` acts for every pack."""
        return all(impl.plugin_name in self.always_on for impl in getattr(self.pm.hook, name).get_hookimpls())

    def first_result(self, manifest: Manifest, name: str, **kwargs: Any) -> tuple[Any, str | None]:
        """Call a *first result wins* hook for a pack; return (result, deciding plugin).

        Implementations are asked in pluggy's order (last registered first,
        ``tryfirst``/``trylast`` honoured); an exception becomes
        :class:`PluginFailed` naming the plugin.
        """
        for impl in reversed(self.hook(manifest, name).get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue
            try:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as exc:
                raise PluginFailed(impl.plugin_name, name, exc) from exc
            if result is not None:
                return result, impl.plugin_name
        return None, None


class PluginDispatcher:
    """The engine's Dispatcher, answered by the classify/locate/route hooks of the pack's plugins.

    A plugin that raises does not fail the report: the case goes to the command
    centre for dispatch by a person, and the routing's ``how`` (recorded on the
    case's ``case.unroutable`` event) names the plugin and its error.
    """

    def __init__(self, plugins: PackPlugins, history: Any = None) -> None:
        self.plugins = plugins
        self.history = history

    def dispatch(self, pack: LoadedPack, report: Report) -> Routing:
        m = pack.manifest
        matter = street = None
        try:
            classified, _ = self.plugins.first_result(
                m, "govflow_classify", pack=pack, report=report, history=self.history
            )
            matter, how = classified if classified else (None, "no matter recognised")
            if matter is not None and matter not in pack.catalog.matters:
                matter, how = None, f"plugin answered unknown matter {matter!r}"
            street, _ = self.plugins.first_result(m, "govflow_locate", pack=pack, report=report)
            if street is not None and street not in pack.catalog.streets:
                street = None
            owner, router = self.plugins.first_result(
                m, "govflow_route", pack=pack, report=report, matter=matter, street=street
            )
        except PluginFailed as exc:
            log.warning("dispatch plugin failed for pack %s %s: %s", m.name, m.version, exc)
            return Routing(matter, street, None, f"dispatch failed: {exc}; sent to the command centre")
        if owner is not None and owner not in pack.catalog.units:
            owner, how = None, f"{how}; plugin {router} answered unknown unit {owner!r}"
        where = f"street {street}" if street else "no street located"
        by = f"; owner {owner} decided by plugin {router}" if owner is not None and owner != street else ""
        return Routing(matter, street, owner, f"{how}; {where}{by}")


@dataclass
class App:
    """Everything a process of govflow needs, built once."""

    db: Engine
    packs: PackRegistry
    cases: CaseService
    queries: CaseQueries
    plugins: pluggy.PluginManager
    clock: Clock
    pack_plugins: PackPlugins | None = None

    @functools.cached_property
    def callouts(self) -> CallOuts:
        """Call-outs, delegations and ratings, over the same command path."""
        return CallOuts(self.cases)


def build(
    database_url: str, *, clock: Clock | None = None, extra_plugins: list[Any] | None = None, db: Engine | None = None
) -> App:
    install_spiff_clock()
    clock = clock or SystemClock()
    pm = plugin_manager(extra=extra_plugins)
    always_on = {name.rsplit(".", 1)[-1] for name in BUILTIN} | {pm.get_name(p) for p in extra_plugins or []}
    plugins = PackPlugins(pm, always_on)

    def services(manifest: Manifest) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for result in plugins.hook(manifest, "govflow_service_functions")():
            merged.update(result or {})
        return merged

    engine = db or make_engine(database_url)
    plugin_names = [name for name, _ in pm.list_name_plugin()]
    packs = PackRegistry(
        engine,
        services=services,
        available_plugins=plugin_names,
        calendar_factory=lambda district, settings: pm.hook.govflow_calendar(
            district=district, settings=dict(settings)
        ),
    )

    def notify(events: Any) -> None:
        events = list(events)
        try:
            if plugins.all_always_on("govflow_case_events"):
                pm.hook.govflow_case_events(events=events)
                return
            for manifest, group in _events_by_pack(engine, packs, events):
                plugins.hook(manifest, "govflow_case_events")(events=group)
        except Exception:  # a notifier must never undo a committed change
            log.exception("a govflow_case_events plugin failed")

    dispatcher = PluginDispatcher(plugins, CaseHistory(engine, clock))
    cases = CaseService(db=engine, packs=packs, dispatcher=dispatcher, clock=clock, listeners=[notify])
    return App(engine, packs, cases, CaseQueries(cases), pm, clock, plugins)


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
