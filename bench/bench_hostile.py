"""p95 of unrelated requests while hostile diagram code runs (issue 14: bounded diagram code).

A real server (uvicorn, one process, SQLite) serves the reference pack. A reader in **another
process** (as a real client) fetches one case again and again (GET /api/v1/cases/{id}). Its
latencies are measured in three modes, interleaved round by round so that a changing machine
load weighs on all of them alike:

* ``idle``: nothing else runs (the baseline);
* ``attack``: a hostile client keeps reporting cases on a pack version whose routing condition
  runs a triple loop, each stopped by the per-command time budget (409 diagram-failed), with
  diagram code yielding the interpreter past ``sandbox.YIELD_AFTER`` (what govflow does);
* ``attack, no yield``: the same with yielding switched off (what govflow did before: the
  hostile thread holds the GIL for its whole budget, other requests wait for it each time).

    .venv/bin/python bench/bench_hostile.py [--seconds 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fresh_database, ready_app, reference_pack
from govflow.api.app import create_app
from govflow.engine.packs.loader import read_folder
from govflow.engine.workflow import sandbox
from govflow.settings import REFERENCE_PACK

DIAGRAM = "processes/frontline_disposal.bpmn"
ROUTE = "<bpmn:conditionExpression>owner_unit is not None</bpmn:conditionExpression>"
HOSTILE = (
    "<bpmn:conditionExpression>owner_unit is not None and "
    "len([a for a in range(999) for b in range(999) for c in range(999)]) &gt; 0</bpmn:conditionExpression>"
)
WHERE = {"lat": 26.0865, "lng": 119.3025}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else max(values)


READER = """
import json, sys, time, httpx
base, case_id, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
out = []
with httpx.Client(base_url=base, headers={"Authorization": "Bearer demo-command"}, timeout=60) as client:
    client.get(f"/api/v1/cases/{case_id}")  # connect first
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        response = client.get(f"/api/v1/cases/{case_id}")
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
        time.sleep(0.01)
print(json.dumps(out))
"""


def read_loop(base: str, case_id: str, seconds: float) -> list[float]:
    """Latencies (ms) of a reader in its own process, like any client of the server."""
    done = subprocess.run(
        [sys.executable, "-c", READER, base, case_id, str(seconds)], capture_output=True, text=True, check=True
    )
    return list(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one phase")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    _, engine = fresh_database("sqlite")
    pack = reference_pack()
    app = ready_app(engine, pack)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, headers={"Authorization": "Bearer demo-citizen-zhang"}) as client:
        response = client.post("/api/v1/cases", json={"channel": "app", "description": "井盖没了", "location": WHERE})
        assert response.status_code == 201, response.text
        case_id = response.json()["id"]

    files = dict(read_folder(REFERENCE_PACK))
    files["pack.yaml"] = files["pack.yaml"].replace(b'version: "1.0.0"', b'version: "1.0.1"')
    files[DIAGRAM] = files[DIAGRAM].decode().replace(ROUTE, HOSTILE).encode()
    app.packs.deploy(app.packs.compile(files), actor="bench", now=app.clock.now())
    app.packs.activate("reference", "1.0.1")
    attacking, stop = threading.Event(), threading.Event()
    hostile: dict = {"sent": 0, "statuses": set(), "ms": []}

    def attack() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": "Bearer demo-citizen-zhang"}, timeout=60) as client:
            while not stop.is_set():
                if not attacking.wait(0.05):
                    continue
                started = time.perf_counter()
                r = client.post(
                    "/api/v1/cases", json={"channel": "app", "description": "东街口有个井盖没了", "location": WHERE}
                )
                hostile["ms"].append((time.perf_counter() - started) * 1000)
                hostile["sent"] += 1
                hostile["statuses"].add(r.status_code)

    attacker = threading.Thread(target=attack)
    attacker.start()
    yield_after = sandbox.YIELD_AFTER
    modes = ("idle", "attack", "attack, no yield")
    seen: dict[str, list[float]] = {mode: [] for mode in modes}
    loads = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for mode in modes:
            sandbox.YIELD_AFTER = float("inf") if mode == "attack, no yield" else yield_after
            if mode != "idle":
                attacking.set()
                time.sleep(0.3)  # a hostile command is running when the reader starts
            seen[mode] += read_loop(base, case_id, args.seconds)
            attacking.clear()
            time.sleep(2.5)  # the last hostile command ends (its 2 s budget)
        loads.append(os.getloadavg()[0])
    stop.set()
    attacker.join()
    server.should_exit = True
    sandbox.YIELD_AFTER = yield_after
    print(
        f"unrelated GET /api/v1/cases/{{id}} from another process, {args.rounds} rounds x {args.seconds:g} s per mode, "
        f"one uvicorn process, SQLite; load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs"
    )
    base_p95 = p95(seen["idle"])
    for mode in modes:
        values = seen[mode]
        print(
            f"  {mode:17s} n={len(values):4d}  median={statistics.median(values):7.1f} ms  "
            f"p95={p95(values):7.1f} ms  ({p95(values) / base_p95:.2f}x the idle p95)"
        )
    print(
        f"  hostile reports: {hostile['sent']} sent, statuses {sorted(hostile['statuses'])}, "
        f"each stopped after {statistics.median(hostile['ms']):.0f} ms (median)"
    )


if __name__ == "__main__":
    main()
