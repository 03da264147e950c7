"""Validation points at the line of the file the user wrote (issue 15.6).

A pack that ``extends`` the reference is validated as its effective (merged) pack; every issue
is pointed back at the district pack's own file and line, or at the base pack's file and line
with the base named (``pack``), never at a line of the merged file nobody wrote.
"""

from __future__ import annotations

import pytest

from govflow.engine.model.errors import PackError, PackIssue
from govflow.engine.packs.loader import files_to_zip, load_pack
from govflow.engine.packs.sourcemap import locate_yaml, path_of

#: a district pack of ten lines: an unknown plugin on line 7, a bad deadline on line 9
TEN_LINES = b"""# Gulou, a faster sign-for
name: gulou_fast
version: "1.1.0"
extends: reference@1.0.0
district: gulou
process: frontline_disposal
plugins: [no_such_plugin]
settings:
  deadlines: {simple: {sign_for: {amount: -3, unit: fortnights}}}
description: signs for in three fortnights (a mistake)
"""
PLUGINS = ["dispatch", "zone_routing"]


@pytest.fixture(scope="module")
def resolve(reference_files):
    def resolve(name, version):
        if name != "reference" or version not in (None, "1.0.0"):
            raise LookupError(f"pack {name} is not deployed")
        return reference_files

    return resolve


def issues_of(files, resolve, plugins=PLUGINS) -> list[PackIssue]:
    with pytest.raises(PackError) as caught:
        load_pack(files, resolve_base=resolve, available_plugins=plugins)
    return caught.value.issues


def line(content: bytes, number: int) -> str:
    return content.decode().splitlines()[number - 1]


def test_an_error_in_the_pack_s_own_ten_line_manifest_points_at_its_lines(resolve):
    assert len(TEN_LINES.decode().splitlines()) == 10
    issues = issues_of({"pack.yaml": TEN_LINES}, resolve)
    by_message = {i.message.split(":")[0] if "deadlines" in i.message else i.message: i for i in issues}
    plugin = next(i for i in issues if "no_such_plugin" in i.message)
    deadline = next(i for i in issues if i.message.startswith("settings.deadlines.simple.sign_for"))
    assert (plugin.file, plugin.line, plugin.pack) == ("pack.yaml", 7, None), by_message
    assert (deadline.file, deadline.line, deadline.pack) == ("pack.yaml", 9, None)
    assert str(plugin).startswith("pack.yaml:7: plugin 'no_such_plugin'")
    assert all(i.line is None or i.line <= 10 for i in issues if i.pack is None)


def test_an_error_that_lies_in_the_base_names_the_base_and_its_line(resolve, reference_files):
    # the reference enables the dispatch plugin; here it is not installed
    issues = issues_of({"pack.yaml": TEN_LINES.replace(b"no_such_plugin", b"zone_routing")}, resolve, ["zone_routing"])
    [plugin] = [i for i in issues if "plugin" in i.message]
    assert (plugin.file, plugin.pack) == ("pack.yaml", "reference 1.0.0")
    assert line(reference_files["pack.yaml"], plugin.line).startswith("plugins: [dispatch]")
    assert str(plugin).startswith(f"pack.yaml:{plugin.line} (base pack reference 1.0.0): plugin 'dispatch'")


def test_a_unit_removed_here_but_named_by_the_base_s_responsibility_list(resolve, reference_files):
    child = {
        "pack.yaml": b"name: gulou_small\nversion: '1.1.0'\nextends: reference@1.0.0\n",
        "catalog.yaml": b"# the education bureau is no unit of ours\nunits:\n  - {code: gulou.jyj, remove: true}\n",
    }
    issues = issues_of(child, resolve)
    named = [i for i in issues if "gulou.jyj" in i.message]
    assert len(named) == 4
    base_list = reference_files["policies/responsibility.yaml"]
    for issue in named:
        assert (issue.file, issue.pack) == ("policies/responsibility.yaml", "reference 1.0.0")
        entry = base_list.decode().splitlines()[issue.line - 1 : issue.line + 3]
        assert any(issue.element in text for text in entry) and any("gulou.jyj" in text for text in entry), entry


