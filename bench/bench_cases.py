"""Cases per second from report to "first task open and persisted".

Measured on SQLite (file, WAL) and PostgreSQL, engine-level (CaseService.report)
and HTTP-level (a real uvicorn server, keep-alive client), next to two
baselines measured in the same run:

* spiff-only: SpiffWorkflow alone, in memory, running the same diagram to its
  first user task (no sandbox, no persistence, no authorization);
* raw-insert: SQLAlchemy Core inserting the same rows (case row with a state
  blob of the same size, one task row, four events) in one transaction per case.

Also: bytes of stored workflow state per open case (zlib JSON, spec excluded).
Run: ``.venv/bin/python bench/bench_cases.py [--n 1000] [--backends sqlite,postgresql] [--no-http]``
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import multiprocessing
import os
import pstats
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import httpx
from common import fresh_database, rate, ready_app, reference_pack
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, insert, select

from govflow.engine.cases.service import NewCase
from govflow.engine.store.db import CaseEvent, CaseRow, CaseTask

STREET_POINTS = [
    (26.0865, 119.3025),
    (26.0780, 119.2950),
    (26.1040, 119.2840),
    (26.0990, 119.3040),
    (26.0950, 119.3190),
]
TEXTS = [
    "东街口有个井盖没了，晚上很危险",
    "路灯不亮好几天了",
    "小区门口垃圾桶满了没人清",
    "半夜施工太吵了",
    "路面塌陷一个大坑",
]


def new_case(i: int) -> NewCase:
    lat, lng = STREET_POINTS[i % len(STREET_POINTS)]
    return NewCase(
        channel="hotline_12345",
        description=TEXTS[i % len(TEXTS)],
        lat=lat,
        lng=lng,
        reporter_name="张伟",
        reporter_phone="13812345678",
    )


def spiff_only(n: int) -> float:
    parser = SpiffBpmnParser()
    parser.add_bpmn_file(str(Path(__file__).parent.parent / "processes" / "frontline_disposal.bpmn"))
    spec, subs = parser.get_spec("frontline_disposal"), parser.get_subprocess_specs("frontline_disposal")

    # Spiff's own (unsandboxed) engine; deadline functions answer a constant
    far = "2030-01-01T00:00:00+00:00"
    engine = PythonScriptEngine(
        environment=TaskDataEnvironment({"due": lambda step, tier: far, "remind": lambda step, tier: far})
    )

    def one(i: int) -> None:
        wf = BpmnWorkflow(spec, subs, script_engine=engine)
        for task in wf.get_tasks(state=TaskState.READY):
            task.data.update(
                {"owner_unit": "gulou.dongjie", "matter": "road.pothole", "tier": "simple", "review_approved": None}
            )
        wf.do_engine_steps()
        assert wf.get_tasks(state=TaskState.READY, manual=True)

    return rate(n, one)


def raw_insert(engine, n: int, blob: bytes, repeat: int = 3) -> float:
    def one(i: int) -> None:
        case_id, now = uuid.uuid4(), time.time()
        import datetime as dt

        at = dt.datetime.fromtimestamp(now, dt.UTC)
        with engine.begin() as conn:
            conn.execute(
                insert(CaseRow),
                {
                    "id": case_id,
                    "district": "gulou",
                    "pack_name": "reference",
                    "pack_version": "1.0.0",
                    "process_id": "frontline_disposal",
                    "status": "dispatched",
                    "owner_unit": "gulou.dongjie",
                    "matter": "road.pothole",
                    "channel": "app",
                    "description": TEXTS[0],
                    "lat": 26.0,
                    "lng": 119.3,
                    "address": None,
                    "reporter_name": "张伟",
                    "reporter_phone": "13812345678",
                    "reported_by": "bench",
                    "state": blob,
                    "next_due": None,
                    "event_seq": 4,
                    "version": 1,
                    "created_at": at,
                    "updated_at": at,
                    "closed_at": None,
                },
            )
            conn.execute(
                insert(CaseTask),
                {
                    "id": uuid.uuid4(),
                    "case_id": case_id,
                    "name": "sign_for",
                    "title": "Sign for",
                    "stage": "dispatched",
                    "action": "sign_for",
                    "unit_code": "gulou.dongjie",
                    "role": "street_dispatcher",
                    "assignee_user": None,
                    "due_at": None,
                    "created_at": at,
                },
            )
            conn.execute(
                insert(CaseEvent),
                [
                    {
                        "case_id": case_id,
                        "seq": s,
                        "at": at,
                        "kind": "k",
                        "actor": "bench",
                        "actor_unit": None,
                        "power": "p",
                        "data": {"x": 1},
                    }
                    for s in range(1, 5)
                ],
            )

    return rate(n, one, repeat=repeat)


def _engine_worker(url: str, n: int, offset: int, barrier, results) -> None:
    from govflow.engine.store.db import make_engine

    engine = make_engine(url)
    app = ready_app(engine, reference_pack(), load_principals=False)
    principal = app.access.authenticate("demo-hotline")
    for i in range(20):
        app.cases.report(principal, new_case(offset + i))
    barrier.wait()
    start = time.perf_counter()
    for i in range(n):
        app.cases.report(principal, new_case(offset + i))
    results.put(time.perf_counter() - start)


def _raw_worker(url: str, n: int, blob: bytes, barrier, results) -> None:
    from govflow.engine.store.db import make_engine

    engine = make_engine(url)
    raw_insert(engine, 20, blob, repeat=1)
    barrier.wait()
    start = time.perf_counter()
    raw_insert(engine, n, blob, repeat=1)
    results.put(time.perf_counter() - start)


def parallel_rate(target, procs: int, n: int, *args) -> float:
    """Cases/s of ``procs`` processes doing ``n`` cases each, released together by a barrier.

    The span is the slowest worker's own measured time (process start-up and exit excluded).
    """
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(procs), ctx.Queue()
    workers = [
        ctx.Process(
            target=target,
            args=(args[0], n, *((p * 100_000,) if target is _engine_worker else args[1:]), barrier, results),
        )
        for p in range(procs)
    ]
    for w in workers:
        w.start()
    spans = [results.get() for _ in workers]
    for w in workers:
        w.join()
    return procs * n / max(spans)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_level(url: str, n: int, threads: int, workers: int = 1) -> float:
    port = free_port()
    env = dict(os.environ, GOVFLOW_DATABASE_URL=url)
    server = subprocess.Popen(
        [sys.executable, "-m", "govflow.cli", "serve", "--demo", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):  # starting takes seconds, several processes more on a loaded machine
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        headers = {"Authorization": "Bearer demo-hotline"}
        per_thread = n // threads
        errors: list[str] = []

        def worker(offset: int) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                for i in range(per_thread):
                    lat, lng = STREET_POINTS[(offset + i) % 5]
                    r = client.post(
                        "/api/v1/cases",
                        json={
                            "channel": "hotline_12345",
                            "description": TEXTS[i % 5],
                            "location": {"lat": lat, "lng": lng},
                        },
                    )
                    if r.status_code != 201:
                        errors.append(r.text)

        start = time.perf_counter()
        pool = [threading.Thread(target=worker, args=(t * per_thread,)) for t in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - start
        if errors:
            raise SystemExit(f"HTTP errors: {errors[:3]}")
        return per_thread * threads / elapsed
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--procs", type=int, default=2, help="also measure with this many processes (0/1: skip)")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after warm-up (as govflow serve does)")
    parser.add_argument("--profile", action="store_true", help="print the top costs of the engine-level path")
    args = parser.parse_args()
    random.seed(1)
    pack = reference_pack()
    spiff = spiff_only(args.n)
    print(f"baseline spiff-only (in memory, to first task): {spiff:10.0f} cases/s")
    for backend in args.backends.split(","):
        url, engine = fresh_database(backend)
        app = ready_app(engine, pack)
        principal = app.access.authenticate("demo-hotline")
        for i in range(50):  # warm caches (spec, authorizer, connections)
            app.cases.report(principal, new_case(i))
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
        engine_rate = rate(args.n, lambda i, app=app, principal=principal: app.cases.report(principal, new_case(i)))
        if args.profile:
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
            print(out.getvalue())
        with engine.connect() as conn:
            sizes = conn.execute(
                select(func.avg(func.length(CaseRow.state)), func.max(func.length(CaseRow.state)))
            ).one()
            blob = conn.execute(select(CaseRow.state).limit(1)).scalar_one()
        raw = raw_insert(engine, args.n, blob)
        print(
            f"[{backend}] engine-level report→first task persisted: {engine_rate:8.0f} cases/s "
            f"({engine_rate / raw:.2f}× raw-insert, {engine_rate / spiff:.2f}× spiff-only)"
        )
        print(f"[{backend}] baseline raw-insert (same rows, one transaction per case): {raw:8.0f} cases/s")
        print(f"[{backend}] stored workflow state per open case: avg {float(sizes[0]):.0f} B, max {sizes[1]} B")
        if args.procs > 1:
            engine.dispose()
            per = max(args.n // args.procs, 100)
            par_engine = parallel_rate(_engine_worker, args.procs, per, url)
            par_raw = parallel_rate(_raw_worker, args.procs, per, url, blob)
            print(
                f"[{backend}] engine-level, {args.procs} processes: {par_engine:8.0f} cases/s "
                f"({par_engine / par_raw:.2f}× raw-insert with {args.procs} processes: {par_raw:.0f} cases/s)"
            )
        if not args.no_http:
            engine.dispose()
            for threads in (1, 4):
                http = http_level(url, min(args.n, 1000), threads)
                print(
                    f"[{backend}] HTTP-level POST /api/v1/cases ({threads} client thread{'s' if threads > 1 else ''}): {http:8.0f} cases/s "
                    f"({http / raw:.2f}× raw-insert)"
                )
            if backend == "postgresql" and args.procs > 1:  # the server's own processes: `serve --workers N`
                http = http_level(url, min(args.n, 1000), 2 * args.procs, workers=args.procs)
                print(
                    f"[{backend}] HTTP-level POST /api/v1/cases, serve --workers {args.procs} "
                    f"({2 * args.procs} client threads): {http:8.0f} cases/s "
                    f"({http / par_engine:.2f}× engine-level with {args.procs} processes)"
                )
        engine.dispose()


if __name__ == "__main__":
    main()
