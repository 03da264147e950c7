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
