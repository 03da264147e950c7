"""The keyword classifier of smart dispatch: the fallback for packs without a trained model.

Until a pack carries ``dispatch/model.json`` (see :mod:`.dispatch`), the built-in
dispatch plugin classifies with these rules — govflow's first classifier, kept as it
was (``bench/bench_dispatch.py`` prints its figures next to the trained model's).

* **classify** — the reporter's category when given; otherwise every matter of
  the catalog is scored against the description and the best one wins only
  when it is clearly ahead (see :class:`MatterScorer`). Three kinds of evidence
  add up, all over character 1- to 3-grams (no word segmentation needed for
  Chinese; a single character such as 梯, 坡 or 栏 often carries the meaning):

  - *keyword profile*: TF-IDF cosine between the description and the matter's
    profile, the centroid of its catalog keywords — a paraphrase that shares
    part of a keyword still counts (下水道的盖子 / 井盖, 升降梯 / 电梯);
  - *exact keywords*: the matched keyword length of the matter relative to the
    best matter's (the longest-match rule of the catalog);
  - *past cases*: the district's nearest past cases (cosine), each lending its
    similarity to the matter it turned out to be.

  The best matter decides only when it is clearly ahead of the runner-up
  (:data:`MARGIN`, :data:`RATIO`) and backed by real evidence: an exact
  keyword, at least two characters of the description in its keyword profile,
  or a similar enough past case. Anything else — no evidence, a runner-up too
  close, a single shared character — is *unsure* and left to a person: the
  case goes to the command centre rather than to a wrong owner.
* **locate** — the street whose boundary contains the coordinates (shapely).
* **route** — where the pack provides a DMN decision for the owner
  (``settings.dispatch.owner_decision``: inputs ``matter``, ``group``, ``tier``,
  ``street``, ``channel``; output ``owner``, a unit code, empty for "the
  street"), its answer; otherwise the located street owns the case (属地兜底).
  Without a street or a matter the command centre dispatches by hand.

The weights and thresholds below were chosen on the development split of
``tests/data/dispatch_labelled.yaml`` only (leave-one-out inside it, with the
catalog both as it is and as it was before keywords were added from that
split's misses); the held-out split is only ever reported
(``bench/bench_dispatch.py``).

Cost: a scorer is built once per pack version and past-case snapshot
(:class:`~govflow.engine.cases.history.CaseHistory` caps and refreshes the snapshot)
and kept in the pack's cache (``pack.cache``: the application's, bounded, one
build however many reports arrive at once) until a newer snapshot replaces it;
scoring a report walks inverted indexes — the keyword profiles, and the past
cases cut to a few champions per n-gram — so it stays under a millisecond with
thousands of past cases.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from govflow.engine.cases.history import PastCases
from govflow.engine.model.catalog import Catalog
from govflow.engine.model.dispatch import Report
from govflow.plugins.view import PackView

#: n-gram lengths and their weight (on top of IDF)
GRAM_WEIGHTS: Mapping[int, float] = MappingProxyType({1: 2.0, 2: 1.0, 3: 1.0})
#: weight of the exact-keyword evidence (0..1 per matter)
KEYWORD_WEIGHT = 0.25
#: weight of the past-case evidence (mean similarity of the nearest past cases, per matter)
PAST_WEIGHT = 0.5
#: nearest past cases that lend their similarity
NEIGHBOURS = 5
#: the neighbour search keeps, per n-gram, only the past cases where it weighs
#: most (champion lists): this bounds the cost of a look-up however long the history
CHAMPIONS = 16
#: the neighbour search looks up only the description's most weighty n-grams
QUERY_GRAMS = 24
#: the best matter decides when it leads the runner-up by MARGIN, or scores
#: RATIO times the runner-up's — and scores at least SCORE_MIN
MARGIN = 0.22
RATIO = 1.4
SCORE_MIN = 0.05
#: without an exact keyword, the winner needs at least SUPPORT_MIN distinct
#: characters of the description backing its keyword profile, or a past case
#: at least SIMILAR_MIN similar (one shared character such as 好 is no evidence)
SUPPORT_MIN = 2
SIMILAR_MIN = 0.30
#: with fewer past cases than COLD_START (a new district, offline use), IDF rests
#: on the keywords alone and overrates common characters (路, 灯, 了): single
#: characters then weigh COLD_UNIGRAM and the winner needs a lead of COLD_RATIO
COLD_START = 50
COLD_UNIGRAM = 1.0
COLD_RATIO = 1.5

#: the name of the scorer in each pack's cache
SCORER_CACHE = "dispatch.scorer"


# -- keyword rules from the catalog ---------------------------------------------------------
@dataclass(frozen=True)
class _Keywords:
    """Every keyword of a catalog -> the matters listing it, and the keyword lengths (longest first)."""

    owners: dict[str, list[str]]
    lengths: tuple[int, ...]


def _keyword_index(catalog: Catalog) -> _Keywords:
    owners: dict[str, list[str]] = {}
    for matter in catalog.matters.values():
        for keyword in matter.keywords:
            if keyword:
                owners.setdefault(keyword, []).append(matter.code)
    return _Keywords(owners, tuple(sorted({len(k) for k in owners}, reverse=True)))


def keyword_scores(index: _Keywords, text: str) -> list[tuple[str, int, list[str]]]:
    """Matters whose keywords occur in ``text``: (code, total matched length, keywords), best first.

    At each position of the text only the longest keyword starting there counts
    (井盖没了, not also 井盖); each keyword counts once.
    """
    found: set[str] = set()
    for i in range(len(text)):
        for n in index.lengths:
            if text[i : i + n] in index.owners:
                found.add(text[i : i + n])
                break
    scores: dict[str, tuple[int, list[str]]] = {}
    for keyword in found:
        for code in index.owners[keyword]:
            score, hits = scores.get(code, (0, []))
            scores[code] = (score + len(keyword), [*hits, keyword])
    return sorted(((c, s, sorted(h)) for c, (s, h) in scores.items()), key=lambda item: (-item[1], item[0]))


# -- n-gram vectors -----------------------------------------------------------------------
def _grams(text: str) -> Counter[str]:
    chars = "".join(ch for ch in text.lower() if ch.isalnum())
    return Counter(chars[i : i + n] for n in GRAM_WEIGHTS for i in range(len(chars) - n + 1))


def _unit(vec: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
    return {g: w / norm for g, w in vec.items()}


@dataclass(frozen=True)
class Scored:
    """The outcome of scoring a description: matters best first, and the parts of the best one's score."""

    ranked: list[tuple[str, float]]
    profile: dict[str, float]
    keywords: dict[str, list[str]]
    past: dict[str, float]
    #: how many distinct characters of the description back the best matter's keyword profile
    support: int
    #: per matter: the similarity of its nearest past case among the neighbours
    nearest: dict[str, float]
    #: the lead (best / runner-up) that is enough to decide
    ratio: float = RATIO

    def decided(self) -> str | None:
        """The best matter when it is clearly ahead of the runner-up and backed by enough evidence, else None."""
        if not self.ranked:
            return None
        best, s1 = self.ranked[0]
        s2 = self.ranked[1][1] if len(self.ranked) > 1 else 0.0
        if s1 < SCORE_MIN or not (s1 - s2 >= MARGIN or s1 >= self.ratio * s2):
            return None
        backed = best in self.keywords or self.support >= SUPPORT_MIN or self.nearest.get(best, 0.0) >= SIMILAR_MIN
        return best if backed else None


