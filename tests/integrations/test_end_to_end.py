"""Integrators end to end against a real `govflow serve --demo` that delivers webhooks itself (its
own delivery loop, no worker process): an unmodified Open311 client (civicbot) files a request, a
street signs for it, the receiver gets every event of the case signed and in order, and the
delivery log says so; a receiver that refuses leaves dead letters that an operator lists and
replays with `govflow outbox`, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest
from civicbot.http import HttpTransport, RateLimiter
from civicbot.open311 import Open311Client
from civicbot.registry import Endpoint
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from govflow.engine.store.db import Base
from tests.served import ROOT, Served, database_url
from tests.webhook_receiver import Receiver

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("GOVFLOW_TEST_DATABASE_URL") else [])
ENV = {"GOVFLOW_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8", "GOVFLOW_DELIVERY_INTERVAL_SECONDS": "0.2"}
DONGJIE = (26.0865, 119.3025)
#: a bound for stuck runs only: every wait below is on a condition
PATIENCE = 180.0


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory, sqlite_template):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("end_to_end") / "govflow.sqlite3"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        engine = request.getfixturevalue("pg_engine")
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        url = database_url(engine)
    with Served(url, env=ENV) as served:
        served.url = url
        yield served


def native(server, token, method, path, **kw):
    return httpx.request(
        method, f"{server.base}/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10, **kw
    )


def civic(server) -> Open311Client:
    endpoint = Endpoint(id="gulou", name="Gulou", base_url=f"{server.base}/open311/v2", write=True)
    return Open311Client(
        endpoint, transport=HttpTransport(rate_limiter=RateLimiter(min_interval=0)), jurisdiction_id="gulou"
    )


def file_request(client: Open311Client) -> str:
    prepared = client.create_request(
        "road.manhole_cover",
        dry_run=False,
        confirm="SEND",
        api_key="demo-hotline",
        validate_remote=True,
        lat=DONGJIE[0],
        lng=DONGJIE[1],
        description="东街口有个井盖没了，联系人张伟 13812345678",
        attributes={"cover": "missing"},
        first_name="伟",
        last_name="张",
        phone="13812345678",
        email="zhang.wei@example.com",
    )
    return prepared.response[0]["service_request_id"]


def recorded(server, case_id: str) -> list[str]:
    """The ids of a case's events as its record holds them, in order."""
    timeline = native(server, "demo-command", "GET", f"/cases/{case_id}/events").json()
    return [f"{case_id}:{e['seq']}" for e in timeline]


def wait(condition, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {PATIENCE:.0f} s"
        time.sleep(0.1)


def outbox(server, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GOVFLOW_DATABASE_URL": server.url, "GOVFLOW_LOG_FORMAT": "text"}
    return subprocess.run(
        [sys.executable, "-m", "govflow.cli", "outbox", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_server_delivers_to_a_webhook_what_an_open311_client_filed_and_a_street_did(server):
    receiver = Receiver()
    try:
        hook = native(server, "demo-hotline", "POST", "/webhooks", json={"url": receiver.url()})
        assert hook.status_code == 201, hook.text
        hook_id, secret = hook.json()["id"], hook.json()["secret"]
        client = civic(server)
        case_id = file_request(client)
        [task] = [
            t
            for t in native(server, "demo-dongjie", "GET", "/tasks").json()
            if t["case_id"] == case_id and t["name"] == "sign_for"
        ]
        signed = native(server, "demo-dongjie", "POST", f"/tasks/{task['id']}/complete", json={"data": {}})
        assert signed.status_code == 200, signed.text
        assert client.get_request(case_id)["status_notes"] == "处置 being handled"

        expected = recorded(server, case_id)
        assert len(expected) >= 4  # reported, routed, task opened, …, signed for
        wait(lambda: set(expected) <= {e["id"] for e in receiver.events()}, "the server's delivery loop")

        verifier = Webhook(secret)
        mine = [r for r in receiver.accepted if r.event["case_id"] == case_id]
        for received in mine:
            assert verifier.verify(received.body, received.headers)["id"] == received.headers["webhook-id"]
            assert "张伟" not in received.body.decode() and "13812345678" not in received.body.decode()
        assert [r.event["id"] for r in mine] == expected  # in order (nothing was redelivered)

        log = native(server, "demo-hotline", "GET", f"/webhooks/{hook_id}/deliveries", params={"limit": 1000})
        assert log.status_code == 200, log.text
        delivered = {d["event_id"] for d in log.json() if d["outcome"] == "delivered" and d["status_code"] == 200}
        assert set(expected) <= delivered
    finally:
        receiver.close()


def test_an_operator_replays_a_refusing_receivers_dead_letters_with_the_cli(server):
    answer = {"status": 410}  # gone: retrying cannot change it, so every event is a dead letter at once
    receiver = Receiver(answer=lambda received, count: (answer["status"], 0.0))
    try:
        hook = native(server, "demo-hotline", "POST", "/webhooks", json={"url": receiver.url()})
        assert hook.status_code == 201, hook.text
        hook_id, sink = hook.json()["id"], f"webhook:{hook.json()['id']}"
        client = civic(server)
        cases = [file_request(client) for _ in range(2)]
        expected = [event for case_id in cases for event in recorded(server, case_id)]

        def parked() -> list[dict]:
            letters = native(server, "demo-hotline", "GET", f"/webhooks/{hook_id}/dead-letters", params={"limit": 1000})
            return [d for d in letters.json() if d["status"] == "parked"]

        wait(lambda: {d["event_id"] for d in parked()} >= set(expected), "dead letters")
        assert not receiver.events()

        status = outbox(server, "status")
        assert status.returncode == 0, status.stderr
        [line] = [line for line in status.stdout.splitlines() if line.startswith(sink)]
        assert f"dead letters: parked {len(expected)}" in line
        listed = outbox(server, "dead-letters", sink)
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert [line.split()[2] for line in lines] == expected  # oldest first
        for case_id in cases:  # a case's first event was refused; its later ones wait behind it
            first, *later = [line for line in lines if line.split()[2].startswith(case_id)]
            assert "the receiver answered 410" in first
            assert all("held behind an earlier dead letter of the same case" in line for line in later)

        unknown = outbox(server, "replay", "webhook:no-such-endpoint")
        assert unknown.returncode == 1 and "no sink named 'webhook:no-such-endpoint'" in unknown.stderr
        assert len(unknown.stderr.strip().splitlines()) == 1

        answer["status"] = 200  # the receiver is back
        replayed = outbox(server, "replay", sink)
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stdout.strip() == f"{len(expected)} dead letter(s) of {sink} will be delivered again"
        wait(lambda: set(expected) <= {e["id"] for e in receiver.events()}, "the replay")
        for case_id in cases:  # each case's events again in their order
            assert [e["id"] for e in receiver.events() if e["case_id"] == case_id] == recorded(server, case_id)
        assert not parked()
        after = native(server, "demo-hotline", "GET", f"/webhooks/{hook_id}").json()["dead_letters"]
        assert after.get("delivered") == len(expected) and not after.get("parked")
    finally:
        receiver.close()
