"""A million open cases in PostgreSQL: latencies under a concurrent mixed load.

Set-up (say how): one real case is reported through the engine a week ago (so its deadline
timers are due now); its case row, open task and events are **cloned** with ``COPY`` to reach
``--cases`` open cases, spread evenly over the ten demo streets (100,000 per street at a
million), each clone with a fresh case id, a fresh id for its open task (also inside its
workflow state, so the task can be completed), its timestamps shifted by up to 30 days (the
inboxes are not one tie), and ``next_due`` a month ahead except for ``--due`` clones whose
timers are due now. ``--keep`` reuses a database already built with at least that many cases.

Then ``--clients`` processes run a mix for ``--seconds``: a street's inbox (limit 20 and
100), a case read, completing a sign-for (each client its own tasks), a new report; one more
process runs the timer worker's ticks (``fire_due``, batches of 100). Printed: p50/p95/p99
of each (ms), the API processes' memory before and after, and baselines measured in the same
run on the same data: the inbox as the plain ``OR … ORDER BY`` query (what it was before
migration 0008), a raw read of a case row by id, plain updates of 100 rows (the tick's
writes without the engine). ``--explain`` prints the query plans of the inbox and the tick.

Run: ``.venv/bin/python bench/bench_scale.py [--cases 1000000] [--clients 3] [--seconds 30]``
(PostgreSQL from ``GOVFLOW_BENCH_DATABASE_URL``; the database is wiped unless ``--keep``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import random
import re
import statistics
import sys
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import PG_URL, fresh_database, ready_app, reference_pack
from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects import postgresql

from govflow.engine.cases.inbox import inbox_query
from govflow.engine.cases.service import NewCase
from govflow.engine.model.clock import ManualClock
from govflow.engine.store.db import CaseEvent, CaseRow, CaseTask, make_engine

STREETS = ["dongjie", "gudong", "guxi", "wenquan", "nanjie", "antai", "huada", "shuibu", "wufeng", "hongshan"]
DONGJIE = dict(lat=26.0865, lng=119.3025)
CHUNK = 20_000
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fresh_ids(n: int) -> list[str]:
    """``n`` random version-4 UUIDs as text (faster than ``uuid.uuid4()`` for a million clones)."""
    raw = os.urandom(16 * n).hex()
    out = []
    for i in range(0, 32 * n, 32):
        h = raw[i : i + 32]
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}")
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# -- set-up ------------------------------------------------------------------------------------
def _copy(raw: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def build(cases: int, due: int) -> None:
    _, engine = fresh_database("postgresql")
    now = dt.datetime.now(dt.UTC)
    app = ready_app(engine, reference_pack(), clock=ManualClock(now - dt.timedelta(days=7)))
    citizen = app.access.authenticate("demo-citizen-zhang")
    outcome = app.cases.report(citizen, NewCase(channel="app", description="东街口有个井盖没了", **DONGJIE))
    with engine.connect() as conn:
        row = dict(conn.execute(select(CaseRow).where(CaseRow.id == outcome.case_id)).one()._mapping)
        task = dict(conn.execute(select(CaseTask).where(CaseTask.case_id == outcome.case_id)).one()._mapping)
        events = [
            {k: v for k, v in e._mapping.items() if k != "id"}
            for e in conn.execute(select(CaseEvent).where(CaseEvent.case_id == outcome.case_id))
        ]
    assert row["next_due"] is not None and row["next_due"] <= now, "the template's timers must be due"
    # the state as literal pieces between the UUIDs it holds (Spiff's task ids, the case id in its data):
    # a clone joins the pieces with ids of its own, so every task it will open has a fresh id too
    state_text = zlib.decompress(row["state"]).decode()
    pieces = UUID_RE.split(state_text)
    found = list(dict.fromkeys(UUID_RE.findall(state_text)))
    slots = [found.index(u) for u in UUID_RE.findall(state_text)]
    case_slot, task_slot = found.index(str(row["id"])), found.index(str(task["id"]))
    parts = [""] * (2 * len(slots) + 1)
    parts[::2] = pieces
    case_cols, task_cols = list(row), list(task)
    event_cols = list(events[0])
    rng = random.Random(13)
    raw = engine.raw_connection()
    started = time.perf_counter()
    try:
        made = 1
        while made < cases:
            case_rows, task_rows, event_rows = [], [], []
            for _ in range(min(CHUNK, cases - made)):
                case_id, task_id = uuid.uuid4(), uuid.uuid4()
                street = f"gulou.{STREETS[made % len(STREETS)]}"
                shift = dt.timedelta(seconds=rng.randrange(0, 30 * 86400))
                ids = fresh_ids(len(found))
                ids[case_slot], ids[task_slot] = str(case_id), str(task_id)
                for k, slot in enumerate(slots):
                    parts[2 * k + 1] = ids[slot]
                state = zlib.compress("".join(parts).encode(), 1)
                next_due = row["next_due"] if made <= due else now + dt.timedelta(days=30)
                values = {
                    **row,
                    "id": case_id,
                    "owner_unit": street,
                    "state": state,
                    "next_due": next_due,
                    "created_at": row["created_at"] - shift,
                    "updated_at": row["updated_at"] - shift,
                }
                case_rows.append(tuple(values[c] for c in case_cols))
                t = {
                    **task,
                    "id": task_id,
                    "case_id": case_id,
                    "unit_code": street,
                    "created_at": task["created_at"] - shift,
                    "due_at": task["due_at"] - shift if task["due_at"] else None,
                }
                task_rows.append(tuple(t[c] for c in task_cols))
                for e in events:
                    ev = {**e, "case_id": case_id, "at": e["at"] - shift, "data": json.dumps(e["data"])}
                    event_rows.append(tuple(ev[c] for c in event_cols))
                made += 1
            _copy(raw, "cases", case_cols, case_rows)
            _copy(raw, "case_tasks", task_cols, task_rows)
            _copy(raw, "case_events", event_cols, event_rows)
            raw.commit()
            if made % 100_000 < CHUNK:
                print(f"  {made:,} cases ({time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    print(f"built {cases:,} open cases in {time.perf_counter() - started:.0f} s (COPY of cloned rows)")


# -- the load ------------------------------------------------------------------------------------
def _app(url: str) -> Any:
    """The application on the built database, with the pack version the cases were built on."""
    from govflow.bootstrap import build as build_app

    return build_app("", db=make_engine(url))


def _client(url: str, seed: int, seconds: float, tasks: list[tuple[str, str]], cases: list[str], barrier, results):
    app = _app(url)
    street_of = {s: app.access.authenticate(f"demo-{s}") for s in STREETS}
    reporter = app.access.authenticate("demo-citizen-zhang")
    rng = random.Random(seed)
    for s in STREETS[:3]:  # warm caches (authorizer, connections)
        app.queries.inbox(street_of[s], limit=20)
    before = rss_mb()
    timings: dict[str, list[float]] = {k: [] for k in ("inbox20", "inbox100", "read", "complete", "report")}
    errors: list[str] = []
    barrier.wait()
    end = time.perf_counter() + seconds
    i = 0
    samples, next_sample = [], time.perf_counter() + seconds / 4
    while time.perf_counter() < end:
        if time.perf_counter() >= next_sample:  # memory along the run: flat, or growing?
            samples.append(rss_mb())
            next_sample += seconds / 4
        r = rng.random()
        street = STREETS[rng.randrange(len(STREETS))]
        t0 = time.perf_counter()
        try:
            if r < 0.2:
                kind = "inbox20"
                app.queries.inbox(street_of[street], limit=20)
            elif r < 0.4:
                kind = "inbox100"
                app.queries.inbox(street_of[street], limit=100)
            elif r < 0.65:
                kind = "read"
                case_id, unit = cases[rng.randrange(len(cases))].split("|")
                app.queries.case(street_of[unit.removeprefix("gulou.")], case_id)
            elif r < 0.85 and i < len(tasks):
                kind = "complete"
                task_id, unit = tasks[i]
                i += 1
                app.cases.complete_task(street_of[unit.removeprefix("gulou.")], task_id, {})
            else:
                kind = "report"
                app.cases.report(reporter, NewCase(channel="app", description="路灯不亮", **DONGJIE))
        except Exception as exc:  # counted and shown: the figures hold only if there are none
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
            continue
        timings[kind].append((time.perf_counter() - t0) * 1000)
    results.put(("client", timings, errors, [before, *samples, rss_mb()]))


def _ticker(url: str, seconds: float, barrier, results) -> None:
    from govflow.engine.cases.timers import fire_due

    app = _app(url)
    ticks: list[float] = []
    fired = 0
    barrier.wait()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        report = fire_due(app.cases, batch=100)
        if report.due:
            ticks.append((time.perf_counter() - t0) * 1000)
            fired += report.fired
        time.sleep(0.2)
    results.put(("ticker", ticks, fired))


def baselines(engine, cases: list[str]) -> dict[str, list[float]]:
    """The same data read the plain way, sequentially (no concurrent load)."""
    from govflow.engine.access.identity import Principal

    out: dict[str, list[float]] = {"old-inbox20": [], "new-inbox20": [], "raw-read": [], "plain-100-updates": []}
    with engine.connect() as conn:
        for s in STREETS * 3:
            who = Principal(f"{s}.dispatcher", s, "person", "gulou", f"gulou.{s}", ("street_dispatcher",))
            old = (
                select(CaseTask.__table__, CaseRow.status, CaseRow.matter, CaseRow.owner_unit)
                .join(CaseRow, CaseRow.id == CaseTask.case_id)
                .where(
                    or_(
                        CaseTask.assignee_user == who.id,
                        and_(CaseTask.unit_code == who.unit, CaseTask.role.in_(who.roles)),
                    )
                )
                .order_by(CaseTask.due_at.is_(None), CaseTask.due_at, CaseTask.created_at)
                .limit(20)
            )
            for name, query in (("old-inbox20", old), ("new-inbox20", inbox_query(who, limit=20))):
                t0 = time.perf_counter()
                conn.execute(query).all()
                out[name].append((time.perf_counter() - t0) * 1000)
        for entry in cases[:200]:
            t0 = time.perf_counter()
            conn.execute(select(CaseRow).where(CaseRow.id == uuid.UUID(entry.split("|")[0]))).one()
            out["raw-read"].append((time.perf_counter() - t0) * 1000)
    ids = [uuid.UUID(e.split("|")[0]) for e in cases[-1000:]]
    for i in range(0, len(ids), 100):
        t0 = time.perf_counter()
        with engine.begin() as conn:
            for case_id in ids[i : i + 100]:
                conn.execute(update(CaseRow).where(CaseRow.id == case_id).values(version=CaseRow.version + 0))
        out["plain-100-updates"].append((time.perf_counter() - t0) * 1000)
    return out


def explain(engine) -> None:
    from govflow.engine.access.identity import Principal

    who = Principal("dongjie.dispatcher", "d", "person", "gulou", "gulou.dongjie", ("street_dispatcher",))
    pg = postgresql.dialect()
    inbox_sql = str(inbox_query(who, limit=20).compile(dialect=pg, compile_kwargs={"literal_binds": True}))
    tick_sql = "SELECT * FROM cases WHERE next_due <= now() ORDER BY next_due LIMIT 100 FOR UPDATE SKIP LOCKED"
    with engine.connect() as conn:  # rolled back: the tick's rows are locked only while explained
        for name, sql in (("inbox of one street, limit 20", inbox_sql), ("timer tick (the worker's select)", tick_sql)):
            plan = conn.execute(text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)).scalars().all()
            print(f"\n-- {name}\n{sql}\n" + "\n".join(plan))
        conn.rollback()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=5000, help="clones whose timers are due now")
    parser.add_argument("--clients", type=int, default=3, help="client processes of the mixed load")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--keep", action="store_true", help="reuse the database if it holds enough cases")
    parser.add_argument("--explain", action="store_true", help="print the inbox's and the tick's query plans")
    args = parser.parse_args()
    engine = make_engine(PG_URL)
    have = 0
    if args.keep:
        try:
            with engine.connect() as conn:
                have = conn.execute(select(func.count()).select_from(CaseRow)).scalar_one()
        except Exception:
            have = 0
    engine.dispose()
    if have < args.cases:
        build(args.cases, args.due)
    engine = make_engine(PG_URL)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(CaseRow)).scalar_one()
        per_street = conn.execute(
            select(func.count()).select_from(CaseTask).where(CaseTask.unit_code == "gulou.dongjie")
        ).scalar_one()
        due_now = conn.execute(
            select(func.count()).select_from(CaseRow).where(CaseRow.next_due <= func.now())
        ).scalar_one()
        share = min(100.0, 2_000_000 / max(total, 1))  # about 20,000 tasks, 5,000 cases
        sample = conn.execute(
            text(
                # not the cases the timer worker fires meanwhile (their sign-for may be replaced)
                f"SELECT t.id, t.unit_code FROM case_tasks t TABLESAMPLE BERNOULLI ({share}) "
                "JOIN cases c ON c.id = t.case_id WHERE t.name = 'sign_for' AND c.next_due > now() LIMIT 20000"
            )
        ).all()
    rng = random.Random(5)
    rng.shuffle(sample)
    tasks = [(str(r.id), r.unit_code) for r in sample]
    # case reads: cases not in anyone's completion list (their row stays as built)
    with engine.connect() as conn:
        reads = [
            f"{r.id}|{r.owner_unit}"
            for r in conn.execute(
                text(
                    f"SELECT id, owner_unit FROM cases TABLESAMPLE BERNOULLI ({share / 2}) "
                    "WHERE next_due > now() LIMIT 5000"
                )
            )
        ]
    print(
        f"{total:,} cases, {per_street:,} open tasks in one street's inbox, {due_now:,} with due timers; "
        f"load: {args.clients} client processes + 1 timer worker for {args.seconds:.0f} s "
        f"(machine load {os.getloadavg()[0]:.1f})"
    )
    base = baselines(engine, reads)
    if args.explain:
        explain(engine)
    engine.dispose()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(args.clients + 1), ctx.Queue()
    share = len(tasks) // args.clients
    procs = [
        ctx.Process(
            target=_client,
            args=(PG_URL, c, args.seconds, tasks[c * share : (c + 1) * share], reads, barrier, results),
        )
        for c in range(args.clients)
    ]
    procs.append(ctx.Process(target=_ticker, args=(PG_URL, args.seconds, barrier, results)))
    for p in procs:
        p.start()
    merged: dict[str, list[float]] = {}
    errors: list[str] = []
    memory: list[list[float]] = []
    ticks: list[float] = []
    fired = 0
    for _ in procs:
        got = results.get(timeout=args.seconds + 600)  # a process that died says so on stderr
        if got[0] == "client":
            for kind, values in got[1].items():
                merged.setdefault(kind, []).extend(values)
            errors += got[2]
            memory.append(got[3])
        else:
            ticks, fired = got[1], got[2]
    for p in procs:
        p.join()
    print(f"\n{'operation':34s} {'n':>6s} {'p50':>8s} {'p95':>8s} {'p99':>8s}   (ms, under the mixed load)")
    for kind in ("inbox20", "inbox100", "read", "complete", "report"):
        v = merged.get(kind, [])
        print(f"{kind:34s} {len(v):6d} {pct(v, 0.5):8.1f} {pct(v, 0.95):8.1f} {pct(v, 0.99):8.1f}")
    print(
        f"{'timer tick (batch of 100)':34s} {len(ticks):6d} {pct(ticks, 0.5):8.1f} {pct(ticks, 0.95):8.1f} {pct(ticks, 0.99):8.1f}"
    )
    if ticks:
        print(f"   timers fired: {fired} in {len(ticks)} ticks ({statistics.mean(ticks) / 100:.2f} ms per case)")
    print("\nbaselines, same data, no concurrent load:")
    for name, v in base.items():
        print(f"{name:34s} {len(v):6d} {pct(v, 0.5):8.1f} {pct(v, 0.95):8.1f} {pct(v, 0.99):8.1f}")
    for i, rss in enumerate(memory):
        print(
            f"client process {i}: RSS (MB) before the load, at each quarter, after: {' '.join(f'{m:.0f}' for m in rss)}"
        )
    if errors:
        print(f"\n{len(errors)} operations failed, e.g.: {errors[:3]}")
    print(f"\nmachine load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
