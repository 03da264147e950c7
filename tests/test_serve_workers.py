"""`govflow serve --workers N`: several API processes on one port, the timer loop once, in the parent."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.served import Served, database_url

DONGJIE = {"lat": 26.0865, "lng": 119.3025}


def children(pid: int) -> list[int]:
    """The API processes a server started (uvicorn spawns them: `multiprocessing.spawn`)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(proc.name))
    return sorted(found)


def test_two_api_processes_serve_one_port_and_stop_together(database):
    with Served(database_url(database), args=("--workers", "2")) as server:
        assert server.process is not None
        workers = children(server.process.pid)
        assert len(workers) == 2, server.output()[-2000:]
        said = server.output()
        assert "2 API processes" in said and "the timer loop runs here" in said

        def report(i: int) -> tuple[int, str]:
            # a connection per request: the kernel hands each to whichever process accepts it
            r = httpx.post(
                f"{server.base}/api/v1/cases",
                headers={"Authorization": "Bearer demo-hotline"},
                json={"channel": "hotline_12345", "description": f"路灯不亮 {i}", "location": DONGJIE},
                timeout=30,
            )
            return r.status_code, r.json().get("id", r.text)

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(report, range(12)))
        assert [status for status, _ in answers] == [201] * 12
        ids = {case_id for _, case_id in answers}
        assert len(ids) == 12
        for case_id in list(ids)[:3]:  # any process reads what any other wrote
            r = httpx.get(
                f"{server.base}/api/v1/cases/{case_id}", headers={"Authorization": "Bearer demo-command"}, timeout=30
            )
            assert r.status_code == 200 and r.json()["status"] == "dispatched"
        assert children(server.process.pid) == workers  # none died on the way

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(60) == 0
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if Path(f"/proc/{pid}").exists() and _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"  # a zombie has exited
