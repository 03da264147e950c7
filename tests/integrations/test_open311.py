"""Open311 GeoReport v2 against a real `govflow serve`, driven by two unmodified clients from PyPI:
civicbot (files requests, reads JSON, tokens) and georeport (reads JSON and XML); XML checked
against the specification's element names (an XML Schema written from its response tables)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from civicbot.http import HttpError, HttpTransport, RateLimiter
from civicbot.open311 import Open311Client
from civicbot.registry import Endpoint
from georeport import GeoReport
from lxml import etree
from sqlalchemy import text

from govflow.engine.store.db import Base
from tests.served import Served, database_url

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("GOVFLOW_TEST_DATABASE_URL") else [])

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).with_name("open311_georeport_v2.xsd"))))
DONGJIE = (26.0865, 119.3025)


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory, sqlite_template):
    """One server per module and back-end (starting one takes seconds); each test files its own requests."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("open311") / "govflow.sqlite3"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        engine = request.getfixturevalue("pg_engine")
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        url = database_url(engine)
    with Served(url) as served:
        yield served


def civic(server, jurisdiction="gulou") -> Open311Client:
    endpoint = Endpoint(id="gulou", name="Gulou", base_url=f"{server.base}/open311/v2", write=True)
    return Open311Client(
        endpoint, transport=HttpTransport(rate_limiter=RateLimiter(min_interval=0)), jurisdiction_id=jurisdiction
    )


def native(server, token, method, path, **kw):
    return httpx.request(
        method, f"{server.base}/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10, **kw
    )


def valid_xml(content: bytes) -> etree._Element:
    assert content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = etree.fromstring(content)
    SCHEMA.assertValid(root)
    return root


def test_an_open311_client_lists_services_files_a_request_and_follows_it(server):
    client = civic(server)
    services = client.list_services()
    codes = {s["service_code"]: s for s in services}
    assert len(codes) > 50 and codes["road.manhole_cover"]["metadata"] is True
    assert codes["road.pothole"]["metadata"] is False and codes["road.pothole"]["group"] == "road"
    definition = client.get_service_definition("road.manhole_cover")
    cover = next(a for a in definition["attributes"] if a["code"] == "cover")
    assert cover["datatype"] == "singlevaluelist" and cover["required"] is True
    assert {v["key"] for v in cover["values"]} == {"missing", "broken", "loose"}
    prepared = client.create_request(
        "road.manhole_cover",
        dry_run=False,
        confirm="SEND",
        api_key="demo-hotline",
        validate_remote=True,  # the client checks the attributes against our definition first
        lat=DONGJIE[0],
        lng=DONGJIE[1],
        address_string="东街口",
        description="东街口有个井盖没了，我是张伟，电话13812345678",
        attributes={"cover": "missing", "in_traffic_lane": "true"},
        first_name="伟",
        last_name="张",
        phone="13812345678",
        email="zhang.wei@example.com",
        media_url="https://example.org/photos/cover.jpg",
        account_id="acct-42",
        device_id="device-7",
    )
    [answer] = prepared.response
    request_id = answer["service_request_id"]
    assert "token" not in answer and answer["account_id"] == "acct-42" and answer["service_notice"]
    got = client.get_request(request_id)
    assert (got["status"], got["service_code"], got["agency_responsible"]) == ("open", "road.manhole_cover", "东街街道")
    assert got["media_url"] == "https://example.org/photos/cover.jpg" and got["expected_datetime"]
    assert got["requested_datetime"].endswith("Z") and got["lat"] == DONGJIE[0]  # UTC, as every instant
    dumped = json.dumps(client.list_requests(service_request_ids=[request_id]), ensure_ascii=False)
    for personal in ("张伟", "13812345678", "zhang.wei@example.com", "acct-42", "device-7"):
        assert personal not in dumped  # never in GET answers, not even inside the description
    # the case is a govflow case: the street signs for it; the client sees the status change
    case = native(server, "demo-dongjie", "GET", f"/cases/{request_id}").json()
    assert case["channel"] == "app" and case["reporter"]["name"] == "张伟"  # the street may see personal data
    [task] = [t for t in native(server, "demo-dongjie", "GET", "/tasks").json() if t["case_id"] == request_id]
    assert native(server, "demo-dongjie", "POST", f"/tasks/{task['id']}/complete", json={"data": {}}).status_code == 200
    after = client.get_request(request_id)
    assert after["status"] == "open" and after["status_notes"] == "处置 being handled" != got["status_notes"]
    assert after["updated_datetime"] >= got["updated_datetime"]
    # georeport reads the same in JSON and XML
    for fmt in ("json", "xml"):
        geo = GeoReport(f"{server.base}/open311/v2", jurisdiction="gulou", output_format=fmt)
        one = geo.get_service_request(request_id)
        assert one["service_request_id"] == request_id and one["status"] == "open"
        assert len(geo.get_service_list()) == len(services)
        assert geo.get_service_definition("road.manhole_cover")["service_code"] == "road.manhole_cover"
        listed = geo.get_service_requests(service_request_id=request_id)
        listed = listed if isinstance(listed, list) else [listed]  # xmltodict: one child is a dict
        assert [r["service_request_id"] for r in listed] == [request_id]


