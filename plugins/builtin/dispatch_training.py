"""Training the dispatch model (scikit-learn; only ``govflow dispatch train`` and the tests import this).

:func:`train` turns labelled reports, the catalog (each matter's name and keywords
are short examples of it) and the places to mask into a model file
(:mod:`.dispatch_model`):

1. features: character 1–3-grams with places masked and dismissed clauses
   discounted (:func:`.dispatch_model.features`), sublinear TF × smoothed IDF, unit
   length;
2. a linear SVM (``LinearSVC``, one-vs-rest);
3. calibration on **out-of-fold** decisions: the labelled reports are split in
   ``folds``; each fold is scored by a model trained without it (the catalog
   always in). A sigmoid of the margin between the two best decision values is
   fitted to whether the best guess was right (the *confidence*), and a softmax
   temperature to the expected matters (the candidates' probabilities);
4. the **confidence threshold**: the lowest confidence at which the reports
   routed wrongly out of fold stay at or below ``target_wrong``. Below it a
   report goes to the command centre with its top candidates. The same
   out-of-fold predictions give the cross-validated figures and the confusion
   pairs printed by the CLI.

Regularisation, n-gram range and the feature weights were chosen by
cross-validation inside the training split only (never on the frozen test split).

Deterministic for the same inputs (fixed seeds, liblinear's own ``random_state``):
a model is reproducible from its pack's ``dispatch/examples.yaml`` and catalog, and
records their hashes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from govflow.engine.model.catalog import Catalog

from .dispatch_model import DEFAULT_CONFIG, FORMAT, NONE, encode_matrix, features, mask_pattern

#: regularisation of the linear SVM (chosen by cross-validation inside the training split)
C = 1.0
#: share of reports that may be routed wrongly at the chosen threshold (out of fold)
TARGET_WRONG = 0.015
FOLDS = 5
SEED = 12345
#: the catalog's names and keywords count this much as examples
CATALOG_WEIGHT = 1.0


@dataclass(frozen=True)
class Example:
    text: str
    matter: str | None  # None: no matter of the catalog (the command centre's)
    source: str = "pack"


@dataclass
class Report:
    """Cross-validated figures of a training run (out-of-fold, at the chosen threshold)."""

    n: int
    threshold: float
    right: int
    wrong: int
    unsure: int
    top1: int
    confusion: list[tuple[str, str, int]] = field(default_factory=list)
    classes: int = 0
    features: int = 0

    def lines(self) -> list[str]:
        n = max(self.n, 1)
        out = [
            f"cross-validated on {self.n} labelled reports ({self.classes} classes, {self.features} features):",
            f"  best guess right {self.top1 / n:.1%}; at threshold {self.threshold:.2f}: right {self.right / n:.1%},"
            f" to the command centre {self.unsure / n:.1%}, wrong {self.wrong / n:.1%}",
        ]
        if self.confusion:
            out.append("  most confused (expected -> guessed, out of fold, whatever the confidence):")
            out += [f"    {a} -> {b}: {k}" for a, b, k in self.confusion[:12]]
        return out


def catalog_examples(catalog: Catalog) -> list[Example]:
    docs = []
    for matter in catalog.matters.values():
        docs.append(Example(matter.name, matter.code, "catalog"))
        docs += [Example(k, matter.code, "catalog") for k in matter.keywords if k]
    return docs


def digest(examples: Iterable[Example]) -> str:
    payload = json.dumps([[e.text, e.matter] for e in examples], ensure_ascii=False).encode()
    return hashlib.sha256(payload).hexdigest()


class _Featurizer:
    def __init__(self, config: dict[str, Any], mask: Sequence[str]) -> None:
        self.config = config
        self.mask = dict.fromkeys(mask, True)
        self.lengths = sorted({len(m) for m in mask}, reverse=True)
        self.pattern = mask_pattern(mask)

    def counts(self, texts: Sequence[str]) -> list[Counter[str]]:
        return [features(t, self.config, self.mask, self.lengths, self.pattern) for t in texts]


def _matrix(counts: list[Counter[str]], vocabulary: dict[str, int], idf: np.ndarray) -> Any:
    from scipy.sparse import csr_matrix

    rows, cols, vals = [], [], []
    for r, c in enumerate(counts):
        for gram, count in c.items():
            j = vocabulary.get(gram)
            if j is not None and count > 0:
                rows.append(r)
                cols.append(j)
                vals.append(math.log1p(count) * idf[j])
    m = csr_matrix((vals, (rows, cols)), shape=(len(counts), len(vocabulary)), dtype=np.float64)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return csr_matrix(m.multiply(1.0 / norms[:, None]))


def _vocabulary(counts: list[Counter[str]], min_df: int) -> tuple[dict[str, int], np.ndarray]:
    df: Counter[str] = Counter()
    for c in counts:
        df.update(g for g, v in c.items() if v > 0)
    grams = sorted(g for g, k in df.items() if k >= min_df)
    n = len(counts)
    idf = np.asarray([math.log((1 + n) / (1 + df[g])) + 1.0 for g in grams], dtype=np.float64)
    return {g: i for i, g in enumerate(grams)}, idf


def _fit(x: Any, y: list[str], c: float) -> Any:
    from sklearn.svm import LinearSVC

    return LinearSVC(C=c, random_state=SEED, max_iter=5000).fit(x, y)


def _decisions(model: Any, x: Any) -> np.ndarray:
    """Decision values (reports x classes), two-class models included (liblinear keeps one column)."""
    d = np.asarray(model.decision_function(x), dtype=np.float64)
    return np.column_stack([-d, d]) if d.ndim == 1 else d


def _label(matter: str | None) -> str:
    return matter if matter is not None else NONE


def _margin(row: np.ndarray) -> float:
    if len(row) < 2:
        return 0.0
    first, second = np.partition(-row, 1)[:2]
    return float(second - first)


def _fit_confidence(margins: list[float], right: list[bool]) -> tuple[float, float]:
    """A sigmoid of the margin fitted to whether the out-of-fold best guess was right (Platt scaling)."""
    if len(set(right)) < 2:
        return (1.0, 0.0) if all(right) else (1.0, -10.0)
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=1e4, max_iter=1000).fit(np.asarray(margins)[:, None], np.asarray(right))
    return float(fitted.coef_[0, 0]), float(fitted.intercept_[0])


def _fit_temperature(rows: list[tuple[np.ndarray, int]]) -> float:
    """The softmax temperature with the least out-of-fold log loss of the expected matter."""
    if not rows:
        return 0.1
    best, best_loss = 0.1, math.inf
    for t in (0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0):
        loss = 0.0
        for d, j in rows:
            z = (d - d.max()) / t
            loss -= z[j] - math.log(float(np.exp(z).sum()))
        if loss < best_loss:
            best, best_loss = t, loss
    return best


def train(
    examples: Sequence[Example],
    catalog: Catalog,
    mask: Sequence[str] = (),
    *,
    c: float = C,
    folds: int = FOLDS,
    target_wrong: float = TARGET_WRONG,
    config: dict[str, Any] | None = None,
    min_df: int = 1,
    meta: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Report]:
    """A model file (as a dict, ready for ``json.dumps``) and its cross-validated report."""
    config = {**DEFAULT_CONFIG, **(config or {})}
    known = set(catalog.matters)
    labelled = [e for e in examples if e.matter is None or e.matter in known]
    base = catalog_examples(catalog)
    featurizer = _Featurizer(config, sorted(set(mask)))
    base_counts = featurizer.counts([e.text for e in base])
    example_counts = featurizer.counts([e.text for e in labelled])
    base_labels = [_label(e.matter) for e in base]
    labels = [_label(e.matter) for e in labelled]

    # out-of-fold decisions over the labelled reports (the catalog always in training)
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(labelled))
    fold_of = np.empty(len(labelled), dtype=np.int64)
    fold_of[order] = np.arange(len(labelled)) % max(folds, 2)
    guesses: list[tuple[str, str, float]] = []  # (expected, best guess, margin)
    softmax_rows: list[tuple[np.ndarray, int]] = []
    if folds >= 2 and len(labelled) >= folds:
        for k in range(folds):
            train_idx = [i for i in range(len(labelled)) if fold_of[i] != k]
            held = [i for i in range(len(labelled)) if fold_of[i] == k]
            counts = base_counts + [example_counts[i] for i in train_idx]
            y = base_labels + [labels[i] for i in train_idx]
            vocabulary, idf = _vocabulary(counts, min_df)
            model = _fit(_matrix(counts, vocabulary, idf), y, c)
            fold_classes = [str(k) for k in model.classes_]
            decision = _decisions(model, _matrix([example_counts[i] for i in held], vocabulary, idf))
            for row, i in enumerate(held):
                j = int(np.argmax(decision[row]))
                guesses.append((labels[i], fold_classes[j], _margin(decision[row])))
                if labels[i] in fold_classes:
                    softmax_rows.append((decision[row], fold_classes.index(labels[i])))
    conf_a, conf_b = _fit_confidence([m for _, _, m in guesses], [w == g for w, g, _ in guesses])
    oof = [(w, g, 1.0 / (1.0 + math.exp(-(conf_a * m + conf_b)))) for w, g, m in guesses]
    threshold = _threshold(oof, target_wrong)
    temperature = _fit_temperature(softmax_rows)

    counts = base_counts + example_counts
    y = base_labels + labels
    vocabulary, idf = _vocabulary(counts, min_df)
    final = _fit(_matrix(counts, vocabulary, idf), y, c)
    coef = np.asarray(final.coef_, dtype=np.float64)  # (classes, features)
    intercept = np.asarray(final.intercept_, dtype=np.float64)
    classes = [str(k) for k in final.classes_]
    if coef.shape[0] == 1:  # two classes: liblinear keeps one row (the second class's)
        coef = np.vstack([-coef, coef])
        intercept = np.asarray([-intercept[0], intercept[0]])
    report = _report(oof, threshold)
    report.classes, report.features = len(classes), len(vocabulary)
    model_file = {
        "format": FORMAT,
        "kind": "char-ngram tf-idf + LinearSVC; softmax temperature and margin confidence fitted out of fold",
        "config": config,
        "classes": classes,
        "vocabulary": list(vocabulary),
        "idf": [round(float(v), 5) for v in idf],
        "coef": encode_matrix(coef.T),
        "intercept": [float(v) for v in intercept],
        "calibration": {"temperature": temperature},
        "confidence": {"a": conf_a, "b": conf_b},
        "threshold": threshold,
        "mask": sorted(set(mask)),
        "training": {
            "examples": len(labelled),
            "catalog_examples": len(base),
            "examples_sha256": digest(labelled),
            "catalog_sha256": digest(base),
            "c": c,
            "folds": folds,
            "target_wrong": target_wrong,
            "min_df": min_df,
            "cross_validated": {
                "n": report.n,
                "top1": report.top1,
                "right": report.right,
                "wrong": report.wrong,
                "unsure": report.unsure,
            },
            **(meta or {}),
        },
    }
    return model_file, report


def _threshold(oof: list[tuple[str, str, float]], target_wrong: float) -> float:
    """The lowest confidence at which out-of-fold wrong routings stay within ``target_wrong``."""
    if not oof:
        return 0.5
    n = len(oof)
    for t in [x / 100 for x in range(5, 100)]:
        wrong = sum(1 for want, got, p in oof if p >= t and got != NONE and got != want)
        if wrong / n <= target_wrong:
            return t
    return 0.99


def _report(oof: list[tuple[str, str, float]], threshold: float) -> Report:
    right = sum(1 for want, got, p in oof if p >= threshold and got == want and got != NONE)
    wrong = sum(1 for want, got, p in oof if p >= threshold and got != NONE and got != want)
    top1 = sum(1 for want, got, _ in oof if got == want)
    pairs = Counter((want, got) for want, got, _ in oof if got != want)
    confusion = [(a, b, k) for (a, b), k in pairs.most_common()]
    return Report(len(oof), threshold, right, wrong, len(oof) - right - wrong, top1, confusion)


__all__ = ["FOLDS", "TARGET_WRONG", "C", "Example", "Report", "catalog_examples", "digest", "train"]
