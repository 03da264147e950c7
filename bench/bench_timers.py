"""Timers at scale: 100,000 open cases holding timers (SQLite and PostgreSQL).

Prints, next to a baseline of plain row updates measured in the same run:

* the time for a worker tick to find the due cases among all open cases
  (the worker's own query: ``next_due <= now ORDER BY next_due LIMIT batch``,
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL);
* timers fired per second by 1 and by 2 worker processes (``fire_due`` batches
  through the full command path: load, advance, save, events), and whether the
  second worker added throughput or conflicts.

Set-up: one real case is reported through the engine; its row, open task and
events are cloned (with fresh task ids inside the workflow state) to reach
``--cases``; ``--due`` of them have a passed sign-for deadline.
Run: ``.venv/bin/python bench/bench_timers.py [--cases 100000] [--due 4000]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import statistics
import sys
import time
import uuid
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import fresh_database, ready_app, reference_pack
from sqlalchemy import func, insert, select, update

from govflow.engine.cases.service import NewCase
from govflow.engine.cases.timers import fire_due
from govflow.engine.model.clock import ManualClock
from govflow.engine.store.db import CaseEvent, CaseRow, CaseTask, make_engine

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # Monday 10:00 in Fuzhou


def _clone_state(blob: bytes, ids: list[str]) -> tuple[bytes, dict[str, str]]:
    text = zlib.decompress(blob).decode()
    mapping = {old: str(uuid.uuid4()) for old in ids}
    for old, new in mapping.items():
        text = text.replace(old, new)
    return zlib.compress(text.encode(), 1), mapping


def populate(engine, pack, cases: int, due: int) -> None:
    clock = ManualClock(NOW - dt.timedelta(minutes=30))
    app = ready_app(engine, pack)
    app.cases.clock = clock
    principal = app.access.authenticate("demo-hotline")
    outcome = app.cases.report(
        principal, NewCase(channel="hotline_12345", description="东街口有个井盖没了", lat=26.0865, lng=119.3025)
    )
    with engine.connect() as conn:
        row = dict(conn.execute(select(CaseRow).where(CaseRow.id == outcome.case_id)).one()._mapping)
        task = dict(conn.execute(select(CaseTask).where(CaseTask.case_id == outcome.case_id)).one()._mapping)
        events = [dict(e._mapping) for e in conn.execute(select(CaseEvent).where(CaseEvent.case_id == outcome.case_id))]
    ids = list(json.loads(zlib.decompress(row["state"]))["tasks"].keys())
    for sub in json.loads(zlib.decompress(row["state"]))["subprocesses"].values():
        ids += list(sub["tasks"].keys())
    ids = sorted(set(ids))
    chunk = 2000
    made = 1
    while made < cases:
        rows, tasks, evs = [], [], []
        for _ in range(min(chunk, cases - made)):
            state, mapping = _clone_state(row["state"], ids)
            case_id = uuid.uuid4()
            # the first `due` cases are past their sign-for deadline; the rest wait for hours
            next_due = row["next_due"] if made < due else NOW + dt.timedelta(hours=8)
            rows.append({**row, "id": case_id, "state": state, "next_due": next_due})
            tasks.append({**task, "id": uuid.UUID(mapping[str(task["id"])]), "case_id": case_id})
            evs += [{k: v for k, v in {**e, "case_id": case_id}.items() if k != "id"} for e in events]
            made += 1
        with engine.begin() as conn:
            conn.execute(insert(CaseRow), rows)
            conn.execute(insert(CaseTask), tasks)
            conn.execute(insert(CaseEvent), evs)


def find_due_ms(engine, batch: int = 200) -> float:
    times = []
    for _ in range(20):
        start = time.perf_counter()
        with engine.begin() as conn:
            query = select(CaseRow).where(CaseRow.next_due <= NOW).order_by(CaseRow.next_due).limit(batch)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = conn.execute(query).all()
        times.append((time.perf_counter() - start) * 1000)
        assert rows
    return statistics.median(times)


def _worker(url: str, barrier, results) -> None:
    engine = make_engine(url)
    app = ready_app(engine, reference_pack(), load_principals=False)
    app.cases.clock = ManualClock(NOW)
    barrier.wait()
    fired = conflicts = 0
    start = time.perf_counter()
    while True:
        report = fire_due(app.cases, batch=100)
        fired += report.fired
        conflicts += report.conflicts
        if report.due == 0:
            break
    results.put((fired, conflicts, time.perf_counter() - start))


def fire_with(url: str, procs: int) -> tuple[float, int, int]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(procs + 1), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(url, barrier, results)) for _ in range(procs)]
    for w in workers:
        w.start()
    barrier.wait()
    outcomes = [results.get() for _ in workers]
    for w in workers:
        w.join()
    span = max(o[2] for o in outcomes)  # the slowest worker's own time, start-up and exit excluded
    fired = sum(o[0] for o in outcomes)
    return fired / span, fired, sum(o[1] for o in outcomes)


def plain_updates(engine, n: int) -> float:
    with engine.connect() as conn:
        ids = conn.execute(select(CaseRow.id).limit(n)).scalars().all()
    start = time.perf_counter()
    for i in range(0, len(ids), 100):
        with engine.begin() as conn:
            for case_id in ids[i : i + 100]:
                conn.execute(
                    update(CaseRow)
                    .where(CaseRow.id == case_id)
                    .values(next_due=NOW + dt.timedelta(hours=9), version=CaseRow.version + 1)
                )
    return len(ids) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=4000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    pack = reference_pack()
    for backend in args.backends.split(","):
        results = {}
        for procs in (1, 2):
            if backend == "sqlite" and procs == 2:
                results[procs] = None
                continue
            url, engine = fresh_database(backend)
            start = time.perf_counter()
            populate(engine, pack, args.cases, args.due)
            with engine.connect() as conn:
                total = conn.execute(select(func.count()).select_from(CaseRow)).scalar_one()
                due_now = conn.execute(
                    select(func.count()).select_from(CaseRow).where(CaseRow.next_due <= NOW)
                ).scalar_one()
            if procs == 1:
                print(
                    f"[{backend}] {total} open cases with timers, {due_now} due (set-up {time.perf_counter() - start:.0f} s)"
                )
                print(
                    f"[{backend}] worker tick finds the due cases among {total}: {find_due_ms(engine):.2f} ms (median of 20)"
                )
            engine.dispose()
            results[procs] = fire_with(url, procs)
            rate, fired, conflicts = results[procs]
            print(
                f"[{backend}] {procs} worker process{'es' if procs > 1 else ''}: {rate:7.0f} timers fired/s ({fired} fired, {conflicts} conflicts)"
            )
            if procs == 1:
                baseline = plain_updates(make_engine(url), args.due)
                print(
                    f"[{backend}] baseline plain row updates (same count, 100 per transaction): {baseline:7.0f} rows/s "
                    f"→ firing is {rate / baseline:.2f}× plain updates"
                )
        if results.get(2):
            print(f"[{backend}] second worker: ×{results[2][0] / results[1][0]:.2f} throughput")


if __name__ == "__main__":
    main()