def test_a_request_nobody_can_route_gets_a_token_until_it_is_dispatched(server):
    client = civic(server)
    prepared = client.create_request(
        "road.pothole", dry_run=False, confirm="SEND", api_key="demo-hotline", address_string="鼓楼区某小区门口"
    )
    [answer] = prepared.response
    token = answer["token"]
    assert "service_request_id" not in answer
    assert client.get_token(token) == [{"token": token}]
    [task] = [t for t in native(server, "demo-command", "GET", "/tasks").json() if t["name"] == "dispatch"]
    done = native(
        server, "demo-command", "POST", f"/tasks/{task['id']}/complete", json={"data": {"street": "gulou.dongjie"}}
    )
    assert done.status_code == 200, done.text
    [resolved] = client.get_token(token)
    assert resolved["token"] == token and resolved["service_request_id"] == task["case_id"]
    assert client.get_request(resolved["service_request_id"])["agency_responsible"] == "东街街道"


def post(server, fmt="json", **form):
    return httpx.post(f"{server.base}/open311/v2/requests.{fmt}", data=form, timeout=10)


def errors_of(response):
    body = response.json()
    assert isinstance(body, list) and all(set(e) == {"code", "description"} for e in body)
    return body


@pytest.mark.parametrize(
    ("form", "status", "says"),
    [
        ({"service_code": "road.pothole", "lat": "26.08", "long": "119.30"}, 403, "api_key was not provided"),
        (
            {"api_key": "wrong", "service_code": "road.pothole", "lat": "26.08", "long": "119.30"},
            403,
            "Invalid api_key",
        ),
        ({"api_key": "demo-hotline", "lat": "26.08", "long": "119.30"}, 400, "service_code was not provided"),
        (
            {"api_key": "demo-hotline", "service_code": "no.such", "lat": "26.08", "long": "119.30"},
            404,
            "was not found",
        ),
        ({"api_key": "demo-hotline", "service_code": "road.pothole"}, 400, "a location is required"),
        (
            {"api_key": "demo-hotline", "service_code": "road.pothole", "lat": "91", "long": "119"},
            400,
            "within -90..90",
        ),
        (
            {"api_key": "demo-hotline", "service_code": "road.pothole", "lat": "abc", "long": "1"},
            400,
            "decimal degrees",
        ),
        ({"api_key": "demo-hotline", "service_code": "road.pothole", "lat": "nan", "long": "1"}, 400, "within -90..90"),
        ({"api_key": "demo-hotline", "service_code": "road.pothole", "lat": "26.08"}, 400, "given together"),
        (
            {"api_key": "demo-hotline", "service_code": "road.manhole_cover", "lat": "26.08", "long": "119.30"},
            400,
            "cover",
        ),
        (
            {
                "api_key": "demo-hotline",
                "service_code": "road.manhole_cover",
                "lat": "26.08",
                "long": "119.30",
                "attribute[cover]": "stolen",
            },
            400,
            "definition",
        ),
        (
            {
                "api_key": "demo-hotline",
                "service_code": "road.manhole_cover",
                "lat": "26.08",
                "long": "119.30",
                "attribute[cover]": "missing",
                "attribute[colour]": "red",
            },
            400,
            "unknown attribute",
        ),
        (
            {
                "api_key": "demo-hotline",
                "service_code": "road.pothole",
                "lat": "26.08",
                "long": "119.30",
                "attribute[x]": "1",
            },
            400,
            "takes no attributes",
        ),
        (
            {
                "api_key": "demo-hotline",
                "service_code": "lighting.streetlight_out",
                "lat": "26.08",
                "long": "119.30",
                "attribute[pole_number]": "x" * 5000,
            },
            400,
            "too long",
        ),
        (
            {
                "api_key": "demo-hotline",
                "service_code": "lighting.streetlight_out",
                "lat": "26.08",
                "long": "119.30",
                "attribute[pole_number]": "x" * 40,
            },
            400,
            "definition",
        ),
        (
            {
                "api_key": "demo-hotline",
                "service_code": "lighting.streetlight_out",
                "lat": "26.08",
                "long": "119.30",
                "attribute[lamps_out]": "many",
            },
            400,
            "whole number",
        ),
        (
            {
                "api_key": "demo-hotline",
                "service_code": "road.pothole",
                "lat": "26.08",
                "long": "119.30",
                "phone": "call me",
            },
            400,
            "phone",
        ),
        (
            {
                "api_key": "demo-hotline",
                "service_code": "road.pothole",
                "lat": "26.08",
                "long": "119.30",
                "media_url": "javascript:alert(1)",
            },
            400,
            "media_url",
        ),
        (
            {
                "api_key": "demo-hotline",
                "service_code": "road.pothole",
                "lat": "26.08",
                "long": "119.30",
                "jurisdiction_id": "elsewhere",
            },
            404,
            "jurisdiction_id",
        ),
        (
            {
                "api_key": "demo-citizen-zhang",
                "service_code": "road.pothole",
                "lat": "26.08",
                "long": "119.30",
                "description": "x" * 4001,
            },
            400,
            "4000",
        ),
    ],
)
def test_malformed_posts_get_the_specs_errors(server, form, status, says):
    response = post(server, **form)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert says in " ".join(e["description"] for e in errors_of(response))
    assert all(e["code"] == status for e in errors_of(response))


