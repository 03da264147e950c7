"""Deployed pack versions in the database (``pack_versions``): the version store.

Only storage: which versions exist, their archives, and which one is active per
district. Compiling and caching live in :mod:`govflow.engine.packs.registry`;
who may act on packs in :mod:`govflow.engine.packs.admin`.

Versions are immutable: a (name, version) holds one content hash forever. One
version per district is active.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from govflow.engine.model.errors import Conflict, InvalidInput, NotFound
from govflow.engine.store.db import PackVersion


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


class VersionStore:
    """The ``pack_versions`` table."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def save(
        self,
        *,
        name: str,
        version: str,
        district: str,
        content_hash: str,
        archive: bytes,
        actor: str,
        now: dt.datetime,
        activate: bool,
        if_latest: str | None = None,
    ) -> bool:
        """Store a version (and activate it); False if this exact version was already there.

        The same (name, version) with different content is refused: versions are immutable.
        ``if_latest`` (optimistic concurrency for editors): store a new version only if the
        newest deployed version of ``name`` is still ``if_latest``; otherwise someone
        deployed another version since, and :class:`Conflict` says which.
        """
        with self.db.begin() as conn:
            row = conn.execute(
                select(PackVersion.content_hash).where(PackVersion.name == name, PackVersion.version == version)
            ).first()
            if row is not None and row.content_hash != content_hash:
                raise Conflict(
                    f"pack {name} {version} is already deployed with different content; "
                    "give the new content a new version",
                    pack=name,
                    version=version,
                )
            if row is None and if_latest is not None:
                latest = conn.execute(
                    select(PackVersion.version).where(PackVersion.name == name).order_by(PackVersion.id.desc()).limit(1)
                ).scalar()
                if latest != if_latest:
                    raise Conflict(
                        f"pack {name}: the newest deployed version is {latest or 'none'}, not {if_latest}: "
                        "another version was deployed since; start again from the newest one",
                        pack=name,
                        version=version,
                        latest=latest,
                    )
            created = row is None
            if created:
                conn.execute(
                    insert(PackVersion).values(
                        name=name,
                        version=version,
                        district=district,
                        content_hash=content_hash,
                        archive=archive,
                        active=False,
                        deployed_at=now,
                        deployed_by=actor,
                    )
                )
            if activate:
                _activate(conn, district, name, version)
        return created

    def activate(self, district: str, name: str, version: str) -> None:
        """Make a stored version the active one of its district."""
        with self.db.begin() as conn:
            _activate(conn, district, name, version)

    def versions(self, district: str | None = None) -> list[VersionInfo]:
        """Every stored version, oldest first (optionally of one district)."""
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
        with self.db.connect() as conn:
            return [VersionInfo(*row) for row in conn.execute(query)]

    def archive(self, name: str, version: str) -> bytes:
        """The stored zip of a version; NotFound if it was never deployed."""
        with self.db.connect() as conn:
            archive = conn.execute(
                select(PackVersion.archive).where(PackVersion.name == name, PackVersion.version == version)
            ).scalar()
        if archive is None:
            raise NotFound(f"pack {name} {version} is not deployed", pack=name, version=version)
        return archive

    def active(self, district: str | None) -> tuple[str, str, str]:
        """(name, version, district) of the active version of ``district`` (or of the only district)."""
        query = select(PackVersion.name, PackVersion.version, PackVersion.district).where(PackVersion.active.is_(True))
        if district:
            query = query.where(PackVersion.district == district)
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        if district is None and len(rows) > 1:
            served = ", ".join(sorted(row.district for row in rows))
            raise InvalidInput(
                f"this deployment serves several districts ({served}): name the district",
                errors=[{"loc": ["district"], "msg": f"required while several districts are served: one of {served}"}],
            )
        if len(rows) != 1:
            what = f"district {district!r}" if district else "this deployment (name the district)"
            raise NotFound(f"no active process pack for {what}", district=district)
        return rows[0].name, rows[0].version, rows[0].district

    def districts(self) -> list[str]:
        """Districts with an active version."""
        with self.db.connect() as conn:
            return sorted(conn.execute(select(PackVersion.district).where(PackVersion.active.is_(True))).scalars())


def _activate(conn: Connection, district: str, name: str, version: str) -> None:
    """The one activation statement pair: every version of the district off, this one on."""
    conn.execute(update(PackVersion).where(PackVersion.district == district).values(active=False))
    conn.execute(
        update(PackVersion).where(PackVersion.name == name, PackVersion.version == version).values(active=True)
    )


__all__ = ["VersionInfo", "VersionStore"]
