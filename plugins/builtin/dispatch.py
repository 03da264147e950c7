"""Built-in smart dispatch (智能派遣): keyword classification, point-in-polygon, territorial owner.

* classify: the caller's category when given; otherwise the catalog matter whose
  keywords best match the description (longest total matched keyword length);
  a tie between matters is *unsure* and left to a person (the command centre).
* locate: the street whose boundary contains the coordinates (shapely).
* route: the located street owns the case (属地兜底); without a street, or
  without a matter, the command centre dispatches by hand.
"""

from __future__ import annotations

from govflow.engine.dispatch import Report
from govflow.engine.packs import LoadedPack
from govflow.plugins import hookimpl


@hookimpl
def govflow_classify(pack: LoadedPack, report: Report) -> tuple[str, str] | None:
    if report.category:
        return report.category, "given by the reporter"
    text = report.description
    scores: dict[str, tuple[int, list[str]]] = {}
    for matter in pack.catalog.matters.values():
        hits = [k for k in matter.keywords if k and k in text]
        if hits:
            scores[matter.code] = (sum(len(k) for k in hits), hits)
    if not scores:
        return None
    ranked = sorted(scores.items(), key=lambda item: item[1][0], reverse=True)
    if len(ranked) > 1 and ranked[0][1][0] == ranked[1][1][0]:
        return None  # unsure: a person decides
    code, (_, hits) = ranked[0]
    return code, "keywords: " + ", ".join(hits)


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
