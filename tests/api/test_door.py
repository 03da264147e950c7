"""The door (issue 14, seen 6, 7, 8 and 11): what any request may carry and how any failure is answered.

Control characters are refused with a 422 naming the field on every database; numeric parameters are
bounded; an oversized body is a 413 however it is sent; anything unexpected is a problem+json 500 with an
error id that is also in the log, and no log line holds a reporter's name, phone or description; 405
lists every method of the path; /docs and /redoc load nothing from another host.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from govflow.engine.store.db import CaseRow
from govflow.redaction import Redacting, redact

PROBLEM = "application/problem+json"
DONGJIE = {"lat": 26.0865, "lng": 119.3025, "address": "东街口"}
NAME, PHONE, DESCRIPTION = "张伟", "13812345678", "东街口有个井盖没了，晚上很危险"


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    return body


def _locs(body: dict) -> list[list]:
    return [e["loc"] for e in body.get("errors", [])]


def _case(api) -> str:
    response = api.report(
        "citizen.zhang", description=DESCRIPTION, location=DONGJIE, reporter={"name": NAME, "phone": PHONE}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _cases(govflow) -> int:
    with govflow.db.connect() as conn:
        return conn.execute(select(func.count()).select_from(CaseRow)).scalar_one()


# -- control characters ------------------------------------------------------------------------------------
HOSTILE = ["\x00", "a\x00b", "\x07", "\x1b[31m", "\x7f", "\x85", "\ud800", "x\udfff", "\x0b", "\x0c"]


@pytest.mark.parametrize("bad", HOSTILE)
@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("description", lambda bad: {"description": f"井盖{bad}没了"}),
        ("reporter.name", lambda bad: {"description": "井盖", "reporter": {"name": f"张{bad}"}}),
        ("location.address", lambda bad: {"description": "井盖", "location": {**DONGJIE, "address": bad}}),
        ("category", lambda bad: {"description": "井盖", "category": f"road{bad}"}),
        ("district", lambda bad: {"description": "井盖", "district": bad}),
    ],
)
def test_a_report_with_a_control_character_is_a_422_naming_the_field(api, govflow, field, body, bad):
    raw = json.dumps({"channel": "app", **body(bad)})  # \uXXXX escapes: lone surrogates travel as JSON does
    response = api.client.post(
        "/api/v1/cases", content=raw, headers=api.headers("citizen.zhang", **{"Content-Type": "application/json"})
    )
    problem = _problem(response, 422)
    assert ["body", *field.split(".")] in _locs(problem), problem
    assert re.search("control character|unicode string", str(problem["errors"]))
    assert _cases(govflow) == 0


def test_ordinary_whitespace_and_any_script_are_accepted(api):
    response = api.report("citizen.zhang", description="井盖没了\n第二行\t制表符\r\n🚧 ñ", location=DONGJIE)
    assert response.status_code == 201, response.text


def test_every_text_field_of_every_body_refuses_control_characters(api):
    case = _case(api)
    [task] = api.inbox("dongjie.dispatcher", case)
    checks = [
        ("citizen.zhang", f"/api/v1/cases/{case}/withdraw", {"reason": "不要\x00了"}, ["body", "reason"]),
        ("dongjie.dispatcher", f"/api/v1/tasks/{task['id']}/complete", {"data": {"note": "\x00"}}, ["body", "data"]),
        (
            "dongjie.dispatcher",
            f"/api/v1/tasks/{task['id']}/complete",
            {"data": {"a": [{"b": ["ok", "\x1f"]}]}},
            ["body", "data"],
        ),
        ("dongjie.dispatcher", f"/api/v1/tasks/{task['id']}/complete", {"data": {"k\x00": 1}}, ["body", "data"]),
        ("dongjie.dispatcher", f"/api/v1/tasks/{task['id']}/complete", {"data": {"x": "\ud800"}}, ["body", "data"]),
        (
            "dongjie.dispatcher",
            f"/api/v1/cases/{case}/call-outs",
            {"departments": ["gulou.cgj\x00"], "reason": "x"},
            ["body", "departments"],
        ),
        (
            "dongjie.dispatcher",
            f"/api/v1/cases/{case}/call-outs",
            {"departments": ["gulou.cgj"], "reason": "x", "meeting_place": "\x00"},
            ["body", "meeting_place"],
        ),
        ("cgj.handler", f"/api/v1/cases/{case}/contributions", {"part": "\x00"}, ["body", "part"]),
        (
            "dongjie.dispatcher",
            f"/api/v1/cases/{case}/ratings",
            {"target": "gulou.cgj", "dimension": "report_in", "score": 5, "comment": "\x00"},
            ["body", "comment"],
        ),
        (
            "district.supervisor",
            "/api/v1/delegations",
            {
                "street": "gulou.dongjie",
                "department": "gulou.hbj",
                "expires_at": "2030-01-01T00:00:00Z",
                "reason": "\x00",
            },
            ["body", "reason"],
        ),
        ("district.supervisor", "/api/v1/packs/rollback", {"district": "gulou\x00"}, ["body", "district"]),
    ]
    for who, url, body, loc in checks:
        raw = json.dumps(body)
        headers = api.headers(who, **{"Content-Type": "application/json"})
        problem = _problem(api.client.post(url, content=raw, headers=headers), 422)
        assert loc in _locs(problem), (url, problem)


def test_non_finite_numbers_and_deep_nesting_in_form_data_are_refused(api):
    case = _case(api)
    [task] = api.inbox("dongjie.dispatcher", case)
    url = f"/api/v1/tasks/{task['id']}/complete"
    headers = {"Content-Type": "application/json"}
    for raw in (
        '{"data": {"x": NaN}}',
        '{"data": {"x": [Infinity]}}',
        '{"data": {"satisfaction": 100000000000000000000000000000}}',
        '{"data": {}, "expected_version": 0}',
        '{"data": {}, "expected_version": 100000000000000000000000000000}',
        '{"data": ' + '{"a": ' * 40 + "1" + "}" * 41,
    ):
        response = api.client.post(url, content=raw, headers=api.headers("dongjie.dispatcher", **headers))
        _problem(response, 422)
    deep = '{"data": ' + "[" * 50_000 + "]" * 50_000 + "}"
    response = api.client.post(url, content=deep, headers=api.headers("dongjie.dispatcher", **headers))
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith(PROBLEM)


def test_the_engine_refuses_control_characters_itself(govflow, principals):
    from govflow.engine.cases.service import NewCase
    from govflow.engine.model.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        govflow.cases.report(principals["citizen.zhang"], NewCase("app", "井盖\x00", reporter_name="张\x01"))
    assert [e["loc"] for e in refused.value.errors] == [["description"], ["reporter", "name"]]


# -- parameters and paths ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    ["offset=9223372036854775808", "offset=-1", "limit=0", "limit=501", "limit=99999999999999999999", "offset=1e3"],
)
def test_numeric_query_parameters_are_bounded(api, query):
    _problem(api.get("dongjie.dispatcher", f"/api/v1/tasks?{query}"), 422)


def test_the_largest_offset_is_answered(api):
    assert api.get("dongjie.dispatcher", "/api/v1/tasks?offset=1000000").json() == []


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/delegations?district=gu%00lou",
        "/api/v1/responsibility?matter=road.%00&street=gulou.dongjie",
        "/api/v1/responsibility?matter=road.pothole&district=%1b",
    ],
)
def test_control_characters_in_query_parameters_are_a_422(api, url):
    _problem(api.get("district.supervisor", url), 422)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/packs/refer%00ence/1.0.0",
        "/api/v1/packs/reference/1.0.0%00",
        "/api/v1/packs/reference/%C0%80/archive",
        "/api/v1/cases/%00",
        "/api/v1/cases/00000000-0000-0000-0000-000000000000%00/events",
    ],
)
def test_control_characters_in_paths_are_simply_not_found(api, url):
    _problem(api.get("district.supervisor", url), 404)


# -- bodies over the limit -------------------------------------------------------------------------------------
def test_an_oversized_body_is_a_413_however_it_is_sent(govflow, tokens):
    from fastapi.testclient import TestClient

    from govflow.api.app import create_app

    limit = 2048
    with TestClient(create_app(govflow, max_request_bytes=limit)) as client:
        auth = {"Authorization": f"Bearer {tokens['citizen.zhang']}"}
        big = b'{"channel": "app", "description": "' + b"x" * (2 * limit) + b'"}'

        def chunks(data: bytes, size: int = 512):
            for i in range(0, len(data), size):
                yield data[i : i + size]

        json_headers = {**auth, "Content-Type": "application/json"}
        sent = [
            client.post("/api/v1/cases", content=big, headers=json_headers),  # declared length
            client.post("/api/v1/cases", content=chunks(big), headers=json_headers),  # chunked, no length
            client.post(
                "/api/v1/packs",
                content=chunks(b"PK" + b"\0" * 4 * limit),
                headers={**auth, "Content-Type": "application/zip"},
            ),
            client.post("/api/v1/tasks/x/complete", content=chunks(big), headers=json_headers),
            client.request("GET", "/api/v1/me", content=chunks(big), headers=auth),  # even where no body is read
            client.post("/api/v1/cases", content=b"{}", headers={**json_headers, "Content-Length": "abc"}),
        ]
        for response in sent:
            body = _problem(response, 413)
            assert str(limit) in body["detail"]
        assert _cases(govflow) == 0
        small = client.post(
            "/api/v1/cases", content=chunks(b'{"channel": "app", "description": "x"}', 8), headers=json_headers
        )
        assert small.status_code == 201, small.text


# -- unexpected failures ---------------------------------------------------------------------------------------
def test_an_unexpected_error_is_a_problem_500_with_an_error_id_that_is_logged(api, govflow, monkeypatch, caplog):
    def fails(*args, **kwargs):
        raise IntegrityError(
            "INSERT INTO cases ... ",
            {"reporter_name": NAME, "reporter_phone": PHONE, "description": DESCRIPTION},
            Exception(f"{NAME} {PHONE} {DESCRIPTION}"),
        )

    monkeypatch.setattr(govflow.uow, "commit", fails)
    with caplog.at_level(logging.INFO):
        response = api.report(
            "citizen.zhang", description=DESCRIPTION, location=DONGJIE, reporter={"name": NAME, "phone": PHONE}
        )
    body = _problem(response, 500)
    assert re.fullmatch(r"[0-9a-f]{32}", body["error_id"])
    assert body["error_id"] in body["detail"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert body["error_id"] in logged and "IntegrityError" in logged
    for secret in (NAME, PHONE, DESCRIPTION, "井盖"):
        assert secret not in logged and secret not in response.text


def test_an_error_raised_by_a_plain_function_is_a_problem_too(api, govflow, monkeypatch):
    monkeypatch.setattr(govflow.queries, "inbox", lambda *a, **k: 1 / 0)
    body = _problem(api.get("dongjie.dispatcher", "/api/v1/tasks"), 500)
    assert body["type"] == "urn:govflow:problem:internal-error" and body["error_id"]


def test_the_log_formatter_redacts_parameters_exceptions_and_phones():
    formatter = Redacting(logging.Formatter("%(message)s"))
    try:
        raise ValueError(f"value {NAME} {PHONE} is not allowed")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed for %s", (PHONE,), sys.exc_info())
    text = formatter.format(record)
    assert PHONE not in text and NAME not in text and "ValueError (message withheld)" in text
    assert record.args == (PHONE,)  # the record itself is untouched for other handlers
    assert redact("[SQL: INSERT x]\n[parameters: ('张伟', '13812345678')]") == "[SQL: INSERT x]\n[parameters hidden]"
    assert (
        redact("call +86 138-1234-5678? no: 0591-87654321 or 13812345678")
        == "call +86 138-1234-5678? no: [phone] or [phone]"
    )
    assert redact("request a1b2c13812345678ff took 12ms") == "request a1b2c13812345678ff took 12ms"


def test_sql_parameters_are_hidden_by_the_engine(govflow):
    assert govflow.db.hide_parameters is True


# -- the contract --------------------------------------------------------------------------------------------------
def test_405_lists_every_method_of_the_path(api):
    response = api.client.delete("/api/v1/packs", headers=api.headers("district.supervisor"))
    body = _problem(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}, body
    response = api.client.put("/api/v1/cases", headers=api.headers("district.supervisor"))
    assert _problem(response, 405) and response.headers["allow"] == "POST"


def test_every_operation_documents_its_problem_responses(client):
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in str(schema)
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            expected = {"400", "404", "405", "413", "422", "500"}
            if operation.get("security"):
                expected |= {"401", "403"}
            if method != "get":
                expected.add("409")
            assert expected <= set(responses), (method, path, sorted(responses))
            for status in expected:
                assert responses[status]["content"]["application/problem+json"]["schema"] == problem_ref
            assert "Allow" in responses["405"]["headers"]
    replay = schema["paths"]["/api/v1/cases"]["post"]["responses"]["200"]
    assert replay["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CaseCreated"}


def test_docs_and_redoc_load_nothing_from_another_host(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text) + re.findall(
            r"https?://[^\s\"'<>]+", html.text
        )
        assert urls and all(not u.startswith(("http://", "https://", "//")) for u in urls), urls
        for url in re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text):
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 100, url


def test_a_stored_version_holding_a_bomb_is_refused_quickly_not_expanded(api, govflow, reference_files, clock):
    """A version stored before YAML was checked (or written into the database by hand) is never expanded."""
    from govflow.engine.packs.loader import files_to_zip
    from govflow.engine.store.db import PackVersion

    bomb = "".join(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9 if i else ['"lol"'] * 9) + "]\n" for i in range(9))
    manifest = reference_files["pack.yaml"].decode().replace('version: "1.0.0"', 'version: "6.6.6"') + bomb
    files = {**reference_files, "pack.yaml": manifest.encode()}
    with govflow.db.begin() as conn:
        conn.execute(
            PackVersion.__table__.insert().values(
                name="reference",
                version="6.6.6",
                district="gulou",
                content_hash="0" * 64,
                archive=files_to_zip(files),
                active=False,
                deployed_at=clock.now(),
                deployed_by="tests",
            )
        )
    import time

    for url in ("/api/v1/packs/reference/6.6.6", "/api/v1/packs/reference/6.6.6/files/pack.yaml"):
        started = time.perf_counter()
        response = api.get("district.supervisor", url)
        assert response.status_code == 422, response.text
        assert "anchor &l0 refused" in response.text
        assert time.perf_counter() - started < 5


@pytest.mark.parametrize("key", [b"with space", b"tab\tkey", "键".encode(), b""])
def test_an_idempotency_key_is_visible_ascii(api, key):
    headers = {**api.headers("citizen.zhang", **{"Content-Type": "application/json"}), "Idempotency-Key": key}
    response = api.client.post(
        "/api/v1/cases", content=json.dumps({"channel": "app", "description": "井盖"}).encode(), headers=headers
    )
    _problem(response, 422)
