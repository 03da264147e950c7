"""Personal data (issue 14, seen 10): exactly one access-log row per response that shows unmasked
reporter data, for every role, integrators included; none when nothing unmasked was shown; an
integrator sees reporter data only when its role is granted read_pii."""

from __future__ import annotations

from sqlalchemy import select

from govflow.engine.packs.loader import files_to_zip
from govflow.engine.store.db import PersonalDataAccess
from tests.pack_helpers import gulou_version

DONGJIE = {"lat": 26.0865, "lng": 119.3025, "address": "东街口"}
NAME, PHONE = "王芳", "13912345678"


def _log(govflow) -> list[tuple[str, list[str]]]:
    with govflow.db.connect() as conn:
        rows = conn.execute(select(PersonalDataAccess).order_by(PersonalDataAccess.id)).all()
    return [(r.principal_id, list(r.fields)) for r in rows]


def _filed_by_hotline(api) -> str:
    response = api.report(
        "hotline12345",
        channel="hotline_12345",
        description="东街口井盖没了",
        location=DONGJIE,
        reporter={"name": NAME, "phone": PHONE},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_an_integrator_sees_the_callers_data_masked_and_nothing_is_logged(api, govflow):
    case = _filed_by_hotline(api)
    shown = api.get("hotline12345", f"/api/v1/cases/{case}").json()
    assert shown["reporter"] == {"name": "王*", "phone": "139****5678", "masked": True}
    assert NAME not in str(shown) and PHONE not in str(shown)
    assert _log(govflow) == []


def test_every_response_that_shows_the_data_writes_exactly_one_row(api, govflow):
    case = _filed_by_hotline(api)
    both = ["reporter_name", "reporter_phone"]
    for who in ("dongjie.dispatcher", "dongjie.dispatcher", "cc.supervisor", "district.supervisor"):
        shown = api.get(who, f"/api/v1/cases/{case}").json()
        assert shown["reporter"] == {"name": NAME, "phone": PHONE, "masked": False}
    assert _log(govflow) == [
        ("dongjie.dispatcher", both),
        ("dongjie.dispatcher", both),
        ("cc.supervisor", both),
        ("district.supervisor", both),
    ]


def test_responses_without_unmasked_data_write_nothing(api, govflow):
    case = _filed_by_hotline(api)
    for who, url in [
        ("dongjie.dispatcher", f"/api/v1/cases/{case}/events"),
        ("dongjie.dispatcher", f"/api/v1/cases/{case}/ratings"),
        ("dongjie.dispatcher", "/api/v1/tasks"),
        ("hotline12345", f"/api/v1/cases/{case}"),
        ("hotline12345", f"/api/v1/cases/{case}/ratings"),
        ("nanjie.dispatcher", f"/api/v1/cases/{case}"),  # not visible at all
    ]:
        response = api.get(who, url)
        assert response.status_code in (200, 404), response.text
        assert NAME not in response.text and PHONE not in response.text
    assert _log(govflow) == []


def test_only_what_is_stored_is_listed_and_a_report_without_contact_logs_nothing(api, govflow):
    named = api.report("citizen.zhang", description="东街口井盖没了", location=DONGJIE, reporter={"name": "张伟"})
    anonymous = api.report("citizen.zhang", description="东街口井盖没了", location=DONGJIE)
    api.get("dongjie.dispatcher", f"/api/v1/cases/{named.json()['id']}")
    api.get("dongjie.dispatcher", f"/api/v1/cases/{anonymous.json()['id']}")
    assert _log(govflow) == [("dongjie.dispatcher", ["reporter_name"])]


def test_a_citizen_reading_their_own_report_is_logged_too(api, govflow):
    response = api.report("citizen.zhang", description="东街口井盖没了", location=DONGJIE, reporter={"name": "张伟"})
    own = api.get("citizen.zhang", f"/api/v1/cases/{response.json()['id']}").json()
    assert own["reporter"]["name"] == "张伟" and own["reporter"]["masked"] is False
    assert _log(govflow) == [("citizen.zhang", ["reporter_name"])]


def test_an_integrator_granted_read_pii_sees_the_data_and_each_view_is_logged(api, govflow):
    case = _filed_by_hotline(api)
    version = gulou_version("1.1.0", policies__policy_DOT_csv=b"p, integrator, gulou/*, read_pii\n")
    deployed = api.client.post(
        "/api/v1/packs",
        content=files_to_zip(version),
        headers=api.headers("district.supervisor", **{"Content-Type": "application/zip"}),
    )
    assert deployed.status_code == 201, deployed.text
    newer = _filed_by_hotline(api)  # runs on 1.1.0, whose policy grants the integrator read_pii
    assert api.get("hotline12345", f"/api/v1/cases/{case}").json()["reporter"]["masked"] is True  # 1.0.0's policy
    for _ in range(2):
        shown = api.get("hotline12345", f"/api/v1/cases/{newer}").json()
        assert shown["reporter"] == {"name": NAME, "phone": PHONE, "masked": False}
    assert _log(govflow) == [("hotline12345", ["reporter_name", "reporter_phone"])] * 2
