"""The trained matter classifier of smart dispatch: features, the model file, predictions.

A model is **data of a pack version**: ``dispatch/model.json`` in the pack (built by
``govflow dispatch train`` from the pack's ``dispatch/examples.yaml``, the catalog and
the district's corrections — :mod:`.dispatch_training`). It is plain JSON: the
feature configuration, the vocabulary with its IDF weights, a linear model's
coefficients (int8, one scale per class, zlib + base64), intercepts, the
calibration (a softmax temperature for the candidates' probabilities and a
sigmoid of the margin between the two best matters for the confidence that the
best one is right), the confidence threshold and how it was chosen, and what it
was trained on (hashes, sizes, cross-validated figures). Nothing in
it is code; loading it runs no code (no pickle).

Features (:func:`features`) are character 1–3-grams of the description after
three rewritings that carry most of the lessons of reports nobody here wrote:

* **places are masked**: the names of the pack's gazetteer (and the model's own
  list) become a separator, so 西湖公园 in an address is no evidence of a park
  facility and 乌山路 no evidence of a landslide;
* **dismissed side issues weigh little**: a clause that names something only to
  set it aside (以为是…, 不是…的问题, …倒是好的, …我就不说了) counts
  ``dismissed`` (0.2), the part of a clause before 而是/其实是 too;
* **the main complaint weighs more**: the clause after 其实是/而是/主要是/问题是
  counts ``emphasis``.

Prediction (:meth:`Model.predict`) is a sparse dot product: the matters ranked by
their decision values, probabilities by a softmax at the fitted temperature, and
the **confidence** — the calibrated probability that the best matter is right,
from the margin between the two best decision values (out-of-fold, the margin
separates right from wrong routings better than any class's own probability).
"""

from __future__ import annotations

import base64
import json
import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import numpy as np

#: the model file of a pack, and its format number
MODEL_FILE = "dispatch/model.json"
EXAMPLES_FILE = "dispatch/examples.yaml"
FORMAT = 2
#: the class of reports that are no matter of the catalog (their right place is the command centre)
NONE = "_none"

#: default feature configuration (stored in every model: a model carries its own configuration)
DEFAULT_CONFIG: Mapping[str, Any] = MappingProxyType(
    {
        "ngrams": [1, 3],
        "dismissed": 0.2,
        "emphasis": 1.5,
        # a clause naming something only to set it aside
        "dismiss_markers": [
            "以为",
            "不是说",
            "我不是",
            "不是投诉",
            "不是因为",
            "的问题不大",
            "倒是",
            "没问题",
            "没有问题",
            "是好的",
            "好好的",
            "挺好",
            "还行",
            "还好",
            "不说了",
            "先不说",
            "不计较",
            "能忍",
            "忍了",
            "就算了",
            "不反对",
            "不管",
            "不归",
            "是正常的",
            "都正常",
            "有人清",
            "有人收",
            "有人扫",
            "有人倒",
            "在收了",
            "在清",
            "恢复了",
            "已经好了",
            "已经修好",
            "不是那个",
        ],
        # what follows is the main complaint
        "emphasis_markers": [
            "其实是",
            "而是",
            "主要是",
            "问题是",
            "关键是",
            "说的是",
            "反映的是",
            "投诉的是",
            "要说的是",
        ],
    }
)

_CLAUSE = re.compile(r"[，。！？；,.!?;\n\r、：:…~～（）()【】\[\]“”\"'‘’《》\s]+")
_DIGITS = re.compile(r"[0-9０-９]+")
_KEEP = re.compile(r"[^0-9a-z\u3400-\u9fff|]")


def _normalise(text: str) -> str:
    return _DIGITS.sub("0", text.lower())


def _mask(text: str, names: Mapping[str, Any], lengths: Sequence[int], pattern: re.Pattern[str] | None = None) -> str:
    """Each place name (longest first, left to right) replaced by ``|``."""
    if not names:
        return text
    return (pattern or mask_pattern(names)).sub("|", text)


def mask_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """One regular expression for the names to mask: longest first, so it masks as a left-to-right scan would."""
    ordered = sorted(set(names), key=lambda n: (-len(n), n))
    return re.compile("|".join(re.escape(n) for n in ordered)) if ordered else re.compile("(?!)")


@lru_cache(maxsize=16)
def _markers(markers: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(m) for m in markers)) if markers else re.compile("(?!)")


