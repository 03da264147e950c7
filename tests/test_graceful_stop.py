"""Graceful shutdown of a real ``govflow serve`` (issue 15.4).

SIGTERM while a command is in flight: the server stops accepting connections, the command
finishes (committed, its 201 delivered), the timer loop's batch in flight commits and the loop
stops before another batch, and the process exits 0.

To have a command and a timer batch in flight at a moment of the test's choosing, the test holds
SQLite's write lock (``BEGIN IMMEDIATE`` on the server's database file): both wait for it, as they
would for a slow disk or a long transaction, and go on when it is released.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest
from sqlalchemy import select, update

from govflow.engine.store.db import CaseRow, make_engine
from tests.live_server import ROOT, free_port

CASE = {"channel": "app", "description": "东街口有个井盖没了", "location": {"lat": 26.0865, "lng": 119.3025}}
CITIZEN = {"Authorization": "Bearer demo-citizen-zhang"}


def wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sigterm_finishes_the_command_in_flight_and_stops_the_timer_loop_between_batches(tmp_path):
    database = tmp_path / "govflow.sqlite3"
    url = f"sqlite:///{database}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    env = {
        **os.environ,
        "GOVFLOW_TIMER_INTERVAL_SECONDS": "0.2",
        "GOVFLOW_GRACEFUL_TIMEOUT_SECONDS": "30",
        "GOVFLOW_LOG_FORMAT": "json",
    }
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "govflow.cli", "serve", "--demo", "--port", str(port), "--database-url", url],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        lock = None
        try:

            def up() -> bool:
                assert server.poll() is None, log_path.read_text(encoding="utf-8")
                try:
                    return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(up, 90, "the server did not start")
            first = httpx.post(f"{base}/api/v1/cases", headers=CITIZEN, json=CASE, timeout=30)
            assert first.status_code == 201, first.text
            waiting = uuid.UUID(first.json()["id"])

            # a timer batch to be in flight: the case is due now (its real deadline is 10 minutes on)
            engine = make_engine(url)
            past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
            with engine.begin() as conn:
                conn.execute(update(CaseRow).where(CaseRow.id == waiting).values(next_due=past))
            lock = sqlite3.connect(database, timeout=30, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")  # every writer of the server waits from here on

            answer: dict = {}

            def report() -> None:
                answer["response"] = httpx.post(
                    f"{base}/api/v1/cases",
                    headers={**CITIZEN, "X-Request-ID": "in-flight-1"},
                    json={**CASE, "description": "东街口的井盖又没了"},
                    timeout=60,
                )

            command = threading.Thread(target=report)
            command.start()
            time.sleep(1.5)
            assert command.is_alive(), "the command should be waiting for the database"
            with engine.connect() as conn:  # readers go on: the timer batch that picked the case waits to write
                still = conn.execute(select(CaseRow.next_due).where(CaseRow.id == waiting)).scalar_one()
            assert still == past, "no timer batch committed meanwhile"
            server.send_signal(signal.SIGTERM)
            time.sleep(1.5)
            assert server.poll() is None, "the server must wait for the command in flight"
            with pytest.raises(httpx.TransportError):  # no new connection is accepted meanwhile
                httpx.get(f"{base}/healthz", timeout=2)
            lock.execute("ROLLBACK")
            lock.close()
            lock = None
            command.join(timeout=40)
            assert not command.is_alive()
            code = server.wait(timeout=60)
        finally:
            if lock is not None:
                lock.close()
            if server.poll() is None:
                server.kill()
                server.wait()

    lines = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    said = [entry["msg"] for entry in lines]
    assert code == 0, said
    response = answer["response"]
    assert response.status_code == 201, response.text  # delivered after SIGTERM
    finished = uuid.UUID(response.json()["id"])
    with engine.connect() as conn:
        ids = set(conn.execute(select(CaseRow.id)).scalars())
        next_due = conn.execute(select(CaseRow.next_due).where(CaseRow.id == waiting)).scalar_one()
    assert finished in ids, "the command in flight was committed"
    assert next_due > past + dt.timedelta(minutes=5), "the timer batch in flight committed (next_due refreshed)"
    assert "timer loop stopped" in said and "timer loop still firing a batch; leaving it" not in said
    assert not [m for m in said if m == "timer loop tick failed"], said
    stopped = said.index("timer loop stopped")
    assert any(
        m.startswith("POST /api/v1/cases 201") and e.get("request_id") == "in-flight-1"
        for e, m in zip(lines[:stopped], said[:stopped], strict=True)
    ), "the command's response went out before the timer loop was stopped"


HOSTILE = (
    "<bpmn:conditionExpression>owner_unit is not None and "
    "len([a for a in range(999) for b in range(999) for c in range(999)]) &gt; 0</bpmn:conditionExpression>"
)
ROUTE = "<bpmn:conditionExpression>owner_unit is not None</bpmn:conditionExpression>"


def test_sigterm_is_not_ignored_while_hostile_diagram_code_runs(tmp_path):
    """Seen in issue 14: a condition with unbounded work blocked every request and SIGTERM was
    ignored. Now the command stops at its time budget (409) and the server stops right after."""
    import shutil

    from govflow.settings import REFERENCE_PACK
    from tests.live_server import govflow

    url = f"sqlite:///{tmp_path / 'govflow.sqlite3'}"
    pack = tmp_path / "pack"
    for entry in (
        "pack.yaml",
        "catalog.yaml",
        "boundaries.geojson",
        "gazetteer.yaml",
        "processes",
        "policies",
        "dispatch",
    ):
        source = REFERENCE_PACK / entry
        if source.is_dir():
            shutil.copytree(source, pack / entry)
        elif source.exists():
            pack.mkdir(exist_ok=True)
            shutil.copy(source, pack / entry)
    manifest = (pack / "pack.yaml").read_text(encoding="utf-8")
    (pack / "pack.yaml").write_text(manifest.replace('version: "1.0.0"', 'version: "1.0.1"'), encoding="utf-8")
    diagram = pack / "processes" / "frontline_disposal.bpmn"
    diagram.write_text(diagram.read_text(encoding="utf-8").replace(ROUTE, HOSTILE), encoding="utf-8")
    for args in (("db", "upgrade"), ("pack", "deploy", str(pack))):
        done = govflow(*args, "--database-url", url)
        assert done.returncode == 0, done.stderr

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "govflow.cli", "serve", "--demo", "--port", str(port), "--database-url", url],
            cwd=ROOT,
            env={**os.environ, "GOVFLOW_TIMER_INTERVAL_SECONDS": "3600", "GOVFLOW_LOG_FORMAT": "json"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:

            def up() -> bool:
                assert server.poll() is None, log_path.read_text(encoding="utf-8")
                try:
                    return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(up, 90, "the server did not start")
            answer: dict = {}

            def report() -> None:
                answer["response"] = httpx.post(f"{base}/api/v1/cases", headers=CITIZEN, json=CASE, timeout=60)

            command = threading.Thread(target=report)
            command.start()
            time.sleep(0.7)  # the hostile condition is running
            assert command.is_alive()
            signalled = time.monotonic()
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=30)
            stopped_after = time.monotonic() - signalled
            command.join(timeout=10)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    said = [
        json.loads(line)["msg"] for line in log_path.read_text(encoding="utf-8").splitlines() if line.startswith("{")
    ]
    assert "reference 1.0.1" in " ".join(said)  # the hostile version was the one running
    assert code == 0, said
    assert stopped_after < 10, f"stopped {stopped_after:.1f} s after SIGTERM"
    response = answer["response"]
    assert response.status_code == 409 and response.json()["type"] == "urn:govflow:problem:diagram-failed"
    assert "longer than the 2 s" in response.json()["detail"]
