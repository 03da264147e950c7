"""Packs: zip uploads are bounded and cannot escape; every pack issue names its file; the
reference pack loads and its territory locates every street."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import yaml
from shapely.geometry import shape

from govflow.engine.model.errors import PackError
from govflow.engine.packs import loader as packs
from govflow.engine.packs.loader import files_to_zip, load_pack, read_folder, read_zip


def make_zip(entries: dict[str, bytes], *, dirs: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in dirs:
            archive.writestr(zipfile.ZipInfo(name.rstrip("/") + "/"), b"")
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def refused(content: bytes) -> PackError:
    with pytest.raises(PackError) as info:
        read_zip(content)
    assert info.value.issues, "a refusal must say why"
    return info.value


def pack_issues(files: dict[str, bytes], **kw) -> list:
    with pytest.raises(PackError) as info:
        load_pack(files, **kw)
    issues = info.value.issues
    assert issues and all(i.file for i in issues)
    return issues


# -- read_zip ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["../x.yaml", "processes/../../x.yaml", "/etc/cron.d/x", "..\\x.yaml", "C:/windows/x.yaml", "a/../../x.yaml"],
)
def test_zip_path_escape_refused(reference_files, name):
    error = refused(make_zip({**reference_files, name: b"evil: true"}))
    assert [i.file for i in error.issues] == [name.replace("\\", "/")]
    assert "escapes" in error.issues[0].message


def test_zip_with_too_many_files_refused():
    error = refused(make_zip({f"policies/f{i}.yaml": b"" for i in range(packs.MAX_FILES + 1)}))
    assert "too many" in error.issues[0].message


def test_zip_member_too_large_refused():
    # compresses to a few KB but expands past the per-file bound (a small zip bomb)
    error = refused(make_zip({"pack.yaml": b"name: x\n", "processes/big.bpmn": b" " * (packs.MAX_FILE_BYTES + 1)}))
    assert [i.file for i in error.issues] == ["processes/big.bpmn"]


def test_zip_expanding_past_total_bound_refused(monkeypatch):
    monkeypatch.setattr(packs, "MAX_TOTAL_BYTES", 10_000)
    error = refused(make_zip({f"policies/f{i}.yaml": b"#" * 4_000 for i in range(4)}))
    assert any("expands beyond" in i.message for i in error.issues)


def test_archive_too_large_refused():
    error = refused(b"PK" + b"\0" * packs.MAX_TOTAL_BYTES)
    assert error.issues[0].message == "too large"


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04 truncated", b"%PDF-1.7"])
def test_not_a_zip_refused(content):
    assert refused(content).issues[0].message == "not a zip archive"


@pytest.mark.parametrize("top", ["", "gulou-pack/"])
def test_zip_of_reference_pack_loads_with_same_hash(reference_files, reference_pack, top):
    dirs = (top, f"{top}processes", f"{top}policies") if top else ("processes", "policies")
    files = read_zip(make_zip({top + n: b for n, b in reference_files.items()}, dirs=dirs))
    assert files == reference_files
    loaded = load_pack(files)
    assert loaded.content_hash == reference_pack.content_hash
    assert loaded.key == ("reference", "1.0.0")


def test_pack_archive_round_trips(reference_files, reference_pack):
    assert read_zip(reference_pack.archive()) == reference_files
    assert read_zip(files_to_zip(reference_files)) == reference_files


def test_content_hash_changes_with_any_byte(reference_files, reference_pack):
    files = dict(reference_files)
    files["processes/forms.yaml"] += b"\n# touched\n"
    assert packs.content_hash(files) != reference_pack.content_hash
    renamed = {("x/" + n if n == "policies/policy.csv" else n): b for n, b in reference_files.items()}
    assert packs.content_hash(renamed) != reference_pack.content_hash


def test_read_folder_without_pack_yaml_refused(tmp_path):
    (tmp_path / "catalog.yaml").write_text("district: {code: x}\n")
    with pytest.raises(PackError) as info:
        read_folder(tmp_path)
    assert info.value.issues[0].file == "pack.yaml"


# -- load_pack issues ----------------------------------------------------------------------
def test_missing_pack_yaml(reference_files):
    files = dict(reference_files)
    del files["pack.yaml"]
    issues = pack_issues(files)
    assert [(i.file, i.message) for i in issues] == [("pack.yaml", "file not found")]


@pytest.mark.parametrize(
    "content, line",
    [
        (b"name: reference\nversion: '1.0.0'\ndistrict: gulou\n  process: : x\n", 4),
        (b"name: reference\nversion: '1.0.0'\n- district\n", 3),
    ],
)
def test_bad_yaml_reports_its_line(reference_files, content, line):
    issues = pack_issues({**reference_files, "pack.yaml": content})
    [issue] = issues
    assert issue.file == "pack.yaml" and issue.message.startswith("invalid YAML") and issue.line == line


def test_bad_yaml_in_catalog_names_catalog(reference_files):
    issues = pack_issues({**reference_files, "catalog.yaml": reference_files["catalog.yaml"] + b"\nunits: [\n"})
    assert [i.file for i in issues] == ["catalog.yaml"] and issues[0].line is not None


def test_district_mismatch(reference_files):
    files = {
        **reference_files,
        "pack.yaml": reference_files["pack.yaml"].replace(b"district: gulou", b"district: taijiang"),
    }
    [issue] = pack_issues(files)
    assert issue.file == "pack.yaml" and "taijiang" in issue.message and "gulou" in issue.message


def test_unknown_plugin(reference_files, reference_pack):
    [issue] = pack_issues(reference_files, available_plugins=["calendar"])
    assert issue.file == "pack.yaml" and "'dispatch'" in issue.message
    assert (
        load_pack(reference_files, available_plugins=["dispatch", "calendar"]).content_hash
        == reference_pack.content_hash
    )


def test_catalog_with_two_command_centres(reference_files):
    catalog = reference_files["catalog.yaml"].replace(
        b"kind: command_centre}", b"kind: command_centre}\n  - {code: gulou.cc2, name: second, kind: command_centre}", 1
    )
    [issue] = pack_issues({**reference_files, "catalog.yaml": catalog})
    assert issue.file == "catalog.yaml" and "command_centre" in issue.message and "2" in issue.message


@pytest.mark.parametrize("code", ["Road Pothole!", "pothole", "road..pothole", "1road.pothole"])
def test_matter_with_bad_code(reference_files, code):
    catalog = reference_files["catalog.yaml"].replace(b"code: road.pothole", f"code: '{code}'".encode(), 1)
    issues = pack_issues({**reference_files, "catalog.yaml": catalog})
    assert [i.file for i in issues] == ["catalog.yaml"] and code in issues[0].message


def test_boundaries_missing_a_street(reference_files):
    data = json.loads(reference_files["boundaries.geojson"])
    data["features"] = [f for f in data["features"] if f["properties"]["code"] != "gulou.wufeng"]
    [issue] = pack_issues({**reference_files, "boundaries.geojson": json.dumps(data).encode()})
    assert issue.file == "boundaries.geojson" and "gulou.wufeng" in issue.message


def test_boundary_for_a_non_street(reference_files):
    data = json.loads(reference_files["boundaries.geojson"])
    data["features"][0]["properties"]["code"] = "gulou.cgj"  # a department
    issues = pack_issues({**reference_files, "boundaries.geojson": json.dumps(data).encode()})
    assert {i.file for i in issues} == {"boundaries.geojson"} and any("gulou.cgj" in i.message for i in issues)


def test_policy_row_that_is_not_p(reference_files):
    csv = reference_files["policies/policy.csv"] + b"g, alice, gulou/*, citizen\n"
    [issue] = pack_issues({**reference_files, "policies/policy.csv": csv})
    assert issue.file == "policies/policy.csv" and "'g'" in issue.message
    assert issue.line == csv.decode().count("\n")


def test_process_named_in_pack_yaml_missing_from_diagrams(reference_files):
    files = {
        **reference_files,
        "pack.yaml": reference_files["pack.yaml"].replace(b"process: frontline_disposal", b"process: nope"),
    }
    [issue] = pack_issues(files)
    assert issue.file == "pack.yaml" and "'nope'" in issue.message and "frontline_disposal" in issue.message


def test_no_diagram_at_all(reference_files):
    files = {n: b for n, b in reference_files.items() if not n.endswith(".bpmn")}
    issues = pack_issues(files)
    assert any(i.file == "processes/" and "no .bpmn" in i.message for i in issues)


def test_every_issue_is_reported_at_once(reference_files):
    files = dict(reference_files)
    files["pack.yaml"] = files["pack.yaml"].replace(b"district: gulou", b"district: taijiang")
    files["policies/policy.csv"] += b"g, alice, gulou/*, citizen\n"
    files["processes/frontline_disposal.bpmn"] = files["processes/frontline_disposal.bpmn"].replace(
        b'"case_closed"', b'"End"'
    )
    issues = pack_issues(files)
    assert {i.file for i in issues} == {"pack.yaml", "policies/policy.csv", "processes/frontline_disposal.bpmn"}


# -- the reference pack --------------------------------------------------------------------
def test_reference_pack_content(reference_pack):
    catalog = reference_pack.catalog
    assert reference_pack.manifest.district == catalog.district == "gulou"
    assert len(catalog.streets) >= 5
    assert sum(u.kind == "department" for u in catalog.units.values()) >= 8
    assert len(catalog.matters) >= 30
    assert catalog.command_centre == "gulou.cc"
    assert sorted(reference_pack.territory.codes) == sorted(catalog.streets)
    assert reference_pack.manifest.process in reference_pack.diagrams.specs
    declared = yaml.safe_load(reference_pack.files["catalog.yaml"])
    assert len(declared["matters"]) == len(catalog.matters)


def test_territory_locates_every_street(reference_pack):
    data = json.loads(reference_pack.files["boundaries.geojson"])
    assert len(data["features"]) == len(reference_pack.catalog.streets)
    for feature in data["features"]:
        point = shape(feature["geometry"]).representative_point()
        assert reference_pack.territory.locate(point.y, point.x) == feature["properties"]["code"]


@pytest.mark.parametrize("lat, lng", [(0.0, 0.0), (39.9, 116.4), (-26.1, 119.3), (26.08, -119.3)])
def test_territory_far_outside_is_none(reference_pack, lat, lng):
    assert reference_pack.territory.locate(lat, lng) is None
