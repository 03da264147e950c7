"""Principals: who is calling, with which unit and roles.

A bearer token maps to one principal. Tokens are stored as SHA-256 digests
only. Principals are created from a YAML file (``govflow principals load``; the
reference pack ships ``policies/demo-principals.yaml``), never from code.

Each role a principal holds becomes a Casbin grant in a domain derived from its
unit: a street or department acts in ``<district>/<unit>``; the command centre
(and any system principal bound to it) in ``<district>/*``; a principal without
a unit (a citizen) in ``*``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from govflow.engine.access.authz import Grant
from govflow.engine.model.catalog import DISTRICT_WIDE_KINDS, Catalog, load_yaml
from govflow.engine.model.errors import InvalidInput
from govflow.engine.store.db import Principal as PrincipalRow

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ROLES = frozenset(
    {
        "citizen",
        "integrator",
        "street_dispatcher",
        "department_handler",
        "cc_supervisor",
        "district_supervisor",
        "responsibility_meeting",
        "city_supervisor",
    }
)


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    kind: str
    district: str | None
    unit: str | None
    roles: tuple[str, ...]

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def grants_for(principal: Principal, catalogs: Iterable[Catalog]) -> list[Grant]:
    """The Casbin ``g`` rows of a principal, from its unit's place in the catalogs."""
    unit_kind = None
    district = principal.district
    for catalog in catalogs:
        unit = catalog.unit(principal.unit) if principal.unit else None
        if unit is not None:
            unit_kind, district = unit.kind, catalog.district
            break
    if principal.unit is None:
        domain = "*"
    elif unit_kind in DISTRICT_WIDE_KINDS:  # the command centre, the standing meeting, the city
        domain = f"{district}/*"
    elif unit_kind is None:
        return []  # a unit no pack knows: no powers at all
    else:
        domain = f"{district}/{principal.unit}"
    return [Grant(principal.id, role, domain) for role in principal.roles]


def from_row(row: Any) -> Principal:
    return Principal(row.id, row.name, row.kind, row.district, row.unit_code, tuple(row.roles))


def parse_principals(
    text: str, catalogs: Iterable[Catalog], *, filename: str = "principals.yaml"
) -> list[tuple[Principal, str]]:
    """Validate a principals file; return (principal, token) pairs."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{filename}: invalid YAML: {exc}") from None
    catalogs = list(catalogs)
    units = {code: c.district for c in catalogs for code in c.units}
    entries = (data or {}).get("principals") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InvalidInput(f"{filename}: expected a 'principals' list")
    out: list[tuple[Principal, str]] = []
    errors: list[dict[str, Any]] = []
    seen_ids, seen_tokens = set(), set()
    for index, raw in enumerate(entries):
        loc: list[str | int] = ["principals", index]
        if not isinstance(raw, dict):
            errors.append({"loc": loc, "msg": "must be a mapping"})
            continue
        pid, token = str(raw.get("id", "")), str(raw.get("token", ""))
        roles = raw.get("roles") or []
        unit = raw.get("unit")
        if not _ID.match(pid):
            errors.append({"loc": [*loc, "id"], "msg": "id must be 1-64 ascii letters, digits, . _ -"})
        if len(token) < 8:
            errors.append({"loc": [*loc, "token"], "msg": "token must be at least 8 characters"})
        if not isinstance(roles, list) or not roles or not set(roles) <= ROLES:
            errors.append({"loc": [*loc, "roles"], "msg": f"roles must be a non-empty subset of {sorted(ROLES)}"})
            continue
        if unit is not None and unit not in units:
            errors.append({"loc": [*loc, "unit"], "msg": f"unknown unit {unit!r}"})
        if pid in seen_ids or token in seen_tokens:
            errors.append({"loc": loc, "msg": "duplicate id or token"})
        seen_ids.add(pid)
        seen_tokens.add(token)
        principal = Principal(
            pid,
            str(raw.get("name") or pid),
            str(raw.get("kind") or "person"),
            units.get(unit) if unit else None,
            unit,
            tuple(roles),
        )
        out.append((principal, token))
    if errors:
        raise InvalidInput(
            f"{filename}: {len(errors)} invalid principal entr{'y' if len(errors) == 1 else 'ies'}", errors=errors
        )
    return out


def store_principals(session: Session, entries: list[tuple[Principal, str]], now: dt.datetime) -> int:
    """Insert or update principals (by id) in one transaction; returns how many."""
    existing = {
        row.id: row
        for row in session.scalars(select(PrincipalRow).where(PrincipalRow.id.in_([p.id for p, _ in entries])))
    }
    for principal, token in entries:
        row = existing.get(principal.id)
        if row is None:
            row = PrincipalRow(id=principal.id, created_at=now)
            session.add(row)
        row.name, row.kind, row.district = principal.name, principal.kind, principal.district
        row.unit_code, row.roles, row.token_hash, row.active = (
            principal.unit,
            list(principal.roles),
            hash_token(token),
            True,
        )
    return len(entries)
