"""Supervision at scale: rates queries, the board and a full rebuild over ~1,000,000 events.

How the data is made: ``--seed-cases`` real cases are run through the engine
(report → sign → handle → review → evaluate, every fourth with a call-out and
ratings), so their events are exactly what the engine writes. Their case rows
and event rows are then **cloned** with new case ids, spread over a year (each
clone shifted by a whole number of days, its street rotated) and bulk-inserted
until the event log holds ``--events`` events. The projection of the clones is
built by a full rebuild — which is itself the rebuild being measured.

Printed, each next to a baseline measured in the same run:

* rates queries (street, department, matter, district; 30-day and 365-day windows): p50/p95,
  baseline: the same figure computed by a full scan of the event log with the same fold;
* the public board: p50/p95 (read from the projection's board counters), baseline: the same
  counts grouped over the whole cases table (what the board read before), checked equal;
* a full rebuild (``govflow rates rebuild``): seconds, events of the log per second, and the
  events the fold reads; verify next to it;
* the projection's cost on a command: whole simple cases (report, sign for, handle, review,
  evaluate: five commands each) with and without the projector, in alternating rounds so that a
  changing machine load weighs on both alike; the medians of the rounds are compared.

    .venv/bin/python bench/bench_supervision.py --db sqlite --events 1000000
    .venv/bin/python bench/bench_supervision.py --db postgresql --events 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, or_, select

sys.path.insert(0, str(Path(__file__).parent))

from common import fresh_database, ready_app, reference_pack

from govflow.engine.cases.service import NewCase
from govflow.engine.model.clock import ManualClock
from govflow.engine.oversight import definitions, projection
from govflow.engine.store.db import CaseEvent, CaseRow, CaseTask

DONGJIE = dict(lat=26.0865, lng=119.3025)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def simple_case(app: Any, principals: dict[str, Any], i: int) -> None:
    """One simple case through the engine to its end: five commands."""
    street, citizen = principals["dongjie.dispatcher"], principals["citizen.zhang"]
    case = app.cases.report(citizen, NewCase(channel="app", description=f"东街口有个井盖没了 {i}", **DONGJIE))
    for who, name, data in (
        (street, "sign_for", {}),
        (street, "handle", {"result": "已补装井盖"}),
        (street, "review", {"approved": True}),
        (citizen, "evaluate", {"satisfaction": 1 + i % 5}),
    ):
        with app.db.connect() as conn:
            task = conn.execute(
                select(CaseTask.id).where(CaseTask.case_id == case.case_id, CaseTask.name == name)
            ).scalar_one()
        app.cases.complete_task(who, str(task), data)


def projection_cost(app: Any, rounds: int, per_round: int) -> tuple[float, float, float]:
    """Milliseconds per command with and without the projector (medians of alternating rounds),
    and the projector's own share of the commands that ran it (timed inside those same commands,
    so the machine's load weighs on both sides of that ratio alike)."""
    principals = {p.id: p for p in _principals(app)}
    inside = [0.0]

    def timed_projector(conn: Any, changes: Any) -> None:
        started = time.perf_counter()
        projection.project(conn, changes)
        inside[0] += time.perf_counter() - started

    projectors = [timed_projector if p is projection.project else p for p in app.cases.uow.projectors]
    without_projector = [p for p in projectors if p is not timed_projector]
    assert len(without_projector) == len(projectors) - 1
    with_ms: list[float] = []
    without_ms: list[float] = []
    with_total = 0.0
    counter = 0
    for _ in range(2):  # warm
        simple_case(app, principals, counter)
        counter += 1
    for r in range(rounds * 2):
        on = (r % 2 == 0) == (r // 2 % 2 == 0)  # with, without, without, with, with, without …
        app.cases.uow.projectors[:] = projectors if on else without_projector
        started = time.perf_counter()
        for _ in range(per_round):
            simple_case(app, principals, counter)
            counter += 1
        elapsed = time.perf_counter() - started
        (with_ms if on else without_ms).append(elapsed * 1000 / (per_round * 5))
        with_total += elapsed if on else 0.0
    app.cases.uow.projectors[:] = [projection.project if p is timed_projector else p for p in projectors]
    return statistics.median(with_ms), statistics.median(without_ms), inside[0] / with_total


def seed(app: Any, clock: ManualClock, n: int) -> None:
    """Real cases through the engine, each to its end."""
    from govflow.engine.cases.callouts import CallOut

    principals = {p.id: p for p in _principals(app)}
    street, citizen = principals["dongjie.dispatcher"], principals["citizen.zhang"]

    def task(who: Any, case_id: Any, name: str) -> str:
        with app.db.connect() as conn:
            found = conn.execute(
                select(CaseTask.id).where(CaseTask.case_id == case_id, CaseTask.name == name)
            ).scalar_one()
        return str(found)

    for i in range(n):
        case = app.cases.report(citizen, NewCase(channel="app", description="东街口有个井盖没了", **DONGJIE))
        cid = case.case_id
        app.cases.complete_task(street, task(street, cid, "sign_for"), {})
        if i % 4 == 0:
            app.callouts.call_out(street, str(cid), CallOut(["gulou.cgj"], "井盖缺失需联合处置"))
            cgj = principals["cgj.handler"]
            app.cases.complete_task(cgj, task(cgj, cid, "report_in"), {"decision": "accept"})
            due = (clock.now() + dt.timedelta(days=1)).isoformat()
            app.cases.complete_task(
                street,
                task(street, cid, "consult"),
                {"opinion": "城管局补装", "assignments": [{"unit": "gulou.cgj", "duty": "补装", "due": due}]},
            )
            app.cases.complete_task(cgj, task(cgj, cid, "dispose"), {"result": "已补装"})
        else:
            app.cases.complete_task(street, task(street, cid, "handle"), {"result": "已补装井盖"})
        app.cases.complete_task(street, task(street, cid, "review"), {"approved": True})
        app.cases.complete_task(citizen, task(citizen, cid, "evaluate"), {"satisfaction": 1 + i % 5})
        clock.advance(dt.timedelta(minutes=7))


def _principals(app: Any) -> list[Any]:
    from govflow.engine.access.identity import from_row
    from govflow.engine.store.db import Principal as Row

    with app.db.connect() as conn:
        return [from_row(r) for r in conn.execute(select(Row))]


def clone(app: Any, target_events: int, streets: list[str]) -> int:
    """Clone the seeded cases' rows and events (new ids, shifted days, rotated streets) up to the target."""
    with app.db.connect() as conn:
        cases = [dict(r._mapping) for r in conn.execute(select(CaseRow))]
        events = [dict(r._mapping) for r in conn.execute(select(CaseEvent).order_by(CaseEvent.case_id, CaseEvent.seq))]
    by_case: dict[Any, list[dict[str, Any]]] = {}
    for e in events:
        e.pop("id", None)
        by_case.setdefault(e["case_id"], []).append(e)
    total = len(events)
    rng = random.Random(7)
    batch_cases: list[dict[str, Any]] = []
    batch_events: list[dict[str, Any]] = []
    while total < target_events:
        for case in cases:
            new_id, shift, street = uuid.uuid4(), dt.timedelta(days=rng.randrange(0, 365)), rng.choice(streets)
            row = {**case, "id": new_id, "owner_unit": street}
            for key in ("created_at", "updated_at", "closed_at"):
                if row.get(key) is not None:
                    row[key] = row[key] - shift
            batch_cases.append(row)
            for e in by_case[case["id"]]:
                data = dict(e["data"])
                for key in ("owner", "target"):
                    if data.get(key) == "gulou.dongjie":
                        data[key] = street
                batch_events.append({**e, "case_id": new_id, "at": e["at"] - shift, "data": data})
            total += len(by_case[case["id"]])
            if len(batch_events) >= 20000 or total >= target_events:
                with app.db.begin() as conn:
                    conn.execute(insert(CaseRow), batch_cases)
                    conn.execute(insert(CaseEvent), batch_events)
                batch_cases, batch_events = [], []
            if total >= target_events:
                break
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed-cases", type=int, default=40)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5, help="rounds with and without the projector")
    parser.add_argument("--per-round", type=int, default=6, help="simple cases (5 commands each) per round")
    args = parser.parse_args()

    _, engine = fresh_database(args.db)
    pack = reference_pack()
    clock = ManualClock(dt.datetime(2026, 9, 28, 1, 0, tzinfo=dt.UTC))
    app = ready_app(engine, pack, clock=clock)

    # -- the projection's cost on a command, measured on an empty database ------------------
    principals = {p.id: p for p in _principals(app)}
    with_projection, without, share = projection_cost(app, args.rounds, args.per_round)

    seed(app, clock, args.seed_cases)
    streets = [u.code for u in pack.catalog.units.values() if u.kind == "street"]
    started = time.perf_counter()
    clone(app, args.events, streets)
    cloned_in = time.perf_counter() - started

    started = time.perf_counter()
    fresh = projection.rebuild(app.db)
    rebuild_s = time.perf_counter() - started
    started = time.perf_counter()
    check = projection.verify(app.db)
    verify_s = time.perf_counter() - started

    cc = principals["cc.supervisor"]
    today = clock.now().date()
    windows = {"30 days": today - dt.timedelta(days=29), "365 days": today - dt.timedelta(days=364)}
    with app.db.connect() as conn:
        n_cases = conn.execute(select(func.count()).select_from(CaseRow)).scalar_one()
        n_events = conn.execute(select(func.count()).select_from(CaseEvent)).scalar_one()
    print(
        f"govflow supervision benchmark ({args.db}): {n_events:,} events of {n_cases:,} cases in the log "
        f"({cloned_in:.0f} s to clone; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})"
    )
    print(
        f"  full rebuild: {rebuild_s:.1f} s ({n_events / rebuild_s:,.0f} events of the log/s; the fold read "
        f"{fresh.events:,} of them), {len(fresh.counters):,} counters; verify {verify_s:.1f} s, "
        f"equal: {check.equal}   target ≤ 60 s"
    )
    for label, first in windows.items():
        for level in ("street", "department", "matter", "district"):
            times = timed(
                lambda level=level, first=first: app.oversight.rates(
                    cc, level=level, start=first.isoformat(), end=today.isoformat()
                ),
                args.queries,
            )
            print(
                f"  rates {level:10} {label:8}: p50 {statistics.median(times):7.1f} ms  p95 {pct(times, 0.95):7.1f} ms"
                f"  (the first, reading the past days: {times[0]:6.1f} ms)   target p95 ≤ 200 ms"
            )
    # baseline: the same figures by a full scan of the event log with the same fold
    scan = timed(lambda: projection.recompute(app.db), 1)
    print(f"  baseline, rates by a full scan of the event log: {scan[0]:,.0f} ms")
    # baseline of the rebuild: streaming the events it folds, and nothing else
    read = or_(
        CaseEvent.kind.in_(definitions.FOLDED_KINDS),
        *(CaseEvent.kind.like(f"{p}%") for p in definitions.FOLDED_PREFIXES),
    )
    stream = select(CaseEvent.case_id, CaseEvent.at, CaseEvent.kind, CaseEvent.data).where(read)
    stream = stream.order_by(CaseEvent.case_id, CaseEvent.seq).execution_options(yield_per=5000)

    def read_only() -> None:
        with app.db.connect() as conn:
            for _ in conn.execute(stream):
                pass

    streamed = timed(read_only, 1)
    print(
        f"  baseline of the rebuild, streaming the events it folds without folding them: {streamed[0] / 1000:.1f} s "
        f"(the rebuild took {rebuild_s / (streamed[0] / 1000):.1f}× that)"
    )
    board = timed(lambda: app.oversight.board(), args.queries)
    print(f"  board: p50 {statistics.median(board):.1f} ms  p95 {pct(board, 0.95):.1f} ms   target p95 ≤ 50 ms")
    grouped: dict[tuple[str, str], int] = {}

    def group_cases() -> None:
        with app.db.connect() as conn:
            grouped.clear()
            for owner, status, n in conn.execute(
                select(CaseRow.owner_unit, CaseRow.status, func.count())
                .where(CaseRow.district == pack.catalog.district)
                .group_by(CaseRow.owner_unit, CaseRow.status)
            ):
                grouped[(owner or "", status)] = n

    baseline_board = timed(group_cases, max(3, args.queries // 8))
    shown = {
        (row["unit"], stage): n for row in app.oversight.board()["rows"] for stage, n in row["counts"].items() if n
    }
    board_units = {row["unit"] for row in app.oversight.board()["rows"]}
    expected = {k: v for k, v in grouped.items() if k[0] in board_units}
    print(
        f"  baseline, the same counts grouped over the {n_cases:,} case rows: p50 "
        f"{statistics.median(baseline_board):,.0f} ms; board equal to it: {shown == expected}"
    )
    overhead = (with_projection / without - 1) * 100
    print(
        f"  a command (median of {args.rounds} rounds × {args.per_round * 5} commands each way): "
        f"{with_projection:.2f} ms with the projection, {without:.2f} ms without: "
        f"the projection adds {overhead:.1f}%   target ≤ 10%"
    )
    print(
        f"  the projector's own time, measured inside the same commands: {share * 100:.1f}% of a command "
        f"that runs it (≈ {share / (1 - share) * 100:.1f}% added to one without it)"
    )


if __name__ == "__main__":
    main()
