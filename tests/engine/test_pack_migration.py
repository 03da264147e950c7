"""`pack migrate` refuses every unsafe case, one reason at a time, and says exactly why.

Each test deploys a target version that differs from the reference pack (1.0.0) in
one way, runs :func:`migrate` over a case waiting for its street to sign for it,
and checks the one reason given and that the case did not move.
"""

from __future__ import annotations

import dataclasses
import re
import uuid

import pytest
import yaml
from lxml import etree
from sqlalchemy import select, update

from govflow.engine.cases.migration import check_case, migrate
from govflow.engine.cases.service import NewCase
from govflow.engine.packs.loader import read_folder
from govflow.engine.store.db import CaseEvent, CaseRow
from tests.pack_helpers import CANGSHAN, gulou_version, manifest

DONGJIE = dict(lat=26.0865, lng=119.3025)
DIAGRAM = "processes/frontline_disposal.bpmn"
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"


@pytest.fixture
def case(govflow, principals):
    """A routed case in Dongjie, on reference 1.0.0, waiting for sign-for."""
    outcome = govflow.cases.report(
        principals["citizen.zhang"],
        NewCase(channel="app", description="东街口有个井盖没了，晚上很危险", **DONGJIE),
    )
    assert outcome.status == "dispatched"
    return str(outcome.case_id)


@pytest.fixture
def diagram(reference_files) -> str:
    return reference_files[DIAGRAM].decode()


def deploy(app, files: dict[str, bytes]):
    pack = app.packs.compile(files)
    app.packs.deploy(pack, actor="tests", now=app.clock.now(), activate=False)
    return pack


def deploy_diagram(app, version: str, text: str):
    return deploy(app, gulou_version(version, **{DIAGRAM.replace("/", "__").replace(".", "_DOT_"): text.encode()}))


def refused(app, case_id: str, target: str) -> list[str]:
    """The reasons `migrate` (for real, not a dry run) gives for the case; it must not have moved."""
    report = migrate(
        app.uow, app.packs, "reference", "1.0.0", target, actor="ops", now=app.clock.now(), case_ids=[case_id]
    )
    assert (report.migrated, report.conflicts, list(report.refused)) == ([], [], [case_id])
    with app.db.connect() as conn:
        row = conn.execute(select(CaseRow.pack_version, CaseRow.version).where(CaseRow.id == uuid.UUID(case_id))).one()
        kinds = conn.execute(select(CaseEvent.kind).where(CaseEvent.case_id == uuid.UUID(case_id))).scalars().all()
    assert tuple(row) == ("1.0.0", 1) and "case.migrated" not in kinds
    return report.refused[case_id]


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def case_row(app, case_id):
    with app.db.connect() as conn:
        return conn.execute(select(CaseRow).where(CaseRow.id == uuid.UUID(case_id))).one()


# -- the target as a whole -----------------------------------------------------------------------
def test_a_target_of_another_district_is_refused(govflow, case):
    files = read_folder(CANGSHAN)
    cangshan = yaml.safe_load(files["pack.yaml"])
    files["pack.yaml"] = manifest(**{**cangshan, "name": "reference", "version": "3.0.0"})
    assert deploy(govflow, files).manifest.district == "cangshan"
    assert refused(govflow, case, "3.0.0") == ["the target is for district cangshan, the case is in gulou"]


def test_a_target_without_the_process_of_the_case_is_refused(govflow, case, diagram):
    renamed = replace_once(diagram, 'id="frontline_disposal"', 'id="frontline_v2"')
    files = gulou_version("2.0.0", processes__frontline_disposal_DOT_bpmn=renamed.encode())
    files["pack.yaml"] = manifest(name="reference", version="2.0.0", extends="reference@1.0.0", process="frontline_v2")
    assert set(deploy(govflow, files).diagrams.specs) == {"frontline_v2"}
    assert refused(govflow, case, "2.0.0") == ["process frontline_disposal does not exist in the target"]


