"""p95 of unrelated requests while hostile diagram code runs (issue 14: bounded diagram code).

A real server (uvicorn, one process, SQLite) serves the reference pack. A reader fetches one case
again and again (GET /api/v1/cases/{id}); its latencies are measured first alone (the baseline),
then while a hostile client keeps reporting cases on a pack version whose routing condition runs a
triple loop (stopped by the per-command time or memory budget: 409 diagram-failed each time).

    .venv/bin/python bench/bench_hostile.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import socket
import statistics
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


def read_loop(base: str, case_id: str, seconds: float) -> list[float]:
    out = []
    with httpx.Client(base_url=base, headers={"Authorization": "Bearer demo-command"}) as client:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            started = time.perf_counter()
            response = client.get(f"/api/v1/cases/{case_id}")
            out.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
            time.sleep(0.01)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
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
    baseline = read_loop(base, case_id, args.seconds)

    files = dict(read_folder(REFERENCE_PACK))
    files["pack.yaml"] = files["pack.yaml"].replace(b'version: "1.0.0"', b'version: "1.0.1"')
    files[DIAGRAM] = files[DIAGRAM].decode().replace(ROUTE, HOSTILE).encode()
    app.packs.deploy(app.packs.compile(files), actor="bench", now=app.clock.now())
    app.packs.activate("reference", "1.0.1")
    stop, hostile = threading.Event(), {"sent": 0, "statuses": set(), "ms": []}

    def attack() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": "Bearer demo-citizen-zhang"}, timeout=60) as client:
            while not stop.is_set():
                started = time.perf_counter()
                r = client.post(
                    "/api/v1/cases", json={"channel": "app", "description": "东街口有个井盖没了", "location": WHERE}
                )
                hostile["ms"].append((time.perf_counter() - started) * 1000)
                hostile["sent"] += 1
                hostile["statuses"].add(r.status_code)

    attacker = threading.Thread(target=attack)
    attacker.start()
    time.sleep(0.2)
    under_attack = read_loop(base, case_id, args.seconds)
    stop.set()
    attacker.join()
    server.should_exit = True
    print(f"unrelated GET /api/v1/cases/{{id}}, {args.seconds:g} s each, one uvicorn process, SQLite")
    print(
        f"  baseline      n={len(baseline):4d}  median={statistics.median(baseline):7.1f} ms  p95={p95(baseline):7.1f} ms"
    )
    print(
        f"  under attack  n={len(under_attack):4d}  median={statistics.median(under_attack):7.1f} ms  "
        f"p95={p95(under_attack):7.1f} ms"
    )
    print(
        f"  hostile reports: {hostile['sent']} sent, statuses {sorted(hostile['statuses'])}, "
        f"each stopped after {statistics.median(hostile['ms']):.0f} ms (median)"
    )


if __name__ == "__main__":
    main()
