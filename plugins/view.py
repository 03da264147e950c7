"""What a hook sees of a pack version: :class:`PackView`.

Hooks never receive the engine's compiled pack (diagrams, runtime, policies,
files); they receive a frozen, read-only view with what a plugin needs to
decide — the pack's identity, its catalog, its settings and its territory —
plus two capabilities: evaluating the pack's DMN decisions
(:meth:`PackView.decide`) and caching what a plugin derives from the pack
(:meth:`PackView.cache`).

Per-pack caching
----------------

A plugin keeps nothing in module globals. What it derives from a pack version
(parsed settings, an index over the catalog, a scorer) it asks the view for::

    zones = pack.cache("zone_routing.zones", lambda: parse_zones(pack))

The value is built once per pack version — concurrent first callers wait for
one build instead of building it each (per-key single flight) — and lives in
the application's caches (``govflow.bootstrap.App.caches``, a
:class:`govflow.engine.cache.Caches`), where it is bounded (the
:data:`PACK_VERSIONS` most recently used pack versions per name) and can be
cleared with every other cache of the application. Names are shared by all
plugins: prefix them with the plugin's own name.

A value that depends on more than the pack (e.g. the district's past cases of
the moment) passes ``depends_on=``: the value is rebuilt when ``depends_on``
changes (compared with ``==``, so it must be hashable) and only the value for
the latest ``depends_on`` is kept per pack version and name.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from govflow.engine.cache import Caches
from govflow.engine.model.catalog import Catalog, Territory
from govflow.engine.model.errors import NotFound
from govflow.engine.model.gazetteer import Gazetteer, empty

if TYPE_CHECKING:
    from govflow.engine.packs.loader import LoadedPack
    from govflow.engine.workflow.decisions import Decisions

V = TypeVar("V")

#: pack versions kept per cache name (least recently used dropped beyond)
PACK_VERSIONS = 64
#: the application cache holding one view per pack version
VIEWS = "plugins.views"
#: prefix of the application caches behind ``PackView.cache``
CACHE_PREFIX = "plugins.cache."


def _read_only(value: Any) -> Any:
    """A read-only copy of settings: mappings become read-only views, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: _read_only(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_read_only(item) for item in value)
    return value


@dataclass(frozen=True, eq=False)
class PackView:
    """The narrow, read-only view of one pack version that every hook receives as ``pack``.

    * ``name``, ``version``, ``district`` — the pack's identity (``pack.yaml``);
    * ``catalog`` — units, streets and matters (:class:`~govflow.engine.model.catalog.Catalog`);
    * ``settings`` — ``pack.yaml``'s ``settings``, read-only (mappings are read-only
      views, lists are tuples);
    * ``territory`` — the street territories (``territory.locate(lat, lng)``);
    * ``gazetteer`` — the pack's places (``gazetteer.locate(address, description)``;
      names nothing when the pack has no ``gazetteer.yaml``);
    * :meth:`file` — the bytes of one of the pack's data files (e.g. ``dispatch/model.json``);
    * :meth:`decide` — evaluate one of the pack's DMN decisions;
    * :meth:`cache` — keep something derived from this pack version (see the module docstring).

    Treat ``catalog`` and ``territory`` as read-only: they are shared by every
    case of the pack version. Views are built by :meth:`of`, once per pack version.
    """

    name: str
    version: str
    district: str
    catalog: Catalog
    settings: Mapping[str, Any]
    territory: Territory
    gazetteer: Gazetteer
    _key: str = field(repr=False)
    _caches: Caches = field(repr=False)
    _decisions: Decisions | None = field(default=None, repr=False)
    _files: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, pack: LoadedPack, caches: Caches) -> PackView:
        """The view of a compiled pack, built once per pack version and kept in ``caches``."""

        def build() -> PackView:
            m = pack.manifest
            return cls(
                m.name,
                m.version,
                m.district,
                pack.catalog,
                _read_only(m.settings),
                pack.territory,
                pack.gazetteer or empty(m.district),
                pack.content_hash,
                caches,
                pack.decisions,
                MappingProxyType(pack.files),
            )

        return caches.cache(VIEWS, max_entries=PACK_VERSIONS).get(pack.content_hash, build)

    def decide(self, decision: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The outputs of the pack's DMN decision ``decision`` for ``inputs`` ({} when no rule matched).

        Raises :class:`~govflow.engine.model.errors.NotFound` when the pack has
        no such decision and :class:`~govflow.engine.model.errors.EngineFault`
        when a cell fails.
        """
        if self._decisions is None:
            raise NotFound(f"the pack has no decision {decision!r}", decision=decision, pack=self.name)
        return self._decisions.evaluate(decision, inputs)

    def file(self, path: str) -> bytes | None:
        """The content of the pack file ``path`` (e.g. ``dispatch/model.json``), or None when the pack has none.

        Plugin data travels with the pack version it belongs to: it is validated,
        hashed, stored and activated with the pack, never loaded from elsewhere.
        """
        return self._files.get(path)

    def cache(self, name: str, build: Callable[[], V], *, depends_on: Hashable = None) -> V:
        """The value called ``name`` for this pack version, built by ``build()`` the first time.

        Concurrent first callers share one build (and its exception, which is
        not cached). With ``depends_on``, the value is rebuilt when
        ``depends_on`` changes and only the latest one is kept.
        """
        store = self._caches.cache(CACHE_PREFIX + name, max_entries=PACK_VERSIONS)
        key = (self._key, depends_on)
        built = False

        def counted() -> V:
            nonlocal built
            value = build()
            built = True
            return value

        value = store.get(key, counted)
        if built:  # the value for an earlier depends_on of this pack version is stale now
            store.invalidate_where(lambda other: other[0] == self._key and other != key)
        return value


__all__ = ["CACHE_PREFIX", "PACK_VERSIONS", "PackView"]