class MatterScorer:
    """Scores every matter of a catalog against a description (keyword profiles, exact keywords, past cases).

    Built from the pack's catalog and one snapshot of past cases; immutable
    afterwards (safe to share between threads). IDF is computed over the
    keywords and the past cases together, so words every report uses
    (反映, 麻烦, 门口…) weigh little.
    """

    def __init__(self, catalog: Catalog, cases: Iterable[tuple[str, str]] = ()) -> None:
        self._keywords = _keyword_index(catalog)
        matters = catalog.matters
        keyword_docs = [(_grams(k), m.code) for m in matters.values() for k in m.keywords if k]
        case_docs = [(_grams(text), matter) for text, matter in cases if matter in matters and text]
        df: Counter[str] = Counter()
        for grams, _ in keyword_docs + case_docs:
            df.update(grams.keys())
        n = len(keyword_docs) + len(case_docs)
        cold = len(case_docs) < COLD_START
        self._gram_weights = {**GRAM_WEIGHTS, 1: COLD_UNIGRAM} if cold else dict(GRAM_WEIGHTS)
        self.ratio = COLD_RATIO if cold else RATIO
        self._weight = {g: (math.log((1 + n) / (1 + c)) + 1.0) * self._gram_weights[len(g)] for g, c in df.items()}
        self._unseen = math.log(1 + n) + 1.0
        # keyword profiles: per matter, the normalised sum of its keywords' vectors; inverted by n-gram
        sums: dict[str, Counter[str]] = defaultdict(Counter)
        for grams, code in keyword_docs:
            sums[code].update(self._vector(grams))
        self._profiles: dict[str, list[tuple[str, float]]] = defaultdict(list)
        self._profile_grams = {code: frozenset(vec) for code, vec in sums.items()}
        for code, vec in sums.items():
            for g, w in _unit(dict(vec)).items():
                self._profiles[g].append((code, w))
        # past cases: one vector each, inverted by n-gram, each posting list cut to its champions
        self._case_matter = [matter for _, matter in case_docs]
        self._postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, (grams, _) in enumerate(case_docs):
            for g, w in self._vector(grams).items():
                self._postings[g].append((i, w))
        for g, posting in self._postings.items():
            if len(posting) > CHAMPIONS:
                self._postings[g] = heapq.nlargest(CHAMPIONS, posting, key=lambda item: item[1])
        self.size = len(case_docs)

    def _vector(self, grams: Counter[str]) -> dict[str, float]:
        """Unit TF-IDF vector; an n-gram never seen has the highest IDF (it still dilutes the others)."""
        weight, unseen, by_length = self._weight, self._unseen, self._gram_weights
        return _unit({g: (1.0 + math.log(c)) * weight.get(g, unseen * by_length[len(g)]) for g, c in grams.items()})

    def score(self, text: str) -> Scored:
        query = self._vector(_grams(text))
        profile: dict[str, float] = defaultdict(float)
        for g, w in query.items():
            for code, pw in self._profiles.get(g, ()):
                profile[code] += w * pw
        hits = keyword_scores(self._keywords, text)
        keywords = {code: words for code, _, words in hits}
        top = hits[0][1] if hits else 0
        past: dict[str, float] = defaultdict(float)
        nearest: dict[str, float] = {}
        if self._postings:
            sims: dict[int, float] = defaultdict(float)
            heaviest = (
                heapq.nlargest(QUERY_GRAMS, query.items(), key=lambda item: item[1])
                if len(query) > QUERY_GRAMS
                else query.items()
            )
            for g, w in heaviest:
                for i, cw in self._postings.get(g, ()):
                    sims[i] += w * cw
            for i, s in heapq.nlargest(NEIGHBOURS, sims.items(), key=lambda item: item[1]):
                matter = self._case_matter[i]
                past[matter] += s / NEIGHBOURS
                nearest.setdefault(matter, s)
        total: dict[str, float] = defaultdict(float)
        for code, s in profile.items():
            total[code] += s
        for code, length, _ in hits:
            total[code] += KEYWORD_WEIGHT * length / top
        for code, s in past.items():
            total[code] += PAST_WEIGHT * s
        ranked = sorted(total.items(), key=lambda item: (-item[1], item[0]))
        backing = self._profile_grams.get(ranked[0][0], frozenset()) if ranked else frozenset()
        support = len({ch for g in query if g in backing for ch in g})
        return Scored(ranked, dict(profile), keywords, dict(past), support, nearest, self.ratio)


