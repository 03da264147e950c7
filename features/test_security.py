"""Step definitions for security.feature (issue 14), against the real API, CLI and database.

Each scenario is one class of hostile input; steps are small and named after what they do, so a
new class (unbounded arithmetic in a diagram, a corrupt timer, a restart) adds its scenarios to
security.feature and its steps here, reusing the shared ones in conftest.py (reports, the case's
status, "the request is refused with N").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from pytest_bdd import given, parsers, scenarios, then, when
from sqlalchemy import func, select
from typer.testing import CliRunner

from govflow.cli import app as cli
from govflow.engine.packs.loader import files_to_zip
from govflow.engine.store.db import CaseRow, PackVersion
from govflow.settings import REFERENCE_PACK
from tests.pack_helpers import manifest

scenarios("security.feature")

# Every scenario runs once per database back-end (SQLite, and PostgreSQL when configured).
pytestmark = pytest.mark.usefixtures("database")

SECRET = "secret that must never leave the machine"


def _database_url(database) -> str:
    return database.url.render_as_string(hide_password=False)


def _copy_reference(root: Path) -> Path:
    pack = root / "pack"
    pack.mkdir()
    for entry in ("pack.yaml", "catalog.yaml", "boundaries.geojson", "processes", "policies"):
        source = REFERENCE_PACK / entry
        if source.is_dir():
            shutil.copytree(source, pack / entry)
        else:
            shutil.copy(source, pack / entry)
    return pack


# -- a YAML bomb ---------------------------------------------------------------------------------------
def _bomb(levels: int) -> str:
    """A "billion laughs": each level nine aliases of the one before (9**levels strings once expanded)."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@when(
    parsers.parse('{who} uploads Gulou version "{version}" whose pack.yaml nests aliases nine levels deep'),
    target_fixture="ctx",
)
def _upload_bomb(api, who, version):
    text = manifest(name="reference", version=version, extends="reference@1.0.0").decode()
    bomb = _bomb(9)
    settings = "settings:\n  bomb:\n" + "".join("    " + line + "\n" for line in bomb.splitlines())
    text += settings
    first_anchor = text.splitlines().index("    " + bomb.splitlines()[0]) + 1
    response = api.client.post(
        "/api/v1/packs",
        content=files_to_zip({"pack.yaml": text.encode()}),
        headers=api.headers(who, **{"Content-Type": "application/zip"}),
    )
    return {"response": response, "line": first_anchor}


@then(parsers.parse('the upload is refused with {code:d} naming "{file}" at the line of the first anchor'))
def _bomb_refused(ctx, code, file):
    response = ctx["response"]
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    issues = response.json()["issues"]
    assert any(
        i["file"] == file and i.get("line") == ctx["line"] and "anchor &l0 refused" in i["message"] for i in issues
    ), issues


@then(parsers.parse('"{name} {version}" is not deployed'))
def _not_deployed(api, name, version):
    assert api.get("district.supervisor", f"/api/v1/packs/{name}/{version}").status_code == 404


@then(parsers.parse('"{name} {version}" is still the active pack of district "{district}"'))
def _still_active(govflow, name, version, district):
    assert [(v.name, v.version) for v in govflow.packs.versions(district) if v.active] == [(name, version)]


# -- a symbolic link ---------------------------------------------------------------------------------------
@given(
    parsers.parse('a copy of the reference pack whose "{path}" is a symbolic link to a file outside it'),
    target_fixture="ctx",
)
def _linked_pack(tmp_path, path):
    pack = _copy_reference(tmp_path)
    outside = tmp_path / "outside.bpmn"
    outside.write_text(SECRET, encoding="utf-8")
    (pack / path).symlink_to(outside)
    return {"pack": pack, "path": path}


@when('the operator deploys it with "govflow pack deploy"')
def _cli_deploy(ctx, database):
    result = CliRunner().invoke(cli, ["pack", "deploy", str(ctx["pack"]), "--database-url", _database_url(database)])
    ctx["result"] = result


@then(parsers.parse('the command fails naming "{path}" as a symbolic link'))
def _cli_refused(ctx, path):
    result = ctx["result"]
    assert result.exit_code == 1, result.output
    assert f"{path}: symbolic link refused" in result.output


@then("nothing of the linked file was stored")
def _nothing_stored(govflow):
    with govflow.db.connect() as conn:
        archives = conn.execute(select(PackVersion.archive)).scalars().all()
    assert len(archives) == 1 and SECRET.encode() not in archives[0]


# -- a demoted supervisor ---------------------------------------------------------------------------------------
@given(parsers.parse("{who} can read the case with the reporter's name and phone"))
def _reads_pii(api, ctx, who):
    case = api.get(who, f"/api/v1/cases/{ctx['case']}")
    assert case.status_code == 200, case.text
    assert case.json()["reporter"] == {"name": "张伟", "phone": "13812345678", "masked": False}


