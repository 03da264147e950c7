"""govflow-zone-routing: route cases inside special management zones to the zone's office.

A govflow plugin needs nothing but ``from govflow.plugins import hookimpl`` and an
entry point in the ``govflow`` group (see pyproject.toml). govflow asks this
plugin only for packs that enable it (``plugins: [zone_routing]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shapely.geometry import Point, Polygon

from govflow.plugins import PackView, hookimpl

Zone = tuple[str, Polygon, tuple[str, ...]]


def zones(pack: PackView) -> list[Zone]:
    """The pack's zones as (unit, polygon, matter patterns), parsed once per pack version.

    Kept in the pack's cache (``pack.cache``), never in a module global.
    Raises ``ValueError`` naming the zone when the settings are malformed (govflow
    records the failure on the case and sends it to the command centre).
    """
    return pack.cache("zone_routing.zones", lambda: _parse_zones(pack))


def _parse_zones(pack: PackView) -> list[Zone]:
    parsed = []
    for index, raw in enumerate((pack.settings.get("zone_routing") or {}).get("zones") or ()):
        unit = raw.get("unit") if isinstance(raw, Mapping) else None
        if unit not in pack.catalog.units:
            raise ValueError(f"settings.zone_routing.zones[{index}]: unit {unit!r} is not in the catalog")
        polygon = Polygon(raw.get("polygon") or [])
        if not polygon.is_valid or polygon.area == 0:
            raise ValueError(
                f"settings.zone_routing.zones[{index}] ({unit}): polygon must be a valid ring of [lng, lat] points"
            )
        parsed.append((unit, polygon, tuple(raw.get("matters") or ())))
    return parsed


def _covers(patterns: tuple[str, ...], matter: str | None) -> bool:
    if not patterns:
        return True
    if matter is None:
        return False
    return any(p == matter or (p.endswith(".*") and matter.startswith(p[:-1])) for p in patterns)


@hookimpl
def govflow_route(pack: PackView, report: Any, matter: str | None, street: str | None) -> str | None:
    """The zone office when the report lies inside one of the pack's zones; otherwise defer."""
    if report.lat is None or report.lng is None:
        return None
    point = Point(report.lng, report.lat)
    for unit, polygon, patterns in zones(pack):
        if polygon.covers(point) and _covers(patterns, matter):
            return unit
    return None
