"""Diagram roles: what the engine relies on is declared by elements and checked at pack validation."""

from __future__ import annotations

import pytest

from govflow.engine.cases.service import NewCase
from govflow.engine.model.errors import PackError
from govflow.engine.packs.loader import load_pack

REF_NAME = "processes/frontline_disposal.bpmn"


def issues_of(files: dict[str, bytes]) -> list:
    with pytest.raises(PackError) as info:
        load_pack(files)
    return info.value.issues


def with_diagram(reference_files, old: bytes, new: bytes) -> dict[str, bytes]:
    files = dict(reference_files)
    assert old in files[REF_NAME], old
    files[REF_NAME] = files[REF_NAME].replace(old, new, 1)
    return files


def line_of(content: bytes, needle: bytes) -> int:
    return content[: content.index(needle)].count(b"\n") + 1


def test_reference_roles_are_read_from_the_diagram(reference_pack):
    roles = reference_pack.diagrams.roles_of("frontline_disposal")
    assert roles.withdrawal_signal == "withdrawn"
    assert roles.withdrawn_ends == {"case_withdrawn"}
    assert (roles.call_out_signal, roles.call_out_variable, roles.report_in_item) == (
        "call_out",
        "called",
        "department",
    )
    assert (roles.evaluation_task, roles.rating_field) == ("evaluate", "satisfaction")
    assert (roles.return_visit_task, roles.return_visit_field) == ("return_visit", "return_visit")
    assert roles.role_of("return_visit") == "return_visit"


@pytest.mark.parametrize("role", ["withdrawal", "withdrawn"])
def test_a_missing_required_role_is_refused_naming_the_process_and_file(reference_files, role):
    files = with_diagram(reference_files, f'name="role" value="{role}"'.encode(), b'name="note" value="x"')
    [issue] = issues_of(files)
    assert issue.file == REF_NAME and issue.element == "frontline_disposal"
    assert f"declares no element with role {role!r}" in issue.message


def test_a_misspelt_role_is_refused_with_its_line(reference_files):
    files = with_diagram(reference_files, b'name="role" value="withdrawn"', b'name="role" value="withdrawm"')
    messages = [i.message for i in issues_of(files)]
    assert any("unknown role 'withdrawm'" in m and "withdrawal, withdrawn" in m for m in messages)
    [issue] = [i for i in issues_of(files) if "unknown role" in i.message]
    assert issue.element == "case_withdrawn"
    assert issue.line == line_of(files[REF_NAME], b'<bpmn:endEvent id="case_withdrawn"')


def test_a_role_on_the_wrong_kind_of_element_is_refused(reference_files):
    files = with_diagram(
        reference_files,
        b'<spiffworkflow:property name="action" value="sign_for" />',
        b'<spiffworkflow:property name="action" value="sign_for" />\n'
        b'            <spiffworkflow:property name="role" value="withdrawn" />',
    )
    [issue] = [i for i in issues_of(files) if i.element == "sign_for"]
    assert "role 'withdrawn' belongs on a endEvent, not a userTask" in issue.message


def test_a_role_declared_twice_is_refused(reference_files):
    files = with_diagram(
        reference_files,
        b'<spiffworkflow:property name="action" value="review" />',
        b'<spiffworkflow:property name="action" value="review" />\n'
        b'          <spiffworkflow:property name="role" value="evaluation" />\n'
        b'          <spiffworkflow:property name="rating_field" value="opinion" />',
    )
    [issue] = issues_of(files)
    assert issue.element in ("review", "evaluate") and "role 'evaluation' is declared twice" in issue.message


def test_call_out_without_report_in_is_refused(reference_files):
    files = with_diagram(reference_files, b'name="role" value="report_in"', b'name="note" value="x"')
    [issue] = issues_of(files)
    assert issue.element == "called_out" and "'call_out' and 'report_in' go together" in issue.message


def test_a_report_in_over_another_variable_than_the_call_is_refused(reference_files):
    files = with_diagram(
        reference_files,
        b"<bpmn:loopDataInputRef>called</bpmn:loopDataInputRef>",
        b"<bpmn:loopDataInputRef>calls</bpmn:loopDataInputRef>",
    )
    [issue] = issues_of(files)
    assert issue.element == "report_in" and "iterates 'calls'" in issue.message and "'called'" in issue.message


def test_an_evaluation_rating_field_not_on_the_form_is_refused(reference_files):
    files = with_diagram(
        reference_files, b'name="rating_field" value="satisfaction"', b'name="rating_field" value="stars"'
    )
    [issue] = issues_of(files)
    assert issue.element == "evaluate" and "rating_field 'stars' is not a field of the form 'evaluate'" in issue.message


def test_a_return_visit_rating_field_not_on_the_form_is_refused(reference_files):
    files = with_diagram(
        reference_files, b'name="rating_field" value="return_visit"', b'name="rating_field" value="stars"'
    )
    [issue] = issues_of(files)
    assert issue.element == "return_visit"
    assert "rating_field 'stars' is not a field of the form 'return_visit'" in issue.message


def test_a_return_visit_without_a_rating_field_is_refused(reference_files):
    files = with_diagram(reference_files, b'name="rating_field" value="return_visit"', b'name="note" value="x"')
    [issue] = [i for i in issues_of(files) if i.element == "return_visit"]
    assert "role 'return_visit' needs a rating_field property" in issue.message


def test_a_dispatch_task_whose_form_sets_no_routing_is_refused(reference_files):
    files = with_diagram(
        reference_files,
        b'<spiffworkflow:property name="action" value="sign_for" />',
        b'<spiffworkflow:property name="action" value="sign_for" />\n'
        b'            <spiffworkflow:property name="role" value="dispatch" />',
    )
    [issue] = issues_of(files)
    assert issue.element == "sign_for" and "form 'sign_for' sets neither" in issue.message


def test_an_unknown_record_kind_is_refused(reference_files):
    files = with_diagram(
        reference_files, b'name="record" value="deadline.reminder"', b'name="record" value="deadline.remind"'
    )
    [issue] = issues_of(files)
    assert issue.element == "handle_reminder" and "unknown record kind 'deadline.remind'" in issue.message


def test_renamed_elements_and_signals_work_when_their_roles_are_declared(reference_files, govflow, principals):
    """A district may rename the withdrawal signal and end event: the engine follows the declared roles
    (before, a renamed end event showed withdrawn cases as "evaluated")."""
    files = dict(reference_files)
    body = files[REF_NAME].replace(b'name="withdrawn" />', b'name="reporter_withdrew" />')
    files[REF_NAME] = body.replace(b"case_withdrawn", b"ended_by_reporter")
    files["pack.yaml"] = files["pack.yaml"].replace(b'version: "1.0.0"', b'version: "9.0.0"')
    pack = govflow.packs.compile(files)
    assert pack.diagrams.roles_of("frontline_disposal").withdrawal_signal == "reporter_withdrew"
    govflow.packs.deploy(pack, actor="tests", now=govflow.clock.now())
    citizen = principals["citizen.zhang"]
    case = govflow.cases.report(
        citizen, NewCase(channel="app", description="东街口井盖没了", lat=26.0865, lng=119.3025)
    )
    assert govflow.uow.read_row(case.case_id).pack_version == "9.0.0"
    outcome = govflow.cases.withdraw(citizen, str(case.case_id), "已经修好了")
    assert outcome.status == "withdrawn"
