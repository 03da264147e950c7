"""Early warning: a burst after a storm, a rising matter, repeats at one place; campaigns link the cases."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from govflow.engine.cases.service import NewCase
from govflow.engine.model.errors import Conflict, PermissionDenied
from govflow.engine.oversight.warnings import poisson_tail
from govflow.engine.store.db import CaseEvent, EarlyWarning

GUDONG = dict(lat=26.0865, lng=119.3025)  # a point in Dongjie street


def report(app, principals, description, category, *, lat, lng, who="citizen.zhang"):
    return app.cases.report(
        principals[who], NewCase(channel="app", description=description, category=category, lat=lat, lng=lng)
    )


def spread(i: int) -> dict:
    """Points a few hundred metres apart inside Dongjie (not one place: no repeat warning)."""
    return dict(lat=26.0850 + 0.0025 * (i % 3), lng=119.3000 + 0.0025 * (i // 3))


def test_poisson_tail():
    assert poisson_tail(0, 3.0) == 1.0
    assert poisson_tail(1, 2.0) == pytest.approx(1 - 2.718281828**-2)
    assert poisson_tail(8, 0.1) < 1e-10


def test_a_burst_of_waterlogging_in_one_street_raises_one_warning_with_its_evidence(
    govflow, principals, clock, notifications
):
    # a quiet month: one waterlogging report a week in Dongjie
    for week in range(4):
        report(govflow, principals, "路口积水", "water.waterlogging", **spread(week))
        clock.advance(dt.timedelta(days=7))
    assert govflow.oversight.scan_warnings(principals["cc.supervisor"]) == []
    # a storm: seven reports in three hours
    storm = [report(govflow, principals, f"暴雨后积水很深 {i}", "water.waterlogging", **spread(i)) for i in range(7)]
    clock.advance(dt.timedelta(hours=3))
    raised = govflow.oversight.scan_warnings(principals["cc.supervisor"])
    bursts = [w for w in raised if w["kind"] == "burst"]
    assert len(bursts) == 1
    burst = bursts[0]
    assert (burst["unit"], burst["matter"]) == ("gulou.dongjie", "water.waterlogging")
    assert burst["evidence"]["observed"] == 7 and burst["evidence"]["p_value"] < 0.001
    assert sorted(burst["evidence"]["cases"]) == sorted(str(c.case_id) for c in storm)
    assert [w["id"] for w in notifications.warnings if w["kind"] == "burst"] == [burst["id"]]
    # a rescan raises nothing new; the warning is on the record for good
    assert [w for w in govflow.oversight.scan_warnings(principals["cc.supervisor"]) if w["kind"] == "burst"] == []
    with pytest.raises(DBAPIError, match="append-only"), govflow.db.begin() as conn:
        conn.execute(update(EarlyWarning).values(kind="rising"))
    listed = govflow.oversight.warnings(principals["district.supervisor"])
    assert burst["id"] in {w["id"] for w in listed}
    with pytest.raises(PermissionDenied):
        govflow.oversight.warnings(principals["dongjie.dispatcher"])

    # a campaign (专项治理) links the storm's cases, once
    opened = govflow.oversight.open_campaign(principals["cc.supervisor"], burst["id"])
    assert sorted(opened["linked"]) == sorted(str(c.case_id) for c in storm)
    campaign = govflow.queries.case(principals["cc.supervisor"], opened["campaign"])
    assert campaign["owner_unit"] == "gulou.cc" and campaign["channel"] == "campaign"
    with govflow.db.connect() as conn:
        linked = conn.execute(select(CaseEvent.case_id).where(CaseEvent.kind == "campaign.linked")).scalars().all()
        opened_events = conn.execute(select(CaseEvent.data).where(CaseEvent.kind == "campaign.opened")).scalars().all()
    assert sorted(map(str, linked)) == sorted(opened["linked"]) and opened_events[0]["warning"] == burst["id"]
    with pytest.raises(Conflict):
        govflow.oversight.open_campaign(principals["cc.supervisor"], burst["id"])
    with pytest.raises(PermissionDenied):
        govflow.oversight.open_campaign(principals["dongjie.dispatcher"], burst["id"])


def test_reports_of_one_matter_at_one_place_raise_a_repeat_warning(govflow, principals, clock):
    for i in range(3):
        report(govflow, principals, f"同一个井盖又坏了 {i}", "road.manhole_cover", **GUDONG)
        clock.advance(dt.timedelta(days=2))
    raised = govflow.oversight.scan_warnings(None)
    repeats = [w for w in raised if w["kind"] == "repeat"]
    assert (
        len(repeats) == 1 and repeats[0]["matter"] == "road.manhole_cover" and repeats[0]["evidence"]["observed"] == 3
    )


def test_a_citizen_cannot_scan_or_open_campaigns(govflow, principals):
    with pytest.raises(PermissionDenied):
        govflow.oversight.scan_warnings(principals["citizen.zhang"])


def test_a_matter_rising_this_week_against_its_own_eight_weeks_raises_a_rising_warning(govflow, principals, clock):
    def place(i: int) -> dict:  # distinct ~130 m cells inside Dongjie: no repeat warning
        return dict(lat=26.0850 + 0.0012 * (i % 5), lng=119.3000 + 0.0012 * (i // 5))

    for week in range(8):  # the baseline: one waterlogging report a week
        report(govflow, principals, f"路口积水 {week}", "water.waterlogging", **place(week))
        clock.advance(dt.timedelta(days=7))
    assert govflow.oversight.scan_warnings(principals["cc.supervisor"]) == []
    this_week = []
    for day in range(4):  # two a day for four days: rising, though no day is a burst
        for k in range(2):
            i = 8 + 2 * day + k
            this_week.append(report(govflow, principals, f"积水又来了 {i}", "water.waterlogging", **place(i)))
        clock.advance(dt.timedelta(days=1))
    raised = govflow.oversight.scan_warnings(principals["cc.supervisor"])
    assert [w["kind"] for w in raised] == ["rising"], raised
    [rising] = raised
    assert (rising["unit"], rising["matter"]) == ("gulou.dongjie", "water.waterlogging")
    assert rising["evidence"]["observed"] == 8 and rising["evidence"]["expected"] == pytest.approx(1.0)
    assert rising["evidence"]["p_value"] < 0.01
    assert sorted(rising["evidence"]["cases"]) == sorted(str(c.case_id) for c in this_week)
