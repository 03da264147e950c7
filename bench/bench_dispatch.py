"""Smart dispatch on the FROZEN TEST SPLIT (``tests/data/dispatch/test.yaml``): the old classifier next to the new.

The test split (350 hand-written reports: plain, indirect and noisy; 10 that no unit
handles) was written and committed before the training split and before any
tuning; nothing here tunes anything. Every report goes through the real dispatcher
(the plugin manager with the built-in dispatch plugin and the reference pack):

* **new** — the pack's trained model (``dispatch/model.json``) and gazetteer;
* **old** — govflow's first classifier (keyword rules, keyword profiles and past
  cases: :mod:`govflow.plugins.builtin.keywords`) with the catalog it shipped with
  (``bench/catalog_v1.yaml``, 53 matters) and the old labelled file as past cases.

Matter: *right*, *command centre* (unsure: a person decides) or *wrong*, by
difficulty. For a report whose matter is null the command centre is right and any
matter wrong; for the old classifier a matter its catalog lacks can only be sent to
the command centre (or routed wrongly). Street: from coordinates (point in polygon)
and, for reports without coordinates, from the places the text names (gazetteer).
Cost: milliseconds per report of the classify hook with the model built, the old
classifier's (keywords, profiles and past cases) measured in the same run as the
baseline. Duplicates: a burst scenario built from the split's located reports —
each one an incident, re-reported 1–4 times by other residents (other reports of
the same matter, 5–60 m away, within hours), all in one stream — classified by the
new model and linked by :func:`govflow.engine.cases.duplicates.find_main` to the
open cases of its matter (or, unsure, of its two best candidates: ``matters_of``;
an open case the model was unsure of counts under its two best candidates), as
the service does: duplicates found, and false links among all reports.

Run: ``.venv/bin/python bench/bench_dispatch.py [--show-errors]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

from govflow.engine.cache import Caches
from govflow.engine.cases.duplicates import Candidate, Rules, find_main, matters_of
from govflow.engine.cases.history import PastCase, StaticHistory
from govflow.engine.model.dispatch import Report
from govflow.engine.packs.loader import LoadedPack, load_pack, read_folder
from govflow.plugins import PackPlugins, PackView, PluginDispatcher, plugin_manager
from govflow.plugins.builtin import dispatch as builtin_dispatch
from govflow.plugins.builtin.dispatch_model import MODEL_FILE
from govflow.settings import REFERENCE_PACK

ROOT = Path(__file__).resolve().parent.parent
TEST = ROOT / "tests" / "data" / "dispatch" / "test.yaml"
OLD_LABELLED = ROOT / "tests" / "data" / "dispatch_labelled.yaml"
OLD_CATALOG = Path(__file__).resolve().parent / "catalog_v1.yaml"
DIFFICULTIES = ("plain", "indirect", "noisy")


def report_of(r: dict[str, Any], *, with_place: bool = True) -> Report:
    return Report(r["text"], None, r.get("lat"), r.get("lng"), r.get("address") if with_place else None, r["channel"])


def dispatcher(history: Any = None) -> PluginDispatcher:
    return PluginDispatcher(PackPlugins.acting(plugin_manager(load_entry_points=False)), Caches(), history)


def matter_figures(pack: LoadedPack, test: list[dict[str, Any]], history: Any = None) -> dict[str, Any]:
    disp = dispatcher(history)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    errors: list[str] = []
    for r in test:
        routing = disp.dispatch(pack, report_of(r))
        got, want = routing.matter, r["matter"]
        verdict = "command centre" if got is None else ("right" if got == want else "wrong")
        counts[r["difficulty"]][verdict] += 1
        counts["all"][verdict] += 1
        if verdict != "right":
            errors.append(f"{verdict:14} {r['id']} {want} -> {got}: {r['text'][:60]}  [{routing.how[:90]}]")
    return {"counts": counts, "errors": errors}


def street_figures(pack: LoadedPack, test: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    disp = dispatcher()
    out: dict[str, Counter[str]] = {"coordinates": Counter(), "text": Counter(), "text, ambiguous place": Counter()}
    for r in test:
        routing = disp.dispatch(pack, report_of(r))
        if r.get("lat") is not None:
            out["coordinates"]["right" if routing.street == r["street"] else "wrong"] += 1
        elif r.get("place"):
            kind = "text" if r["street"] else "text, ambiguous place"
            got = routing.street
            out[kind]["to a person" if got is None else ("right" if got == r["street"] else "wrong")] += 1
    return out


def cost(pack: LoadedPack, test: list[dict[str, Any]], passes: int = 5, history: Any = None) -> dict[str, float]:
    view = PackView.of(pack, Caches())
    started = time.perf_counter()
    builtin_dispatch.model(view)
    build = time.perf_counter() - started
    reports = [report_of(r) for r in test]
    for report in reports[:20]:  # warm: the keyword profiles and past-case index are built on first use
        builtin_dispatch.classify(view, report, history)
    samples, means = [], []
    for _ in range(passes):
        spent = []
        for report in reports:
            t0 = time.perf_counter()
            builtin_dispatch.classify(view, report, history)
            spent.append(time.perf_counter() - t0)
        means.append(statistics.fmean(spent))
        samples += spent
    samples.sort()
    return {
        "build_ms": build * 1000,
        "mean_ms": statistics.median(means) * 1000,
        "p99_ms": samples[int(0.99 * (len(samples) - 1))] * 1000,
    }


def _moved(lat: float, lng: float, metres: float, rng: random.Random) -> tuple[float, float]:
    bearing = rng.uniform(0, 2 * math.pi)
    return (
        lat + metres * math.cos(bearing) / 111_320.0,
        lng + metres * math.sin(bearing) / (111_320.0 * math.cos(math.radians(lat))),
    )


def duplicate_figures(pack: LoadedPack, test: list[dict[str, Any]], seed: int = 7) -> dict[str, int]:
    """The burst scenario (see the module docstring): duplicates found and false links."""
    rng = random.Random(seed)
    located = [r for r in test if r.get("lat") is not None and r["matter"] is not None]
    by_matter: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in located:
        by_matter[r["matter"]].append(r)
    start = dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC)
    stream: list[tuple[dt.datetime, int, str, float, float]] = []  # (at, incident, text, lat, lng)
    for incident, r in enumerate(located):
        first = start + dt.timedelta(minutes=rng.uniform(0, 48 * 60))
        stream.append((first, incident, r["text"], r["lat"], r["lng"]))
        others = [o for o in by_matter[r["matter"]] if o is not r] or [r]
        for _ in range(rng.randint(1, 4)):
            lat, lng = _moved(r["lat"], r["lng"], rng.uniform(5, 60), rng)
            at = first + dt.timedelta(minutes=rng.uniform(5, 8 * 60))
            stream.append((at, incident, rng.choice(others)["text"], lat, lng))
    stream.sort(key=lambda s: s[0])
    disp, rules = dispatcher(), Rules.of(pack.manifest.settings)
    open_cases: dict[str | None, list[tuple[Candidate, int]]] = defaultdict(list)
    seen: set[int] = set()
    counts: Counter[str] = Counter()
    for at, incident, text, lat, lng in stream:
        duplicate = incident in seen
        seen.add(incident)
        counts["duplicates" if duplicate else "first reports"] += 1
        routing = disp.dispatch(pack, Report(text, None, lat, lng, None, "app"))
        candidates = [c for m in matters_of(routing) for c, _ in open_cases[m] if c.created_at >= at - rules.window]
        match = find_main(lat, lng, None, candidates, rules)
        if match is None:
            own = Candidate(sum(counts.values()), lat, lng, None, at)  # a case of its own: others may link to it
            for m in matters_of(routing):  # its matter, or (unsure) its best candidates, as the service reads them
                open_cases[m].append((own, incident))
            counts["missed" if duplicate else "kept apart"] += 1
            continue
        main_incident = next(i for cases in open_cases.values() for c, i in cases if c.id == match.main)
        counts["found" if duplicate and main_incident == incident else "false link"] += 1
    return dict(counts)


def _row(label: str, c: Counter[str], keys: tuple[str, ...] = ("right", "command centre", "wrong")) -> str:
    n = sum(c.values()) or 1
    return f"{label:22} {sum(c.values()):4d}  " + "  ".join(f"{k} {c[k] / n:6.1%}" for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    test = yaml.safe_load(TEST.read_text(encoding="utf-8"))
    files = read_folder(REFERENCE_PACK)
    new_pack = load_pack(files)
    old_files = {k: v for k, v in files.items() if k not in (MODEL_FILE, "policies/demo-principals.yaml")}
    old_files["catalog.yaml"] = OLD_CATALOG.read_bytes()
    old_files["policies/responsibility.yaml"] = b"district: gulou\nentries:\n" + b"".join(
        f"  - {{matter: {g}.*, main: gulou.cgj, time_limit: {{amount: 1, unit: working_days}}}}\n".encode()
        for g in sorted({m["code"].split(".")[0] for m in yaml.safe_load(OLD_CATALOG.read_text())["matters"]})
    )
    old_pack = load_pack(old_files)
    old_labelled = yaml.safe_load(OLD_LABELLED.read_text(encoding="utf-8"))
    history = StaticHistory("gulou", [PastCase(r["description"], r["matter"]) for r in old_labelled])
    print(f"frozen test split: {len(test)} reports ({dict(Counter(r['difficulty'] for r in test))})")
    results = {
        "OLD keywords+past cases, catalog v1": matter_figures(old_pack, test, history),
        "NEW trained model": matter_figures(new_pack, test),
    }
    print("\nmatter (right / sent to the command centre / wrong), by difficulty")
    for name, result in results.items():
        print(f"-- {name}")
        for d in (*DIFFICULTIES, "all"):
            print("   " + _row(d, result["counts"][d]))
    print("\nstreet (new dispatch)")
    for kind, c in street_figures(new_pack, test).items():
        print("   " + _row(kind, c, ("right", "to a person", "wrong")))
    load = os.getloadavg()
    c = cost(new_pack, test)
    old = cost(old_pack, test, history=history)
    print(
        f"\nclassify cost, ms/report (mean of {len(test)}, median of 5 passes; load average {load[0]:.1f}):"
        f"\n   new model       {c['mean_ms']:.3f} mean, {c['p99_ms']:.3f} p99 (model built once in {c['build_ms']:.0f} ms)"
        f"\n   old keywords    {old['mean_ms']:.3f} mean, {old['p99_ms']:.3f} p99 (baseline, same run)"
        f"\n   ratio new/old   {c['mean_ms'] / old['mean_ms']:.2f}"
    )
    d = duplicate_figures(new_pack, test)
    dups, n = d.get("duplicates", 0), d.get("duplicates", 0) + d.get("first reports", 0)
    print(
        f"\nduplicates (burst of {n} reports, {dups} of them re-reports): found {d.get('found', 0) / max(dups, 1):.1%},"
        f" missed {d.get('missed', 0) / max(dups, 1):.1%}; false links {d.get('false link', 0) / max(n, 1):.1%}"
        f" of all reports"
    )
    if args.show_errors:
        for name, result in results.items():
            print(f"\n-- {name}")
            print("\n".join(result["errors"]))


if __name__ == "__main__":
    main()
