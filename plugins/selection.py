"""Which plugins act for which pack, and calling them with failures isolated and named.

Selection (per district): the built-in plugins (``govflow.plugins.BUILTIN``) and
plugins handed to ``govflow.bootstrap.build`` explicitly act for every pack,
unless the pack's ``pack.yaml`` lists them under ``disabled_plugins``; plugins
found through entry points (a district's own packages) act only for packs that
list them under ``plugins``. Each pack gets pluggy's own subset hook caller
(``pm.subset_hook_caller``) without the plugins that do not act for it, so a
call is pluggy's call: ``tryfirst``/``trylast``, *first result wins* and hook
wrappers (``wrapper=True`` and old-style ``hookwrapper=True``) all behave as
pluggy documents.

Naming the plugin: when a call raises, the implementation that failed is the
deepest frame of the exception's traceback whose code object is the code of one
of the hook's implementations; the error becomes
:class:`~govflow.engine.model.errors.PluginFailed` naming that plugin. Which
implementation *answered* a first-result hook (for the record: "owner … decided
by plugin …") is observed while pluggy runs the call, by a profile function on
the calling thread that notes which implementation returned the value the call
returned; nothing about the call itself changes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from types import CodeType, FrameType, TracebackType
from typing import TYPE_CHECKING, Any

import pluggy

from govflow.engine.model.errors import PluginFailed

if TYPE_CHECKING:
    from govflow.engine.model.calendar import WorkCalendar
    from govflow.engine.packs.loader import Manifest


class PackPlugins:
    """The plugins acting for each pack, and calls of their hooks with failures named."""

    def __init__(self, pm: pluggy.PluginManager, always_on: Iterable[str]) -> None:
        self.pm = pm
        self.always_on = frozenset(always_on)
        self._callers: dict[tuple[str, frozenset[str]], pluggy.HookCaller] = {}

    @classmethod
    def acting(cls, pm: pluggy.PluginManager, *, explicit: Iterable[object] = ()) -> PackPlugins:
        """The selection of an application: the built-ins and the ``explicit`` plugin objects act for every pack."""
        from govflow.plugins import BUILTIN  # the package imports this module first

        builtins = {name.rsplit(".", 1)[-1] for name in BUILTIN}
        return cls(pm, builtins | {name for p in explicit if (name := pm.get_name(p)) is not None})

    def excluded(self, manifest: Manifest) -> frozenset[str]:
        """Names of registered plugins that must not act for a pack with this manifest."""
        enabled, disabled = set(manifest.plugins), set(manifest.disabled_plugins)
        return frozenset(
            name
            for name, plugin in self.pm.list_name_plugin()
            if plugin is not None and (name in disabled or (name not in self.always_on and name not in enabled))
        )

    def hook(self, manifest: Manifest, name: str) -> pluggy.HookCaller:
        """Pluggy's hook caller ``name`` restricted to the plugins acting for ``manifest``."""
        excluded = self.excluded(manifest)
        key = (name, excluded)
        caller = self._callers.get(key)
        if caller is None:
            removed = [self.pm.get_plugin(n) for n in excluded]
            caller = self._callers[key] = self.pm.subset_hook_caller(name, removed)
        return caller

    def all_always_on(self, name: str) -> bool:
        """True when every implementation of hook ``name`` acts for every pack."""
        return all(impl.plugin_name in self.always_on for impl in getattr(self.pm.hook, name).get_hookimpls())

    def call(self, manifest: Manifest, name: str, **kwargs: Any) -> Any:
        """Call hook ``name`` for a pack; a plugin's exception becomes :class:`PluginFailed` naming it."""
        return call_hook(self.hook(manifest, name), **kwargs)

    def call_answered(self, manifest: Manifest, name: str, **kwargs: Any) -> tuple[Any, str | None]:
        """Call a *first result wins* hook for a pack: (result, the plugin that answered it).

        The plugin is ``None`` when nothing answered, or when it cannot be
        observed (another profiler is active on this thread, or an old-style
        hook wrapper forced the result).
        """
        caller = self.hook(manifest, name)
        impls = caller.get_hookimpls()
        try:
            return _call_observing(caller, impls, kwargs)
        except Exception as exc:
            raise PluginFailed(failing_plugin(exc, impls), caller.name, exc) from exc

    def services(self, manifest: Manifest) -> dict[str, Any]:
        """The service functions of the plugins acting for a pack (``govflow_service_functions``, merged)."""
        merged: dict[str, Any] = {}
        for result in self.call(manifest, "govflow_service_functions"):
            merged.update(result or {})
        return merged

    def calendar(self, manifest: Manifest) -> WorkCalendar | None:
        """The working-day calendar of a pack (``govflow_calendar`` of the plugins acting for it)."""
        return self.call(manifest, "govflow_calendar", district=manifest.district, settings=dict(manifest.settings))


def call_hook(caller: pluggy.HookCaller, **kwargs: Any) -> Any:
    """Pluggy's call of ``caller``; a plugin's exception becomes :class:`PluginFailed` naming it."""
    try:
        return caller(**kwargs)
    except Exception as exc:
        raise PluginFailed(failing_plugin(exc, caller.get_hookimpls()), caller.name, exc) from exc


def failing_plugin(exc: BaseException, impls: Iterable[pluggy.HookImpl]) -> str | None:
    """The plugin whose implementation raised ``exc``: the deepest of ``impls`` on its traceback."""
    by_code = _by_code(impls)
    found: pluggy.HookImpl | None = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        candidates = by_code.get(tb.tb_frame.f_code)
        if candidates:
            found = _pick(candidates, tb.tb_frame)
        tb = tb.tb_next
    return found.plugin_name if found is not None else None


def _by_code(impls: Iterable[pluggy.HookImpl]) -> dict[CodeType, list[pluggy.HookImpl]]:
    by_code: dict[CodeType, list[pluggy.HookImpl]] = {}
    for impl in impls:
        code = getattr(impl.function, "__code__", None)
        if code is not None:
            by_code.setdefault(code, []).append(impl)
    return by_code


def _pick(candidates: list[pluggy.HookImpl], frame: FrameType) -> pluggy.HookImpl:
    """Of implementations sharing one code object (one class, several instances), the one running in ``frame``."""
    if len(candidates) > 1:
        owner = frame.f_locals.get("self")
        for impl in candidates:
            if impl.plugin is owner:
                return impl
    return candidates[0]


def _call_observing(
    caller: pluggy.HookCaller, impls: list[pluggy.HookImpl], kwargs: Mapping[str, Any]
) -> tuple[Any, str | None]:
    """Run pluggy's call and note which implementation returned the value the call returned."""
    if sys.getprofile() is not None:  # never displace someone's profiler
        return caller(**kwargs), None
    by_code = _by_code(impls)
    returned: list[tuple[pluggy.HookImpl, object]] = []

    def watch(frame: FrameType, event: str, arg: object) -> None:
        if event == "return" and arg is not None:
            candidates = by_code.get(frame.f_code)
            if candidates:
                returned.append((_pick(candidates, frame), arg))

    sys.setprofile(watch)
    try:
        result = caller(**kwargs)
    finally:
        sys.setprofile(None)
    if result is None:
        return None, None
    # the first implementation that returned this very object: the answering one, not a
    # wrapper passing it through (wrappers finish after the implementations they wrap)
    answered = next((impl for impl, value in returned if value is result), None)
    return result, answered.plugin_name if answered is not None else None


__all__ = ["PackPlugins", "call_hook", "failing_plugin"]
