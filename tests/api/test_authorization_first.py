"""Authorization first (issue 14, seen 9): a caller who may not act learns nothing about the target.

One rule (README, "403 or 404"): a target the caller may not see is answered exactly like one that
does not exist (404, same body but for the id); 403 is for a visible target the caller may not act
on, and for actions with no target to hide, checked before the request's content is looked at.
"""

from __future__ import annotations

import uuid

import pytest

from govflow.engine.packs.loader import files_to_zip
from tests.pack_helpers import gulou_version

DONGJIE = {"lat": 26.0865, "lng": 119.3025, "address": "东街口"}


def _report(api) -> str:
    response = api.report(
        "citizen.zhang",
        description="东街口井盖没了",
        location=DONGJIE,
        reporter={"name": "张伟", "phone": "13812345678"},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _same_but_id(hidden, missing, hidden_id: str, missing_id: str) -> None:
    """Two answers that differ only by the id they echo."""
    assert hidden.status_code == missing.status_code == 404, (hidden.text, missing.text)
    assert hidden.headers["content-type"] == missing.headers["content-type"]
    assert hidden.text.replace(hidden_id, "ID") == missing.text.replace(missing_id, "ID")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("get", "/events", None),
        ("get", "/ratings", None),
        ("post", "/withdraw", {"reason": "不要了"}),
        ("post", "/call-outs", {"departments": ["gulou.cgj"], "reason": "联合处置"}),
        ("post", "/contributions", {"part": "配合"}),
        ("post", "/ratings", {"target": "gulou.dongjie", "dimension": "accuracy", "score": 3}),
    ],
)
@pytest.mark.parametrize("who", ["nanjie.dispatcher", "citizen.li", "cgj.handler"])
def test_a_case_the_caller_may_not_see_is_answered_like_a_missing_one(api, who, method, suffix, body):
    case, missing = _report(api), str(uuid.uuid4())
    call = getattr(api, method)
    kwargs = {"json": body} if body is not None else {}
    hidden = call(who, f"/api/v1/cases/{case}{suffix}", **kwargs)
    absent = call(who, f"/api/v1/cases/{missing}{suffix}", **kwargs)
    _same_but_id(hidden, absent, case, missing)


def test_another_streets_task_is_not_found_and_reveals_no_version(api):
    case = _report(api)
    [task] = api.inbox("dongjie.dispatcher", case)
    missing = str(uuid.uuid4())
    for body in ({"data": {}}, {"data": {}, "expected_version": 7}, {"data": {"result": "x"}, "expected_version": 1}):
        hidden = api.post("nanjie.dispatcher", f"/api/v1/tasks/{task['id']}/complete", json=body)
        absent = api.post("nanjie.dispatcher", f"/api/v1/tasks/{missing}/complete", json=body)
        _same_but_id(hidden, absent, task["id"], missing)
        assert "version" not in hidden.json().get("detail", "")
    # the one who may act learns the version from a stale expectation
    stale = api.post(
        "dongjie.dispatcher", f"/api/v1/tasks/{task['id']}/complete", json={"data": {}, "expected_version": 7}
    )
    assert stale.status_code == 409 and "version 1" in stale.json()["detail"]


def test_a_visible_case_the_caller_may_not_act_on_is_a_403_with_the_reason(api):
    case = _report(api)
    [task] = api.inbox("dongjie.dispatcher", case)
    hotline = api.post("hotline12345", f"/api/v1/tasks/{task['id']}/complete", json={"data": {}})
    assert hotline.status_code == 403 and "assigned to street_dispatcher of gulou.dongjie" in hotline.json()["detail"]
    street = api.post("dongjie.dispatcher", f"/api/v1/cases/{case}/withdraw", json={"reason": "街道撤回"})
    assert street.status_code == 403 and "only the reporter" in street.json()["detail"]


@pytest.mark.parametrize("suffix", ["", "/archive", "/files/processes/forms.yaml"])
def test_a_pack_version_the_caller_may_not_read_is_answered_like_a_missing_one(api, suffix):
    hidden = api.get("dongjie.dispatcher", f"/api/v1/packs/reference/1.0.0{suffix}")
    absent = api.get("dongjie.dispatcher", f"/api/v1/packs/nosuch/9.9.9{suffix}")
    assert hidden.status_code == absent.status_code == 404
    assert hidden.text.replace("reference", "N").replace("1.0.0", "V") == absent.text.replace("nosuch", "N").replace(
        "9.9.9", "V"
    )
    activate = api.post("dongjie.dispatcher", "/api/v1/packs/reference/1.0.0/activate")
    assert activate.status_code == 404
    assert api.get("district.supervisor", f"/api/v1/packs/reference/1.0.0{suffix}").status_code == 200


def test_an_upload_is_authorized_before_it_is_validated(api):
    broken = files_to_zip(gulou_version("1.1.0", **{"policies__responsibility_DOT_yaml": b"entries: [oops"}))
    not_a_zip = b"definitely not a zip"

    def upload(who, content):
        return api.client.post(
            "/api/v1/packs", content=content, headers=api.headers(who, **{"Content-Type": "application/zip"})
        )

    for who in ("citizen.zhang", "dongjie.dispatcher", "hotline12345"):
        for content in (broken, not_a_zip):
            refused = upload(who, content)
            assert refused.status_code == 403, refused.text
            assert "issues" not in refused.json() and "responsibility" not in refused.text
    allowed = upload("district.supervisor", broken)
    assert allowed.status_code == 422 and allowed.json()["issues"]


def test_a_delegation_is_authorized_before_its_fields_are_checked(api):
    bad = {
        "street": "gulou.nowhere",
        "department": "gulou.none",
        "matter_pattern": "BAD!",
        "reason": "x",
        "expires_at": "2000-01-01T00:00:00Z",
    }
    shapeless = {"street": 42}
    for who in ("dongjie.dispatcher", "citizen.zhang", "cgj.handler"):
        for body in (bad, shapeless):
            refused = api.post(who, "/api/v1/delegations", json=body)
            assert refused.status_code == 403, refused.text
            assert "errors" not in refused.json() and "nowhere" not in refused.text
    checked = api.post("district.supervisor", "/api/v1/delegations", json=bad)
    assert checked.status_code == 422
    assert {tuple(e["loc"]) for e in checked.json()["errors"]} >= {("street",), ("department",), ("matter_pattern",)}


def test_rolling_back_a_district_needs_the_right_first(api):
    assert api.post("dongjie.dispatcher", "/api/v1/packs/rollback", json={"district": "gulou"}).status_code == 403
    assert api.post("dongjie.dispatcher", "/api/v1/packs/rollback", json={"district": "nowhere"}).status_code == 403