def scorer(pack: PackView, past: PastCases | None) -> MatterScorer:
    """The scorer of a pack version and a past-case snapshot.

    Built once and kept in the pack's cache until a newer snapshot replaces it
    (a refreshed snapshot from :class:`~govflow.engine.cases.history.CaseHistory`
    gets a new scorer); reports arriving together while it is built wait for
    that one build.
    """
    snapshot = past if past is not None and past.cases else None
    cases = snapshot.cases if snapshot is not None else ()
    return pack.cache(
        SCORER_CACHE,
        lambda: MatterScorer(pack.catalog, ((c.description, c.matter) for c in cases)),
        depends_on=snapshot,
    )


def classify(pack: PackView, report: Report, history: Any = None) -> tuple[str, str] | None:
    """The matter of a report and how it was decided, or None when unsure (see the module docstring)."""
    if report.category:
        return report.category, "given by the reporter"
    past = history.past_cases(pack.district) if history is not None else None
    scored = scorer(pack, past).score(report.description)
    matter = scored.decided()
    if matter is None:
        return None
    return matter, _how(scored, matter)


def _how(scored: Scored, matter: str) -> str:
    """On the record: which evidence decided, and how far ahead the matter was."""
    lead = f"score {scored.ranked[0][1]:.2f}"
    if len(scored.ranked) > 1:
        lead += f", next {scored.ranked[1][0]} {scored.ranked[1][1]:.2f}"
    if matter in scored.keywords:
        return "keywords: " + ", ".join(scored.keywords[matter]) + f" ({lead})"
    if PAST_WEIGHT * scored.past.get(matter, 0.0) > scored.profile.get(matter, 0.0):
        return f"similar past cases: nearest {scored.nearest.get(matter, 0.0):.2f} ({lead})"
    return f"keyword profile: {lead}"
