"""A pack's catalog: the district, its org units, its matters, its territory.

``catalog.yaml`` lists the units (command centre, streets 街镇, departments
职能部门) and the matters (事项: stable dotted codes such as ``road.pothole``,
Chinese names, keywords, tier). ``boundaries.geojson`` gives each street's
territory; :class:`Territory` answers "which street owns this point" with a
shapely STRtree (point-in-polygon, boundary points included).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry import Point, shape
from shapely.strtree import STRtree

from govflow.engine.model.errors import PackIssue

# YAML is read one way everywhere: safe, no anchors or aliases, bounded nesting (model/yaml_text.py)
from govflow.engine.model.yaml_text import SAFE_LOADER, load_yaml  # noqa: F401  (re-exported)

UNIT_KINDS = ("command_centre", "street", "department", "responsibility_meeting", "city")
#: units whose staff act district-wide (the command centre, the standing responsibility meeting
#: 长效责任联席会议, the city level above the district that escalations reach)
DISTRICT_WIDE_KINDS = ("command_centre", "responsibility_meeting", "city")

from govflow.engine.model.limits import TIERS  # noqa: E402  (one definition: limits)

_CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")

#: the role that acts for a unit of each kind when a task is assigned to the unit
ROLE_FOR_KIND = {
    "street": "street_dispatcher",
    "command_centre": "cc_supervisor",
    "department": "department_handler",
    "responsibility_meeting": "responsibility_meeting",
    "city": "city_supervisor",
}


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    kind: str


@dataclass(frozen=True)
class Matter:
    """A matter (事项) of the catalog."""

    code: str
    name: str
    tier: str
    keywords: tuple[str, ...] = ()


@dataclass
class Catalog:
    district: str
    district_name: str
    units: dict[str, Unit]
    matters: dict[str, Matter]
    command_centre: str = ""
    streets: tuple[str, ...] = field(default=())

    def unit(self, code: str) -> Unit | None:
        return self.units.get(code)

    def unit_of_kind(self, kind: str) -> str | None:
        """The first unit of ``kind`` (the standing meeting, the city), or None if the catalog has none."""
        return next((u.code for u in self.units.values() if u.kind == kind), None)

    def domain_of(self, unit_code: str | None) -> str:
        """The Casbin domain of a unit: ``<district>/<unit code>``."""
        return f"{self.district}/{unit_code or self.command_centre}"


def parse_catalog(data: Any, filename: str = "catalog.yaml") -> tuple[Catalog | None, list[PackIssue]]:
    issues: list[PackIssue] = []

    def bad(msg: str) -> None:
        issues.append(PackIssue(filename, msg))

    if not isinstance(data, dict):
        return None, [PackIssue(filename, "must be a mapping with district, units and matters")]
    district = data.get("district") or {}
    if not isinstance(district, dict) or not district.get("code"):
        bad("district: needs a code and a name")
        return None, issues
    units: dict[str, Unit] = {}
    for index, raw in enumerate(data.get("units") or []):
        if not isinstance(raw, dict) or not all(raw.get(k) for k in ("code", "name", "kind")):
            bad(f"units[{index}]: needs code, name and kind")
            continue
        code = str(raw["code"])
        if not _CODE.match(code):
            bad(f"units[{index}]: code {code!r} must be lower-case dotted ascii")
        if raw["kind"] not in UNIT_KINDS:
            bad(f"units[{index}] ({code}): kind must be one of {', '.join(UNIT_KINDS)}")
        if code in units:
            bad(f"units[{index}]: duplicate unit code {code!r}")
        units[code] = Unit(code, str(raw["name"]), str(raw["kind"]))
    matters: dict[str, Matter] = {}
    for index, raw in enumerate(data.get("matters") or []):
        if not isinstance(raw, dict) or not all(raw.get(k) for k in ("code", "name", "tier")):
            bad(f"matters[{index}]: needs code, name and tier")
            continue
        code = str(raw["code"])
        if not _CODE.match(code) or "." not in code:
            bad(f"matters[{index}]: code {code!r} must be dotted lower-case ascii like road.pothole")
        if raw["tier"] not in TIERS:
            bad(f"matters[{index}] ({code}): tier must be one of {', '.join(TIERS)}")
        if code in matters:
            bad(f"matters[{index}]: duplicate matter code {code!r}")
        keywords = tuple(str(k) for k in raw.get("keywords") or ())
        matters[code] = Matter(code, str(raw["name"]), str(raw["tier"]), keywords)
    centres = [u.code for u in units.values() if u.kind == "command_centre"]
    if len(centres) != 1:
        bad(f"exactly one command_centre unit is required, found {len(centres)}")
    streets = tuple(sorted(u.code for u in units.values() if u.kind == "street"))
    if not streets:
        bad("at least one street unit is required")
    if not matters:
        bad("at least one matter is required")
    if issues:
        return None, issues
    return Catalog(
        str(district["code"]), str(district.get("name", district["code"])), units, matters, centres[0], streets
    ), []


class Territory:
    """Street territories; ``locate`` maps a point to the street that contains it."""

    def __init__(self, polygons: dict[str, Any]) -> None:
        self._codes = list(polygons)
        self._geoms = [polygons[c] for c in self._codes]
        for geom in self._geoms:
            shapely.prepare(geom)
        self._tree = STRtree(self._geoms)

    def locate(self, lat: float, lng: float) -> str | None:
        hits = self._tree.query(Point(lng, lat), predicate="intersects")
        if len(hits) == 0:
            return None
        return min(self._codes[i] for i in hits)

    @property
    def codes(self) -> list[str]:
        return list(self._codes)


def parse_boundaries(
    content: bytes, catalog: Catalog, filename: str = "boundaries.geojson"
) -> tuple[Territory | None, list[PackIssue]]:
    issues: list[PackIssue] = []
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, [PackIssue(filename, f"not valid JSON: {exc}")]
    except RecursionError:
        return None, [PackIssue(filename, "not valid JSON: nested too deep")]
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        return None, [PackIssue(filename, "must be a GeoJSON FeatureCollection")]
    features = data.get("features") or []
    if not isinstance(features, list):
        return None, [PackIssue(filename, "features must be a list of GeoJSON features")]
    polygons: dict[str, Any] = {}
    for index, feature in enumerate(features):
        if not isinstance(feature, dict) or not isinstance(feature.get("properties") or {}, dict):
            issues.append(PackIssue(filename, f"features[{index}]: must be a GeoJSON feature with properties"))
            continue
        props = feature.get("properties") or {}
        code = props.get("code")
        if not isinstance(code, str) or (unit := catalog.unit(code)) is None or unit.kind != "street":
            issues.append(
                PackIssue(filename, f"features[{index}]: properties.code {code!r} is not a street of the catalog")
            )
            continue
        try:
            geom = shape(feature["geometry"])
        except Exception as exc:  # shapely raises several types for bad geometry
            issues.append(PackIssue(filename, f"features[{index}] ({code}): bad geometry: {exc}"))
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon") or not geom.is_valid:
            issues.append(PackIssue(filename, f"features[{index}] ({code}): geometry must be a valid (Multi)Polygon"))
            continue
        if code in polygons:
            issues.append(PackIssue(filename, f"features[{index}]: street {code} appears twice"))
        polygons[code] = geom
    for street in catalog.streets:
        if street not in polygons:
            issues.append(PackIssue(filename, f"street {street} has no boundary"))
    if issues:
        return None, issues
    return Territory(polygons), []