def clauses(text: str, config: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The clauses of a (masked, normalised) text with the weight each one's n-grams get."""
    emphasis = config["emphasis_markers"]
    any_emphasis = _markers(tuple(emphasis)).search
    any_dismiss = _markers(tuple(config["dismiss_markers"])).search
    out: list[tuple[str, float]] = []
    for clause in _CLAUSE.split(text):
        if not clause:
            continue
        hit = next((m for m in emphasis if m in clause), None) if any_emphasis(clause) else None
        if hit is not None:
            before, _, after = clause.partition(hit)
            if before:
                out.append((before, config["dismissed"] if ("不是" in before or "以为" in before) else 1.0))
            out.append((after, config["emphasis"]))
        elif any_dismiss(clause):
            out.append((clause, config["dismissed"]))
        else:
            out.append((clause, 1.0))
    return out


def features(
    text: str,
    config: Mapping[str, Any],
    names: Mapping[str, Any] | None = None,
    lengths: Sequence[int] = (),
    pattern: re.Pattern[str] | None = None,
) -> Counter[str]:
    """Weighted character n-gram counts of a description (places masked, dismissed clauses discounted).

    ``pattern`` is :func:`mask_pattern` of ``names``, when the caller keeps one.
    """
    low, high = config["ngrams"]
    masked = _mask(_normalise(text), names or {}, lengths, pattern)
    counts: Counter[str] = Counter()  # values are float weights (a dismissed clause counts for less)
    for clause, weight in clauses(masked, config):
        grams = [
            part[i : i + n]
            for part in _KEEP.sub("", clause).split("|")
            for n in range(low, high + 1)
            for i in range(len(part) - n + 1)
        ]
        if weight == 1.0:
            counts.update(grams)
        else:
            for gram in grams:
                counts[gram] += weight  # type: ignore[assignment]
    return counts


def encode_matrix(matrix: np.ndarray) -> dict[str, Any]:
    """int8 quantisation per column (class), zlib, base64: compact and code-free."""
    scales = np.abs(matrix).max(axis=0) / 127.0
    scales[scales == 0] = 1.0
    quantised = np.round(matrix / scales).astype(np.int8)
    return {
        "shape": list(matrix.shape),
        "scales": [float(s) for s in scales],
        "int8": base64.b64encode(zlib.compress(quantised.tobytes(), 9)).decode("ascii"),
    }


def decode_matrix(data: Mapping[str, Any]) -> np.ndarray:
    rows, cols = (int(v) for v in data["shape"])
    raw = zlib.decompress(base64.b64decode(data["int8"]), bufsize=rows * cols + 1)
    if len(raw) != rows * cols:
        raise ValueError(f"coefficients hold {len(raw)} values, not {rows} x {cols}")
    quantised = np.frombuffer(raw, dtype=np.int8).reshape(rows, cols)
    return quantised.astype(np.float32) * np.asarray(data["scales"], dtype=np.float32)


class ModelError(ValueError):
    """A model file that cannot be used (malformed, another format, classes unknown to the pack)."""


@dataclass(frozen=True)
class Prediction:
    """Matters best first with calibrated probabilities, what in the text weighed most, and the confidence.

    ``confidence`` is the calibrated probability that the best matter is right
    (it decides against the model's threshold; the probabilities only rank).
    """

    ranked: list[tuple[str, float]]
    evidence: list[str]
    dismissed: list[str] = field(default_factory=list)
    confidence: float = 0.0

    @property
    def best(self) -> tuple[str, float]:
        return self.ranked[0]


class Model:
    """A loaded model (immutable; safe to share between threads)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        try:
            if data.get("format") != FORMAT:
                raise ModelError(f"model format {data.get('format')!r}; this govflow reads format {FORMAT}")
            self.data = data
            self.config: dict[str, Any] = {**DEFAULT_CONFIG, **data["config"]}
            self.classes: list[str] = [str(c) for c in data["classes"]]
            vocabulary: list[str] = [str(v) for v in data["vocabulary"]]
            self.index = {g: i for i, g in enumerate(vocabulary)}
            self.idf = np.asarray(data["idf"], dtype=np.float32)
            self.weights = decode_matrix(data["coef"])  # (features, classes)
            self.intercept = np.asarray(data["intercept"], dtype=np.float32)
            self.temperature = float(data["calibration"]["temperature"])
            self.conf_a = float(data["confidence"]["a"])
            self.conf_b = float(data["confidence"]["b"])
            self.threshold = float(data["threshold"])
            masked = [str(n) for n in data.get("mask", ())]
        except ModelError:
            raise
        except (KeyError, TypeError, ValueError, zlib.error) as exc:
            raise ModelError(f"malformed model: {exc!r}") from None
        k, n = len(self.classes), len(self.index)
        if self.weights.shape != (n, k) or len(self.idf) != n or len(self.intercept) != k or k < 2:
            raise ModelError("model arrays do not agree with its vocabulary and classes")
        if not self.temperature > 0:
            raise ModelError("the calibration temperature must be positive")
        self.mask = dict.fromkeys(masked, True)
        self.mask_lengths = sorted({len(m) for m in self.mask}, reverse=True)
        self.mask_re = mask_pattern(self.mask)

    @classmethod
    def from_bytes(cls, content: bytes) -> Model:
        try:
            data = json.loads(content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelError(f"the model is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ModelError("the model must be a JSON object")
        return cls(data)

    def with_places(self, names: Iterable[str]) -> Model:
        """This model masking ``names`` too (the pack's gazetteer)."""
        extra = [n for n in names if n not in self.mask]
        if extra:
            self.mask.update(dict.fromkeys(extra, True))
            self.mask_lengths = sorted({len(m) for m in self.mask}, reverse=True)
            self.mask_re = mask_pattern(self.mask)
        return self

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(feature indexes, unit TF-IDF values, the n-grams) of a description."""
        counts = features(text, self.config, self.mask, self.mask_lengths, self.mask_re)
        get = self.index.get
        found = [(i, gram, count) for gram, count in counts.items() if count > 0 and (i := get(gram)) is not None]
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), []
        index = np.fromiter((f[0] for f in found), dtype=np.int64, count=len(found))
        grams = [f[1] for f in found]
        values = np.log1p(np.fromiter((f[2] for f in found), dtype=np.float32, count=len(found))) * self.idf[index]
        norm = float(np.sqrt((values * values).sum())) or 1.0
        return index, values / norm, grams

    def scores(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        index, values, grams = self.vector(text)
        decision = values @ self.weights[index] + self.intercept if len(index) else self.intercept.copy()
        return decision, index, values, grams

    def probabilities(self, decision: np.ndarray) -> np.ndarray:
        """A softmax of the decision values at the fitted temperature (same order as the decisions)."""
        z = np.exp((decision - decision.max()) / self.temperature)
        return z / z.sum()

    def confidence(self, decision: np.ndarray) -> float:
        """The calibrated probability that the best matter is right: a sigmoid of the two best decisions' margin."""
        first, second = np.partition(-decision, 1)[:2]
        margin = float(second - first)
        return 1.0 / (1.0 + math.exp(-(self.conf_a * margin + self.conf_b)))

    def predict(self, text: str, top: int = 3) -> Prediction:
        decision, index, values, grams = self.scores(text)
        decision = decision.astype(np.float64)
        proba = self.probabilities(decision)
        order = np.argsort(-decision)[:top]
        ranked = [(self.classes[i], float(proba[i])) for i in order]
        best = int(order[0])
        evidence: list[str] = []
        if len(index):
            contributions = values * self.weights[index, best]
            for j in np.argsort(-contributions)[:6]:
                if contributions[j] > 0 and len(grams[j]) > 1:
                    evidence.append(grams[j])
        dismissed = [c for c, w in clauses(_normalise(text), self.config) if w < 1.0]
        return Prediction(ranked, _merge(evidence)[:4], dismissed[:3], self.confidence(decision))


def _merge(grams: list[str]) -> list[str]:
    """Drop n-grams contained in a heavier one already listed (井盖 under 井盖没)."""
    kept: list[str] = []
    for g in grams:
        if not any(g in k for k in kept):
            kept.append(g)
    return kept


__all__ = [
    "DEFAULT_CONFIG",
    "EXAMPLES_FILE",
    "FORMAT",
    "MODEL_FILE",
    "NONE",
    "Model",
    "ModelError",
    "Prediction",
    "clauses",
    "decode_matrix",
    "encode_matrix",
    "features",
    "mask_pattern",
]
