"""Versions on a real database: deploy, running cases stay on their version, activate, roll back,
extends resolved against deployed versions, and moving cases with `pack migrate`."""

from __future__ import annotations

import re

import pytest
import yaml
from sqlalchemy import select

from govflow.engine.cases.migration import migrate
from govflow.engine.cases.service import NewCase
from govflow.engine.model.errors import Conflict, InvalidInput, NotFound, PackError
from govflow.engine.packs.loader import read_zip
from govflow.engine.store.db import CaseEvent, CaseRow, CaseTask
from tests.pack_helpers import CANGSHAN, TAIJIANG, deploy_example, gulou_version

DONGJIE = dict(lat=26.0865, lng=119.3025)
SETTINGS_1_1 = yaml.safe_dump(
    {
        "name": "reference",
        "version": "1.1.0",
        "extends": "reference@1.0.0",
        "settings": {"deadlines": {"simple": {"handle": {"amount": 2, "unit": "working_days"}}}},
    }
).encode()


def report(app, principals, **kw):
    fields = dict(channel="app", description="东街口有个井盖没了，晚上很危险", **DONGJIE)
    fields.update(kw)
    return app.cases.report(principals["citizen.zhang"], NewCase(**fields))


def case_row(app, case_id):
    with app.db.connect() as conn:
        return conn.execute(select(CaseRow).where(CaseRow.id == case_id)).one()


def task_of(app, case_id, name):
    with app.db.connect() as conn:
        return conn.execute(select(CaseTask).where(CaseTask.case_id == case_id, CaseTask.name == name)).one()


def deploy_1_1(app, **kw):
    pack = app.packs.compile({"pack.yaml": SETTINGS_1_1})
    app.packs.deploy(pack, actor="tests", now=app.clock.now(), **kw)
    return pack


def test_a_new_version_leaves_running_cases_on_theirs(govflow, principals):
    old = report(govflow, principals)
    deploy_1_1(govflow)
    new = report(govflow, principals)
    assert (case_row(govflow, old.case_id).pack_version, case_row(govflow, new.case_id).pack_version) == (
        "1.0.0",
        "1.1.0",
    )
    signed = govflow.cases.complete_task(
        principals["dongjie.dispatcher"], str(task_of(govflow, old.case_id, "sign_for").id), {}
    )
    assert signed.status == "handling"
    assert case_row(govflow, old.case_id).pack_version == "1.0.0"


def test_extends_resolves_the_deployed_base_and_stores_the_effective_pack(govflow, reference_pack):
    pack = deploy_1_1(govflow)
    assert pack.manifest.composition["base"]["content_hash"] == reference_pack.content_hash
    stored = read_zip(govflow.packs.archive("reference", "1.1.0"))
    assert stored == pack.files and "extends" not in yaml.safe_load(stored["pack.yaml"])
    assert pack.manifest.settings["deadlines"]["simple"]["handle"] == {"amount": 2, "unit": "working_days"}
    with pytest.raises(PackError) as info:
        govflow.packs.compile(gulou_version("1.2.0", extends="reference@9.9"))
    assert "reference 9.9 is not deployed" in info.value.issues[0].message


def test_same_version_with_other_content_is_refused(govflow):
    deploy_1_1(govflow)
    other = govflow.packs.compile(gulou_version("1.1.0"))
    with pytest.raises(Conflict):
        govflow.packs.deploy(other, actor="tests", now=govflow.clock.now())


def test_activate_and_roll_back(govflow, principals):
    deploy_1_1(govflow, activate=False)
    assert govflow.packs.active("gulou").key == ("reference", "1.0.0")
    govflow.packs.activate("reference", "1.1.0")
    assert [(v.version, v.active) for v in govflow.packs.versions("gulou")] == [("1.0.0", False), ("1.1.0", True)]
    assert case_row(govflow, report(govflow, principals).case_id).pack_version == "1.1.0"
    assert govflow.packs.rollback("gulou").key == ("reference", "1.0.0")
    assert case_row(govflow, report(govflow, principals).case_id).pack_version == "1.0.0"
    with pytest.raises(InvalidInput, match="nothing to roll back to"):
        govflow.packs.rollback("gulou")
    with pytest.raises(NotFound):
        govflow.packs.rollback("atlantis")


