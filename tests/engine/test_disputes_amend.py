"""The standing meeting's ruling amends the responsibility list into a new version that loads."""

from __future__ import annotations

import yaml

from govflow.engine.cases.disputes import RESPONSIBILITY, amend
from govflow.engine.packs.loader import load_pack


def test_a_ruling_on_a_matter_listed_only_by_its_group_loads(reference_files):
    """The new entry copies the group's time limit: no shared object, so no YAML anchor in the file."""
    listed = yaml.safe_load(reference_files[RESPONSIBILITY])["entries"]
    exact = {e["matter"] for e in listed}
    groups = {e["matter"][:-2] for e in listed if e["matter"].endswith(".*")}
    matter = next(
        m for m in load_pack(reference_files).catalog.matters if m not in exact and m.split(".", 1)[0] in groups
    )
    amended = amend(
        dict(reference_files),
        version="1.0.1",
        description="reference",
        matter=matter,
        department="gulou.cgj",
        case_id="00000000-0000-0000-0000-000000000001",
        decision="由城管局主责",
    )
    text = amended.files[RESPONSIBILITY].decode("utf-8")
    assert "&id" not in text and "*id" not in text
    pack = load_pack(amended.files)
    assert pack.manifest.version == "1.0.1"
    assert pack.responsibility.lookup(matter).main == "gulou.cgj"
