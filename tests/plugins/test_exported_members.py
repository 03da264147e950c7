"""The public API of ``govflow.plugins`` is pinned: what the package exports, every hook's
name, parameters and first-result flag, and what a hook sees of a pack. A change here is a
change to every district's plugins: make it on purpose, and say so in the changelog."""

from __future__ import annotations

import dataclasses
import inspect

import pluggy

import govflow.plugins
from govflow.plugins import PackView, hookspecs

EXPORTED = [
    "BUILTIN",
    "PackPlugins",
    "PackView",
    "PluginDispatcher",
    "PluginNotifier",
    "hookimpl",
    "hookspecs",
    "plugin_manager",
]

#: hook name -> (parameter names, first result wins)
HOOKS = {
    "govflow_calendar": (["district", "settings"], True),
    "govflow_case_events": (["events"], False),
    "govflow_classify": (["pack", "report", "history"], True),
    "govflow_locate": (["pack", "report"], True),
    "govflow_outbox_sinks": ([], False),
    "govflow_route": (["pack", "report", "matter", "street"], True),
    "govflow_service_functions": ([], False),
    "govflow_warnings": (["warnings"], False),
}


def test_all_exports_are_pinned():
    assert govflow.plugins.__all__ == EXPORTED
    assert EXPORTED == sorted(EXPORTED)


def test_every_export_exists():
    for name in govflow.plugins.__all__:
        assert getattr(govflow.plugins, name) is not None, name


def test_the_hook_marker_is_govflows():
    assert isinstance(govflow.plugins.hookimpl, pluggy.HookimplMarker)
    assert govflow.plugins.hookimpl.project_name == hookspecs.PROJECT == "govflow"


def test_every_hook_is_pinned():
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    declared = {name for name in vars(hookspecs) if name.startswith("govflow_")}
    assert declared == set(HOOKS)
    for name, (params, firstresult) in HOOKS.items():
        spec = getattr(pm.hook, name).spec
        assert list(inspect.signature(getattr(hookspecs, name)).parameters) == params, name
        assert list(spec.argnames) == params, name
        assert spec.opts["firstresult"] is firstresult, name
        assert not spec.opts["historic"], name


def test_every_hook_documents_when_it_is_called_and_whether_the_first_result_wins():
    for name, (_, firstresult) in HOOKS.items():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Called " in doc, name
        assert ("*First result wins.*" in doc) is firstresult, name
        assert firstresult or "every plugin is called" in doc, name


def test_the_pack_view_is_pinned():
    assert [f.name for f in dataclasses.fields(PackView) if not f.name.startswith("_")] == [
        "name",
        "version",
        "district",
        "catalog",
        "settings",
        "territory",
        "gazetteer",
    ]
    assert PackView.__dataclass_params__.frozen
    assert list(inspect.signature(PackView.cache).parameters) == ["self", "name", "build", "depends_on"]
    assert list(inspect.signature(PackView.decide).parameters) == ["self", "decision", "inputs"]
    assert list(inspect.signature(PackView.of).parameters) == ["pack", "caches"]
    assert list(inspect.signature(PackView.file).parameters) == ["self", "path"]
