"""Smart dispatch accuracy on the labelled reports of the reference pack.

``tests/data/dispatch_labelled.yaml`` holds 332 realistic reports (description,
coordinates, the right matter and street). The set is split once, by position:

* **dev** (every report whose index % 3 != 2, 222 reports): the only part ever
  looked at while building the classifier and choosing its thresholds; in the
  evaluation it plays the district's *past cases*;
* **test** (index % 3 == 2, 110 reports): held out; reported below.

Each test report goes through the real dispatcher (the plugin manager with the
built-in dispatch plugin, the reference pack, past cases = the dev split) and is
counted as *right*, *sent to the command centre* (unsure: a person decides) or
*wrong* — separately for the matter, the street and the owner unit the case would
be routed to. ``--split dev`` instead runs a cross-validation inside the dev
split (the tuning view; ``--folds 0`` is leave-one-out). ``--catalog FILE``
swaps the pack's ``catalog.yaml`` — e.g. the catalog as it was before keywords
were added from the dev split's misses (``git show 260cb4b^:catalog.yaml``),
which makes the dev view an honest stand-in for unseen reports.
``--no-history`` switches the past-case matching off.

It also prints the cost of classifying one report (the classify hook alone):
with the evaluation's past cases, and with a few thousand past cases (the
past cases repeated with a running number — a worst case for the neighbour
search, whose posting lists grow with every copy), plus the time to build the
scorer once for such a snapshot.

Run: ``.venv/bin/python bench/bench_dispatch.py [--split test|dev] [--folds K] [--catalog FILE] [--no-history] [--show-errors]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from govflow.engine.cache import Caches
from govflow.engine.cases.history import PastCase, StaticHistory
from govflow.engine.model.dispatch import Report
from govflow.engine.packs.loader import LoadedPack, load_pack, read_folder
from govflow.plugins import PackPlugins, PackView, PluginDispatcher, plugin_manager
from govflow.plugins.builtin import dispatch as builtin_dispatch
from govflow.settings import REFERENCE_PACK

LABELLED = Path(__file__).resolve().parent.parent / "tests" / "data" / "dispatch_labelled.yaml"


def splits(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(dev, test): the fixed split described in the module docstring."""
    return [r for i, r in enumerate(items) if i % 3 != 2], [r for i, r in enumerate(items) if i % 3 == 2]


def dispatcher(pack: LoadedPack, past: list[dict[str, Any]] | None) -> PluginDispatcher:
    plugins = PackPlugins.acting(plugin_manager(load_entry_points=False))
    history = (
        StaticHistory(pack.catalog.district, [PastCase(r["description"], r["matter"]) for r in past])
        if past is not None
        else None
    )
    return PluginDispatcher(plugins, Caches(), history)


