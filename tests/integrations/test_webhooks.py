"""Webhooks: registration and URL safety, signed delivery in per-case order, retries with back-off,
dead letters and replays, bounded timeouts, a delivery log (real HTTP receivers on 127.0.0.1)."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from govflow.engine.cases.service import NewCase
from govflow.engine.integrations.config import IntegrationSettings
from govflow.engine.integrations.webhooks import UrlPolicy, UrlRefused, new_secret, signed_headers
from tests.webhook_receiver import Receiver

FAST = IntegrationSettings(
    webhook_allowed_networks=("127.0.0.0/8",),
    webhook_connect_timeout=1.0,
    webhook_read_timeout=0.5,
    webhook_attempts_per_round=2,
    webhook_max_rounds=3,
    webhook_backoff_initial=0.05,
    webhook_backoff_max=0.1,
    delivery_lease_seconds=6.0,
    delivery_concurrency=4,
    delivery_per_sink=2,
)
DONGJIE = (26.0865, 119.3025)


@pytest.fixture
def hooks(govflow):
    govflow.integration_settings = FAST
    return govflow.integrations


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def worker(hooks):
    w = hooks.delivery_worker()
    yield w
    w.close()


def report(app, who, text="东街口有个井盖没了"):
    return app.cases.report(who, NewCase(channel="app", description=text, lat=DONGJIE[0], lng=DONGJIE[1]))


def register(api, who="hotline12345", **body):
    response = api.post(who, "/api/v1/webhooks", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def drain(worker, done, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.tick()
        if done():
            return True
        time.sleep(0.05)
    return False


def feed_ids(app, principals):
    events, cursor = [], None
    while True:
        page = app.integrations.feed.read(principals["hotline12345"], cursor, 1000)
        events += page.events
        cursor = page.next
        if not page.has_more:
            return [e["id"] for e in events]


def test_events_arrive_signed_and_in_order(api, hooks, worker, receiver, govflow, principals):
    before = report(govflow, principals["hotline12345"], "登记之前的事件")  # before registration: not sent
    hook = register(api, url=receiver.url(), description="12345 platform")
    assert hook["secret"].startswith("whsec_") and hook["kinds"] == []
    zhang, dongjie = principals["citizen.zhang"], principals["dongjie.dispatcher"]
    cases = [report(govflow, zhang, f"东街口井盖{i}") for i in range(3)]
    for case in cases[:2]:
        [task] = [t for t in govflow.queries.inbox(dongjie) if t["case_id"] == str(case.case_id)]
        govflow.cases.complete_task(dongjie, task["id"], {})
    expected = [i for i in feed_ids(govflow, principals) if not i.startswith(str(before.case_id))]
    assert drain(worker, lambda: len(receiver.events()) >= len(expected))
    got = receiver.accepted
    assert sorted(r.event["id"] for r in got) == sorted(expected)  # each once, nothing from before
    verifier = Webhook(hook["secret"])
    for r in got:
        assert verifier.verify(r.body, r.headers) == r.event  # Standard Webhooks, an independent library
        assert r.headers["webhook-id"] == r.event["id"] and r.headers["govflow-event-kind"] == r.event["kind"]
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(got[0].body, got[0].headers)
    for case in cases:  # per-case order
        seqs = [r.event["seq"] for r in got if r.event["case_id"] == str(case.case_id)]
        assert seqs == sorted(seqs) and seqs[0] == 1
    assert not any("张" in r.body.decode() or "citizen.zhang" in r.body.decode() for r in got)
    log = api.get("hotline12345", f"/api/v1/webhooks/{hook['id']}/deliveries", params={"limit": 1000}).json()
    assert len(log) == len(expected) and {e["outcome"] for e in log} == {"delivered"}
    assert all(e["status_code"] == 200 for e in log)
    assert drain(worker, lambda: api.get("hotline12345", f"/api/v1/webhooks/{hook['id']}").json()["behind"] == 0)
    status = api.get("hotline12345", f"/api/v1/webhooks/{hook['id']}").json()
    assert (status["behind"], status["retrying"], status["dead_letters"]) == (0, [], {})
    assert "secret" not in status and "secret" not in api.get("hotline12345", "/api/v1/webhooks").json()[0]


def test_kinds_filter_and_several_endpoints(api, hooks, worker, receiver, govflow, principals):
    register(api, url=receiver.url("/all"))
    register(api, url=receiver.url("/stages"), kinds=["case.stage", "task.*"])
    register(api, "district.supervisor", url=receiver.url("/district"))
    report(govflow, principals["hotline12345"])
    report(govflow, principals["hotline12345"], "东街口路灯不亮")
    events, _ = govflow.integrations.feed.read(principals["hotline12345"], None, 1000).events, None
    staged = [e["id"] for e in events if e["kind"] == "case.stage" or e["kind"].startswith("task.")]

    def ids(path):
        return {e["id"] for e in receiver.events(path)}

    def done():
        everything = {e["id"] for e in events}
        return ids("/all") == everything and ids("/district") == everything and ids("/stages") == set(staged)

    assert drain(worker, done)
    assert sorted(e["id"] for e in receiver.events("/stages")) == sorted(staged)
    assert sorted(e["id"] for e in receiver.events("/district")) == sorted(e["id"] for e in events)


def test_a_receiver_failing_forever_gets_dead_letters_then_a_replay_in_order(
    api, hooks, worker, receiver, govflow, principals
):
    failing = {"on": True}
    receiver.answer = lambda r, n: (500 if failing["on"] else 200, 0.0)
    hook = register(api, url=receiver.url())
    case = report(govflow, principals["hotline12345"])
    other = report(govflow, principals["hotline12345"], "东街口路灯不亮")
    expected = feed_ids(govflow, principals)
    status = {}

    def parked():
        status.update(api.get("hotline12345", f"/api/v1/webhooks/{hook['id']}").json())
        return status["dead_letters"].get("parked", 0) == len(expected)

    assert drain(worker, parked)
    assert receiver.events() == []
    letters = api.get("hotline12345", f"/api/v1/webhooks/{hook['id']}/dead-letters").json()
    reasons = {letter["reason"] for letter in letters}
    assert any("answered 500 (after 3 rounds)" in r for r in reasons)
    assert any(r.startswith("held behind") for r in reasons)  # later events of a case wait behind the first
    log = api.get("hotline12345", f"/api/v1/webhooks/{hook['id']}/deliveries", params={"limit": 1000}).json()
    assert {"failed", "dead", "held"} <= {e["outcome"] for e in log}
    assert all(e["status_code"] == 500 for e in log if e["outcome"] == "failed")
    # the receiver is fixed; the owner replays; everything arrives in per-case order
    failing["on"] = False
    replay = api.post("hotline12345", f"/api/v1/webhooks/{hook['id']}/dead-letters/replay", json={})
    assert replay.status_code == 200 and replay.json() == {"replaying": len(expected)}
    assert drain(worker, lambda: len(receiver.events()) >= len(expected))
    assert sorted(e["id"] for e in receiver.events()) == sorted(expected)
    for cid in (case.case_id, other.case_id):
        seqs = [e["seq"] for e in receiver.events() if e["case_id"] == str(cid)]
        assert seqs == sorted(seqs)
    after = api.get("hotline12345", f"/api/v1/webhooks/{hook['id']}").json()
    assert after["dead_letters"] == {"delivered": len(expected)}
    # new events flow again
    report(govflow, principals["hotline12345"], "新的事件")
    assert drain(worker, lambda: len(receiver.events()) > len(expected))
    # another integrator may neither see nor replay it; an operator may
    assert api.get("dongjie.dispatcher", f"/api/v1/webhooks/{hook['id']}").status_code == 404
    assert api.post("district.supervisor", f"/api/v1/webhooks/{hook['id']}/dead-letters/replay", json={}).json() == {
        "replaying": 0
    }


def test_an_answer_retrying_cannot_change_is_a_dead_letter_at_once(api, hooks, worker, receiver, govflow, principals):
    receiver.answer = lambda r, n: (410, 0.0)
    hook = register(api, url=receiver.url())
    report(govflow, principals["hotline12345"])
    expected = feed_ids(govflow, principals)
    url = f"/api/v1/webhooks/{hook['id']}"
    assert drain(worker, lambda: api.get("hotline12345", url).json()["dead_letters"].get("parked") == len(expected))
    log = api.get("hotline12345", f"{url}/deliveries").json()
    assert {e["outcome"] for e in log} == {"dead", "held"}
    assert len(receiver.received) == 1  # tried once, not retried


def test_a_flaky_receiver_is_retried_with_back_off(api, hooks, worker, receiver, govflow, principals):
    receiver.answer = lambda r, n: (503 if n <= 3 else 200, 0.0)  # three failures, then fine
    hook = register(api, url=receiver.url())
    report(govflow, principals["hotline12345"])
    expected = feed_ids(govflow, principals)
    assert drain(worker, lambda: len(receiver.events()) >= len(expected))
    assert [e["id"] for e in receiver.events()] == expected
    log = api.get("hotline12345", f"/api/v1/webhooks/{hook['id']}/deliveries", params={"limit": 1000}).json()
    outcomes = [e["outcome"] for e in reversed(log)]  # oldest first
    assert outcomes[:4] == ["failed", "failed", "failed", "delivered"]  # two rounds of two tries: 3 failures, then ok
    attempts = [r.at for r in receiver.received[:4]]
    assert attempts[1] - attempts[0] >= 0.05  # tenacity's back-off between attempts


def test_slow_and_unreachable_receivers_do_not_stall_the_others(api, hooks, worker, receiver, govflow, principals):
    receiver.answer = lambda r, n: (200, 3.0) if r.path == "/slow" else (200, 0.0)
    slow = register(api, url=receiver.url("/slow"))
    register(api, url=receiver.url("/fast"))
    register(api, url="http://127.0.0.1:9/nothing-listens")  # connection refused
    report(govflow, principals["hotline12345"])
    expected = feed_ids(govflow, principals)
    ticks = []

    def fast_done():
        return sorted(e["id"] for e in receiver.events("/fast")) == sorted(expected)

    started = time.monotonic()
    while not fast_done() and time.monotonic() - started < 20:
        begun = time.monotonic()
        worker.tick()
        ticks.append(time.monotonic() - begun)
    assert fast_done()
    # a tick waits for its slowest stream; a slow receiver costs its timeout (0.5 s a try, 2 tries, back-off)
    assert max(ticks) < 3.0, ticks
    status = api.get("hotline12345", f"/api/v1/webhooks/{slow['id']}").json()
    assert status["retrying"] and "timed out" in status["retrying"][0]["error"]
    assert status["dead_letters"] == {}


def test_a_disabled_endpoint_gets_nothing_more(api, hooks, worker, receiver, govflow, principals):
    hook = register(api, url=receiver.url())
    disabled = api.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=api.headers("hotline12345"))
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    report(govflow, principals["hotline12345"])
    worker.tick()
    assert receiver.received == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.org/hook", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http://127.0.0.1:8080/hook", "loopback, private or reserved"),
        ("http://localhost/hook", "loopback, private or reserved"),
        ("http://10.1.2.3/hook", "loopback, private or reserved"),
        ("http://192.168.1.1/hook", "loopback, private or reserved"),
        ("http://169.254.169.254/latest/meta-data", "loopback, private or reserved"),
        ("http://[::1]/hook", "loopback, private or reserved"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback, private or reserved"),
        ("http://0.0.0.0/hook", "loopback, private or reserved"),
        ("https://user:pw@example.org/hook", "no user name or password"),
        ("http:///nohost", "a host is required"),
        ("not a url", "no spaces"),
        ("http://example.org:99999/", "out of range"),
        ("http://[fe80::1]/hook", "loopback, private or reserved"),
        ("http://224.0.0.1/hook", "loopback, private or reserved"),
    ],
)
def test_unsafe_urls_are_refused(url, why):
    with pytest.raises(UrlRefused, match=why):
        UrlPolicy().check(url)


def test_names_are_checked_by_what_they_resolve_to():
    def resolver(answers):
        def resolve(host, port, type=None):
            if host not in answers:
                raise OSError("unknown host")
            return [(None, None, None, "", (address, port)) for address in answers[host]]

        return resolve

    names = {"receiver.example.org": ["93.184.215.14"], "rebound.example.org": ["93.184.215.14", "10.0.0.5"]}
    policy = UrlPolicy(resolve=resolver(names))
    assert policy.check("https://receiver.example.org/hook") == "https://receiver.example.org/hook"
    with pytest.raises(UrlRefused, match=r"10\.0\.0\.5"):  # one private address among public ones is enough
        policy.check("https://rebound.example.org/hook")
    with pytest.raises(UrlRefused, match="cannot be resolved"):
        policy.check("https://nowhere.example.org/hook")
    allowed = UrlPolicy(["10.0.0.0/8"], resolve=resolver(names))
    assert allowed.check("https://rebound.example.org/hook")  # the operator allows its network


def test_registration_refuses_bad_input(api, hooks, govflow):
    base = {"url": "http://127.0.0.1:1/hook"}
    assert api.post("hotline12345", "/api/v1/webhooks", json={"url": "ftp://x"}).status_code == 422
    assert api.post("hotline12345", "/api/v1/webhooks", json={**base, "secret": "short"}).status_code == 422
    assert api.post("hotline12345", "/api/v1/webhooks", json={**base, "kinds": ["Bad Kind"]}).status_code == 422
    assert api.post("hotline12345", "/api/v1/webhooks", json={**base, "district": "nowhere"}).status_code == 422
    assert api.post("hotline12345", "/api/v1/webhooks", json={**base, "extra": 1}).status_code == 422
    assert api.post("hotline12345", "/api/v1/webhooks", json={**base, "description": "a\x00b"}).status_code == 422
    assert api.post("hotline12345", "/api/v1/webhooks", json={**base, "secret": "whsec_\x00"}).status_code == 422
    assert api.post("hotline12345", "/api/v1/webhooks", json={"url": "http://127.0.0.1:1/\x00"}).status_code == 422
    assert api.post("citizen.zhang", "/api/v1/webhooks", json=base).status_code == 403
    assert api.post("dongjie.dispatcher", "/api/v1/webhooks", json=base).status_code == 403
    assert api.post(None, "/api/v1/webhooks", json=base).status_code == 401
    assert api.get("hotline12345", "/api/v1/webhooks/not-an-id").status_code == 404
    refused = api.post("hotline12345", "/api/v1/webhooks", json={"url": "http://10.0.0.1/"})
    assert refused.status_code == 422 and "GOVFLOW_WEBHOOK_ALLOWED_NETWORKS" in refused.json()["detail"]
    mine = api.post("hotline12345", "/api/v1/webhooks", json={**base, "secret": new_secret()})
    assert mine.status_code == 201


def test_signed_headers_follow_standard_webhooks():
    secret = new_secret()
    headers = signed_headers(secret, "case:1", b'{"a":1}', timestamp=int(time.time()))
    assert Webhook(secret).verify(b'{"a":1}', headers) == {"a": 1}
