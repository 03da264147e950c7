"""Deployed pack versions and who may act under them.

:class:`PackRegistry` keeps compiled packs in memory keyed by (name, version),
loading a version's files from the ``pack_versions`` table the first time a
case of that version is touched, so every API or worker process can serve any
version. It also owns the principals → Casbin grants of each pack version.

Versions are immutable: a (name, version) holds one content hash forever. What
is stored is the *effective* pack (an extended pack already composed over its
base, see :mod:`govflow.engine.packs.compose`), so a version never changes when
its base is redeployed. One version per district is active: new cases start on
it; running cases stay on the version they started on (``govflow pack migrate``
moves them explicitly). Which version is active is read from the database and
cached for :attr:`PackRegistry.ACTIVE_TTL` seconds, so an activation or rollback
made by one process reaches every other process within that time.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from govflow.engine.access.authz import Authorizer
from govflow.engine.access.identity import Principal, from_row, grants_for, hash_token
from govflow.engine.model.clock import iso
from govflow.engine.model.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from govflow.engine.packs.loader import LoadedPack, files_to_zip, load_pack, read_zip
from govflow.engine.store.db import Delegation, PackVersion
from govflow.engine.store.db import Principal as PrincipalRow


@dataclass(frozen=True)
class VersionInfo:
    """One deployed pack version as listed by ``govflow pack list`` and ``GET /api/v1/packs``."""

    name: str
    version: str
    district: str
    content_hash: str
    active: bool
    deployed_at: dt.datetime
    deployed_by: str


class PackRegistry:
    """Compiled packs by (name, version) and the active version of each district."""

    #: seconds an active-version look-up is cached (activations by other processes show up after this)
    ACTIVE_TTL = 2.0

    def __init__(
        self,
        db: Engine,
        *,
        services: Mapping[str, Callable[..., Any]] | Callable[[Any], Mapping[str, Callable[..., Any]]] | None = None,
        available_plugins: Iterable[str] | None = None,
        calendar_factory: Callable[[str, Mapping[str, Any]], Any] | None = None,
    ) -> None:
        self._db = db
        self._services = services if callable(services) else dict(services or {})
        self._calendar_factory = calendar_factory
        self._plugins = list(available_plugins) if available_plugins is not None else None
        self._loaded: dict[tuple[str, str], LoadedPack] = {}
        self._authz: dict[tuple[str, str], Authorizer] = {}
        self._granted: dict[tuple[str, str], set[str]] = {}
        self._delegations_seen: dict[tuple[str, str], int | None] = {}
        self._active: dict[str, tuple[tuple[str, str], float]] = {}
        self._lock = threading.RLock()

    @property
    def db(self) -> Engine:
        """The database the versions are stored in."""
        return self._db

    # -- deployment ---------------------------------------------------------
    def compile(self, files: Mapping[str, bytes]) -> LoadedPack:
        """Validate and compile pack files (an ``extends`` is resolved against the deployed versions)."""
        return load_pack(
            files,
            services=self._services,
            available_plugins=self._plugins,
            resolve_base=self.resolve_base,
            calendar_factory=self._calendar_factory,
        )

    def deploy(self, pack: LoadedPack, *, actor: str, now: dt.datetime, activate: bool = True) -> bool:
        """Store a validated pack version; returns False if this exact version was already there.

        The same (name, version) with different content is refused: versions are immutable.
        """
        name, version = pack.key
        with self._db.begin() as conn:
            row = conn.execute(
                select(PackVersion.content_hash).where(PackVersion.name == name, PackVersion.version == version)
            ).first()
            if row is not None and row.content_hash != pack.content_hash:
                raise Conflict(
                    f"pack {name} {version} is already deployed with different content; give the new content a new version",
                    pack=name,
                    version=version,
                )
            created = row is None
            if created:
                conn.execute(
                    PackVersion.__table__.insert().values(
                        name=name,
                        version=version,
                        district=pack.manifest.district,
                        content_hash=pack.content_hash,
                        archive=files_to_zip(pack.files),
                        active=False,
                        deployed_at=now,
                        deployed_by=actor,
                    )
                )
            if activate:
                conn.execute(
                    update(PackVersion).where(PackVersion.district == pack.manifest.district).values(active=False)
                )
                conn.execute(
                    update(PackVersion)
                    .where(PackVersion.name == name, PackVersion.version == version)
                    .values(active=True)
                )
        with self._lock:
            self._loaded[pack.key] = pack
            if activate:
                self._active[pack.manifest.district] = (pack.key, time.monotonic())
        return created

    def activate(self, name: str, version: str) -> LoadedPack:
        """Make a deployed version the active one of its district (new cases start on it)."""
        pack = self.get(name, version)
        district = pack.manifest.district
        with self._db.begin() as conn:
            conn.execute(update(PackVersion).where(PackVersion.district == district).values(active=False))
            conn.execute(
                update(PackVersion).where(PackVersion.name == name, PackVersion.version == version).values(active=True)
            )
        with self._lock:
            self._active[district] = (pack.key, time.monotonic())
        return pack

    def rollback(self, district: str) -> LoadedPack:
        """Re-activate the version of ``district`` deployed just before the active one.

        Running cases are not touched (each finishes on its own version).
        """
        versions = [v for v in self.versions() if v.district == district]
        current = next((i for i, v in enumerate(versions) if v.active), None)
        if current is None:
            raise NotFound(f"no active process pack for district {district!r}", district=district)
        if current == 0:
            raise InvalidInput(
                f"{versions[0].name} {versions[0].version} is the first version deployed for {district}; there is nothing to roll back to",
                district=district,
            )
        previous = versions[current - 1]
        return self.activate(previous.name, previous.version)

    def versions(self, district: str | None = None) -> list[VersionInfo]:
        """Every deployed version, oldest first (optionally of one district)."""
        query = select(
            PackVersion.name,
            PackVersion.version,
            PackVersion.district,
            PackVersion.content_hash,
            PackVersion.active,
            PackVersion.deployed_at,
            PackVersion.deployed_by,
        ).order_by(PackVersion.id)
        if district:
            query = query.where(PackVersion.district == district)
        with self._db.connect() as conn:
            return [VersionInfo(*row) for row in conn.execute(query)]

    def archive(self, name: str, version: str) -> bytes:
        """The stored zip of a version (the effective pack: what its cases run)."""
        with self._db.connect() as conn:
            archive = conn.execute(
                select(PackVersion.archive).where(PackVersion.name == name, PackVersion.version == version)
            ).scalar()
        if archive is None:
            raise NotFound(f"pack {name} {version} is not deployed", pack=name, version=version)
        return archive

    def resolve_base(self, name: str, version: str | None) -> Mapping[str, bytes]:
        """The effective files of a base pack for ``extends``: a pinned version, else the
        active version of that name, else its newest deployed version."""
        if version is None:
            candidates = [v for v in self.versions() if v.name == name]
            if not candidates:
                raise LookupError(f"pack {name} is not deployed; deploy the base pack first")
            chosen = next((v for v in candidates if v.active), candidates[-1])
            version = chosen.version
        try:
            return self.get(name, version).files
        except NotFound:
            raise LookupError(f"pack {name} {version} is not deployed; deploy the base pack first") from None

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
                    archive = conn.execute(
                        select(PackVersion.archive).where(PackVersion.name == name, PackVersion.version == version)
                    ).scalar()
                if archive is None:
                    raise NotFound(f"pack {name} {version} is not deployed", pack=name, version=version)
                pack = self._loaded[key] = self.compile(read_zip(archive))
        return pack

    def active(self, district: str | None = None) -> LoadedPack:
        """The active pack of ``district`` (or the only district, when there is one)."""
        now = time.monotonic()
        with self._lock:
            if district is None and len(self._active) == 1:
                district = next(iter(self._active))
            cached = self._active.get(district or "")
        key = cached[0] if cached is not None and now - cached[1] < self.ACTIVE_TTL else None
        if key is None:
            with self._db.connect() as conn:
                query = select(PackVersion.name, PackVersion.version, PackVersion.district).where(
                    PackVersion.active.is_(True)
                )
                if district:
                    query = query.where(PackVersion.district == district)
                rows = conn.execute(query).all()
            if len(rows) != 1:
                what = f"district {district!r}" if district else "this deployment (name the district)"
                raise NotFound(f"no active process pack for {what}", district=district)
            key = (rows[0].name, rows[0].version)
            with self._lock:
                self._active[rows[0].district] = (key, now)
        return self.get(*key)

    def districts(self) -> list[str]:
        with self._db.connect() as conn:
            return sorted(conn.execute(select(PackVersion.district).where(PackVersion.active.is_(True))).scalars())

    # -- principals and authorization -----------------------------------------
    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthenticated("a bearer token is required")
        with self._db.connect() as conn:
            row = conn.execute(
                select(PrincipalRow).where(PrincipalRow.token_hash == hash_token(token), PrincipalRow.active.is_(True))
            ).first()
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
                principals = [
                    from_row(r) for r in conn.execute(select(PrincipalRow).where(PrincipalRow.active.is_(True)))
                ]
            grants = [g for p in principals for g in grants_for(p, catalogs)]
            if key not in self._authz:
                self._authz[key] = pack.new_authorizer(grants)
                self._delegations_seen[key] = None
            else:
                self._authz[key].set_grants(grants)
            self._granted[key] = {p.id for p in principals}
            if principal is not None:
                self._granted[key].add(principal.id)  # known now, even if it holds no grant
            return self._authz[key]

    def refresh_delegations(self, pack: LoadedPack, authz: Authorizer | None = None) -> None:
        """Load the district's delegations into the enforcer if any were granted since the last load.

        One indexed query (the newest delegation id); other processes' grants are
        seen on the next call-out this way.
        """
        authz = authz or self.authorizer(pack)
        district = pack.catalog.district
        with self._db.connect() as conn:
            newest = conn.execute(select(func.max(Delegation.id)).where(Delegation.district == district)).scalar()
            if self._delegations_seen.get(pack.key, -1) == newest:
                return
            rows = conn.execute(select(Delegation).where(Delegation.district == district)).all()
        authz.set_delegations(
            (f"{district}/{r.street}", r.matter_pattern, r.department, iso(r.expires_at), str(r.id)) for r in rows
        )
        self._delegations_seen[pack.key] = newest

    def refresh_grants(self) -> None:
        """Forget cached grants (after principals changed)."""
        with self._lock:
            for key in self._granted:
                self._granted[key] = set()