def test_other_bad_requests(server):
    big = {f"attribute[a{i}]": "v" for i in range(60)}
    response = post(server, api_key="demo-hotline", service_code="road.pothole", lat="26.08", long="119.3", **big)
    assert response.status_code == 400 and "at most 50 attributes" in response.text
    nul = post(
        server, api_key="demo-hotline", service_code="road.pothole", lat="26.08", long="119.3", description="a\x00b"
    )
    assert nul.status_code == 400 and "NUL" in nul.text
    as_json = httpx.post(f"{server.base}/open311/v2/requests.json", json={"api_key": "demo-hotline"}, timeout=10)
    assert as_json.status_code == 400 and "form-encoded" in as_json.text
    xml = post(server, "xml", service_code="road.pothole")
    assert xml.status_code == 403 and xml.headers["content-type"] == "text/xml; charset=utf-8"
    assert valid_xml(xml.content).find("error/code").text == "403"
    unknown = httpx.get(f"{server.base}/open311/v2/services.yaml", timeout=10)
    assert unknown.status_code == 404 and valid_xml(unknown.content).tag == "errors"
    for path, status in (
        ("/requests/not-a-case.json", 404),
        ("/requests/00000000-0000-0000-0000-000000000000.json", 404),
        ("/tokens/nope.json", 404),
        ("/services/no.such.json", 404),
        ("/services.json?jurisdiction_id=elsewhere", 404),
        ("/requests.json?status=pending", 400),
        ("/requests.json?start_date=yesterday", 400),
        ("/requests.json?start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z", 400),
        ("/requests.json?start_date=2026-01-01T00:00:00", 400),
        ("/requests.json?page_size=0", 400),
        ("/requests.json?service_code=road.pothole%00", 400),
        ("/tokens/abc%00def.json", 400),
    ):
        response = httpx.get(f"{server.base}/open311/v2{path}", timeout=10)
        assert response.status_code == status, (path, response.text)
        assert errors_of(response)[0]["code"] == status


