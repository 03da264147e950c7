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
be routed to. ``--split dev`` instead runs a 2-fold cross-validation inside the
dev split (the tuning view). ``--no-history`` switches the past-case matching off.

Run: ``.venv/bin/python bench/bench_dispatch.py [--split test|dev] [--no-history] [--show-errors]``
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from govflow.bootstrap import BUILTIN, PackPlugins, PluginDispatcher
from govflow.engine.dispatch import Report
from govflow.engine.history import PastCase, StaticHistory
from govflow.engine.packs import LoadedPack, load_pack, read_folder
from govflow.plugins import plugin_manager
from govflow.settings import REFERENCE_PACK

LABELLED = Path(__file__).resolve().parent.parent / "tests" / "data" / "dispatch_labelled.yaml"


def splits(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(dev, test): the fixed split described in the module docstring."""
    return [r for i, r in enumerate(items) if i % 3 != 2], [r for i, r in enumerate(items) if i % 3 == 2]


def dispatcher(pack: LoadedPack, past: list[dict[str, Any]] | None) -> PluginDispatcher:
    plugins = PackPlugins(plugin_manager(load_entry_points=False), {n.rsplit(".", 1)[-1] for n in BUILTIN})
    history = StaticHistory(pack.catalog.district, [PastCase(r["description"], r["matter"]) for r in past]) if past is not None else None
    return PluginDispatcher(plugins, history)


def evaluate(pack: LoadedPack, test: list[dict[str, Any]], past: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Right / command centre / wrong counts for matter, street and owner, plus errors and timing."""
    disp = dispatcher(pack, past)
    oracle = dispatcher(pack, None)
    counts: dict[str, Counter[str]] = {"matter": Counter(), "street": Counter(), "owner": Counter()}
    how: Counter[str] = Counter()
    errors: list[str] = []
    started = time.perf_counter()
    for r in test:
        routing = disp.dispatch(pack, Report(r["description"], None, r["lat"], r["lng"], None, "app"))
        expected = oracle.dispatch(pack, Report(r["description"], r["matter"], r["lat"], r["lng"], None, "app")).owner
        for what, got, want in (("matter", routing.matter, r["matter"]), ("street", routing.street, r["street"]), ("owner", routing.owner, expected)):
            counts[what]["command centre" if got is None else ("right" if got == want else "wrong")] += 1
        how[routing.how.split(":", 1)[0] if routing.matter else "unsure"] += 1
        if routing.matter not in (None, r["matter"]):
            errors.append(f"WRONG {r['matter']} -> {routing.matter}: {r['description']}")
        elif routing.matter is None:
            errors.append(f"CC    {r['matter']}: {r['description']}")
    elapsed = time.perf_counter() - started
    return {"n": len(test), "counts": counts, "how": how, "errors": errors, "per_second": len(test) / elapsed if elapsed else 0.0}


def _print(title: str, result: dict[str, Any]) -> None:
    n = result["n"]
    print(f"\n{title}: {n} reports")
    print(f"{'':8} {'right':>14} {'command centre':>16} {'wrong':>14}")
    for what, c in result["counts"].items():
        cells = [f"{c[k]:4d} ({c[k] / n:6.1%})" for k in ("right", "command centre", "wrong")]
        print(f"{what:8} {cells[0]:>14} {cells[1]:>16} {cells[2]:>14}")
    print("matter decided by: " + ", ".join(f"{k} {v}" for k, v in result["how"].most_common()))
    print(f"throughput: {result['per_second']:.0f} reports/s (classify + locate + route, one core)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("test", "dev"), default="test")
    parser.add_argument("--no-history", action="store_true", help="keywords only: no matching against past cases")
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    pack = load_pack(read_folder(REFERENCE_PACK))
    items = yaml.safe_load(LABELLED.read_text(encoding="utf-8"))
    dev, test = splits(items)
    if args.split == "test":
        result = evaluate(pack, test, None if args.no_history else dev)
        _print(f"held-out test split (past cases: the {len(dev)} dev reports)", result)
        results = [result]
    else:
        results = []
        for fold in (0, 1):
            train = [r for i, r in enumerate(dev) if i % 2 != fold]
            held = [r for i, r in enumerate(dev) if i % 2 == fold]
            results.append(evaluate(pack, held, None if args.no_history else train))
            _print(f"dev fold {fold} (past cases: {len(train)} other dev reports)", results[-1])
    if args.show_errors:
        for result in results:
            print("\n".join(result["errors"]))


if __name__ == "__main__":
    main()
