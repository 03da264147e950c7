"""Reports with the same Idempotency-Key that race each other: one case, every answer names it.

The race is made deterministic by running the second report inside the first, just before
the first one writes its case (a statement hook on the engine), so the second call commits
first and the first one's key insert collides; a thread race checks the same outcome.
"""

from __future__ import annotations

import contextlib
import threading

import pytest
from sqlalchemy import event, func, select

from govflow.engine.cases.service import NewCase
from govflow.engine.model.errors import IdempotencyMismatch
from govflow.engine.store.db import CaseEvent, CaseRow, IdempotencyKey

REPORT = NewCase(channel="hotline_12345", description="东街口有个井盖没了", lat=26.0865, lng=119.3025)
KEY = "12345-call-0042"


@contextlib.contextmanager
def before_the_first(engine, prefix: str, action):
    """Run ``action`` once, just before the first statement starting with ``prefix`` executes."""
    armed, results = [True], []

    def hook(conn, cursor, statement, parameters, context, executemany):
        if armed and statement.lstrip().upper().startswith(prefix):
            armed.clear()
            results.append(action())

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield results
    finally:
        event.remove(engine, "before_cursor_execute", hook)


def counts(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        cases = conn.execute(select(func.count()).select_from(CaseRow)).scalar_one()
        keys = conn.execute(select(func.count()).select_from(IdempotencyKey)).scalar_one()
    return cases, keys


def test_a_retry_that_lands_while_the_first_report_is_written_gets_the_same_case(govflow, principals, notifications):
    hotline = principals["hotline12345"]
    with before_the_first(
        govflow.db, "INSERT INTO CASES", lambda: govflow.cases.report(hotline, REPORT, idempotency_key=KEY)
    ) as meanwhile:
        first = govflow.cases.report(hotline, REPORT, idempotency_key=KEY)
    [second] = meanwhile
    # the retry committed first; the first call's key collided, it wrote nothing and replays
    assert (second.replayed, first.replayed) == (False, True)
    assert first.case_id == second.case_id
    assert (first.status, first.version) == (second.status, second.version) == ("dispatched", 1)
    assert counts(govflow.db) == (1, 1)
    with govflow.db.connect() as conn:
        assert set(conn.execute(select(CaseEvent.case_id)).scalars()) == {second.case_id}
    assert {e["case_id"] for e in notifications.events} == {second.case_id}  # nothing heard of the loser


def test_a_different_report_with_the_same_key_in_the_race_is_refused(govflow, principals):
    hotline = principals["hotline12345"]
    other = NewCase(channel="hotline_12345", description="南门兜路灯不亮", lat=26.0865, lng=119.3025)
    with before_the_first(
        govflow.db, "INSERT INTO CASES", lambda: govflow.cases.report(hotline, other, idempotency_key=KEY)
    ) as meanwhile:
        with pytest.raises(IdempotencyMismatch) as refused:
            govflow.cases.report(hotline, REPORT, idempotency_key=KEY)
    [winner] = meanwhile
    assert refused.value.message == "this Idempotency-Key was used for a different report"
    assert refused.value.context == {"key": KEY}
    assert winner.replayed is False and counts(govflow.db) == (1, 1)


def test_concurrent_reports_with_one_key_make_one_case(govflow, principals):
    hotline, n = principals["hotline12345"], 4
    start = threading.Barrier(n)
    outcomes, errors = [], []

    def report():
        start.wait()
        try:
            outcomes.append(govflow.cases.report(hotline, REPORT, idempotency_key=KEY))
        except Exception as exc:  # collected and asserted below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=report) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len({o.case_id for o in outcomes}) == 1 and len(outcomes) == n
    assert sorted(o.replayed for o in outcomes) == [False] + [True] * (n - 1)
    assert counts(govflow.db) == (1, 1)


def test_the_api_answers_a_reused_key_with_a_problem(api):
    body = {"channel": "app", "description": "东街口有个井盖没了", "location": {"lat": 26.0865, "lng": 119.3025}}
    first = api.post("hotline12345", "/api/v1/cases", json=body, headers={"Idempotency-Key": KEY})
    again = api.post("hotline12345", "/api/v1/cases", json=body, headers={"Idempotency-Key": KEY})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "replayed": True}
    changed = api.post(
        "hotline12345", "/api/v1/cases", json={**body, "description": "另一件事"}, headers={"Idempotency-Key": KEY}
    )
    assert changed.status_code == 422
    assert changed.headers["content-type"].startswith("application/problem+json")
    problem = changed.json()
    assert (problem["type"], problem["title"], problem["detail"]) == (
        "urn:govflow:problem:idempotency-key-reused",
        "Idempotency key reused",
        "this Idempotency-Key was used for a different report",
    )


@pytest.mark.parametrize("key", ["", "x" * 129, "with space", "中文", "tab\tkey", "nul\x00"])
def test_the_engine_refuses_a_malformed_key_from_any_caller(govflow, principals, key):
    """The API's header states the bounds; the engine checks them for every caller of report()
    (a plugin, a worker, another door), so no key the API would refuse is ever stored."""
    from govflow.engine.model.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        govflow.cases.report(principals["hotline12345"], REPORT, idempotency_key=key)
    assert refused.value.errors == [{"loc": ["header", "idempotency-key"], "msg": "1-128 visible ASCII characters"}]
    with govflow.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CaseRow)).scalar_one() == 0
    assert govflow.cases.report(principals["hotline12345"], REPORT, idempotency_key="x" * 128).replayed is False
