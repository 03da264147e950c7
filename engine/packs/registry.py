"""Deployed pack versions, compiled once, and the active version of each district.

:class:`PackRegistry` is the application service for pack versions. It does two
things and keeps no lock of its own:

* **versions**, stored by the :class:`~govflow.engine.packs.store.VersionStore`
  (deploy, activate, roll back, list, archives); what is stored is the
  *effective* pack (an extended pack already composed over its base, see
  :mod:`govflow.engine.packs.compose`), so a version never changes when its base
  is redeployed;
* **compiled packs**, kept in an application-owned
  :class:`~govflow.engine.cache.Cache` keyed by (name, version): a version is
  loaded from the store and compiled the first time a case of it is touched, once
  however many requests ask at the same time, and without blocking requests for
  other versions while it compiles.

Which version is active is read from the database and cached for
:attr:`PackRegistry.ACTIVE_TTL` seconds, so an activation or rollback made by
one process reaches every other process within that time. Who may act on packs
is :mod:`govflow.engine.packs.admin`; principals, grants and delegations are
:mod:`govflow.engine.access.control`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy.engine import Engine

from govflow.engine.cache import Cache, Caches
from govflow.engine.model.errors import InvalidInput, NotFound
from govflow.engine.packs.loader import _NAME, _VERSION, LoadedPack, files_to_zip, load_pack, read_zip
from govflow.engine.packs.store import VersionInfo, VersionStore

#: what a district code can look like (anything else names no district)
_DISTRICT = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


class PackRegistry:
    """Compiled packs by (name, version) and the active version of each district."""

    #: seconds an active-version look-up is cached (activations by other processes show up after this)
    ACTIVE_TTL = 2.0
    #: compiled pack versions kept in memory per process
    MAX_COMPILED = 64

    def __init__(
        self,
        db: Engine,
        *,
        services: Mapping[str, Callable[..., Any]] | Callable[[Any], Mapping[str, Callable[..., Any]]] | None = None,
        available_plugins: Iterable[str] | None = None,
        calendar_factory: Callable[[Any], Any] | None = None,
        caches: Caches | None = None,
    ) -> None:
        caches = caches or Caches()
        self.store = VersionStore(db)
        self._services = services if callable(services) else dict(services or {})
        self._calendar_factory = calendar_factory
        self._plugins = list(available_plugins) if available_plugins is not None else None
        self._compiled: Cache[tuple[str, str], LoadedPack] = caches.cache(
            "packs.compiled", max_entries=self.MAX_COMPILED
        )
        self._diagrams: Cache[str, Any] = caches.cache("diagrams.compiled", max_entries=32)
        self._active: Cache[str | None, tuple[str, str]] = caches.cache("packs.active", ttl=self.ACTIVE_TTL)

    @property
    def db(self) -> Engine:
        """The database the versions are stored in."""
        return self.store.db

    # -- deployment ---------------------------------------------------------
    def compile(self, files: Mapping[str, bytes]) -> LoadedPack:
        """Validate and compile pack files (an ``extends`` is resolved against the deployed versions).

        What the compiled base parsed from files the extending pack leaves unchanged is
        reused (``load_pack``'s ``reuse``): validating a draft that changes one diagram
        compiles that diagram, not the whole pack again.
        """
        bases: list[LoadedPack] = []

        def resolve(name: str, version: str | None) -> Mapping[str, bytes]:
            base = self.base_pack(name, version)
            bases.append(base)
            return base.files

        return load_pack(
            files,
            services=self._services,
            available_plugins=self._plugins,
            resolve_base=resolve,
            calendar_factory=self._calendar_factory,
            compile_cache=self._diagrams,
            reuse=bases,
        )

    def deploy(
        self, pack: LoadedPack, *, actor: str, now: dt.datetime, activate: bool = True, if_latest: str | None = None
    ) -> bool:
        """Store a validated pack version; returns False if this exact version was already there.

        The same (name, version) with different content is refused: versions are immutable.
        With ``if_latest``, a new version is stored only while the newest deployed version of
        the pack is that one (see :meth:`VersionStore.save`).
        """
        name, version = pack.key
        created = self.store.save(
            name=name,
            version=version,
            district=pack.manifest.district,
            content_hash=pack.content_hash,
            archive=files_to_zip(pack.files),
            actor=actor,
            now=now,
            activate=activate,
            if_latest=if_latest,
        )
        self._compiled.put(pack.key, pack)
        if activate:
            self._became_active(pack)
        return created

    def activate(self, name: str, version: str) -> LoadedPack:
        """Make a deployed version the active one of its district (new cases start on it)."""
        pack = self.get(name, version)
        self.store.activate(pack.manifest.district, name, version)
        self._became_active(pack)
        return pack

    def _became_active(self, pack: LoadedPack) -> None:
        self._active.invalidate(None)  # "the only district" may have changed
        self._active.put(pack.manifest.district, pack.key)

    def rollback(self, district: str) -> LoadedPack:
        """Re-activate the version of ``district`` deployed just before the active one.

        Running cases are not touched (each finishes on its own version).
        """
        versions = [v for v in self.versions() if v.district == district]
        current = next((i for i, v in enumerate(versions) if v.active), None)
        if current is None:
            raise NotFound(f"no active process pack for district {district!r}", district=district)
        if current == 0:
            first = versions[0]
            raise InvalidInput(
                f"{first.name} {first.version} is the first version deployed for {district}; "
                "there is nothing to roll back to",
                district=district,
            )
        previous = versions[current - 1]
        return self.activate(previous.name, previous.version)

    def versions(self, district: str | None = None) -> list[VersionInfo]:
        """Every deployed version, oldest first (optionally of one district)."""
        return self.store.versions(district)

    def archive(self, name: str, version: str) -> bytes:
        """The stored zip of a version (the effective pack: what its cases run)."""
        return self.store.archive(name, version)

    def resolve_base(self, name: str, version: str | None) -> Mapping[str, bytes]:
        """The effective files of a base pack for ``extends``: a pinned version, else the
        active version of that name, else its newest deployed version."""
        return self.base_pack(name, version).files

    def base_pack(self, name: str, version: str | None) -> LoadedPack:
        """The compiled base pack ``extends`` names (see :meth:`resolve_base`); LookupError if none."""
        if version is None:
            candidates = [v for v in self.versions() if v.name == name]
            if not candidates:
                raise LookupError(f"pack {name} is not deployed; deploy the base pack first")
            chosen = next((v for v in candidates if v.active), candidates[-1])
            version = chosen.version
        try:
            return self.get(name, version)
        except NotFound:
            raise LookupError(f"pack {name} {version} is not deployed; deploy the base pack first") from None

    # -- look-ups -----------------------------------------------------------
    def get(self, name: str, version: str) -> LoadedPack:
        """A deployed version, compiled (once per process, however many ask at once).

        A name or version that no pack could have (e.g. a control character from a
        URL) is simply not deployed: it never reaches the database.
        """
        if not (_NAME.fullmatch(name) and _VERSION.fullmatch(version)):
            raise NotFound(f"pack {name[:64]} {version[:32]} is not deployed", pack=name[:64], version=version[:32])
        return self._compiled.get((name, version), lambda: self.compile(read_zip(self.store.archive(name, version))))

    def active(self, district: str | None = None) -> LoadedPack:
        """The active pack of ``district`` (or of the only district, when there is one)."""
        if district is not None and not _DISTRICT.fullmatch(district):
            raise NotFound(f"no active process pack for district {district[:64]!r}", district=district[:64])

        def look_up() -> tuple[str, str]:
            name, version, found = self.store.active(district)
            if district is None:
                self._active.put(found, (name, version))
            return name, version

        return self.get(*self._active.get(district, look_up))

    def loaded(self) -> list[LoadedPack]:
        """The compiled versions this process holds now (e.g. to place principals' units)."""
        return [p for k in self._compiled.keys() if (p := self._compiled.peek(k)) is not None]

    def districts(self) -> list[str]:
        return self.store.districts()


__all__ = ["PackRegistry", "VersionInfo"]
