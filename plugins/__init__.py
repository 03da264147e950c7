"""govflow plugins: the hook specifications, the built-in plugins, and which plugins act for a pack.

A plugin needs only::

    from govflow.plugins import hookimpl

    @hookimpl
    def govflow_route(pack, report, matter, street): ...

and an entry point in the ``govflow`` group naming its module. Hooks about a
pack receive a :class:`PackView` (``view.py``: the pack's identity, catalog,
settings and territory, its DMN decisions, and ``pack.cache(name, build)`` for
what a plugin derives from a pack version). The rest is for the composition
root: :func:`plugin_manager`, :class:`PackPlugins` (per-pack selection, calls
with failures named: ``selection.py``), :class:`PluginDispatcher` and
:class:`PluginNotifier` (the engine's dispatcher and listener: ``dispatcher.py``).
"""

from __future__ import annotations

import importlib.metadata
import logging
from types import ModuleType

import pluggy

from . import hookspecs
from .dispatcher import PluginDispatcher, PluginNotifier
from .selection import PackPlugins
from .view import PackView

hookimpl = pluggy.HookimplMarker(hookspecs.PROJECT)

#: govflow's own behaviour, registered like any district's plugin.
BUILTIN = ("govflow.plugins.builtin.dispatch", "govflow.plugins.builtin.calendar")

log = logging.getLogger(__name__)


def plugin_manager(
    *, extra: list[ModuleType | object] | None = None, load_entry_points: bool = True
) -> pluggy.PluginManager:
    """A plugin manager with the built-ins, installed entry points and ``extra`` plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN:
        module = importlib.import_module(name)
        pm.register(module, name=name.rsplit(".", 1)[-1])
    if load_entry_points:
        for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
            if pm.has_plugin(ep.name):
                continue
            pm.register(ep.load(), name=ep.name)
    for plugin in extra or []:
        pm.register(plugin)
    return pm


__all__ = [
    "BUILTIN",
    "PackPlugins",
    "PackView",
    "PluginDispatcher",
    "PluginNotifier",
    "hookimpl",
    "hookspecs",
    "plugin_manager",
]