def evaluate(pack: LoadedPack, test: list[dict[str, Any]], past: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Right / command centre / wrong counts for matter, street and owner, plus errors and timing."""
    disp = dispatcher(pack, past)
    oracle = dispatcher(pack, None)
    counts: dict[str, Counter[str]] = {"matter": Counter(), "street": Counter(), "owner": Counter()}
    how: Counter[str] = Counter()
    errors: list[str] = []
    if test:  # the first report builds the scorer for this pack and these past cases (timed in classify_cost)
        disp.dispatch(pack, Report(test[0]["description"], None, test[0]["lat"], test[0]["lng"], None, "app"))
    started = time.perf_counter()
    for r in test:
        routing = disp.dispatch(pack, Report(r["description"], None, r["lat"], r["lng"], None, "app"))
        expected = oracle.dispatch(pack, Report(r["description"], r["matter"], r["lat"], r["lng"], None, "app")).owner
        for what, got, want in (
            ("matter", routing.matter, r["matter"]),
            ("street", routing.street, r["street"]),
            ("owner", routing.owner, expected),
        ):
            counts[what]["command centre" if got is None else ("right" if got == want else "wrong")] += 1
        how[routing.how.split(":", 1)[0] if routing.matter else "unsure"] += 1
        if routing.matter not in (None, r["matter"]):
            errors.append(f"WRONG {r['matter']} -> {routing.matter}: {r['description']}")
        elif routing.matter is None:
            errors.append(f"CC    {r['matter']}: {r['description']}")
    elapsed = time.perf_counter() - started
    return {
        "n": len(test),
        "counts": counts,
        "how": how,
        "errors": errors,
        "per_second": len(test) / elapsed if elapsed else 0.0,
    }


def classify_cost(
    pack: LoadedPack, reports: list[dict[str, Any]], past: list[dict[str, Any]], copies: int, passes: int = 5
) -> dict[str, float]:
    """Milliseconds per report of the classify hook alone, with ``copies`` × the past cases; and the scorer's build time.

    ``mean_ms`` is the median over ``passes`` passes of the mean per report (the
    machine's noise shows in ``p99_ms``, over every sample).
    """
    cases = [
        PastCase(f"{r['description']}（{k}）" if copies > 1 else r["description"], r["matter"])
        for k in range(copies)
        for r in past
    ]
    history = StaticHistory(pack.catalog.district, cases)
    view = PackView.of(pack, Caches())
    started = time.perf_counter()
    builtin_dispatch.scorer(view, history.past_cases(pack.catalog.district))
    build = time.perf_counter() - started
    samples: list[float] = []
    means: list[float] = []
    for _ in range(passes):
        spent = []
        for r in reports:
            report = Report(r["description"], None, r["lat"], r["lng"], None, "app")
            started = time.perf_counter()
            builtin_dispatch.classify(view, report, history)
            spent.append(time.perf_counter() - started)
        means.append(statistics.fmean(spent))
        samples += spent
    samples.sort()
    return {
        "past": len(cases),
        "copies": copies,
        "build_ms": build * 1000,
        "mean_ms": statistics.median(means) * 1000,
        "p99_ms": samples[int(0.99 * (len(samples) - 1))] * 1000,
    }


def _print_cost(cost: dict[str, float]) -> None:
    copies = f" (the dev split x{cost['copies']:.0f})" if cost["copies"] > 1 else ""
    print(
        f"classify cost, {cost['past']:5.0f} past cases{copies}: {cost['mean_ms']:.3f} ms/report mean, {cost['p99_ms']:.3f} ms p99;"
        f" scorer built once per snapshot in {cost['build_ms']:.0f} ms"
    )


def _print(title: str, result: dict[str, Any]) -> None:
    n = result["n"]
    print(f"\n{title}: {n} reports")
    print(f"{'':8} {'right':>14} {'command centre':>16} {'wrong':>14}")
    for what, c in result["counts"].items():
        cells = [f"{c[k]:4d} ({c[k] / n:6.1%})" for k in ("right", "command centre", "wrong")]
        print(f"{what:8} {cells[0]:>14} {cells[1]:>16} {cells[2]:>14}")
    print("matter decided by: " + ", ".join(f"{k} {v}" for k, v in result["how"].most_common()))
    print(f"throughput: {result['per_second']:.0f} reports/s (classify + locate + route, one core)")


def _pooled(results: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, Counter[str]] = {"matter": Counter(), "street": Counter(), "owner": Counter()}
    how: Counter[str] = Counter()
    for result in results:
        for what, c in result["counts"].items():
            counts[what].update(c)
        how.update(result["how"])
    n = sum(r["n"] for r in results)
    seconds = sum(r["n"] / r["per_second"] for r in results if r["per_second"])
    return {"n": n, "counts": counts, "how": how, "errors": [], "per_second": n / seconds if seconds else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("test", "dev"), default="test")
    parser.add_argument("--folds", type=int, default=2, help="dev split: number of folds (0: leave-one-out)")
    parser.add_argument("--catalog", type=Path, help="use this catalog.yaml instead of the pack's")
    parser.add_argument("--no-history", action="store_true", help="keywords only: no matching against past cases")
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    files = read_folder(REFERENCE_PACK)
    if args.catalog is not None:
        files["catalog.yaml"] = args.catalog.read_bytes()
    pack = load_pack(files)
    items = yaml.safe_load(LABELLED.read_text(encoding="utf-8"))
    dev, test = splits(items)
    if args.split == "test":
        result = evaluate(pack, test, None if args.no_history else dev)
        _print(f"held-out test split (past cases: the {len(dev)} dev reports)", result)
        results = [result]
    else:
        folds = args.folds or len(dev)
        results = []
        for fold in range(folds):
            train = [r for i, r in enumerate(dev) if i % folds != fold]
            held = [r for i, r in enumerate(dev) if i % folds == fold]
            results.append(evaluate(pack, held, None if args.no_history else train))
            if folds <= 10:
                _print(f"dev fold {fold} (past cases: {len(train)} other dev reports)", results[-1])
        if folds > 1:
            _print(f"dev, {folds} folds pooled", _pooled(results))
    if not args.no_history:
        print()
        reports = test if args.split == "test" else dev
        for copies in (1, 20):
            _print_cost(classify_cost(pack, reports, dev, copies))
    if args.show_errors:
        for result in results:
            print("\n".join(result["errors"]))


if __name__ == "__main__":
    main()
