"""The change feed: commit order, an opaque resumable cursor, who sees what, no personal data,
and no gaps or duplicates with many concurrent writers (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid

import pytest
from sqlalchemy import select, text

from govflow.engine.cases.service import NewCase
from govflow.engine.integrations.feed import SHARDS, decode_cursor, encode_cursor, head, public_event
from govflow.engine.model.errors import InvalidInput, PermissionDenied
from govflow.engine.store.db import CaseEvent, FeedEvent

DONGJIE = (26.0865, 119.3025)  # 东街口, in Dongjie street


def report(app, who, text="东街口有个井盖没了", where=DONGJIE, **extra):
    lat, lng = where if where else (None, None)
    return app.cases.report(who, NewCase(channel="app", description=text, lat=lat, lng=lng, **extra))


def all_events(feed, principal, limit=1000):
    seen, cursor = [], None
    while True:
        page = feed.read(principal, cursor, limit)
        seen += page.events
        cursor = page.next
        if not page.has_more:
            return seen, cursor


def test_events_come_in_commit_order_with_resumable_cursors(govflow, principals, api):
    zhang, dongjie = principals["citizen.zhang"], principals["dongjie.dispatcher"]
    first = report(govflow, zhang)
    second = report(govflow, zhang, "东街口路灯不亮")
    [task] = [t for t in govflow.queries.inbox(dongjie) if t["case_id"] == str(first.case_id)]
    govflow.cases.complete_task(dongjie, task["id"], {})
    feed = govflow.integrations.feed
    events, cursor = all_events(feed, principals["hotline12345"])
    with govflow.db.connect() as conn:
        recorded = conn.execute(select(CaseEvent.case_id, CaseEvent.seq)).all()
    assert sorted((e["case_id"], e["seq"]) for e in events) == sorted((str(c), s) for c, s in recorded)
    # commit order: the first case's report, the second's, then the first's signing
    cases_in_order = [e["case_id"] for e in events]
    assert cases_in_order.index(str(second.case_id)) > cases_in_order.index(str(first.case_id))
    assert cases_in_order[-1] == str(first.case_id)
    assert [e["seq"] for e in events if e["case_id"] == str(first.case_id)] == sorted(
        e["seq"] for e in events if e["case_id"] == str(first.case_id)
    )
    # pages of two, resumed from each page's cursor or any event's own cursor: the same events
    paged, cursor2 = [], None
    while True:
        page = feed.read(principals["hotline12345"], cursor2, 2)
        paged += page.events
        assert len(page.events) <= 2
        cursor2 = page.next
        if not page.has_more:
            break
    assert [e["id"] for e in paged] == [e["id"] for e in events]
    middle = events[4]
    assert [e["id"] for e in feed.read(principals["hotline12345"], middle["cursor"]).events] == [
        e["id"] for e in events[5:]
    ]
    # nothing new: the same cursor comes back; a new event comes next
    page = feed.read(principals["hotline12345"], cursor)
    assert (page.events, page.next, page.has_more) == ([], cursor, False)
    govflow.cases.withdraw(zhang, str(second.case_id), "已经修好了")
    page = feed.read(principals["hotline12345"], cursor)
    assert page.events and {e["case_id"] for e in page.events} == {str(second.case_id)}
    assert page.events[0]["kind"] == "task.cancelled" or page.events[0]["seq"] > 1
    # through the API
    response = api.get("hotline12345", "/api/v1/feed", params={"limit": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [e["id"] for e in body["events"]] == [e["id"] for e in events[:3]] and body["has_more"] is True
    again = api.get("hotline12345", "/api/v1/feed", params={"after": body["next"], "limit": 3}).json()
    assert [e["id"] for e in again["events"]] == [e["id"] for e in events[3:6]]


def test_cursors_are_opaque_and_checked(govflow, principals, api):
    assert decode_cursor(encode_cursor(12345)) == 12345
    assert decode_cursor(None) == decode_cursor("") == 0
    assert "12345" not in encode_cursor(12345)
    for bad in ("12", "abc", encode_cursor(1)[:-2] + "!!", "ZmVlZC52MS4tMQ", "ZmVlZC52Mi4x"):
        with pytest.raises(InvalidInput):
            decode_cursor(bad)
    assert api.get("hotline12345", "/api/v1/feed", params={"after": "nonsense"}).status_code == 422
    assert api.get("hotline12345", "/api/v1/feed", params={"limit": 0}).status_code == 422
    assert api.get("hotline12345", "/api/v1/feed", params={"limit": 1001}).status_code == 422
    assert api.get(None, "/api/v1/feed").status_code == 401


def test_each_reader_sees_the_cases_it_may_read(govflow, principals, api):
    zhang = principals["citizen.zhang"]
    in_dongjie = report(govflow, zhang)
    nowhere = report(govflow, zhang, "有人乱倒垃圾", where=None)  # to the command centre
    feed = govflow.integrations.feed

    def cases_seen(who):
        return {e["case_id"] for e in all_events(feed, principals[who])[0]}

    assert cases_seen("hotline12345") == cases_seen("cc.supervisor") == {str(in_dongjie.case_id), str(nowhere.case_id)}
    assert cases_seen("dongjie.dispatcher") == {str(in_dongjie.case_id)}
    assert cases_seen("nanjie.dispatcher") == set()
    assert cases_seen("cgj.handler") == set()  # a department sees the cases it is called to
    with pytest.raises(PermissionDenied):
        feed.read(zhang)
    assert api.get("citizen.zhang", "/api/v1/feed").status_code == 403


def test_no_personal_data_leaves_through_the_feed(govflow, principals):
    zhang, dongjie = principals["citizen.zhang"], principals["dongjie.dispatcher"]
    case = report(govflow, zhang, reporter_name="张伟", reporter_phone="13812345678")
    for name, data in (("sign_for", {}), ("handle", {"result": "已补装井盖"}), ("review", {"approved": True})):
        [task] = [t for t in govflow.queries.inbox(dongjie) if t["case_id"] == str(case.case_id)]
        assert task["name"] == name
        govflow.cases.complete_task(dongjie, task["id"], data)
    [evaluate] = [t for t in govflow.queries.inbox(zhang) if t["case_id"] == str(case.case_id)]
    govflow.cases.complete_task(zhang, evaluate["id"], {"satisfaction": 5, "comment": "张伟很满意 13812345678"})
    other = report(govflow, zhang, "东街口路灯不亮")
    govflow.cases.withdraw(zhang, str(other.case_id), "我是张伟，电话13812345678，已经修好了")
    events, _ = all_events(govflow.integrations.feed, principals["hotline12345"])
    dumped = json.dumps(events, ensure_ascii=False)
    for secret in ("张伟", "13812345678", "citizen.zhang", "很满意"):
        assert secret not in dumped
    actors = {e["actor"] for e in events}
    assert "reporter" in actors and "dongjie.dispatcher" in actors
    assert any(e["kind"] == "case.withdrawn" and "reason" not in e["data"] for e in events)
    assert any(
        e["kind"] == "task.completed" and e["data"].get("form", {}).get("result") == "已补装井盖" for e in events
    )


def test_public_event_scrubs_at_any_depth():
    event = {
        "case_id": uuid.uuid4(),
        "seq": 3,
        "at": "2026-09-28T01:00:00Z",
        "kind": "x",
        "actor": "someone.else",
        "actor_unit": None,
        "data": {"a": [{"phone": "1", "ok": "citizen.zhang"}], "email": "a@b", "form": {"comment": "c", "k": 1}},
    }
    out = public_event(event, district="gulou", unit="gulou.dongjie", reporter="citizen.zhang")
    assert out["actor"] == "citizen"
    assert out["data"] == {"a": [{"ok": "reporter"}]}
    staff = public_event(
        {**event, "actor": "dongjie.dispatcher", "actor_unit": "gulou.dongjie"},
        district="gulou",
        unit=None,
        reporter="r",
    )
    assert staff["actor"] == "dongjie.dispatcher" and staff["data"]["form"] == {"k": 1}


def test_positions_are_gapless_and_every_shard_is_used(govflow, principals):
    for i in range(12):
        report(govflow, principals["hotline12345"], f"东街口井盖{i}")
    with govflow.db.connect() as conn:
        positions = conn.execute(select(FeedEvent.position).order_by(FeedEvent.position)).scalars().all()
        shards = set(conn.execute(select(FeedEvent.shard)).scalars())
        assert positions == list(range(1, len(positions) + 1)) and head(conn) == positions[-1]
    assert shards <= set(range(SHARDS)) and len(shards) > 1


def test_the_feed_is_append_only(govflow, principals):
    report(govflow, principals["hotline12345"])
    with pytest.raises(Exception, match="append-only"), govflow.db.begin() as conn:
        conn.execute(text("UPDATE feed_events SET kind = 'x'"))
    with pytest.raises(Exception, match="append-only"), govflow.db.begin() as conn:
        conn.execute(text("DELETE FROM feed_events"))


def test_many_writers_one_reader_every_event_once_in_order(govflow, principals):
    """Eight writers report and sign for cases while one reader follows the feed; each commit is
    slowed at random after its positions are taken, so late commits would be skipped by a reader
    that trusted ids assigned before commit. The reader sees every event once, in order."""
    writers, per_writer = 8, 6
    hotline, dongjie = principals["hotline12345"], principals["dongjie.dispatcher"]

    def slow_commit(conn, changes):  # after the feed projector: the positions are taken, the commit is late
        time.sleep(random.uniform(0, 0.02))

    govflow.uow.projectors.append(slow_commit)
    done = threading.Event()
    errors: list[BaseException] = []

    def write(n):
        try:
            for i in range(per_writer):
                outcome = report(govflow, hotline, f"东街口井盖{n}-{i}")
                if i % 2 == 0:
                    tasks = [t for t in govflow.queries.inbox(dongjie) if t["case_id"] == str(outcome.case_id)]
                    govflow.cases.complete_task(dongjie, tasks[0]["id"], {})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    seen: list[dict] = []
    positions: list[int] = []

    def read():
        cursor = None
        while True:
            finished = done.is_set()
            page = govflow.integrations.feed.read(hotline, cursor, 50)
            seen.extend(page.events)
            positions.extend(decode_cursor(e["cursor"]) for e in page.events)
            cursor = page.next
            if finished and not page.has_more and not page.events:
                return
            time.sleep(0.001)

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join(60)
    assert not errors, errors
    with govflow.db.connect() as conn:
        recorded = conn.execute(select(CaseEvent.case_id, CaseEvent.seq)).all()
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)) == len(recorded)  # every event exactly once
    assert set(ids) == {f"{c}:{s}" for c, s in recorded}
    assert positions == sorted(positions) == list(range(1, len(recorded) + 1))  # in order, no gaps
    by_case: dict[str, list[int]] = {}
    for event in seen:
        by_case.setdefault(event["case_id"], []).append(event["seq"])
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in by_case.values())


def test_a_commit_that_takes_its_position_first_is_read_before_a_later_one(govflow, principals):
    """Deterministic: transaction A takes its positions and waits before committing; B, started
    meanwhile, cannot take a position until A has committed — so a reader never sees B without A."""
    hotline = principals["hotline12345"]
    a_has_positions, release_a = threading.Event(), threading.Event()

    def hold(conn, changes):
        if threading.current_thread().name == "A":
            a_has_positions.set()
            release_a.wait(10)

    govflow.uow.projectors.append(hold)
    results = {}
    a = threading.Thread(target=lambda: results.setdefault("a", report(govflow, hotline, "A井盖")), name="A")
    a.start()
    assert a_has_positions.wait(10)
    b = threading.Thread(target=lambda: results.setdefault("b", report(govflow, hotline, "B井盖")), name="B")
    b.start()
    time.sleep(0.3)  # B is blocked (PostgreSQL: on the feed head row; SQLite: on the write lock)
    page = govflow.integrations.feed.read(hotline)
    assert page.events == []  # nothing visible yet, neither A (uncommitted) nor B (waiting)
    release_a.set()
    a.join(10)
    b.join(10)
    events, _ = all_events(govflow.integrations.feed, hotline)
    order = list(dict.fromkeys(e["case_id"] for e in events))
    assert order == [str(results["a"].case_id), str(results["b"].case_id)]
