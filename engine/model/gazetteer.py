"""A pack's gazetteer (地名库): roads, communities and landmarks → the street that owns them.

``gazetteer.yaml`` (optional, district-bound like the boundaries)::

    district: gulou
    places:
      - {name: 东街口, street: gulou.dongjie, kind: landmark, aliases: [东街]}
      - {name: 八一七北路, streets: [gulou.dongjie, gulou.gudong], kind: road}

:meth:`Gazetteer.find` lists the places a text names (longest name first at each
position, so 乌山西路 is not also 乌山); :meth:`Gazetteer.locate` decides the
street when the named places agree on exactly one — a road crossing several
streets settles nothing alone, but narrows another place down — and otherwise
says why not (nothing named, or places pointing to different streets: a person
decides). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from govflow.engine.model.catalog import Catalog
from govflow.engine.model.errors import PackIssue

PLACE_KINDS = ("road", "community", "landmark", "area")
#: at most this many places per gazetteer (bounds memory and the scan)
MAX_PLACES = 20_000
#: a place name is at most this long
NAME_MAX = 32


@dataclass(frozen=True)
class Place:
    name: str
    streets: tuple[str, ...]
    kind: str


@dataclass(frozen=True)
class Located:
    """Where the places of a text point: ``street`` when they settle it, else the candidates."""

    street: str | None
    places: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return self.street is None and bool(self.places)

    def how(self) -> str:
        if self.street is not None:
            return f"places {', '.join(self.places)} -> {self.street}"
        if self.places:
            return f"places {', '.join(self.places)} point to {', '.join(self.candidates)}: a person decides"
        return "no place of the gazetteer named"


@dataclass
class Gazetteer:
    district: str
    places: dict[str, Place] = field(default_factory=dict)
    #: every name and alias -> the place's name
    names: dict[str, str] = field(default_factory=dict)
    lengths: tuple[int, ...] = ()

    def find(self, text: str | None) -> list[Place]:
        """The places named in ``text``, in order of appearance (each once); longest name wins at a position."""
        if not text or not self.names:
            return []
        found: dict[str, Place] = {}
        i, n = 0, len(text)
        while i < n:
            for length in self.lengths:
                name = self.names.get(text[i : i + length])
                if name is not None:
                    found.setdefault(name, self.places[name])
                    i += length
                    break
            else:
                i += 1
        return list(found.values())

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every place name in ``text`` (longest first at each position)."""
        out: list[tuple[int, int]] = []
        i, n = 0, len(text)
        while i < n:
            for length in self.lengths:
                if text[i : i + length] in self.names:
                    out.append((i, i + length))
                    i += length
                    break
            else:
                i += 1
        return out

    def locate(self, *texts: str | None) -> Located:
        """The street the first text naming places points to (e.g. the address, then the description)."""
        for text in texts:
            places = self.find(text)
            if places:
                return _settle(places)
        return Located(None)


def _settle(places: list[Place]) -> Located:
    names = tuple(p.name for p in places)
    common: set[str] | None = None
    for place in places:
        common = set(place.streets) if common is None else common & set(place.streets)
    if common and len(common) == 1:
        return Located(next(iter(common)), names)
    candidates = sorted(common) if common else sorted({s for p in places for s in p.streets})
    return Located(None, names, tuple(candidates))


def parse_gazetteer(
    data: Any, catalog: Catalog, filename: str = "gazetteer.yaml"
) -> tuple[Gazetteer | None, list[PackIssue]]:
    """Validate a gazetteer against the catalog: every street a street unit, names unique and short."""
    issues: list[PackIssue] = []
    if not isinstance(data, dict) or not isinstance(data.get("places"), list):
        return None, [PackIssue(filename, "must be a mapping with district and a list of places")]
    if data.get("district") != catalog.district:
        issues.append(PackIssue(filename, f"district {data.get('district')!r} differs from the catalog's"))
    raw_places = data["places"]
    if len(raw_places) > MAX_PLACES:
        return None, [PackIssue(filename, f"{len(raw_places)} places; at most {MAX_PLACES}")]
    gaz = Gazetteer(catalog.district)
    for index, raw in enumerate(raw_places):
        where = f"places[{index}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
            issues.append(PackIssue(filename, f"{where}: needs a name"))
            continue
        name = raw["name"].strip()
        streets = raw.get("streets") if "streets" in raw else [raw.get("street")]
        if not isinstance(streets, list) or not streets:
            issues.append(PackIssue(filename, f"{where} ({name}): needs street or streets"))
            continue
        bad = [s for s in streets if s not in catalog.streets]
        if bad:
            issues.append(PackIssue(filename, f"{where} ({name}): {bad} not streets of the catalog"))
            continue
        kind = str(raw.get("kind", "landmark"))
        if kind not in PLACE_KINDS:
            issues.append(PackIssue(filename, f"{where} ({name}): kind must be one of {', '.join(PLACE_KINDS)}"))
        aliases = raw.get("aliases") or []
        if not isinstance(aliases, list):
            issues.append(PackIssue(filename, f"{where} ({name}): aliases must be a list"))
            aliases = []
        for alias in [name, *map(str, aliases)]:
            if len(alias) > NAME_MAX or not alias:
                issues.append(PackIssue(filename, f"{where}: name {alias!r} must be 1 to {NAME_MAX} characters"))
            elif alias in gaz.names:
                issues.append(PackIssue(filename, f"{where}: {alias!r} is named twice"))
            else:
                gaz.names[alias] = name
        gaz.places[name] = Place(name, tuple(str(s) for s in streets), kind)
    if issues:
        return None, issues
    gaz.lengths = tuple(sorted({len(n) for n in gaz.names}, reverse=True))
    return gaz, []


def empty(district: str) -> Gazetteer:
    """The gazetteer of a pack that has none: names nothing."""
    return Gazetteer(district)


__all__ = ["Gazetteer", "Located", "Place", "empty", "parse_gazetteer"]
