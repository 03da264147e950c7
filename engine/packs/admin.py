"""Pack administration by a principal (the API's door): deploy, activate, roll back, read.

Who may act on a district's packs is decided by Casbin under the district's
**currently active** pack — never by the pack being uploaded, which could
otherwise grant itself the power. Actions (rows of ``policies/policy.csv``):
``read_packs``, ``deploy_pack``, ``activate_pack`` in the domain of the
district's command centre (the reference pack grants them to
``district_supervisor``). A district with no active pack yet is set up by an
operator through the CLI (``govflow pack deploy``), which is trusted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from govflow.engine.access.control import AccessControl
from govflow.engine.access.identity import Principal
from govflow.engine.model.errors import NotFound, PermissionDenied
from govflow.engine.packs.loader import LoadedPack, read_zip
from govflow.engine.packs.registry import PackRegistry, VersionInfo


class PackAdmin:
    """Pack administration by a principal: every action checked by Casbin first."""

    def __init__(self, registry: PackRegistry, access: AccessControl) -> None:
        self.registry = registry
        self.access = access

    def authorize(self, principal: Principal, district: str, action: str) -> None:
        """Raise :class:`PermissionDenied` unless ``principal`` may ``action`` the packs of ``district``."""
        try:
            active = self.registry.active(district)
        except NotFound:
            raise PermissionDenied(
                f"district {district} has no active pack: its first pack is deployed by an operator (govflow pack deploy)",
                district=district,
                action=action,
            ) from None
        domain = active.catalog.domain_of(None)
        if not self.access.authorizer(active, principal).allowed(principal.id, domain, action):
            raise PermissionDenied(
                f"{principal.id} may not {action} in {domain}", principal=principal.id, action=action, domain=domain
            )

    def visible_versions(self, principal: Principal) -> list[VersionInfo]:
        """The deployed versions of the districts whose packs ``principal`` may read."""
        allowed: dict[str, bool] = {}
        out = []
        for info in self.registry.versions():
            if info.district not in allowed:
                try:
                    self.authorize(principal, info.district, "read_packs")
                    allowed[info.district] = True
                except PermissionDenied:
                    allowed[info.district] = False
            if allowed[info.district]:
                out.append(info)
        return out

    def deploy_archive(
        self, principal: Principal, archive: bytes, *, now: dt.datetime, activate: bool = True
    ) -> tuple[LoadedPack, bool]:
        """Validate an uploaded zip (bounded, see :func:`~govflow.engine.packs.loader.read_zip`) and store it.

        Returns the pack and whether the version is new. The principal needs
        ``deploy_pack`` (and ``activate_pack`` to activate) in the pack's district.
        """
        pack = self.registry.compile(read_zip(archive))
        self.authorize(principal, pack.manifest.district, "deploy_pack")
        if activate:
            self.authorize(principal, pack.manifest.district, "activate_pack")
        created = self.registry.deploy(pack, actor=principal.id, now=now, activate=activate)
        return pack, created

    def read_version(self, principal: Principal, name: str, version: str) -> LoadedPack:
        """A deployed version, if ``principal`` may read its district's packs."""
        pack = self.registry.get(name, version)
        self.authorize(principal, pack.manifest.district, "read_packs")
        return pack

    def activate(self, principal: Principal, name: str, version: str) -> LoadedPack:
        pack = self.registry.get(name, version)
        self.authorize(principal, pack.manifest.district, "activate_pack")
        return self.registry.activate(name, version)

    def rollback(self, principal: Principal, district: str) -> LoadedPack:
        self.authorize(principal, district, "activate_pack")
        return self.registry.rollback(district)


def describe(pack: LoadedPack) -> dict[str, object]:
    """The effective pack at a glance (``govflow pack show``, ``GET /api/v1/packs/{name}/{version}``)."""
    m = pack.manifest
    origins: Mapping[str, str] = (m.composition or {}).get("files") or {}
    return {
        "name": m.name,
        "version": m.version,
        "district": m.district,
        "process": m.process,
        "description": m.description,
        "content_hash": pack.content_hash,
        "plugins": list(m.plugins),
        "disabled_plugins": list(m.disabled_plugins),
        "settings": dict(m.settings),
        "extends": dict((m.composition or {}).get("base") or {}) or None,
        "files": [{"path": n, "bytes": len(b), "origin": origins.get(n, "own")} for n, b in sorted(pack.files.items())],
        "processes": sorted(pack.diagrams.specs),
        "decisions": pack.decisions.ids if pack.decisions else [],
        "units": len(pack.catalog.units),
        "streets": list(pack.catalog.streets),
        "matters": len(pack.catalog.matters),
        "responsibility_entries": len(pack.responsibility) if pack.responsibility else 0,
    }
