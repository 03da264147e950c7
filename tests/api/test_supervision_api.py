"""The supervision doors over HTTP: rates, ranking, trend, board, scorecards, warnings.

Each refusal is a problem+json with its status; the figures and rights themselves are in
tests/engine/test_oversight.py and features/supervision.feature.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("database")


def problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("urn:govflow:problem:")
    return body


@pytest.fixture
def reported(api):
    response = api.report("citizen.zhang", description="东街口有个井盖没了", location={"lat": 26.0865, "lng": 119.3025})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_every_input_door_refuses_precisely(api, reported):
    cc = "cc.supervisor"
    problem(api.get(cc, "/api/v1/rates?level=ward"), 422)
    body = problem(api.get(cc, "/api/v1/rates?from=2026-09-31"), 422)
    assert "from" in repr(body)
    problem(api.get(cc, "/api/v1/rates?from=2026-10-02&to=2026-10-01"), 422)
    problem(api.get(cc, "/api/v1/rates?from=2000-01-01&to=2026-10-01"), 422)  # a window too long
    body = problem(api.get(cc, "/api/v1/rates/ranking?metric=speed"), 422)
    assert "metric" in repr(body)
    problem(api.get(cc, "/api/v1/rates/ranking?level=matter"), 422)
    problem(api.get(cc, "/api/v1/rates/trend?metric=completion_rate&unit=gulou.nowhere"), 404)
    problem(api.get(cc, "/api/v1/units/gulou.nowhere/scorecard"), 404)
    problem(api.get(cc, "/api/v1/warnings?limit=0"), 422)
    problem(api.post(cc, "/api/v1/warnings/not-a-uuid/campaign"), 404)  # a malformed id names no warning
    problem(api.get(None, "/api/v1/rates"), 401)
    problem(api.get(None, "/api/v1/units/gulou.dongjie/scorecard"), 401)


def test_rights_are_casbins(api, reported):
    assert api.get("cc.supervisor", "/api/v1/units/gulou.dongjie/scorecard").status_code == 200
    problem(api.get("guxi.dispatcher", "/api/v1/units/gulou.dongjie/scorecard"), 403)
    problem(api.get("guxi.dispatcher", "/api/v1/rates?level=matter"), 403)  # its own row only
    problem(api.get("citizen.zhang", "/api/v1/rates"), 403)
    problem(api.get("citizen.zhang", "/api/v1/rates/ranking"), 403)
    problem(api.get("citizen.zhang", "/api/v1/warnings"), 403)
    problem(api.post("dongjie.dispatcher", "/api/v1/warnings/scan"), 403)
    # the city (市级督办) reads its own scorecard, no street's
    own = api.get("city.supervisor", "/api/v1/units/gulou.city/scorecard")
    assert own.status_code == 200 and own.json()["unit"] == "gulou.city", own.text
    problem(api.get("city.supervisor", "/api/v1/units/gulou.dongjie/scorecard"), 403)


def test_the_public_board_needs_no_sign_in_and_shows_no_personal_data(api, reported):
    response = api.get(None, "/api/v1/board")
    assert response.status_code == 200, response.text
    board = response.json()
    dongjie = next(r for r in board["rows"] if r["unit"] == "gulou.dongjie")
    assert dongjie["counts"]["dispatched"] == 1 and sum(dongjie["counts"].values()) == 1
    assert reported not in response.text and "井盖" not in response.text and "citizen" not in response.text
