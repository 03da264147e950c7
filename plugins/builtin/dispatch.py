"""Built-in smart dispatch (智能派遣): keyword classification, point-in-polygon, territorial owner.

* classify: the caller's category when given; otherwise the catalog matter whose
  keywords best match the description (longest total matched keyword length);
  a tie between matters is *unsure* and left to a person (the command centre).
* locate: the street whose boundary contains the coordinates (shapely).
* route: the located street owns the case (属地兜底); without a street, or
  without a matter, the command centre dispatches by hand.
"""

from __future__ import annotations

import re

from govflow.engine.dispatch import Report
from govflow.engine.packs import LoadedPack
from govflow.plugins import hookimpl


_INDEX: dict[str, tuple[re.Pattern[str] | None, dict[str, list[str]]]] = {}


def _keyword_index(pack: LoadedPack) -> tuple[re.Pattern[str] | None, dict[str, list[str]]]:
    """One alternation of every keyword (longest first) and keyword -> matters, per pack version."""
    hit = _INDEX.get(pack.content_hash)
    if hit is None:
        if len(_INDEX) > 64:
            _INDEX.clear()
        hit = _INDEX[pack.content_hash] = _build_index(pack)
    return hit


def _build_index(pack: LoadedPack) -> tuple[re.Pattern[str] | None, dict[str, list[str]]]:
    owners: dict[str, list[str]] = {}
    for matter in pack.catalog.matters.values():
        for keyword in matter.keywords:
            if keyword:
                owners.setdefault(keyword, []).append(matter.code)
    if not owners:
        return None, owners
    alternation = "|".join(re.escape(k) for k in sorted(owners, key=len, reverse=True))
    return re.compile(f"(?=({alternation}))"), owners


@hookimpl
def govflow_classify(pack: LoadedPack, report: Report) -> tuple[str, str] | None:
    if report.category:
        return report.category, "given by the reporter"
    pattern, owners = _keyword_index(pack)
    if pattern is None:
        return None
    scores: dict[str, tuple[int, list[str]]] = {}
    for keyword in {m.group(1) for m in pattern.finditer(report.description)}:
        for code in owners[keyword]:
            score, hits = scores.get(code, (0, []))
            scores[code] = (score + len(keyword), hits + [keyword])
    if not scores:
        return None
    ranked = sorted(scores.items(), key=lambda item: item[1][0], reverse=True)
    if len(ranked) > 1 and ranked[0][1][0] == ranked[1][1][0]:
        return None  # unsure: a person decides
    code, (_, hits) = ranked[0]
    return code, "keywords: " + ", ".join(sorted(hits))


@hookimpl
def govflow_locate(pack: LoadedPack, report: Report) -> str | None:
    if report.lat is None or report.lng is None:
        return None
    return pack.territory.locate(report.lat, report.lng)


@hookimpl(trylast=True)
def govflow_route(pack: LoadedPack, report: Report, matter: str | None, street: str | None) -> str | None:
    if street is None or matter is None:
        return None
    return street