def test_xml_answers_follow_the_specs_element_names(server):
    client = civic(server)
    client.create_request(
        "road.manhole_cover", dry_run=False, confirm="SEND", api_key="demo-hotline",
        lat=DONGJIE[0], lng=DONGJIE[1], attributes={"cover": "broken"}, media_url="https://example.org/a.jpg",
    )  # fmt: skip
    created = civic(server).list_requests()[0]
    base = f"{server.base}/open311/v2"
    for path, root in (
        ("/services.xml", "services"),
        ("/services/road.manhole_cover.xml", "service_definition"),
        ("/services/lighting.streetlight_out.xml", "service_definition"),
        ("/services/road.pothole.xml", "service_definition"),
        ("/requests.xml", "service_requests"),
        ("/requests.xml?status=open&service_code=road.manhole_cover,road.pothole", "service_requests"),
        (f"/requests/{created['service_request_id']}.xml", "service_requests"),
    ):
        response = httpx.get(base + path, params={"jurisdiction_id": "gulou"}, timeout=10)
        assert response.status_code == 200 and response.headers["content-type"] == "text/xml; charset=utf-8"
        assert valid_xml(response.content).tag == root, path
    posted = post(server, "xml", api_key="demo-hotline", service_code="road.pothole", lat="26.0865", long="119.3025")
    assert posted.status_code == 201
    assert valid_xml(posted.content).find("request/service_request_id").text
    listed = valid_xml(httpx.get(f"{base}/requests.xml", timeout=10).content)
    assert len(listed.findall("request")) >= 2 and listed.find("request/status").text == "open"


def test_request_filters_defaults_and_limits(server):
    client = civic(server)
    time.sleep(1.1)  # w3 dates have whole seconds: requests of the other tests are strictly before `since`
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time()))
    for code in ("road.pothole", "road.pothole", "lighting.pole_hazard"):
        client.create_request(
            code, dry_run=False, confirm="SEND", api_key="demo-hotline", lat=DONGJIE[0], lng=DONGJIE[1]
        )
    mine = client.list_requests(start_date=since)
    assert len(mine) == 3
    newest_first = [r["requested_datetime"] for r in mine]
    assert newest_first == sorted(newest_first, reverse=True)
    assert len(client.list_requests(service_code="road.pothole", start_date=since)) == 2
    assert len(client.list_requests(service_code="road.pothole,lighting.pole_hazard", start_date=since)) == 3
    assert client.list_requests(status="closed", start_date=since) == []
    assert len(client.list_requests(status="open,closed", start_date=since)) == 3
    assert len(client.list_requests()) >= 3  # by default: the last 90 days
    assert len(client.list_requests(page_size=2)) == 2
    ids = [r["service_request_id"] for r in mine]
    # service_request_id overrides every other filter
    assert {r["service_request_id"] for r in client.list_requests(service_request_ids=ids[:2], status="closed")} == set(
        ids[:2]
    )
    now = time.time()
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 86400 * 200))
    older = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 86400 * 150))
    assert client.list_requests(start_date=past, end_date=older) == []
    with pytest.raises(HttpError) as refused:
        client.create_request(
            "road.pothole", dry_run=False, confirm="SEND", api_key="bad-key", lat=DONGJIE[0], lng=DONGJIE[1]
        )
    assert refused.value.status == 403 and json.loads(refused.value.body)[0]["code"] == 403
