"""Where simulated reports happen: a point inside the street's boundary and a place name of it.

Points are drawn inside the street's bounding box of ``boundaries.geojson`` until the pack's own
territory (the one dispatch uses) places them in that street; the name is a place of the
gazetteer that lies in that street only (else the street's name), so a report reads like one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from govflow.engine.packs.loader import LoadedPack

TRIES = 200


class Places:
    def __init__(self, pack: LoadedPack) -> None:
        self.pack = pack
        self.boxes: dict[str, tuple[float, float, float, float]] = {}
        try:
            features = json.loads(pack.files.get("boundaries.geojson", b"{}")).get("features") or []
        except ValueError:
            features = []
        for feature in features:
            code = (feature.get("properties") or {}).get("code")
            points = list(_points((feature.get("geometry") or {}).get("coordinates")))
            if code and points:
                lngs, lats = [p[0] for p in points], [p[1] for p in points]
                self.boxes[code] = (min(lats), max(lats), min(lngs), max(lngs))
        self.names: dict[str, list[str]] = {}
        if pack.gazetteer is not None:
            for place in pack.gazetteer.places.values():
                if len(place.streets) == 1:
                    self.names.setdefault(place.streets[0], []).append(place.name)

    def point(self, street: str, rng: random.Random) -> tuple[str, float | None, float | None]:
        """(place name, lat, lng) in ``street``; no coordinates when the boundary cannot be sampled."""
        names = self.names.get(street)
        unit = self.pack.catalog.unit(street)
        name = rng.choice(names) if names else (unit.name if unit else street)
        box = self.boxes.get(street)
        if box is None:
            return name, None, None
        for _ in range(TRIES):
            lat, lng = rng.uniform(box[0], box[1]), rng.uniform(box[2], box[3])
            if self.pack.territory.locate(lat, lng) == street:
                return name, round(lat, 6), round(lng, 6)
        return name, None, None


def _points(coordinates: Any) -> Iterator[tuple[float, float]]:
    """Every (lng, lat) of a (Multi)Polygon's coordinate arrays."""
    if (
        isinstance(coordinates, list)
        and len(coordinates) >= 2
        and all(isinstance(c, int | float) for c in coordinates[:2])
    ):
        yield float(coordinates[0]), float(coordinates[1])
    elif isinstance(coordinates, list):
        for item in coordinates:
            yield from _points(item)


__all__ = ["Places"]
