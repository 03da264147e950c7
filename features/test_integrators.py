"""integrators.feature: Open311 clients, the change feed and webhooks, against a real `govflow serve`
(its own database), an unmodified Open311 client from PyPI (civicbot), a real webhook receiver
and real `govflow worker` processes, one of them killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest
from civicbot.http import HttpTransport, RateLimiter
from civicbot.open311 import Open311Client
from civicbot.registry import Endpoint
from pytest_bdd import given, parsers, scenarios, then, when
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from govflow.engine.store.db import Base
from tests.served import ROOT, Served, database_url
from tests.webhook_receiver import Receiver

scenarios("integrators.feature")

pytestmark = pytest.mark.usefixtures("server_url")

PG_URL = os.environ.get("GOVFLOW_TEST_DATABASE_URL")
ENV = {
    "GOVFLOW_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "GOVFLOW_DELIVERY_LEASE_SECONDS": "3",
    "GOVFLOW_DELIVERY_INTERVAL_SECONDS": "0.1",
    "GOVFLOW_SERVE_DELIVERY": "false",  # the workers of the scenario deliver
}


@pytest.fixture(params=["sqlite"] + (["postgresql"] if PG_URL else []))
def server_url(request, tmp_path, sqlite_template):
    if request.param == "sqlite":
        path = tmp_path / "govflow.sqlite3"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    engine = request.getfixturevalue("pg_engine")
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return database_url(engine)


@pytest.fixture
def world(server_url):
    with Served(server_url, env=ENV) as server:
        state = {"server": server, "url": server_url, "workers": [], "receiver": None}
        yield state
        for worker in state["workers"]:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
        if state["receiver"] is not None:
            state["receiver"].close()


def api(world, who_token, method, path, **kw):
    headers = {"Authorization": f"Bearer {who_token}"}
    return httpx.request(method, f"{world['server'].base}/api/v1{path}", headers=headers, timeout=10, **kw)


def client(world, jurisdiction="gulou") -> Open311Client:
    endpoint = Endpoint(id="gulou", name="鼓楼区", base_url=f"{world['server'].base}/open311/v2", write=True)
    transport = HttpTransport(rate_limiter=RateLimiter(min_interval=0))
    return Open311Client(endpoint, transport=transport, jurisdiction_id=jurisdiction)


def feed(world) -> list[dict]:
    events, cursor = [], None
    while True:
        page = api(
            world, "demo-hotline", "GET", "/feed", params={"limit": 1000, **({"after": cursor} if cursor else {})}
        ).json()
        events += page["events"]
        cursor = page["next"]
        if not page["has_more"]:
            return events


def start_worker(world) -> subprocess.Popen:
    env = {**os.environ, **ENV, "GOVFLOW_DATABASE_URL": world["url"], "GOVFLOW_LOG_FORMAT": "text"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "govflow.cli", "worker", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    world["workers"].append(worker)
    return worker


@given("a govflow server with the reference pack and the demo principals")
def _server(world):
    assert httpx.get(f"{world['server'].base}/healthz", timeout=5).status_code == 200


@when(parsers.parse('an Open311 client lists the services of jurisdiction "{jurisdiction}"'))
def _list_services(world, jurisdiction):
    world["client"] = client(world, jurisdiction)
    world["services"] = world["client"].list_services()


@then(parsers.parse('"{code}" is offered with a form of attributes'))
def _offered(world, code):
    [service] = [s for s in world["services"] if s["service_code"] == code]
    assert service["metadata"] is True
    definition = world["client"].get_service_definition(code)
    assert [a for a in definition["attributes"] if a["required"]]


@when(
    parsers.parse('the client files a "{code}" request at {lat:g}, {lng:g} with the hotline\'s api_key'),
)
def _file_one(world, code, lat, lng):
    world.setdefault("client", client(world))
    attributes = {"cover": "missing"} if code == "road.manhole_cover" else None
    prepared = world["client"].create_request(
        code,
        dry_run=False,
        confirm="SEND",
        api_key="demo-hotline",
        validate_remote=True,
        lat=lat,
        lng=lng,
        description="东街口有个井盖没了，联系人张伟 13812345678",
        attributes=attributes,
        first_name="伟",
        last_name="张",
        phone="13812345678",
        email="zhang.wei@example.com",
    )
    world["answer"] = prepared.response[0]


@when(parsers.parse('the client files {count:d} "{code}" requests at {lat:g}, {lng:g} with the hotline\'s api_key'))
def _file_many(world, count, code, lat, lng):
    for _ in range(count):
        _file_one(world, code, lat, lng)


@then("the client gets a service request id")
def _got_id(world):
    assert world["answer"]["service_request_id"] and "token" not in world["answer"]


@then(parsers.parse('the client sees the request "{status}" as "{notes}"'))
def _sees(world, status, notes):
    got = world["client"].get_request(world["answer"]["service_request_id"])
    assert (got["status"], got["status_notes"]) == (status, notes)


@when(parsers.parse("{who} signs for the request"))
def _sign(world, who):
    token = {"dongjie.dispatcher": "demo-dongjie"}[who]
    case_id = world["answer"]["service_request_id"]
    [task] = [
        t for t in api(world, token, "GET", "/tasks").json() if t["case_id"] == case_id and t["name"] == "sign_for"
    ]
    assert api(world, token, "POST", f"/tasks/{task['id']}/complete", json={"data": {}}).status_code == 200


@then("no personal data of the reporter is in the client's answers")
def _no_personal_data(world):
    answers = json.dumps(
        [world["client"].list_requests(), world["client"].get_request(world["answer"]["service_request_id"])],
        ensure_ascii=False,
    )
    for personal in ("张伟", "13812345678", "zhang.wei@example.com"):
        assert personal not in answers


@when("the hotline reads the change feed two events at a time")
def _read_feed(world):
    events, cursor = [], None
    while True:
        params = {"limit": 2, **({"after": cursor} if cursor else {})}
        page = api(world, "demo-hotline", "GET", "/feed", params=params).json()
        assert len(page["events"]) <= 2
        events += page["events"]
        cursor = page["next"]
        if not page["has_more"]:
            break
    world["read"] = events


@then("it has read every event of the record once, in commit order, without personal data")
def _read_all(world):
    events = world["read"]
    recorded = []
    for case_id in dict.fromkeys(e["case_id"] for e in events):
        timeline = api(world, "demo-command", "GET", f"/cases/{case_id}/events").json()
        recorded += [f"{case_id}:{e['seq']}" for e in timeline]
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)) and set(ids) == set(recorded)
    assert ids == [e["id"] for e in feed(world)]  # the order of one read is the order of paged reads
    for case_id in {e["case_id"] for e in events}:
        seqs = [e["seq"] for e in events if e["case_id"] == case_id]
        assert seqs == sorted(seqs)
    dumped = json.dumps(events, ensure_ascii=False)
    assert "张伟" not in dumped and "13812345678" not in dumped


@given("the hotline has registered a webhook to a receiver")
def _register(world):
    world["receiver"] = Receiver()
    world["receiver"].hold_after(5)  # answers wait once 5 events are in: the worker is killed while one waits
    response = api(
        world, "demo-hotline", "POST", "/webhooks", json={"url": world["receiver"].url(), "description": "12345"}
    )
    assert response.status_code == 201, response.text
    world["secret"] = response.json()["secret"]


@when("a worker starts delivering and is killed mid-delivery")
def _kill_one(world):
    receiver, worker = world["receiver"], start_worker(world)
    receiver.wait_held(alive=lambda: worker.poll() is None)
    os.kill(worker.pid, signal.SIGKILL)  # while it waits for the receiver's answer
    worker.wait(30)
    world["at_kill"] = {e["id"] for e in receiver.events()}
    world["held"] = set(receiver.held)
    receiver.release()
    assert len(world["at_kill"]) >= 5 and not world["held"] & world["at_kill"]


@when("another worker takes over")
def _take_over(world):
    worker = start_worker(world)
    deadline = time.monotonic() + 300
    while True:
        expected = {e["id"] for e in feed(world)}
        if expected <= {e["id"] for e in world["receiver"].events()}:
            world["expected"] = expected
            return
        assert worker.poll() is None, "the second worker exited"
        assert time.monotonic() < deadline, "the second worker did not deliver everything in 300 s"
        time.sleep(0.2)


@then("the receiver has every event of the feed at least once")
def _every_event(world):
    assert world["expected"] <= {e["id"] for e in world["receiver"].events()}
    # the kill happened mid-delivery: the events held at the gate were not yet answered
    assert world["held"] and world["held"] <= world["expected"] - world["at_kill"]


@then("every delivery is signed with the webhook's secret")
def _signed(world):
    verifier = Webhook(world["secret"])
    for received in world["receiver"].accepted:
        assert verifier.verify(received.body, received.headers)["id"] == received.headers["webhook-id"]


@then("each case's events arrived in order")
def _in_order(world):
    seen: dict[str, set[int]] = {}
    for event in world["receiver"].events():
        have = seen.setdefault(event["case_id"], set())
        assert all(s in have for s in range(1, event["seq"])), event["id"]
        have.add(event["seq"])
