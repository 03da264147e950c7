"""Compiling a pack that extends a deployed version reuses what the base parsed from the files
the extension leaves unchanged (catalog, territory, responsibility list, forms, policies), and
parses — and checks — every file it changes."""

from __future__ import annotations

import pytest
import yaml

from govflow.engine.model.errors import PackError

DIAGRAM = "processes/frontline_disposal.bpmn"


def child(version: str = "1.1.0", **files: bytes) -> dict[str, bytes]:
    manifest = {"name": "reference", "version": version, "extends": "reference@1.0.0"}
    return {"pack.yaml": yaml.safe_dump(manifest).encode(), **files}


def test_a_draft_that_changes_a_diagram_reuses_the_rest_of_its_base(govflow, reference_files):
    base = govflow.packs.get("reference", "1.0.0")
    edited = reference_files[DIAGRAM].replace(b'name="Sign for', b'name="Sign for now')
    pack = govflow.packs.compile(child(**{DIAGRAM: edited}))
    assert pack.catalog is base.catalog and pack.territory is base.territory
    assert pack.responsibility is base.responsibility and pack.forms is base.forms
    assert pack.policy_rows is base.policy_rows
    assert pack.diagrams is not base.diagrams  # the changed diagram is compiled
    assert pack.diagrams.user_tasks["sign_for"].title.startswith("Sign for now")


def test_files_the_extension_changes_are_parsed_and_checked(govflow, reference_files):
    base = govflow.packs.get("reference", "1.0.0")
    forms = yaml.safe_load(reference_files["processes/forms.yaml"])
    forms["sign_for"]["note"]["max_length"] = 100
    pack = govflow.packs.compile(child(**{"processes/forms.yaml": yaml.safe_dump(forms, allow_unicode=True).encode()}))
    assert pack.forms is not base.forms and pack.catalog is base.catalog
    wrong = {"district": "gulou", "entries": [{"matter": "road.pothole", "main": "gulou.nowhere", "cooperating": []}]}
    with pytest.raises(PackError) as refused:
        govflow.packs.compile(child("1.2.0", **{"policies/responsibility.yaml": yaml.safe_dump(wrong).encode()}))
    assert any(i.file == "policies/responsibility.yaml" and "gulou.nowhere" in i.message for i in refused.value.issues)
