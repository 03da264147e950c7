"""extends: the effective pack of a district pack over the reference pack (merge rules, refusals)."""

from __future__ import annotations

import csv
import io

import pytest
import yaml

from govflow.engine.model.errors import PackError
from govflow.engine.packs.compose import BaseRef, deep_merge, parse_extends
from govflow.engine.packs.loader import load_pack, read_folder
from tests.pack_helpers import CANGSHAN, TAIJIANG, gulou_version, manifest


@pytest.fixture(scope="module")
def resolve(reference_files):
    def resolve(name, version):
        if name != "reference" or version not in (None, "1.0.0"):
            raise LookupError(f"pack {name} is not deployed")
        return reference_files

    return resolve


@pytest.fixture(scope="module")
def cangshan(resolve):
    return load_pack(read_folder(CANGSHAN), resolve_base=resolve)


def test_settings_deep_merge_only_overrides_what_differs(cangshan, reference_pack):
    ref, mine = reference_pack.manifest.settings["deadlines"], cangshan.manifest.settings["deadlines"]
    assert mine["simple"]["sign_for"] == {"amount": 30, "unit": "minutes"}
    assert mine["complex"]["handle"] == {"amount": 5, "unit": "working_days"}
    assert mine["simple"]["handle"] == ref["simple"]["handle"]
    assert mine["difficult"] == ref["difficult"]
    assert cangshan.manifest.settings["timezone"] == reference_pack.manifest.settings["timezone"]


def test_matters_merge_by_code_units_stay_with_the_district(cangshan, reference_pack):
    assert set(cangshan.catalog.matters) == set(reference_pack.catalog.matters) | {
        "housing.old_community_renovation",
        "env.construction_waste",
    }
    assert all(code.startswith("cangshan.") for code in cangshan.catalog.units)
    assert cangshan.catalog.streets == ("cangshan.cangqian", "cangshan.duihu", "cangshan.jinshan")


def test_inherited_policy_rows_are_rehomed_and_own_rows_added(cangshan):
    rows = [
        [c.strip() for c in r]
        for r in csv.reader(io.StringIO(cangshan.files["policies/policy.csv"].decode()))
        if r and r[0] == "p"
    ]
    domains = {r[2] for r in rows}
    assert not any(d.startswith("gulou/") for d in domains)
    assert ["p", "street_dispatcher", "cangshan/*", "sign_for"] in rows
    assert ["p", "street_dispatcher", "cangshan/*", "community_precheck"] in rows
    assert len(rows) == len({tuple(r) for r in rows})


def test_diagrams_forms_and_model_are_inherited(cangshan, reference_files):
    assert cangshan.files["processes/frontline_disposal.bpmn"] == reference_files["processes/frontline_disposal.bpmn"]
    assert cangshan.files["policies/model.conf"] == reference_files["policies/model.conf"]
    assert set(cangshan.forms) == set(yaml.safe_load(reference_files["processes/forms.yaml"])) | {"community_precheck"}
    assert set(cangshan.diagrams.specs) == {"cangshan_disposal", "frontline_disposal"}


def test_composition_records_base_and_origin_of_every_file(cangshan, reference_pack):
    comp = cangshan.manifest.composition
    assert comp["base"] == {"name": "reference", "version": "1.0.0", "content_hash": reference_pack.content_hash}
    origin = comp["files"]
    assert origin["processes/frontline_disposal.bpmn"] == "base"
    assert origin["processes/cangshan_disposal.bpmn"] == "own"
    assert origin["catalog.yaml"] == origin["processes/forms.yaml"] == origin["policies/policy.csv"] == "merged"
    assert origin["policies/responsibility.yaml"] == "overrides base"
    assert "policies/demo-principals.yaml" in cangshan.files
    assert cangshan.files["policies/demo-principals.yaml"] != reference_pack.files["policies/demo-principals.yaml"]


def test_effective_pack_loads_without_its_base(cangshan):
    again = load_pack(cangshan.files)  # no resolver: the effective pack is self-contained
    assert again.content_hash == cangshan.content_hash
    assert "extends" not in yaml.safe_load(cangshan.files["pack.yaml"])


def test_taijiang_enables_its_plugin_on_top_of_the_reference_plugins(resolve):
    pack = load_pack(read_folder(TAIJIANG), resolve_base=resolve)
    assert pack.manifest.plugins == ("dispatch", "zone_routing")


def test_same_district_version_merges_units_and_can_remove_a_matter(resolve, reference_pack):
    catalog = yaml.safe_dump(
        {
            "units": [{"code": "gulou.cgj", "name": "鼓楼区城管局（新）", "kind": "department"}],
            "matters": [{"code": "land.illegal_land_use", "remove": True}],
        },
        allow_unicode=True,
    ).encode()
    pack = load_pack(gulou_version("1.1.0", catalog_DOT_yaml=catalog), resolve_base=resolve)
    assert pack.catalog.units["gulou.cgj"].name == "鼓楼区城管局（新）"
    assert len(pack.catalog.units) == len(reference_pack.catalog.units)
    assert "land.illegal_land_use" not in pack.catalog.matters
    assert pack.files["boundaries.geojson"] == reference_pack.files["boundaries.geojson"]


def test_removing_a_matter_the_base_lacks_is_refused(resolve):
    catalog = yaml.safe_dump({"matters": [{"code": "road.flying_cars", "remove": True}]}).encode()
    with pytest.raises(PackError) as info:
        load_pack(gulou_version("1.1.0", catalog_DOT_yaml=catalog), resolve_base=resolve)
    assert [(i.file, i.element) for i in info.value.issues] == [("catalog.yaml", "road.flying_cars")]
    assert "the base has no such entry" in info.value.issues[0].message


def test_unknown_base_is_refused_with_the_line_of_extends(resolve):
    files = {"pack.yaml": b"# a pack\nname: x\nversion: '1'\nextends: nowhere@2.0\n"}
    with pytest.raises(PackError) as info:
        load_pack(files, resolve_base=resolve)
    issue = info.value.issues[0]
    assert (issue.file, issue.line) == ("pack.yaml", 4)
    assert "extends nowhere@2.0" in issue.message and "not deployed" in issue.message


def test_extends_without_any_deployed_pack_at_hand_is_refused():
    with pytest.raises(PackError) as info:
        load_pack({"pack.yaml": manifest(name="x", version="1", extends="reference")})
    assert "no base pack can be resolved" in info.value.issues[0].message


def test_another_district_must_bring_its_responsibility_list_and_boundaries(resolve):
    files = {
        k: v
        for k, v in read_folder(CANGSHAN).items()
        if k not in ("policies/responsibility.yaml", "boundaries.geojson")
    }
    with pytest.raises(PackError) as info:
        load_pack(files, resolve_base=resolve)
    assert {i.file for i in info.value.issues} == {"policies/responsibility.yaml", "boundaries.geojson"}
    assert all("differs from the base's (gulou)" in i.message for i in info.value.issues)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("reference", BaseRef("reference")),
        ("reference@1.0.0", BaseRef("reference", "1.0.0")),
        ({"pack": "reference", "version": "2"}, BaseRef("reference", "2")),
        ("", None),
        (["reference"], None),
        ({"name": "x"}, None),
    ],
)
def test_parse_extends(value, expected):
    assert parse_extends(value) == expected


def test_deep_merge_replaces_lists_and_scalars_and_merges_mappings():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
