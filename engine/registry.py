"""Deployed pack versions and who may act under them.

:class:`PackRegistry` keeps compiled packs in memory keyed by (name, version),
loading a version's files from the ``pack_versions`` table the first time a
case of that version is touched, so every API or worker process can serve any
version. It also owns the principals → Casbin grants of each pack version.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from .authz import Authorizer
from .db import PackVersion, Principal as PrincipalRow
from .errors import Conflict, NotFound, Unauthenticated
from .identity import Principal, from_row, grants_for, hash_token
from .packs import LoadedPack, files_to_zip, load_pack, read_zip


class PackRegistry:
    """Compiled packs by (name, version) and the active version of each district."""

    def __init__(
        self,
        db: Engine,
        *,
        services: Mapping[str, Callable[..., Any]] | None = None,
        available_plugins: Iterable[str] | None = None,
        calendar_factory: Callable[[str, Mapping[str, Any]], Any] | None = None,
    ) -> None:
        self._db = db
        self._services = dict(services or {})
        self._calendar_factory = calendar_factory
        self._plugins = list(available_plugins) if available_plugins is not None else None
        self._loaded: dict[tuple[str, str], LoadedPack] = {}
        self._authz: dict[tuple[str, str], Authorizer] = {}
        self._granted: dict[tuple[str, str], set[str]] = {}
        self._active: dict[str, tuple[str, str]] = {}
        self._lock = threading.RLock()

    # -- deployment ---------------------------------------------------------
    def compile(self, files: Mapping[str, bytes]) -> LoadedPack:
        return load_pack(files, services=self._services, available_plugins=self._plugins, calendar_factory=self._calendar_factory)

    def deploy(self, pack: LoadedPack, *, actor: str, now: dt.datetime, activate: bool = True) -> bool:
        """Store a validated pack version; returns False if this exact version was already there.

        The same (name, version) with different content is refused: versions are immutable.
        """
        name, version = pack.key
        with self._db.begin() as conn:
            row = conn.execute(select(PackVersion.content_hash).where(PackVersion.name == name, PackVersion.version == version)).first()
            if row is not None and row.content_hash != pack.content_hash:
                raise Conflict(
                    f"pack {name} {version} is already deployed with different content; give the new content a new version",
                    pack=name, version=version,
                )
            created = row is None
            if created:
                conn.execute(PackVersion.__table__.insert().values(
                    name=name, version=version, district=pack.manifest.district, content_hash=pack.content_hash,
                    archive=files_to_zip(pack.files), active=False, deployed_at=now, deployed_by=actor,
                ))
            if activate:
                conn.execute(update(PackVersion).where(PackVersion.district == pack.manifest.district).values(active=False))
                conn.execute(update(PackVersion).where(PackVersion.name == name, PackVersion.version == version).values(active=True))
        with self._lock:
            self._loaded[pack.key] = pack
            if activate:
                self._active[pack.manifest.district] = pack.key
        return created

    # -- look-ups -----------------------------------------------------------
    def get(self, name: str, version: str) -> LoadedPack:
        key = (name, version)
        pack = self._loaded.get(key)
        if pack is not None:
            return pack
        with self._lock:
            pack = self._loaded.get(key)
            if pack is None:
                with self._db.connect() as conn:
                    archive = conn.execute(select(PackVersion.archive).where(PackVersion.name == name, PackVersion.version == version)).scalar()
                if archive is None:
                    raise NotFound(f"pack {name} {version} is not deployed", pack=name, version=version)
                pack = self._loaded[key] = self.compile(read_zip(archive))
        return pack

    def active(self, district: str | None = None) -> LoadedPack:
        """The active pack of ``district`` (or the only district, when there is one)."""
        with self._lock:
            if district is None and len(self._active) == 1:
                district = next(iter(self._active))
            key = self._active.get(district or "")
        if key is None:
            with self._db.connect() as conn:
                query = select(PackVersion.name, PackVersion.version, PackVersion.district).where(PackVersion.active.is_(True))
                if district:
                    query = query.where(PackVersion.district == district)
                rows = conn.execute(query).all()
            if len(rows) != 1:
                what = f"district {district!r}" if district else "this deployment (name the district)"
                raise NotFound(f"no active process pack for {what}", district=district)
            key = (rows[0].name, rows[0].version)
            with self._lock:
                self._active[rows[0].district] = key
        return self.get(*key)

    def districts(self) -> list[str]:
        with self._db.connect() as conn:
            return sorted(conn.execute(select(PackVersion.district).where(PackVersion.active.is_(True))).scalars())

    # -- principals and authorization -----------------------------------------
    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthenticated("a bearer token is required")
        with self._db.connect() as conn:
            row = conn.execute(select(PrincipalRow).where(PrincipalRow.token_hash == hash_token(token), PrincipalRow.active.is_(True))).first()
        if row is None:
            raise Unauthenticated("unknown or revoked token")
        return from_row(row)

    def authorizer(self, pack: LoadedPack, principal: Principal | None = None) -> Authorizer:
        """The pack version's enforcer, with grants current for ``principal``."""
        key = pack.key
        authz = self._authz.get(key)
        if authz is not None and (principal is None or principal.id in self._granted[key]):
            return authz
        with self._lock:
            catalogs = [p.catalog for p in self._loaded.values()]
            with self._db.connect() as conn:
                principals = [from_row(r) for r in conn.execute(select(PrincipalRow).where(PrincipalRow.active.is_(True)))]
            grants = [g for p in principals for g in grants_for(p, catalogs)]
            if key not in self._authz:
                self._authz[key] = pack.new_authorizer(grants)
            else:
                self._authz[key].set_grants(grants)
            self._granted[key] = {p.id for p in principals}
            if principal is not None:
                self._granted[key].add(principal.id)  # known now, even if it holds no grant
            return self._authz[key]

    def refresh_grants(self) -> None:
        """Forget cached grants (after principals changed)."""
        with self._lock:
            for key in self._granted:
                self._granted[key] = set()
