"""Built-in smart dispatch (智能派遣): classify, locate and route a new case.

* **classify** — the reporter's category when given. Otherwise the pack's trained
  model (``dispatch/model.json``, :mod:`.dispatch_model`; trained by ``govflow
  dispatch train`` from the pack's examples, its catalog and the district's
  corrections) ranks every matter with a probability and says how confident it
  is that the best one is right: the best one decides only at or above the
  model's confidence threshold (chosen when it was trained so that wrong
  routings stay within the target); below it, or when the
  best guess is "no matter of the catalog", the case goes to the command centre,
  which sees the top candidates with their probabilities and the evidence. A
  pack without a model falls back to the keyword rules of :mod:`.keywords`.
  The model is built once per pack version (``pack.cache``), never kept in a
  module global; a model the pack version cannot use (malformed, a matter the
  catalog lacks) raises, and the case goes to the command centre naming it.
* **locate** — the street whose boundary contains the coordinates (shapely);
  without coordinates, the places of the pack's gazetteer that the address, else
  the description, names — when they settle one street; several candidate
  streets are left to a person (the record lists them).
* **route** — where the pack provides a DMN decision for the owner
  (``settings.dispatch.owner_decision``: inputs ``matter``, ``group``, ``tier``,
  ``street``, ``channel``; output ``owner``, a unit code, empty for "the
  street"), its answer; otherwise the located street owns the case (属地兜底).
  Without a street or a matter the command centre dispatches by hand.
"""

from __future__ import annotations

from typing import Any

from govflow.engine.model.dispatch import Classification, Location, Report
from govflow.plugins import PackView, hookimpl

from . import keywords
from .dispatch_model import MODEL_FILE, NONE, Model, ModelError

#: the name of the model in each pack's cache
MODEL_CACHE = "dispatch.model"
#: candidates shown to the command centre
TOP = 3


def model(pack: PackView) -> Model | None:
    """The pack version's model (built once per version), or None when the pack has none."""
    content = pack.file(MODEL_FILE)
    if content is None:
        return None

    def build() -> Model:
        loaded = Model.from_bytes(content).with_places(pack.gazetteer.names)
        unknown = [c for c in loaded.classes if c != NONE and c not in pack.catalog.matters]
        if unknown:
            raise ModelError(
                f"{MODEL_FILE} was trained for matters this pack's catalog lacks: {', '.join(unknown[:5])}"
            )
        return loaded

    return pack.cache(MODEL_CACHE, build)


def classify(pack: PackView, report: Report, history: Any = None) -> Classification | tuple[str, str] | None:
    """The matter of a report (see the module docstring): a Classification, or the keyword fallback's answer."""
    if report.category:
        return report.category, "given by the reporter"
    trained = model(pack)
    if trained is None:
        return keywords.classify(pack, report, history)
    prediction = trained.predict(report.description, top=TOP)
    candidates = tuple((c, p) for c, p in prediction.ranked if c != NONE)
    best, _ = prediction.best
    sure = prediction.confidence
    evidence = tuple(prediction.evidence)
    lead = ", ".join(f"{c} {q:.2f}" for c, q in prediction.ranked)
    dismissed = f"; set aside: {' / '.join(prediction.dismissed)}" if prediction.dismissed else ""
    if best == NONE:
        return Classification(None, f"model: no matter of the catalog ({lead}){dismissed}", candidates, evidence)
    if sure < trained.threshold:
        return Classification(
            None,
            f"model: unsure, confidence {sure:.2f} below {trained.threshold:.2f} ({lead}){dismissed}",
            candidates,
            evidence,
        )
    words = f" [{', '.join(evidence)}]" if evidence else ""
    return Classification(best, f"model: confidence {sure:.2f}{words} ({lead}){dismissed}", candidates, evidence)


def locate(pack: PackView, report: Report) -> Location | str | None:
    """The street of a report: from its coordinates, else from the places its address or description names."""
    if report.lat is not None and report.lng is not None:
        return pack.territory.locate(report.lat, report.lng)
    found = pack.gazetteer.locate(report.address, report.description)
    if not found.places:
        return None
    return Location(found.street, found.how(), found.candidates)


@hookimpl
def govflow_classify(pack: PackView, report: Report, history: Any) -> Classification | tuple[str, str] | None:
    return classify(pack, report, history)


@hookimpl
def govflow_locate(pack: PackView, report: Report) -> Location | str | None:
    return locate(pack, report)


@hookimpl(trylast=True)
def govflow_route(pack: PackView, report: Report, matter: str | None, street: str | None) -> str | None:
    if street is None or matter is None:
        return None
    decision = (pack.settings.get("dispatch") or {}).get("owner_decision")
    if decision:
        inputs = {
            "matter": matter,
            "group": matter.split(".", 1)[0],
            "tier": pack.catalog.matters[matter].tier,
            "street": street,
            "channel": report.channel,
        }
        owner = pack.decide(decision, inputs).get("owner")
        if owner:
            return str(owner)
    return street
