"""Open311 POST requests fuzzed near the valid (hypothesis): the hotline's api_key, service codes of
the catalog and made-up ones, the report forms' attributes with fitting and unfitting values, any
coordinates, personal fields of any shape. Every answer is a filed request (its case persisted with
what the form carried) or one of the specification's errors — never a server error — on SQLite and
PostgreSQL. (The contract fuzz of tests/api/test_contract.py seldom gets past an unknown service
code; this one reaches the case.)"""

from __future__ import annotations

import math
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from govflow.engine.store.db import CaseRow, Open311Request

#: printable text (control characters are refused anywhere, as they should be)
TEXT = st.characters(blacklist_categories=("Cc", "Cs"))
#: each service code with a valid value for every attribute of its report form
VALID = {
    "road.manhole_cover": {
        "cover": st.sampled_from(["missing", "broken", "loose"]),
        "in_traffic_lane": st.sampled_from(["true", "false", "1", "0"]),
    },
    "road.pothole": {},
    "lighting.streetlight_out": {
        "lamps_out": st.integers(1, 100).map(str),
        "pole_number": st.text(TEXT, min_size=1, max_size=32),
    },
}
REQUIRED = {"cover"}
#: what a field may be spoiled with
GARBAGE = st.one_of(
    st.text(max_size=40),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
    st.text(max_size=5000),
)
#: places in Gulou's streets
PLACES = [(26.0865, 119.3025), (26.0780, 119.2950), (26.1040, 119.2840), (26.0950, 119.3110)]
VALID_FIELDS = {
    "lat": st.none(),  # with long: a place drawn below
    "long": st.none(),
    "address_string": st.text(TEXT, min_size=1, max_size=60),
    "description": st.text(TEXT, min_size=1, max_size=200),
    "first_name": st.text(TEXT, min_size=1, max_size=16),
    "last_name": st.text(TEXT, min_size=1, max_size=16),
    "phone": st.from_regex(r"\A\+?[0-9]{5,15}\Z"),
    "email": st.from_regex(r"\A[a-z]{1,10}@[a-z]{1,10}\.(cn|org)\Z"),
    "media_url": st.from_regex(r"\Ahttps://[a-z]{1,10}\.cn/[a-z0-9]{0,20}\Z"),
}


@st.composite
def forms(draw) -> dict[str, str]:
    """A valid form (service, location, attributes, personal fields), then a few fields spoiled."""
    code = draw(st.sampled_from(sorted(VALID)))
    form = {"api_key": "demo-hotline", "service_code": code}
    if draw(st.booleans()):
        form["jurisdiction_id"] = "gulou"
    for name in draw(st.sets(st.sampled_from(sorted(VALID_FIELDS)), min_size=2)):
        form[name] = draw(VALID_FIELDS[name])
    if "lat" in form or "long" in form or "address_string" not in form:
        lat, lng = draw(st.sampled_from(PLACES))
        form["lat"], form["long"] = str(lat + draw(st.floats(-0.001, 0.001))), str(lng)
    for name, values in VALID[code].items():
        if name in REQUIRED or draw(st.booleans()):
            form[f"attribute[{name}]"] = draw(values)
    names = [*sorted(form), "attribute[cover]", "attribute[lamps_out]", "attribute[unknown]", "attribute[x][]"]
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        if draw(st.integers(0, 5)) == 0:
            form.pop(name, None)
        else:
            form[name] = draw(GARBAGE)
    return form


def test_open311_posts_file_a_case_or_answer_the_specs_error(govflow, client):
    answers: dict[int, int] = {}

    def filed() -> int:
        with govflow.db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(CaseRow)).scalar_one())

    @settings(max_examples=80, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(form=forms())
    def post(form: dict[str, str]) -> None:
        before = filed()
        response = client.post("/open311/v2/requests.json", data=form)
        answers[response.status_code] = answers.get(response.status_code, 0) + 1
        assert response.status_code in (201, 400, 403, 404), (form, response.text)
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        body = response.json()
        assert isinstance(body, list) and len(body) >= 1
        if response.status_code != 201:
            assert all(e["code"] == response.status_code and e["description"] for e in body), body
            assert filed() == before  # a refused request files nothing
            return
        assert filed() == before + 1
        [answer] = body
        with govflow.db.connect() as conn:
            extra = conn.execute(
                select(Open311Request).where(
                    Open311Request.token == answer["token"]
                    if "token" in answer
                    else Open311Request.case_id == uuid.UUID(answer["service_request_id"])
                )
            ).one()
            case = conn.execute(select(CaseRow).where(CaseRow.id == extra.case_id)).one()
        assert case.matter == form["service_code"].strip() == extra.service_code
        assert extra.submitted_by == "hotline12345"
        for name, value in extra.attributes.items():  # kept as the form gave them, typed by the definition
            sent = form[f"attribute[{name}]"]
            if isinstance(value, bool):
                assert sent.lower() in (("true", "1") if value else ("false", "0"))
            elif isinstance(value, int):
                assert int(sent) == value
            else:
                assert sent == value
        if case.lat is not None:
            assert math.isfinite(case.lat) and -90 <= case.lat <= 90 and -180 <= case.lng <= 180

    post()
    assert answers.get(201), answers  # the fuzz reaches filed requests, not only refusals
    assert answers.get(400), answers
