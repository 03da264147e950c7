"""Step definitions for packs.feature, against the real CLI, API and database."""

from __future__ import annotations

import pytest
import yaml
from pytest_bdd import given, parsers, scenarios, then, when
from typer.testing import CliRunner

from govflow.cli import app as cli
from govflow.engine.packs.loader import files_to_zip
from tests.pack_helpers import ROOT, store_demo_principals

scenarios("packs.feature")

pytestmark = pytest.mark.usefixtures("database")

READER = {"gulou": "cc.supervisor", "cangshan": "cangshan.cc.supervisor", "taijiang": "taijiang.cc.supervisor"}


@pytest.fixture
def seen() -> dict:
    return {}


def _upload(api, who, files):
    return api.client.post(
        "/api/v1/packs", content=files_to_zip(files), headers=api.headers(who, **{"Content-Type": "application/zip"})
    )


def _principal_tokens(api, folder):
    data = yaml.safe_load((folder / "policies" / "demo-principals.yaml").read_text(encoding="utf-8"))
    api.tokens.update({p["id"]: p["token"] for p in data["principals"]})


@given(parsers.parse('the operator has deployed the example pack "{name}" with "govflow pack deploy"'))
@when(parsers.parse('the operator deploys the example pack "{name}" with "govflow pack deploy"'))
def _cli_deploy(govflow, api, database, name):
    folder = ROOT / "examples" / name
    result = CliRunner().invoke(
        cli, ["pack", "deploy", str(folder), "--database-url", database.url.render_as_string(hide_password=False)]
    )
    assert result.exit_code == 0, result.output
    assert f"deployed: {name} 1.0.0 ({name})" in result.output
    store_demo_principals(govflow, folder)
    _principal_tokens(api, folder)


@then(parsers.parse('"{name} {version}" is the active pack of district "{district}"'))
def _active_pack(govflow, name, version, district):
    active = [(v.name, v.version) for v in govflow.packs.versions(district) if v.active]
    assert active == [(name, version)]


@then(parsers.parse('the effective pack "{name} {version}" has "{path}" from its base "{base} {base_version}"'))
def _effective(govflow, name, version, path, base, base_version):
    result = CliRunner().invoke(cli, ["pack", "show", str(ROOT / "examples" / name)])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert (shown["extends"]["name"], shown["extends"]["version"]) == (base, base_version)
    assert {"path": path, "origin": "base"}.items() <= next(f for f in shown["files"] if f["path"] == path).items()
    assert govflow.packs.get(name, version).files[path] == govflow.packs.get(base, base_version).files[path]


@when(parsers.parse('{who} reports "{text}" in "{district}" at {lat:g}, {lng:g}'), target_fixture="ctx")
def _report_in(api, who, text, district, lat, lng):
    response = api.report(
        who, description=text, district=district, location={"lat": lat, "lng": lng, "address": "测试地址"}
    )
    assert response.status_code == 201, response.text
    return {"case": response.json()["id"], "district": district}


@then(parsers.parse('the case runs on "{name} {version}" and is owned by "{owner}" as "{matter}"'))
def _runs_on(api, ctx, name, version, owner, matter):
    response = api.get(READER[ctx.get("district", "gulou")], f"/api/v1/cases/{ctx['case']}")
    assert response.status_code == 200, response.text
    case = response.json()
    assert (case["pack"], case["owner_unit"], case["category"]) == ({"name": name, "version": version}, owner, matter)


@when(parsers.parse('{who} completes "community_precheck" with finding "{finding}"'))
def _precheck(api, ctx, who, finding):
    task = next(t for t in api.inbox(who, ctx["case"]) if t["name"] == "community_precheck")
    response = api.complete(who, task["id"], finding=finding)
    assert response.status_code == 200, response.text


@then(parsers.parse('{who} sees the case "{status}" and closed'))
def _sees_closed(api, ctx, who, status):
    case = api.get(who, f"/api/v1/cases/{ctx['case']}").json()
    assert (case["status"], case["closed_at"] is not None) == (status, True)


@when(
    parsers.parse(
        '{who} uploads Gulou version "{version}" whose responsibility list removes the entries of "{pattern}"'
    ),
    target_fixture="seen",
)
def _upload_without(api, reference_files, who, version, pattern):
    base = yaml.safe_load(reference_files["policies/responsibility.yaml"])
    # the list merges with the base's by matter: entries are dropped with `remove: true`
    data = {
        "district": "gulou",
        "entries": [
            {"matter": e["matter"], "remove": True}
            for e in base["entries"]
            if e["matter"].startswith(pattern.rstrip("*"))
        ],
    }
    files = {
        "pack.yaml": yaml.safe_dump({"name": "reference", "version": version, "extends": "reference@1.0.0"}).encode(),
        "policies/responsibility.yaml": yaml.safe_dump(data, allow_unicode=True).encode(),
    }
    return {"response": _upload(api, who, files)}


@given(parsers.parse('{who} has uploaded Gulou version "{version}" with a sign-for limit of {minutes:d} minutes'))
@when(parsers.parse('{who} uploads Gulou version "{version}" with a sign-for limit of {minutes:d} minutes'))
def _upload_version(api, who, version, minutes):
    settings = {
        "deadlines": {
            level: {"sign_for": {"amount": minutes, "unit": "minutes"}} for level in ("simple", "complex", "difficult")
        }
    }
    manifest = {"name": "reference", "version": version, "extends": "reference@1.0.0", "settings": settings}
    response = _upload(api, who, {"pack.yaml": yaml.safe_dump(manifest).encode()})
    assert response.status_code == 201, response.text


@then(parsers.parse("the upload is refused with {code:d}"))
def _upload_refused(seen, code):
    assert seen["response"].status_code == code, seen["response"].text


@then(parsers.parse('the refusal names "{file}" and the element "{element}"'))
def _refusal_names(seen, file, element):
    assert any(i["file"] == file and i.get("element") == element for i in seen["response"].json()["issues"])


@then(parsers.parse('the refusal says "{message}"'))
def _refusal_says(seen, message):
    assert message in [i["message"] for i in seen["response"].json()["issues"]]


@then(parsers.parse('the routing on the record says "{text}"'))
def _routing_record(api, ctx, text):
    events = api.get(READER[ctx["district"]], f"/api/v1/cases/{ctx['case']}/events").json()
    routed = next(e for e in events if e["kind"] == "case.routed")
    assert text in routed["data"]["how"]


@then(parsers.parse('the plugin "{plugin}" does not act for "{name} {version}"'))
def _plugin_not_acting(govflow, plugin, name, version):
    assert plugin in govflow.pack_plugins.excluded(govflow.packs.get(name, version).manifest)
    assert plugin not in govflow.pack_plugins.excluded(govflow.packs.get("taijiang", "1.0.0").manifest)


@when(parsers.parse('{who} rolls back district "{district}"'))
def _rollback(api, who, district):
    response = api.post(who, "/api/v1/packs/rollback", json={"district": district})
    assert response.status_code == 200, response.text
