"""Access control: who is calling (authentication) and what Casbin lets them do.

:class:`AccessControl` owns, per process:

* **authentication**: a bearer token → the active principal it belongs to
  (tokens are stored hashed, see :mod:`govflow.engine.access.identity`);
* **grants**: each pack version's Casbin enforcer with the ``g`` rows of every
  active principal (their roles in the domains of their units). Grants take
  effect at once, in every process: authentication reads the caller's row on
  every request (a revoked principal or a replaced token is refused there),
  and the enforcer remembers which unit, roles and district it granted each
  principal; a caller whose current row differs (a role taken away, a move to
  another unit) or whom it has not seen makes it reload every grant from the
  database before deciding. No process holds a stale grant beyond the request
  that reveals it, with no version to poll and no restart. Timers act as the
  system and decide nothing by a principal's grants. :meth:`refresh_grants`
  drops every enforcer's grants in this process (after a bulk change);
* **delegations**: the district's delegated call-out powers (``p2`` rows),
  reloaded when a newer delegation exists in the database.

Enforcers are kept in an application-owned :class:`~govflow.engine.cache.Cache`
(one build per pack version at a time); grant and delegation updates of one
enforcer are serialised by a lock of that enforcer's entry, never a global one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from govflow.engine.access.authz import Authorizer
from govflow.engine.access.identity import Principal, from_row, grants_for, hash_token
from govflow.engine.cache import Cache, Caches
from govflow.engine.model.catalog import Catalog
from govflow.engine.model.clock import iso
from govflow.engine.model.errors import Unauthenticated
from govflow.engine.packs.loader import LoadedPack
from govflow.engine.store.db import Delegation
from govflow.engine.store.db import Principal as PrincipalRow


@dataclass
class _Enforcer:
    """One pack version's enforcer and what it was last loaded with."""

    authz: Authorizer
    #: principal id -> what its grants were derived from (see _signature)
    granted: dict[str, tuple[object, ...]] = field(default_factory=dict)
    delegations_seen: int | None = -1
    lock: threading.Lock = field(default_factory=threading.Lock)


class AccessControl:
    """Authentication, Casbin grants and delegations for every pack version of a process."""

    def __init__(self, db: Engine, *, catalogs: Callable[[], Iterable[Catalog]], caches: Caches | None = None) -> None:
        self.db = db
        self._catalogs = catalogs
        self._enforcers: Cache[tuple[str, str], _Enforcer] = (caches or Caches()).cache(
            "access.enforcers", max_entries=256
        )

    # -- authentication -----------------------------------------------------------
    def authenticate(self, token: str | None) -> Principal:
        """The active principal of a bearer token; Unauthenticated otherwise."""
        if not token:
            raise Unauthenticated("a bearer token is required")
        with self.db.connect() as conn:
            row = conn.execute(
                select(PrincipalRow).where(PrincipalRow.token_hash == hash_token(token), PrincipalRow.active.is_(True))
            ).first()
        if row is None:
            raise Unauthenticated("unknown or revoked token")
        return from_row(row)

    # -- grants ---------------------------------------------------------------------
    def authorizer(self, pack: LoadedPack, principal: Principal | None = None) -> Authorizer:
        """The pack version's enforcer, with grants current for ``principal``."""
        entry = self._enforcers.get(pack.key, lambda: self._new(pack))
        if principal is None:
            return entry.authz
        current = _signature(principal)
        if entry.granted.get(principal.id) == current:
            return entry.authz
        with entry.lock:
            if entry.granted.get(principal.id) != current:  # unseen, or changed since the grants were loaded
                self._grant(entry)
                entry.granted[principal.id] = current  # known now, even if it holds no grant
        return entry.authz

    def _new(self, pack: LoadedPack) -> _Enforcer:
        entry = _Enforcer(pack.new_authorizer([]))
        self._grant(entry)
        return entry

    def _grant(self, entry: _Enforcer) -> None:
        catalogs = list(self._catalogs())
        with self.db.connect() as conn:
            principals = [from_row(r) for r in conn.execute(select(PrincipalRow).where(PrincipalRow.active.is_(True)))]
        entry.authz.set_grants([g for p in principals for g in grants_for(p, catalogs)])
        entry.granted = {p.id: _signature(p) for p in principals}

    def refresh_grants(self) -> None:
        """Reload every enforcer's grants on its next use (after principals changed)."""
        for key in self._enforcers.keys():
            entry = self._enforcers.peek(key)
            if entry is not None:
                with entry.lock:
                    entry.granted = {}

    # -- delegations ------------------------------------------------------------------
    def refresh_delegations(self, pack: LoadedPack, authz: Authorizer | None = None) -> None:
        """Load the district's delegations into the enforcer if any were granted since the last load.

        One indexed query (the newest delegation id); other processes' grants are
        seen on the next call-out this way.
        """
        entry = self._enforcers.get(pack.key, lambda: self._new(pack))
        district = pack.catalog.district
        with self.db.connect() as conn:
            newest = conn.execute(select(func.max(Delegation.id)).where(Delegation.district == district)).scalar()
            if entry.delegations_seen == newest:
                return
            rows = conn.execute(select(Delegation).where(Delegation.district == district)).all()
        with entry.lock:
            entry.authz.set_delegations(
                (f"{district}/{r.street}", r.matter_pattern, r.department, iso(r.expires_at), str(r.id)) for r in rows
            )
            entry.delegations_seen = newest


def _signature(principal: Principal) -> tuple[object, ...]:
    """What a principal's grants are derived from: a change in any of these changes its grants."""
    return (principal.district, principal.unit, tuple(sorted(principal.roles)))


__all__ = ["AccessControl"]