@when(parsers.parse('"govflow principals load" makes {who} a citizen'))
def _demote(database, tmp_path, tokens, who):
    data = yaml.safe_load((REFERENCE_PACK / "policies" / "demo-principals.yaml").read_text(encoding="utf-8"))
    [entry] = [p for p in data["principals"] if p["id"] == who]
    entry = {**entry, "roles": ["citizen"]}
    entry.pop("unit", None)
    path = tmp_path / "demotion.yaml"
    path.write_text(yaml.safe_dump({"principals": [entry]}, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(cli, ["principals", "load", str(path), "--database-url", _database_url(database)])
    assert result.exit_code == 0, result.output


@then(parsers.parse("{who}'s next request for the case is answered as if it did not exist"))
def _next_request_refused(api, ctx, who):
    response = api.get(who, f"/api/v1/cases/{ctx['case']}")
    assert response.status_code == 404, response.text
    assert "张伟" not in response.text and "13812345678" not in response.text


@then(parsers.parse("{who} may no longer read the district's packs"))
def _no_packs(api, who):
    assert api.get(who, "/api/v1/packs").json() == []
    assert api.get(who, "/api/v1/packs/reference/1.0.0").status_code == 404


# -- a NUL in a description ---------------------------------------------------------------------------------------
@when(parsers.parse("{who} reports a description holding a NUL character"), target_fixture="ctx")
def _report_nul(api, who):
    response = api.report(who, description="东街口\x00井盖没了", reporter={"name": "张伟", "phone": "13812345678"})
    return {"response": response}


@then(parsers.parse('the report is refused with {code:d} naming the field "{field}"'))
def _refused_field(ctx, code, field):
    response = ctx["response"]
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert any(e["loc"] == ["body", field] and "U+0000" in e["msg"] for e in errors), errors


@then("no case was stored")
def _no_case(govflow):
    with govflow.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CaseRow)).scalar_one() == 0


# -- bounded diagram code and incidents (issue 14: the engine) -----------------------------------------
_DIAGRAM = "processes/frontline_disposal.bpmn"
_ROUTE = "<bpmn:conditionExpression>owner_unit is not None</bpmn:conditionExpression>"


def _route_line(text: str) -> int:
    return text.count("\n", 0, text.index("owner_unit is not None and")) + 1


def _with_route(condition: str) -> str:
    text = (REFERENCE_PACK / _DIAGRAM).read_text(encoding="utf-8")
    assert text.count(_ROUTE) == 1
    return text.replace(
        _ROUTE, f"<bpmn:conditionExpression>owner_unit is not None and {condition}</bpmn:conditionExpression>"
    )


def _route_element() -> str:
    text = (REFERENCE_PACK / _DIAGRAM).read_text(encoding="utf-8")
    start = text.rfind("<bpmn:sequenceFlow", 0, text.index(_ROUTE))
    return text[start:].split('id="', 1)[1].split('"', 1)[0]


@when(
    parsers.parse('district.supervisor uploads Gulou version "{version}" whose routing condition computes 10**10**10')
)
def _upload_huge_power(api, ctx, version):
    files = {"pack.yaml": manifest(name="reference", version=version, extends="reference@1.0.0")}
    files[_DIAGRAM] = _with_route("10**10**10 &gt; 0").encode()
    ctx["diagram"] = files[_DIAGRAM].decode()
    ctx["upload"] = api.client.post(
        "/api/v1/packs",
        content=files_to_zip(files),
        headers=api.headers("district.supervisor", **{"Content-Type": "application/zip"}),
    )


@then("the upload is refused with 422 naming the routing condition's line and element")
def _refused_huge_power(ctx):
    response = ctx["upload"]
    assert response.status_code == 422, response.text
    issues = [i for i in response.json()["issues"] if "too large" in i["message"]]
    assert issues and issues[0]["file"] == _DIAGRAM
    assert (issues[0]["line"], issues[0]["element"]) == (_route_line(ctx["diagram"]), _route_element())


@when(
    parsers.parse(
        'Gulou version "{version}" whose routing condition computes a huge power from the case\'s data is active'
    )
)
def _activate_hidden_power(govflow, version):
    files = {"pack.yaml": manifest(name="reference", version=version, extends="reference@1.0.0")}
    files[_DIAGRAM] = _with_route("len(district) ** len(district) ** len(district) &gt; 0").encode()
    pack = govflow.packs.compile(files)  # no constant to refuse: only running it shows the size
    govflow.packs.deploy(pack, actor="tests", now=govflow.clock.now())
    govflow.packs.activate("reference", version)


@when(parsers.parse('{who} reports "{text}" at {lat:g}, {lng:g} on it'))
def _report_on_hostile(api, govflow, ctx, who, text, lat, lng):
    with govflow.db.connect() as conn:
        ctx["cases_before"] = conn.execute(select(func.count()).select_from(CaseRow)).scalar_one()
    ctx["hostile"] = api.report(who, description=text, location={"lat": lat, "lng": lng})


