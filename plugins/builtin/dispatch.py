"""Built-in smart dispatch (智能派遣): classify, locate and route a new case.

* **classify** — the reporter's category when given; otherwise the catalog
  matter whose keywords best match the description (longest total matched
  keyword length). When no keyword matches, or two matters tie, the description
  is matched against the district's past cases (character n-gram TF-IDF,
  cosine similarity, a vote of the nearest neighbours); only a clear, similar
  enough majority decides. Anything else is *unsure* and left to a person: the
  case goes to the command centre rather than to a wrong owner.
* **locate** — the street whose boundary contains the coordinates (shapely).
* **route** — where the pack provides a DMN decision for the owner
  (``settings.dispatch.owner_decision``: inputs ``matter``, ``group``, ``tier``,
  ``street``, ``channel``; output ``owner``, a unit code, empty for "the
  street"), its answer; otherwise the located street owns the case (属地兜底).
  Without a street or a matter the command centre dispatches by hand.

Thresholds of the past-case matching (:data:`SIMILAR_MIN`, :data:`VOTE_SHARE`,
:data:`NEIGHBOURS`) were chosen on the development split of
``tests/data/dispatch_labelled.yaml`` only (see ``bench/bench_dispatch.py``).
"""

from __future__ import annotations

import math
import re
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from govflow.engine.dispatch import Report
from govflow.engine.history import PastCases
from govflow.engine.packs import LoadedPack
from govflow.plugins import hookimpl

#: nearest past cases that vote on a matter
NEIGHBOURS = 5
#: the nearest past case must be at least this similar (cosine, 0..1)
SIMILAR_MIN = 0.30
#: the winning matter's share of the (similarity-weighted) votes
VOTE_SHARE = 0.60

_INDEX: dict[str, tuple[re.Pattern[str] | None, dict[str, list[str]]]] = {}
_SIMILAR: weakref.WeakKeyDictionary[PastCases, SimilarCases] = weakref.WeakKeyDictionary()


# -- keyword rules from the catalog ---------------------------------------------------------
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


def keyword_scores(pack: LoadedPack, text: str) -> list[tuple[str, int, list[str]]]:
    """Matters whose keywords occur in ``text``: (code, total matched length, keywords), best first."""
    pattern, owners = _keyword_index(pack)
    if pattern is None:
        return []
    scores: dict[str, tuple[int, list[str]]] = {}
    for keyword in {m.group(1) for m in pattern.finditer(text)}:
        for code in owners[keyword]:
            score, hits = scores.get(code, (0, []))
            scores[code] = (score + len(keyword), hits + [keyword])
    return sorted(((c, s, sorted(h)) for c, (s, h) in scores.items()), key=lambda item: (-item[1], item[0]))


# -- matching against past cases ----------------------------------------------------------
def _grams(text: str) -> Counter[str]:
    chars = "".join(ch for ch in text.lower() if ch.isalnum())
    return Counter([chars[i:i + 2] for i in range(len(chars) - 1)] + [chars[i:i + 3] for i in range(len(chars) - 2)])


class SimilarCases:
    """A TF-IDF index (character 2- and 3-grams, no word segmentation needed for Chinese)."""

    def __init__(self, cases: Iterable[tuple[str, str]]) -> None:
        docs = [(_grams(text), matter) for text, matter in cases]
        df: Counter[str] = Counter(g for grams, _ in docs for g in grams)
        n = len(docs)
        self.idf = {g: math.log((1 + n) / (1 + c)) + 1.0 for g, c in df.items()}
        self.matters = [matter for _, matter in docs]
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, (grams, _) in enumerate(docs):
            for g, w in self._vector(grams).items():
                self.postings[g].append((i, w))

    def _vector(self, grams: Counter[str]) -> dict[str, float]:
        vec = {g: (1.0 + math.log(c)) * self.idf[g] for g, c in grams.items() if g in self.idf}
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        return {g: w / norm for g, w in vec.items()}

    def nearest(self, text: str, k: int | None = None) -> list[tuple[float, str]]:
        """The ``k`` most similar past cases as (cosine similarity, matter)."""
        scores: dict[int, float] = defaultdict(float)
        for g, w in self._vector(_grams(text)).items():
            for i, dw in self.postings.get(g, ()):
                scores[i] += w * dw
        best = sorted(scores.items(), key=lambda item: -item[1])[:k or NEIGHBOURS]
        return [(s, self.matters[i]) for i, s in best]

    def vote(self, text: str, among: set[str] | None = None) -> tuple[str, float, float] | None:
        """(matter, vote share, top similarity) of the nearest past cases, or None without any."""
        near = [(s, m) for s, m in self.nearest(text) if among is None or m in among]
        if not near:
            return None
        votes: dict[str, float] = defaultdict(float)
        for s, m in near:
            votes[m] += s
        matter, weight = max(votes.items(), key=lambda item: (item[1], item[0]))
        total = sum(votes.values()) or 1.0
        return matter, weight / total, near[0][0]


def similar_cases(past: PastCases) -> SimilarCases:
    index = _SIMILAR.get(past)
    if index is None:
        index = _SIMILAR[past] = SimilarCases((c.description, c.matter) for c in past.cases)
    return index


def classify(pack: LoadedPack, report: Report, history: Any = None) -> tuple[str, str] | None:
    """The matter of a report and how it was decided, or None when unsure (see the module docstring)."""
    if report.category:
        return report.category, "given by the reporter"
    ranked = keyword_scores(pack, report.description)
    if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
        return ranked[0][0], "keywords: " + ", ".join(ranked[0][2])
    if history is None:
        return None
    past = history.past_cases(pack.catalog.district)
    if not past.cases:
        return None
    tied = {code for code, score, _ in ranked if score == ranked[0][1]} if ranked else None
    vote = similar_cases(past).vote(report.description, tied)
    if vote is None:
        return None
    matter, share, top = vote
    if matter not in pack.catalog.matters or top < SIMILAR_MIN or share < VOTE_SHARE:
        return None
    return matter, f"similar past cases: {matter} (similarity {top:.2f}, {share:.0%} of the vote)"


@hookimpl
def govflow_classify(pack: LoadedPack, report: Report, history: Any) -> tuple[str, str] | None:
    return classify(pack, report, history)


@hookimpl
def govflow_locate(pack: LoadedPack, report: Report) -> str | None:
    if report.lat is None or report.lng is None:
        return None
    return pack.territory.locate(report.lat, report.lng)


@hookimpl(trylast=True)
def govflow_route(pack: LoadedPack, report: Report, matter: str | None, street: str | None) -> str | None:
    if street is None or matter is None:
        return None
    decision = (pack.manifest.settings.get("dispatch") or {}).get("owner_decision")
    if decision and pack.decisions is not None:
        inputs = {
            "matter": matter, "group": matter.split(".", 1)[0], "tier": pack.catalog.matters[matter].tier,
            "street": street, "channel": report.channel,
        }
        owner = pack.decisions.evaluate(decision, inputs).get("owner")
        if owner:
            return str(owner)
    return street