# -- the catalog ---------------------------------------------------------------------------------
def test_a_target_without_the_owner_unit_is_refused(govflow, case, reference_pack):
    """A street that left the catalog (every pack file naming it would go too, so the target is
    the reference pack with the street taken out of its catalog)."""
    target = govflow.packs.compile(gulou_version("2.0.0"))
    catalog = dataclasses.replace(
        target.catalog,
        units={code: unit for code, unit in target.catalog.units.items() if code != "gulou.dongjie"},
        streets=tuple(s for s in target.catalog.streets if s != "gulou.dongjie"),
    )
    reasons, restored = check_case(
        case_row(govflow, case), reference_pack, dataclasses.replace(target, catalog=catalog)
    )
    assert (reasons, restored) == (["owner unit gulou.dongjie does not exist in the target catalog"], None)


def test_a_target_without_the_matter_of_the_case_is_refused(govflow, principals):
    outcome = govflow.cases.report(
        principals["citizen.zhang"],
        NewCase(channel="app", description="有人在绿地上乱搭乱建", category="land.illegal_land_use", **DONGJIE),
    )
    case_id = str(outcome.case_id)
    assert case_row(govflow, case_id).matter == "land.illegal_land_use"
    catalog = yaml.safe_dump({"matters": [{"code": "land.illegal_land_use", "remove": True}]}).encode()
    deploy(govflow, gulou_version("2.0.0", catalog_DOT_yaml=catalog))
    assert refused(govflow, case_id, "2.0.0") == ["matter land.illegal_land_use does not exist in the target catalog"]


# -- the steps of the case -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("element", "reasons"),
    [
        (
            "sign_for",  # open now; its boundary-event wrapper goes with it
            [
                "open step sign_for of intake does not exist in the target",
                "planned step sign_for.BoundaryEventJoin of intake does not exist in the target",
                "taken step sign_for.BoundaryEventSplit of intake does not exist in the target",
            ],
        ),
        ("case_reported", ["taken step case_reported of frontline_disposal does not exist in the target"]),
        (
            "handle",  # planned after sign-for, with its boundary-event wrapper
            [
                "planned step handle of intake does not exist in the target",
                "planned step handle.BoundaryEventSplit of intake does not exist in the target",
            ],
        ),
    ],
)
def test_a_target_without_a_step_of_the_case_is_refused(govflow, case, diagram, element, reasons):
    renamed = re.sub(rf'(id|Ref)="{element}"', rf'\1="{element}_v2"', diagram)
    deploy_diagram(govflow, "2.0.0", renamed)
    assert refused(govflow, case, "2.0.0") == reasons


def test_a_target_without_the_sub_process_of_the_case_is_refused(govflow, case, diagram):
    deploy_diagram(govflow, "2.0.0", re.sub(r'(id|Ref)="intake"', r'\1="intake_v2"', diagram))
    assert refused(govflow, case, "2.0.0") == [
        "(sub-)process intake does not exist in the target",
        "open step intake of frontline_disposal does not exist in the target",
        "taken step intake.BoundaryEventSplit of frontline_disposal does not exist in the target",
    ]


def test_an_open_step_that_changes_kind_is_refused(govflow, case, diagram):
    root = etree.fromstring(diagram.encode())
    [intake] = root.xpath('//bpmn:subProcess[@id="intake"]', namespaces={"bpmn": BPMN})
    intake.tag = f"{{{BPMN}}}transaction"  # the same sub-process, now a transaction
    deploy_diagram(govflow, "2.0.0", etree.tostring(root, encoding="unicode"))
    assert refused(govflow, case, "2.0.0") == [
        "open step intake changes kind (SubWorkflowTask → TransactionSubprocess)"
    ]


def test_an_open_task_that_changes_its_action_is_refused(govflow, case, diagram):
    start = diagram.index('<bpmn:userTask id="sign_for"')
    end = diagram.index("</bpmn:userTask>", start)
    sign_for = diagram[start:end]
    changed = diagram[:start] + replace_once(sign_for, 'value="sign_for"', 'value="handle"') + diagram[end:]
    deploy_diagram(govflow, "2.0.0", changed)
    assert refused(govflow, case, "2.0.0") == ["open task sign_for changes its action (sign_for → handle)"]