@then("the report is stopped with 409 naming the routing condition's element and nothing is stored")
def _stopped(govflow, ctx):
    response = ctx["hostile"]
    assert response.status_code == 409, response.text
    assert response.json()["type"].endswith("diagram-failed")
    assert "too large" in response.json()["detail"]
    assert response.json()["context"]["element"]
    with govflow.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CaseRow)).scalar_one() == ctx["cases_before"]


@given(parsers.parse("{count:d} cases reported at {lat:g}, {lng:g} waiting to be signed for"), target_fixture="ctx")
def _many(api, count, lat, lng):
    ids = []
    for i in range(count):
        response = api.report("citizen.zhang", description=f"井盖没了 {i}", location={"lat": lat, "lng": lng})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return {"cases": ids}


@given("the second case's stored state is garbage and the fourth's no longer restores")
def _corrupt(govflow, ctx):
    import json
    import uuid
    import zlib

    from sqlalchemy import update

    second, fourth = (uuid.UUID(ctx["cases"][i]) for i in (1, 3))
    with govflow.db.begin() as conn:
        good = conn.execute(select(CaseRow.state).where(CaseRow.id == fourth)).scalar_one()
        dct = json.loads(zlib.decompress(good))
        del dct["tasks"]  # Spiff's restore raises a plain KeyError
        conn.execute(update(CaseRow).where(CaseRow.id == second).values(state=b"\x00garbage"))
        conn.execute(update(CaseRow).where(CaseRow.id == fourth).values(state=zlib.compress(json.dumps(dct).encode())))
        ctx["broken_states"] = {
            str(second): b"\x00garbage",
            str(fourth): zlib.compress(json.dumps(dct).encode()),
        }
    ctx["broken"] = [str(second), str(fourth)]


def _kinds(api, case_id):
    response = api.get("district.supervisor", f"/api/v1/cases/{case_id}/events")
    assert response.status_code == 200, response.text
    return [e["kind"] for e in response.json()]


@then("every other case's reminder fired exactly once")
def _fired_once(govflow, ctx):
    from govflow.engine.store.db import CaseEvent

    with govflow.db.connect() as conn:
        rows = conn.execute(select(CaseEvent.case_id, CaseEvent.kind)).all()
    for case in ctx["cases"]:
        overdue = [k for c, k in rows if str(c) == case and k == "deadline.overdue"]
        assert len(overdue) == (0 if case in ctx["broken"] else 1), case


@then(parsers.parse("district.supervisor lists {count:d} open incidents naming those cases"))
def _incidents(api, ctx, count):
    response = api.get("district.supervisor", "/api/v1/incidents")
    assert response.status_code == 200, response.text
    assert sorted(i["case_id"] for i in response.json()) == sorted(ctx["broken"])
    assert len(response.json()) == count


@then("the broken cases kept their last good state")
def _kept(govflow, ctx):
    import uuid

    with govflow.db.connect() as conn:
        for case in ctx["broken"]:
            row = conn.execute(select(CaseRow.state, CaseRow.status).where(CaseRow.id == uuid.UUID(case))).one()
            assert row.state == ctx["broken_states"][case]  # untouched: nothing was written over it
            assert row.status == "dispatched"


# -- a restart ---------------------------------------------------------------------------------------
@when(parsers.parse('{who} deploys and activates Gulou version "{version}" through the API'), target_fixture="ctx")
def _deploy_and_activate(api, who, version):
    upload = api.client.post(
        "/api/v1/packs",
        content=files_to_zip({"pack.yaml": manifest(name="reference", version=version, extends="reference@1.0.0")}),
        headers=api.headers(who, **{"Content-Type": "application/zip"}),
    )
    assert upload.status_code == 201, upload.text
    activated = api.post(who, f"/api/v1/packs/reference/{version}/activate")
    assert activated.status_code == 200, activated.text
    return {}


@when('"govflow serve" restarts on the same database with the reference pack folder')
def _restart(ctx, database):
    from tests.live_server import serve

    with serve(_database_url(database), "--pack", str(REFERENCE_PACK)) as live:
        ctx["packs"] = live.client.get("/api/v1/packs", headers={"Authorization": "Bearer demo-district"}).json()
        ctx["log"] = live.log()


@then(parsers.parse('the server says "{words}"'))
def _server_says(ctx, words):
    assert words in ctx["log"], ctx["log"]


@then(parsers.parse('the restarted server runs "{name} {version}" for district "{district}"'))
def _runs(ctx, name, version, district):
    active = [(p["name"], p["version"]) for p in ctx["packs"] if p["district"] == district and p["active"]]
    assert active == [(name, version)], ctx["packs"]
