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