def test_an_open_task_without_its_form_in_the_target_is_refused(govflow, case, reference_pack):
    """Deploying refuses a user task without a form, so this checks a target built around that guard."""
    target = govflow.packs.compile(gulou_version("2.0.0"))
    target = dataclasses.replace(target, forms={k: v for k, v in target.forms.items() if k != "sign_for"})
    reasons, restored = check_case(case_row(govflow, case), reference_pack, target)
    assert (reasons, restored) == (["open task sign_for has no form 'sign_for' in the target"], None)


def test_an_open_step_with_other_outgoing_steps_is_refused(govflow, case, diagram):
    changed = replace_once(
        diagram,
        '<bpmn:sequenceFlow id="flow_signed" sourceRef="sign_for" targetRef="handle_join" />',
        '<bpmn:sequenceFlow id="flow_signed" sourceRef="sign_for" targetRef="signed_gw" />'
        '<bpmn:exclusiveGateway id="signed_gw"><bpmn:incoming>flow_signed</bpmn:incoming>'
        "<bpmn:outgoing>flow_signed_on</bpmn:outgoing></bpmn:exclusiveGateway>"
        '<bpmn:sequenceFlow id="flow_signed_on" sourceRef="signed_gw" targetRef="handle_join" />',
    )
    changed = replace_once(
        changed,
        "<bpmn:incoming>flow_signed</bpmn:incoming>\n        <bpmn:incoming>flow_rework</bpmn:incoming>",
        "<bpmn:incoming>flow_signed_on</bpmn:incoming>\n        <bpmn:incoming>flow_rework</bpmn:incoming>",
    )
    deploy_diagram(govflow, "2.0.0", changed)
    assert refused(govflow, case, "2.0.0") == [
        "open step sign_for has different outgoing steps in the target "
        "(handle_join, sign_for.BoundaryEventJoin → sign_for.BoundaryEventJoin, signed_gw)"
    ]


class _Unrestorable:
    """A target runtime on which Spiff fails to restore the state (what the checks before cannot foresee)."""

    def __init__(self, runtime) -> None:
        self.runtime = runtime

    def load(self, blob, process_id):
        raise KeyError("task spec 'sign_for' has no parent")


def test_a_state_that_does_not_restore_under_the_target_is_refused(govflow, case, reference_pack):
    target = govflow.packs.compile(gulou_version("2.0.0"))
    assert check_case(case_row(govflow, case), reference_pack, target)[0] == []  # safe as such
    broken = dataclasses.replace(target, runtime=_Unrestorable(target.runtime))
    reasons, restored = check_case(case_row(govflow, case), reference_pack, broken)
    assert restored is None
    assert reasons == ["the state does not restore under the target: KeyError: \"task spec 'sign_for' has no parent\""]


def test_steps_after_the_open_ones_may_change(govflow, case, diagram):
    """The control: a target that changes only what comes later takes the case."""
    changed = replace_once(diagram, '<bpmn:userTask id="review" name="', '<bpmn:userTask id="review" name="(v2) ')
    deploy_diagram(govflow, "2.0.0", changed)
    report = migrate(govflow.uow, govflow.packs, "reference", "1.0.0", "2.0.0", actor="ops", now=govflow.clock.now())
    assert (report.migrated, report.refused) == ([case], {})
    assert case_row(govflow, case).pack_version == "2.0.0"


def test_a_case_whose_state_does_not_load_is_refused_and_the_others_still_move(govflow, principals, case):
    healthy = str(
        govflow.cases.report(
            principals["citizen.zhang"], NewCase(channel="app", description="东街口路面有个大坑", **DONGJIE)
        ).case_id
    )
    with govflow.db.begin() as conn:
        conn.execute(update(CaseRow).where(CaseRow.id == uuid.UUID(case)).values(state=b"not a workflow"))
    govflow.packs.deploy(govflow.packs.compile(gulou_version("1.1.0")), actor="tests", now=govflow.clock.now())
    report = migrate(govflow.uow, govflow.packs, "reference", "1.0.0", "1.1.0", actor="ops", now=govflow.clock.now())
    assert report.migrated == [healthy]
    [reason] = report.refused[case]
    assert reason.startswith(
        "the stored state does not load under reference 1.0.0: the stored workflow state is unreadable"
    )
    assert (case_row(govflow, case).pack_version, case_row(govflow, healthy).pack_version) == ("1.0.0", "1.1.0")