def test_a_merged_catalog_points_at_the_district_s_own_matter(resolve, reference_files):
    catalog = b"""matters:
  # a new matter, with a tier that does not exist
  - code: road.snow
    name: Snow on the road
    tier: someday
"""
    issues = issues_of(
        {"pack.yaml": TEN_LINES.replace(b"no_such_plugin", b"zone_routing"), "catalog.yaml": catalog}, resolve
    )
    [tier] = [i for i in issues if "tier must be one of" in i.message]
    assert (tier.file, tier.line, tier.pack) == ("catalog.yaml", 3, None)  # the item's line in the district's file


def test_policy_rows_of_the_district_keep_their_lines(resolve, reference_files):
    policy = b"# our own rows\np, street_dispatcher, gulou/*, sign_for\np, street_dispatcher\n"
    files = {
        "pack.yaml": b"name: gulou_rows\nversion: '1.1.0'\nextends: reference@1.0.0\n",
        "policies/policy.csv": policy,
    }
    [row] = [i for i in issues_of(files, resolve) if i.file == "policies/policy.csv"]
    assert (row.line, row.pack) == (3, None), row


def test_a_merged_form_points_at_the_district_s_own_field(resolve):
    forms = b"# sign-for asks for a photo\nsign_for:\n  note: {type: text, max_length: 500}\n  photo: {type: picture}\n"
    files = {
        "pack.yaml": b"name: gulou_forms\nversion: '1.1.0'\nextends: reference@1.0.0\n",
        "processes/forms.yaml": forms,
    }
    [field] = [i for i in issues_of(files, resolve) if i.file == "processes/forms.yaml"]
    assert (field.line, field.pack) == (4, None), field


def test_without_extends_a_path_in_the_message_gets_its_line(reference_files):
    manifest = reference_files["pack.yaml"].replace(b"reminder_at: 0.75", b"reminder_at: 7")
    with pytest.raises(PackError) as caught:
        load_pack({**reference_files, "pack.yaml": manifest})
    [issue] = caught.value.issues
    assert issue.message.startswith("settings.reminder_at") and issue.pack is None
    assert line(manifest, issue.line).strip().startswith("reminder_at: 7")


def test_paths_in_messages_resolve_list_items_by_their_code():
    located = locate_yaml("matters:\n  - code: a.b\n    tier: x\n  - {code: c.d, tier: y}\n")
    assert path_of("matters[1] (c.d): tier must be one of", located.data) == ("matters", ("#", "c.d"))
    assert located.lines[("matters", ("#", "c.d"))] == 4
    assert path_of("file not found", located.data) is None


def test_the_validate_api_names_the_base(api, reference_files):
    files = {"pack.yaml": TEN_LINES.replace(b"gulou_fast", b"reference")}
    response = api.client.post(
        "/api/v1/packs/validate",
        content=files_to_zip(files),
        headers=api.headers("district.supervisor", **{"Content-Type": "application/zip"}),
    )
    assert response.status_code == 200, response.text
    issues = response.json()["issues"]
    deadline = next(i for i in issues if i["message"].startswith("settings.deadlines.simple.sign_for"))
    assert (deadline["file"], deadline["line"], deadline.get("pack")) == ("pack.yaml", 9, None)
    assert deadline["text"].startswith("pack.yaml:9: settings.deadlines")


def test_govflow_pack_validate_prints_the_lines_of_the_folder(tmp_path, monkeypatch):
    from tests.test_cli import run

    monkeypatch.setenv("GOVFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'govflow.sqlite3'}")
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "pack.yaml").write_bytes(TEN_LINES)
    result = run("pack", "validate", tmp_path / "pack")
    assert result.exit_code == 1
    plugin, deadline = result.stdout.splitlines()
    assert plugin.startswith("pack.yaml:7: plugin 'no_such_plugin' is not installed (installed: ")
    assert deadline.startswith("pack.yaml:9: settings.deadlines.simple.sign_for: needs a positive amount")
