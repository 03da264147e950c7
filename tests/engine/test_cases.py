"""The command path: optimistic locking, idempotency, forms, forged ids, privacy, the record."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from govflow.engine.cases.service import NewCase
from govflow.engine.cases.unit_of_work import Change
from govflow.engine.model.errors import (
    ConcurrentUpdate,
    FormValidationError,
    IdempotencyMismatch,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from govflow.engine.store.db import CaseEvent, CaseRow, PersonalDataAccess

DONGJIE = dict(lat=26.0865, lng=119.3025)


def report(govflow, principals, who="citizen.zhang", **kw):
    fields = dict(
        channel="app",
        description="东街口有个井盖没了，晚上很危险",
        reporter_name="张伟",
        reporter_phone="13812345678",
        **DONGJIE,
    )
    fields.update(kw)
    return govflow.cases.report(principals[who], NewCase(**fields))


def open_task(govflow, principals, who, case_id):
    return next(t for t in govflow.queries.inbox(principals[who]) if t["case_id"] == str(case_id))


def count(govflow, model, **where):
    with govflow.db.connect() as conn:
        query = select(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return len(conn.execute(query).all())


def test_a_stale_write_is_refused_and_nothing_is_written(govflow, principals):
    case = report(govflow, principals)
    task = open_task(govflow, principals, "dongjie.dispatcher", case.case_id)
    events_before = count(govflow, CaseEvent, case_id=case.case_id)
    # someone else writes first: the version moves on under us
    with govflow.db.begin() as conn:
        conn.execute(update(CaseRow).where(CaseRow.id == case.case_id).values(version=CaseRow.version + 1))
    with pytest.raises(ConcurrentUpdate):
        govflow.cases.complete_task(principals["dongjie.dispatcher"], task["id"], {}, expected_version=1)
    assert count(govflow, CaseEvent, case_id=case.case_id) == events_before
    assert open_task(govflow, principals, "dongjie.dispatcher", case.case_id)["name"] == "sign_for"


def test_two_writers_on_the_same_version_one_wins(govflow, principals, monkeypatch):
    """The loser of a race between load and commit is refused at the version-checked write, and
    nothing of it is written (no lost update)."""
    case = report(govflow, principals)
    task = open_task(govflow, principals, "dongjie.dispatcher", case.case_id)
    uow = govflow.uow
    stale = uow.load(case.case_id)  # the loser reads ...
    govflow.cases.complete_task(principals["dongjie.dispatcher"], task["id"], {})  # ... the winner commits
    events_after_winner = count(govflow, CaseEvent, case_id=case.case_id)
    # the loser found the task's case and read it before the winner committed, and decides on that
    monkeypatch.setattr(uow, "load_of_task", lambda task_id: stale)
    refused_at_write = []
    original_write_row = Change.write_row

    def spy(self, conn):
        try:
            original_write_row(self, conn)
        except ConcurrentUpdate:
            refused_at_write.append(self.read_version)
            raise

    monkeypatch.setattr(Change, "write_row", spy)
    with pytest.raises(ConcurrentUpdate):  # the same sign-for, decided on the stale snapshot
        govflow.cases.complete_task(principals["dongjie.dispatcher"], task["id"], {"note": "late"})
    assert refused_at_write == [1]  # it reached the write, with the version it read
    with govflow.db.connect() as conn:
        row = conn.execute(select(CaseRow.version, CaseRow.status).where(CaseRow.id == case.case_id)).one()
    assert (row.version, row.status) == (2, "handling")
    assert count(govflow, CaseEvent, case_id=case.case_id) == events_after_winner


def test_idempotency_key_returns_the_same_case(govflow, principals):
    new = NewCase(channel="hotline_12345", description="鼓东路垃圾桶满了没人清", **DONGJIE)
    first = govflow.cases.report(principals["hotline12345"], new, idempotency_key="call-0001")
    again = govflow.cases.report(principals["hotline12345"], new, idempotency_key="call-0001")
    assert again.case_id == first.case_id and again.replayed
    assert count(govflow, CaseRow) == 1
    with pytest.raises(IdempotencyMismatch):
        govflow.cases.report(
            principals["hotline12345"],
            NewCase(channel="hotline_12345", description="别的事"),
            idempotency_key="call-0001",
        )
    other = govflow.cases.report(principals["citizen.li"], new, idempotency_key="call-0001")  # keys are per principal
    assert other.case_id != first.case_id


def test_form_data_is_validated_against_the_task_form(govflow, principals):
    case = report(govflow, principals)
    dispatcher = principals["dongjie.dispatcher"]
    govflow.cases.complete_task(
        dispatcher, open_task(govflow, principals, "dongjie.dispatcher", case.case_id)["id"], {}
    )
    handle = open_task(govflow, principals, "dongjie.dispatcher", case.case_id)["id"]
    with pytest.raises(FormValidationError) as missing:
        govflow.cases.complete_task(dispatcher, handle, {})
    assert missing.value.errors[0]["loc"] == ["result"]
    with pytest.raises(FormValidationError) as extra:
        govflow.cases.complete_task(dispatcher, handle, {"result": "ok", "owner_unit": "gulou.nanjie"})
    assert "owner_unit" in str(extra.value.errors)
    govflow.cases.complete_task(dispatcher, handle, {"result": "已处理"})
    review = open_task(govflow, principals, "dongjie.dispatcher", case.case_id)["id"]
    with pytest.raises(FormValidationError):
        govflow.cases.complete_task(dispatcher, review, {"approved": "yes"})  # strict boolean


def test_dispatch_form_refuses_unknown_units(govflow, principals):
    case = report(govflow, principals, lat=None, lng=None, description="有个井盖松了")
    task = open_task(govflow, principals, "cc.supervisor", case.case_id)
    with pytest.raises(FormValidationError):
        govflow.cases.complete_task(principals["cc.supervisor"], task["id"], {"street": "gulou.nowhere"})
    with pytest.raises(FormValidationError):
        govflow.cases.complete_task(
            principals["cc.supervisor"], task["id"], {"street": "gulou.cgj"}
        )  # a department, not a street


@pytest.mark.parametrize(
    "forged", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "'; DROP TABLE cases; --", "x" * 500]
)
def test_forged_ids_are_not_found(govflow, principals, forged):
    with pytest.raises(NotFound):
        govflow.cases.complete_task(principals["dongjie.dispatcher"], forged, {})
    with pytest.raises(NotFound):
        govflow.queries.case(principals["cc.supervisor"], forged)


def test_reports_are_validated(govflow, principals):
    with pytest.raises(InvalidInput):
        report(govflow, principals, channel="carrier-pigeon")
    with pytest.raises(InvalidInput):
        report(govflow, principals, lat=26.0, lng=None)
    with pytest.raises(InvalidInput):
        report(govflow, principals, category="no.such_matter")
    assert count(govflow, CaseRow) == 0


def test_only_the_reporter_withdraws(govflow, principals):
    case = report(govflow, principals)
    with pytest.raises(NotFound):  # another citizen may not even see the case
        govflow.cases.withdraw(principals["citizen.li"], str(case.case_id), "不是我的")
    with pytest.raises(PermissionDenied):  # the street sees it, but only its reporter withdraws it
        govflow.cases.withdraw(principals["dongjie.dispatcher"], str(case.case_id), "街道撤回")


def test_personal_data_is_masked_and_every_unmasked_view_recorded(govflow, principals):
    case = report(govflow, principals)
    integrator = govflow.queries.case(principals["hotline12345"], str(case.case_id))  # may read, may not see PII
    assert integrator["reporter"] == {"name": "张*", "phone": "138****5678", "masked": True}
    assert count(govflow, PersonalDataAccess) == 0
    street = govflow.queries.case(principals["dongjie.dispatcher"], str(case.case_id))
    assert street["reporter"]["phone"] == "13812345678" and not street["reporter"]["masked"]
    own = govflow.queries.case(principals["citizen.zhang"], str(case.case_id))
    assert own["reporter"]["name"] == "张伟"
    with govflow.db.connect() as conn:
        log = conn.execute(select(PersonalDataAccess.principal_id, PersonalDataAccess.fields)).all()
    fields = ["reporter_name", "reporter_phone"]
    assert [(r.principal_id, r.fields) for r in log] == [("dongjie.dispatcher", fields), ("citizen.zhang", fields)]
    with pytest.raises(NotFound):  # answered as if it did not exist
        govflow.queries.case(principals["citizen.li"], str(case.case_id))
    with pytest.raises(NotFound):  # departments see a case only once it involves them
        govflow.queries.case(principals["cgj.handler"], str(case.case_id))


def test_the_event_log_is_append_only(govflow, principals):
    case = report(govflow, principals)
    with pytest.raises(DBAPIError):
        with govflow.db.begin() as conn:
            conn.execute(text("UPDATE case_events SET kind = 'forged' WHERE seq = 1"))
    with pytest.raises(DBAPIError):
        with govflow.db.begin() as conn:
            conn.execute(text("DELETE FROM case_events"))
    kinds = [e["kind"] for e in govflow.queries.events(principals["citizen.zhang"], str(case.case_id))]
    assert kinds[0] == "case.reported" and "forged" not in kinds


def test_status_follows_the_lifecycle_vocabulary(govflow, principals):
    case = report(govflow, principals)
    seen = [case.status]
    dispatcher = principals["dongjie.dispatcher"]
    for data in ({}, {"result": "已处理"}, {"approved": True}):
        task = open_task(govflow, principals, "dongjie.dispatcher", case.case_id)
        seen.append(govflow.cases.complete_task(dispatcher, task["id"], data).status)
    task = open_task(govflow, principals, "citizen.zhang", case.case_id)
    seen.append(govflow.cases.complete_task(principals["citizen.zhang"], task["id"], {"satisfaction": 4}).status)
    assert seen == ["dispatched", "handling", "completed", "reviewed", "evaluated"]


def test_a_standalone_event_moves_the_version_so_a_stale_command_is_refused(govflow, principals, monkeypatch):
    case = report(govflow, principals)
    uow = govflow.uow
    stale = uow.load(case.case_id)
    # e.g. a rating lands between a command's read and its write
    outcome = govflow.cases.record_fact(stale, principals["dongjie.dispatcher"], "test", "rating.given", {"score": 5})
    assert outcome.events[0]["seq"] == stale.row.event_seq + 1 and outcome.version == stale.version + 1
    monkeypatch.setattr(uow, "load_of_task", lambda task_id: stale)  # the command read before the rating
    task = open_task(govflow, principals, "dongjie.dispatcher", case.case_id)
    with pytest.raises(ConcurrentUpdate):
        govflow.cases.complete_task(principals["dongjie.dispatcher"], task["id"], {})
    kinds = [e["kind"] for e in govflow.queries.events(principals["cc.supervisor"], str(case.case_id))]
    assert kinds[-1] == "rating.given" and "task.completed" not in kinds


def test_projectors_run_inside_the_commit_and_abort_it_when_they_fail(govflow, principals):
    """A projector sees each committed change in the same transaction; if it fails, nothing is written."""
    seen = []
    govflow.uow.projectors.append(lambda conn, changes: seen.extend((c.case_id, len(c.events)) for c in changes))
    case = report(govflow, principals)
    assert seen == [(case.case_id, len(case.events))]

    def broken(conn, changes):
        raise RuntimeError("projection failed")

    govflow.uow.projectors.append(broken)
    task = open_task(govflow, principals, "dongjie.dispatcher", case.case_id)
    events_before = count(govflow, CaseEvent, case_id=case.case_id)
    with pytest.raises(RuntimeError, match="projection failed"):
        govflow.cases.complete_task(principals["dongjie.dispatcher"], task["id"], {})
    assert count(govflow, CaseEvent, case_id=case.case_id) == events_before
    assert open_task(govflow, principals, "dongjie.dispatcher", case.case_id)["name"] == "sign_for"
