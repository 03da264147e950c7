"""Authorization and responsibility-list look-ups at district scale, and call-out latency.

A synthetic district with 500 matters (50 groups × 10), 10 streets and 30
departments: a responsibility list with a ``group.*`` entry per group and an
exact entry for every other matter, plus 200 delegations (half of them expired).
Printed, next to plain pycasbin on the same model and policy in the same run:

* call-out power decisions per second (``m2``: list or delegation), warm and cold;
* role decisions per second (``m``: RBAC with domains, 31 principals);
* the first decision for each street (no first-request stall);
* responsibility look-ups per second and µs per look-up;
* call-out command latency through the engine (report, sign for, call out) on
  SQLite and PostgreSQL.

Run: ``.venv/bin/python bench/bench_authz.py [--backends sqlite,postgresql]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import casbin
import yaml
from casbin.util import key_match
from common import fresh_database, ready_app, reference_pack

from govflow.engine.access.authz import Authorizer, Grant, parse_policy_rows
from govflow.engine.cases.callouts import CallOut
from govflow.engine.cases.service import NewCase
from govflow.engine.model.catalog import Catalog, Matter, Unit
from govflow.engine.model.responsibility import ResponsibilityEntry, ResponsibilityList, parse_responsibility
from govflow.settings import REFERENCE_PACK

NOW = "2026-11-23T02:00:00.000000Z"
STREETS = [f"synth.street{i:02d}" for i in range(10)]
DEPARTMENTS = [f"synth.dept{i:02d}" for i in range(30)]


def synthetic_list(rng: random.Random) -> tuple[ResponsibilityList, list[str]]:
    entries, matters = [], []
    for g in range(50):
        group = f"group{g:02d}"
        main, *coop = rng.sample(DEPARTMENTS, 3)
        entries.append(ResponsibilityEntry(f"{group}.*", main, tuple(coop), None))
        for i in range(10):
            matter = f"{group}.item{i}"
            matters.append(matter)
            if i % 5:  # 4 of 5 matters have an exact entry; the rest fall back to the group pattern
                main, *coop = rng.sample(DEPARTMENTS, 3)
                entries.append(ResponsibilityEntry(matter, main, tuple(coop), None))
    return ResponsibilityList("synth", entries), matters


def delegations(rng: random.Random, matters: list[str]) -> list[list[str]]:
    rows = []
    for i in range(200):
        until = "2027-01-01T00:00:00.000000Z" if i % 2 else "2026-01-01T00:00:00.000000Z"
        pattern = rng.choice(matters).split(".")[0] + ".*" if i % 3 else rng.choice(matters)
        rows.append([f"synth/{rng.choice(STREETS)}", pattern, rng.choice(DEPARTMENTS), until, str(i + 1)])
    return rows


def responsible_fn(resp: ResponsibilityList):
    def responsible(matter: str, domain: str, unit: str) -> bool:
        found = resp.lookup(matter)
        return found is not None and (unit == found.main or unit in found.cooperating)

    return responsible


def plain_pycasbin(
    model_text: str, rows: list[list[str]], grants: list[Grant], p2: list[list[str]], responsible
) -> casbin.Enforcer:
    """pycasbin as it comes: no decision cache, matcher re-parsed on every enforce()."""
    enforcer = casbin.Enforcer(casbin.Enforcer.new_model(text=model_text))
    enforcer.add_named_domain_matching_func("g", key_match)
    enforcer.add_function("responsible", responsible)
    enforcer.add_policies(rows)
    enforcer.add_named_grouping_policies("g", [[g.subject, g.role, g.domain] for g in grants])
    enforcer.add_named_policies("p2", p2)
    return enforcer


def per_second(fn, requests, seconds: float = 1.0) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for request in requests:
            fn(*request)
        done += len(requests)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--callouts", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    resp, matters = synthetic_list(rng)
    p2 = delegations(rng, matters)
    model_text = (REFERENCE_PACK / "policies" / "model.conf").read_text(encoding="utf-8")
    rows, _ = parse_policy_rows((REFERENCE_PACK / "policies" / "policy.csv").read_text(encoding="utf-8"))
    rows = [[r[0], r[1].replace("gulou/", "synth/"), r[2]] for r in rows]
    grants = [Grant(f"user{i}", "street_dispatcher", f"synth/{s}") for i, s in enumerate(STREETS)]
    grants += [Grant(f"dept{i}", "department_handler", f"synth/{d}") for i, d in enumerate(DEPARTMENTS[:20])] + [
        Grant("cc", "cc_supervisor", "synth/*")
    ]
    responsible = responsible_fn(resp)
    print(
        f"district: {len(matters)} matters, {len(STREETS)} streets, {len(DEPARTMENTS)} departments, "
        f"{len(resp)} list entries, {len(p2)} delegations, {len(rows)} role rows, {len(grants)} grants"
    )

    call_requests = [
        (f"synth/{rng.choice(STREETS)}", rng.choice(matters), rng.choice(DEPARTMENTS), NOW) for _ in range(2000)
    ]
    role_requests = [
        (
            g.subject,
            f"synth/{rng.choice(STREETS)}" if g.role != "department_handler" else g.domain,
            rng.choice(["sign_for", "call_out", "dispose", "read_case"]),
        )
        for g in grants
        for _ in range(20)
    ]

    ours = Authorizer(model_text, rows, grants, responsible=responsible)
    ours.set_delegations(p2)
    # no first-request stall: the first decision of each street, cold
    firsts = []
    for street in STREETS:
        start = time.perf_counter()
        ours.may_call_out(f"synth/{street}", matters[0], DEPARTMENTS[0], NOW)
        firsts.append((time.perf_counter() - start) * 1000)
    plain = plain_pycasbin(model_text, rows, grants, p2, responsible)
    context = plain.new_enforce_context("2")
    plain_firsts = []
    for street in STREETS:
        start = time.perf_counter()
        plain.enforce(context, f"synth/{street}", matters[0], DEPARTMENTS[0], NOW)
        plain_firsts.append((time.perf_counter() - start) * 1000)
    allowed = sum(ours.may_call_out(*r)[0] for r in call_requests)
    assert all(ours.may_call_out(*r)[0] == plain.enforce(context, *r) for r in call_requests[:300]), (
        "decisions differ from plain pycasbin"
    )

    warm = per_second(ours.may_call_out, call_requests)
    plain_rate = per_second(lambda *r: plain.enforce(context, *r), call_requests[:300])

    def cold(*r):
        ours._call_cache.clear()
        return ours.may_call_out(*r)

    cold_rate = per_second(cold, call_requests[:300])
    print(
        f"call-out power decisions ({allowed / len(call_requests):.0%} allowed): govflow warm {warm:10.0f}/s, "
        f"uncached {cold_rate:8.0f}/s; plain pycasbin {plain_rate:8.0f}/s → ×{warm / plain_rate:.0f} warm"
    )
    print(
        f"first decision per street: govflow max {max(firsts):.2f} ms (median {statistics.median(firsts):.2f}); "
        f"plain pycasbin max {max(plain_firsts):.2f} ms"
    )
    role_warm = per_second(ours.allowed, role_requests)
    role_plain = per_second(plain.enforce, role_requests[:300])
    print(
        f"role decisions (RBAC with domains): govflow warm {role_warm:10.0f}/s; plain pycasbin {role_plain:8.0f}/s → ×{role_warm / role_plain:.0f}"
    )

    lookups = [(m,) for m in matters] * 4
    lookup_rate = per_second(resp.lookup, lookups)
    print(f"responsibility look-ups: {lookup_rate:10.0f}/s ({1e6 / lookup_rate:.2f} µs each)")
    start = time.perf_counter()
    for _ in range(20):
        ResponsibilityList("synth", list(resp))
    print(f"building the list index from {len(resp)} entries: {(time.perf_counter() - start) / 20 * 1000:.2f} ms")
    catalog = Catalog(
        "synth",
        "synthetic",
        {
            **{u: Unit(u, u, "street") for u in STREETS},
            **{u: Unit(u, u, "department") for u in DEPARTMENTS},
            "synth.cc": Unit("synth.cc", "cc", "command_centre"),
        },
        {m: Matter(m, m, "simple") for m in matters},
        "synth.cc",
        tuple(STREETS),
    )
    text = yaml.safe_dump(
        {
            "district": "synth",
            "entries": [
                {
                    "matter": e.matter,
                    "main": e.main,
                    "cooperating": list(e.cooperating),
                    "time_limit": {"amount": 1, "unit": "working_days"},
                }
                for e in resp
            ],
        },
        allow_unicode=True,
    ).encode()
    start = time.perf_counter()
    loaded, issues = parse_responsibility(text, catalog, "policies/responsibility.yaml")
    assert loaded is not None and not issues, issues
    print(
        f"loading and validating policies/responsibility.yaml ({len(resp)} entries, {len(text) // 1024} KB): "
        f"{(time.perf_counter() - start) * 1000:.1f} ms"
    )

    pack = reference_pack()
    for backend in args.backends.split(","):
        _, engine = fresh_database(backend)
        app = ready_app(engine, pack)
        hotline, street = app.access.authenticate("demo-hotline"), app.access.authenticate("demo-dongjie")
        latencies = []
        for i in range(args.callouts + 10):
            case = app.cases.report(
                hotline, NewCase(channel="hotline_12345", description="东街口有个井盖没了", lat=26.0865, lng=119.3025)
            )
            task = next(t for t in app.queries.inbox(street) if t["case_id"] == str(case.case_id))
            app.cases.complete_task(street, task["id"], {})
            start = time.perf_counter()
            app.callouts.call_out(
                street,
                str(case.case_id),
                CallOut(
                    ["gulou.cgj", "gulou.zjj"],
                    "联合处置",
                    dt.datetime.now(dt.UTC) + dt.timedelta(hours=2),
                    "东街口",
                ),
            )
            if i >= 10:
                latencies.append((time.perf_counter() - start) * 1000)
        latencies.sort()
        print(
            f"[{backend}] call-out command (2 departments, powers checked, report-in tasks opened, persisted): "
            f"median {statistics.median(latencies):.2f} ms, p95 {latencies[int(len(latencies) * 0.95)]:.2f} ms over {len(latencies)}"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