def test_example_districts_deploy_side_by_side_and_follow_their_own_pack(govflow, principals):
    deploy_example(govflow, CANGSHAN)
    deploy_example(govflow, TAIJIANG)
    assert govflow.packs.districts() == ["cangshan", "gulou", "taijiang"]
    cs = report(govflow, principals, description="路面有个大坑", lat=26.045, lng=119.31, district="cangshan")
    gl = report(govflow, principals, description="路面有个大坑", district="gulou")
    assert (case_row(govflow, cs.case_id).pack_name, case_row(govflow, cs.case_id).owner_unit) == (
        "cangshan",
        "cangshan.cangqian",
    )
    assert task_of(govflow, cs.case_id, "community_precheck").unit_code == "cangshan.cangqian"
    assert (case_row(govflow, gl.case_id).pack_name, task_of(govflow, gl.case_id, "sign_for").unit_code) == (
        "reference",
        "gulou.dongjie",
    )


# -- migrate -----------------------------------------------------------------------------------
def test_migrate_moves_a_case_when_safe_and_it_finishes_on_the_new_version(govflow, principals):
    case = report(govflow, principals)
    deploy_1_1(govflow)
    dry = migrate(
        govflow.uow, govflow.packs, "reference", "1.0.0", "1.1.0", actor="ops", now=govflow.clock.now(), dry_run=True
    )
    assert dry.migrated == [str(case.case_id)] and case_row(govflow, case.case_id).pack_version == "1.0.0"
    done = migrate(govflow.uow, govflow.packs, "reference", "1.0.0", "1.1.0", actor="ops", now=govflow.clock.now())
    assert (done.migrated, done.refused) == ([str(case.case_id)], {})
    row = case_row(govflow, case.case_id)
    assert (row.pack_version, row.version) == ("1.1.0", case.version + 1)
    with govflow.db.connect() as conn:
        last = conn.execute(
            select(CaseEvent).where(CaseEvent.case_id == case.case_id).order_by(CaseEvent.seq.desc())
        ).first()
    assert (last.kind, last.actor, last.data) == (
        "case.migrated",
        "ops",
        {"from": "1.0.0", "to": "1.1.0", "pack": "reference"},
    )
    outcome = govflow.cases.complete_task(
        principals["dongjie.dispatcher"], str(task_of(govflow, case.case_id, "sign_for").id), {}
    )
    assert outcome.status == "handling"


def test_migrate_refuses_when_the_open_step_is_gone_and_says_why(govflow, principals, reference_files):
    case = report(govflow, principals)
    diagram = reference_files["processes/frontline_disposal.bpmn"].decode()
    renamed = re.sub(r'(id|Ref)="sign_for"', r'\1="sign_for_v2"', diagram)
    pack = govflow.packs.compile(gulou_version("2.0.0", processes__frontline_disposal_DOT_bpmn=renamed.encode()))
    govflow.packs.deploy(pack, actor="tests", now=govflow.clock.now())
    result = migrate(govflow.uow, govflow.packs, "reference", "1.0.0", "2.0.0", actor="ops", now=govflow.clock.now())
    assert result.migrated == []
    assert "open step sign_for of intake does not exist in the target" in result.refused[str(case.case_id)]
    assert case_row(govflow, case.case_id).pack_version == "1.0.0"


def test_migrate_refuses_the_same_version_and_an_undeployed_one(govflow, principals):
    """Refusals of the whole request; a target of another district is refused per case (test_pack_migration)."""
    case = report(govflow, principals)
    with pytest.raises(InvalidInput) as same:
        migrate(govflow.uow, govflow.packs, "reference", "1.0.0", "1.0.0", actor="ops", now=govflow.clock.now())
    assert same.value.message == "the source and target versions are the same"
    with pytest.raises(NotFound) as missing:
        migrate(govflow.uow, govflow.packs, "reference", "1.0.0", "7.0.0", actor="ops", now=govflow.clock.now())
    assert missing.value.message == "pack reference 7.0.0 is not deployed"
    assert (case_row(govflow, case.case_id).pack_version, case_row(govflow, case.case_id).version) == ("1.0.0", 1)
