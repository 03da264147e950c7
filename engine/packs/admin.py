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
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from govflow.engine.access.control import AccessControl
from govflow.engine.access.identity import Principal
from govflow.engine.model.errors import NotFound, PackError, PackIssue, PermissionDenied
from govflow.engine.model.yaml_text import load_yaml
from govflow.engine.packs.compose import parse_extends
from govflow.engine.packs.loader import LoadedPack, read_zip
from govflow.engine.packs.registry import PackRegistry, VersionInfo

#: the Casbin actions of pack administration, in the order a page offers them
PACK_ACTIONS = ("read_packs", "deploy_pack", "activate_pack")


@dataclass(frozen=True)
class Validation:
    """The outcome of validating a pack without storing it: the compiled pack, or every issue."""

    valid: bool
    message: str
    issues: list[PackIssue] = field(default_factory=list)
    pack: LoadedPack | None = None


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

    def permissions(self, principal: Principal) -> dict[str, list[str]]:
        """Which pack actions ``principal`` holds, by district (districts with an active pack)."""
        held: dict[str, list[str]] = {}
        for district in self.registry.districts():
            actions = []
            for action in PACK_ACTIONS:
                try:
                    self.authorize(principal, district, action)
                except PermissionDenied:
                    continue
                actions.append(action)
            held[district] = actions
        return held

    def deploy_archive(
        self,
        principal: Principal,
        archive: bytes,
        *,
        now: dt.datetime,
        activate: bool = True,
        if_latest: str | None = None,
    ) -> tuple[LoadedPack, bool]:
        """Validate an uploaded zip (bounded, see :func:`~govflow.engine.packs.loader.read_zip`) and store it.

        Returns the pack and whether the version is new. The principal needs
        ``deploy_pack`` (and ``activate_pack`` to activate) in the pack's district.
        ``if_latest``: store it only while the pack's newest deployed version is that one
        (:class:`~govflow.engine.model.errors.Conflict` otherwise: someone deployed since).
        """
        # authorization first: a caller who may deploy nowhere learns nothing of the upload (no
        # validation report); the pack's own district is checked once the upload names it
        if principal.district is None:
            raise PermissionDenied(f"{principal.id} may not deploy_pack", principal=principal.id, action="deploy_pack")
        self.authorize(principal, principal.district, "deploy_pack")
        pack = self.registry.compile(read_zip(archive))
        self.authorize(principal, pack.manifest.district, "deploy_pack")
        if activate:
            self.authorize(principal, pack.manifest.district, "activate_pack")
        created = self.registry.deploy(pack, actor=principal.id, now=now, activate=activate, if_latest=if_latest)
        return pack, created

    def validate_archive(self, principal: Principal, archive: bytes) -> Validation:
        """Validate an uploaded zip exactly as :meth:`deploy_archive` would, and store nothing.

        For editors that check a draft while it is written. The principal needs
        ``deploy_pack`` in the pack's district (from its ``pack.yaml``, or its base's when it
        extends one), checked *before* the pack is compiled; when the archive names no
        district, in at least one district. An archive that cannot be read at all raises
        :class:`PackError`; a pack that does not validate is a result with its issues.
        """
        files = read_zip(archive)
        district = self._district_of(files)
        if district is not None:
            self.authorize(principal, district, "deploy_pack")
        elif not any("deploy_pack" in actions for actions in self.permissions(principal).values()):
            raise PermissionDenied(f"{principal.id} may not deploy packs in any district", principal=principal.id)
        try:
            pack = self.registry.compile(files)
        except PackError as exc:
            return Validation(False, exc.message, list(exc.issues))
        m = pack.manifest
        return Validation(True, f"ok: {m.name} {m.version} ({m.district})", [], pack)

    def _district_of(self, files: Mapping[str, bytes]) -> str | None:
        """The district an uploaded pack is for: its ``pack.yaml``'s, else its base's (None if neither says)."""
        try:
            raw = load_yaml(files.get("pack.yaml", b"").decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError):
            return None
        if not isinstance(raw, dict):
            return None
        if raw.get("district"):
            return str(raw["district"])
        ref = parse_extends(raw.get("extends"))
        if ref is None:
            return None
        try:
            base = load_yaml(self.registry.resolve_base(ref.name, ref.version)["pack.yaml"].decode("utf-8"))
        except (LookupError, PackError, UnicodeDecodeError, yaml.YAMLError):
            return None
        return str(base["district"]) if isinstance(base, dict) and base.get("district") else None

    def read_version(self, principal: Principal, name: str, version: str) -> LoadedPack:
        """A deployed version, if ``principal`` may read its district's packs.

        Otherwise it is answered exactly like a version that was never deployed
        (404): a caller who may not read a district's packs learns nothing of them.
        """
        try:
            pack = self.registry.get(name, version)
            self.authorize(principal, pack.manifest.district, "read_packs")
        except PermissionDenied:
            raise NotFound(f"pack {name} {version} is not deployed", pack=name, version=version) from None
        return pack

    def activate(self, principal: Principal, name: str, version: str) -> LoadedPack:
        """Activate a version: 404 unless ``principal`` may read it, 403 if it may read but not activate."""
        pack = self.read_version(principal, name, version)
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
        "files": [
            {"path": n, "bytes": len(b), "sha256": hashlib.sha256(b).hexdigest(), "origin": origins.get(n, "own")}
            for n, b in sorted(pack.files.items())
        ],
        "processes": sorted(pack.diagrams.specs),
        "decisions": pack.decisions.ids if pack.decisions else [],
        "units": len(pack.catalog.units),
        "streets": list(pack.catalog.streets),
        "matters": len(pack.catalog.matters),
        "responsibility_entries": len(pack.responsibility) if pack.responsibility else 0,
    }
