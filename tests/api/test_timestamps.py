"""One timestamp format everywhere (issue 15.6): every instant the API returns is RFC 3339 in
UTC with ``Z``, whatever offset the caller wrote.

A full lifecycle through the real API — a report, a call-out with a meeting time given in
Beijing time, a consultation whose assignment is due in Beijing time, disposal, review,
evaluation, a rating, a delegation, a webhook, a failing timer run (an incident with its
automatic retry time), a pack deployed through the API — and then every GET an operator or
integrator would make. Each JSON response is walked whole, and **every string shaped like an
instant** (a date and a time of day), under whatever key, must be UTC with ``Z``; dates alone
(report days) are dates.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from sqlalchemy import update

from govflow.engine.cases.timers import fire_due
from govflow.engine.packs.loader import files_to_zip
from govflow.engine.store.db import CaseRow, make_engine
from tests.api.test_deadlines_everywhere import CASE, task
from tests.test_cli import db_url, deployed, report_case, run, upgraded  # noqa: F401 (fixtures)

#: a date and a time of day, with any (or no) offset: whatever looks like an instant
SHAPED = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")
#: RFC 3339 in UTC with Z, as govflow writes every instant
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def walk(value, path=""):
    """Every (path, string) of a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


class Seen:
    """Every JSON response of the test, by request."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, object]] = []

    def __call__(self, response, status: int = 200):
        assert response.status_code == status, f"{response.request.url}: {response.status_code} {response.text}"
        if response.headers.get("content-type", "").split(";")[0].endswith("json"):
            self.responses.append((f"{response.request.method} {response.request.url.path}", response.json()))
        return response.json() if response.content else None

    def bad_instants(self) -> list[str]:
        return [
            f"{where}{path} = {value!r}"
            for where, body in self.responses
            for path, value in walk(body)
            if SHAPED.search(value) and not UTC_Z.match(value)
        ]

    def instants(self) -> int:
        return sum(1 for _, body in self.responses for _, value in walk(body) if UTC_Z.match(value))


def test_every_instant_of_a_full_lifecycle_is_utc_with_z(api, govflow, clock, reference_files):
    seen = Seen()
    case = seen(api.report("citizen.zhang", **CASE), 201)["id"]
    seen(api.complete("dongjie.dispatcher", task(api, "dongjie.dispatcher", case, "sign_for")["id"]))
    seen(
        api.post(
            "dongjie.dispatcher",
            f"/api/v1/cases/{case}/call-outs",
            json={
                "departments": ["gulou.cgj"],
                "reason": "井盖缺失需联合处置",
                "meeting_at": "2026-09-28T15:00:00+08:00",
            },
        ),
        201,
    )
    seen(api.complete("cgj.handler", task(api, "cgj.handler", case, "report_in")["id"], decision="accept"))
    seen(
        api.complete(
            "dongjie.dispatcher",
            task(api, "dongjie.dispatcher", case, "consult")["id"],
            opinion="城管补装井盖",
            assignments=[{"unit": "gulou.cgj", "duty": "补装井盖", "due": "2026-09-29T10:00:00+08:00"}],
        )
    )
    seen(api.complete("cgj.handler", task(api, "cgj.handler", case, "dispose")["id"], result="已补装"))
    seen(api.complete("dongjie.dispatcher", task(api, "dongjie.dispatcher", case, "review")["id"], approved=True))
    seen(api.complete("citizen.zhang", task(api, "citizen.zhang", case, "evaluate")["id"], satisfaction=5))
    seen(
        api.post(
            "dongjie.dispatcher",
            f"/api/v1/cases/{case}/ratings",
            json={"target": "gulou.cgj", "dimension": "disposal", "score": 4},
        ),
        201,
    )
    seen(
        api.post(
            "district.supervisor",
            "/api/v1/delegations",
            json={
                "street": "gulou.dongjie",
                "department": "gulou.hbj",
                "matter_pattern": "road.*",
                "expires_at": "2099-01-01T00:00:00+08:00",
                "reason": "试点",
            },
        ),
        201,
    )
    hook = seen(
        api.post("hotline12345", "/api/v1/webhooks", json={"url": "https://93.184.216.34/govflow"}),
        201,
    )

    # a timer run that fails: an incident, and the engine's own retry time on the case's record
    broken = seen(api.report("citizen.zhang", **CASE), 201)["id"]
    with govflow.db.begin() as conn:
        conn.execute(update(CaseRow).where(CaseRow.id == uuid.UUID(broken)).values(state=b"broken"))
    clock.advance(dt.timedelta(minutes=11))
    assert fire_due(govflow.cases).failed == 1

    # a pack version deployed through the API
    newer = {"pack.yaml": b"name: reference\nversion: '1.0.1'\nextends: reference@1.0.0\n"}
    seen(
        api.client.post(
            "/api/v1/packs",
            content=files_to_zip(newer),
            headers=api.headers("district.supervisor", **{"Content-Type": "application/zip"}),
        ),
        201,
    )

    for who, url in (
        ("citizen.zhang", f"/api/v1/cases/{case}"),
        ("citizen.zhang", f"/api/v1/cases/{case}/events"),
        ("district.supervisor", f"/api/v1/cases/{case}"),
        ("district.supervisor", f"/api/v1/cases/{case}/events"),
        ("dongjie.dispatcher", f"/api/v1/cases/{case}/ratings"),
        ("district.supervisor", f"/api/v1/cases/{case}/diagram"),
        ("district.supervisor", f"/api/v1/cases/{broken}"),
        ("district.supervisor", f"/api/v1/cases/{broken}/events"),
        ("dongjie.dispatcher", "/api/v1/tasks"),
        ("cc.supervisor", "/api/v1/tasks"),
        ("district.supervisor", "/api/v1/delegations"),
        ("district.supervisor", "/api/v1/incidents?status=all"),
        ("district.supervisor", "/api/v1/packs"),
        ("district.supervisor", "/api/v1/packs/reference/1.0.1"),
        ("district.supervisor", "/api/v1/board"),
        ("district.supervisor", "/api/v1/warnings"),
        ("district.supervisor", "/api/v1/rates"),
        ("hotline12345", "/api/v1/feed?limit=1000"),
        ("hotline12345", "/api/v1/webhooks"),
        ("hotline12345", f"/api/v1/webhooks/{hook['id']}"),
        ("hotline12345", f"/api/v1/webhooks/{hook['id']}/deliveries"),
        ("hotline12345", f"/open311/v2/requests/{case}.json"),
        ("hotline12345", "/open311/v2/requests.json"),
        ("citizen.zhang", "/api/v1/me"),
        (None, "/healthz"),
    ):
        seen(api.get(who, url))
    assert seen.bad_instants() == []
    events = dict(seen.responses)[f"GET /api/v1/cases/{broken}/events"]
    assert any(e["kind"] == "timer.failed" and UTC_Z.match(e["data"]["retry_at"]) for e in events)
    assert seen.instants() > 100  # the walk saw the instants it checks


def test_the_cli_writes_instants_the_same_way(deployed, principals):  # noqa: F811
    case = report_case(deployed, principals)
    engine = make_engine(deployed)
    with engine.begin() as conn:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        conn.execute(update(CaseRow).where(CaseRow.id == uuid.UUID(case)).values(state=b"broken", next_due=past))
    from govflow.cli import _build, _settings

    assert fire_due(_build(_settings(deployed)).cases).failed == 1
    printed = run("pack", "list").stdout + run("incidents", "list").stdout
    shaped = re.findall(r"\S*\d{4}-\d\d-\d\d[T ]\d\d:\d\d\S*", printed)
    assert len(shaped) == 2, printed  # when the pack was deployed, when the incident is retried
    assert all(UTC_Z.match(s) for s in shaped), shaped
