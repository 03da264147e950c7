"""Hostile and broken diagrams: compile_diagrams / parse_xml_safely / load_pack refuse them
with the file, line and element at fault; the reference diagram compiles cleanly."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

from govflow.engine.cache import Cache
from govflow.engine.model.errors import PackError
from govflow.engine.model.lifecycle import Stage
from govflow.engine.packs.loader import load_pack
from govflow.engine.workflow import bpmn
from govflow.engine.workflow.bpmn import PackIssueError, compile_diagrams, parse_xml_safely
from govflow.settings import REFERENCE_PACK

REF_NAME = "processes/frontline_disposal.bpmn"
REF = (REFERENCE_PACK / REF_NAME).read_bytes()
PASSWD_MARK = Path("/etc/passwd").read_text().splitlines()[0] if Path("/etc/passwd").exists() else "root:x:0:0"
STAGES = [s.value for s in Stage]

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
    ' xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">\n'
)


def one_task(task_xml: str) -> bytes:
    """start -> <task id="t"> -> end; ``task_xml`` is the task element without its flows."""
    task_xml = task_xml.replace("FLOWS", "<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>")
    return (
        HEAD + '  <bpmn:process id="p" isExecutable="true">\n'
        '    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>\n'
        '    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />\n'
        f"    {task_xml}\n"
        '    <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e" />\n'
        '    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>\n'
        "  </bpmn:process>\n</bpmn:definitions>\n"
    ).encode()


def script_diagram(script: str) -> bytes:
    return one_task(f'<bpmn:scriptTask id="t">FLOWS<bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>')


@pytest.fixture(scope="module")
def compile_one(reference_pack):
    def run(content: bytes, name: str = "processes/x.bpmn"):
        return compile_diagrams({name: content}, forms=reference_pack.forms, stages=STAGES)

    return run


def line_of(content: bytes, needle: bytes) -> int:
    return content[: content.index(needle)].count(b"\n") + 1


def only_issue(result):
    diagrams, issues = result
    assert diagrams is None
    assert len(issues) == 1, issues
    return issues[0]


def test_reference_diagram_compiles_cleanly(compile_one):
    diagrams, issues = compile_one(REF, REF_NAME)
    assert issues == []
    assert set(diagrams.specs) == {"frontline_disposal"}
    assert "intake" in diagrams.subprocess_specs["frontline_disposal"]
    assert set(diagrams.user_tasks) == {
        "dispatch",
        "sign_for",
        "supervise",
        "handle",
        "report_in",
        "consult",
        "dispose",
        "return_visit",
        "answer_rejection",
        "rule_dispute",
        "rule_responsibility",
        "review",
        "evaluate",
        "city_dispatch",
        "city_supervise",
        "city_rule_dispute",
        "city_urge_ruling",
        "city_urge_return_visit",
    }
    city_tasks = ("city_dispatch", "city_supervise", "city_rule_dispute", "city_urge_ruling", "city_urge_return_visit")
    assert {diagrams.user_tasks[t].assignee for t in city_tasks} == {"city"}
    assert diagrams.user_tasks["review"].assignee == "owner"
    roles = diagrams.roles_of("frontline_disposal")
    assert (roles.withdrawal_signal, roles.withdrawn_ends) == ("withdrawn", {"case_withdrawn"})
    assert (roles.call_out_signal, roles.call_out_variable) == ("call_out", "called")
    assert (roles.report_in_task, roles.report_in_item) == ("report_in", "department")
    assert (roles.evaluation_task, roles.rating_field) == ("evaluate", "satisfaction")
    assert roles.dispatch_tasks == {"dispatch", "supervise", "city_dispatch", "city_supervise"}


# -- XML safety -----------------------------------------------------------------------------
def test_xxe_external_entity_refused_and_never_read(compile_one):
    hostile = REF.replace(
        b"<bpmn:definitions", b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<bpmn:definitions', 1
    ).replace(b'name="Handle', b'name="&e; Handle', 1)
    with pytest.raises(PackIssueError) as info:
        parse_xml_safely(hostile, "evil.bpmn")
    assert info.value.issue.file == "evil.bpmn" and info.value.issue.line == 1
    issue = only_issue(compile_one(hostile))
    assert "DOCTYPE" in issue.message and issue.file == "processes/x.bpmn"
    assert PASSWD_MARK not in str(issue) and PASSWD_MARK not in str(info.value)


def test_xxe_in_utf16_still_refused_by_parsed_doctype():
    hostile = (
        '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<a>&e;</a>'
    ).encode("utf-16")
    assert b"<!doctype" not in hostile.lower()  # the byte sniff cannot see it ...
    with pytest.raises(PackIssueError) as info:  # ... the parsed doctype check does
        parse_xml_safely(hostile, "evil.bpmn")
    assert "DOCTYPE" in info.value.issue.message
    assert PASSWD_MARK not in str(info.value)


def test_doctype_after_long_prologue_refused():
    hostile = b'<?xml version="1.0"?>\n<!--' + b"x" * 5000 + b'-->\n<!DOCTYPE a SYSTEM "file:///etc/passwd">\n<a/>'
    with pytest.raises(PackIssueError, match="DOCTYPE"):
        parse_xml_safely(hostile, "evil.bpmn")


def test_billion_laughs_refused(compile_one):
    lol = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    hostile = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [' + "".join(lol) + "]>\n<lolz>&lol9;</lolz>").encode()
    issue = only_issue(compile_one(hostile))
    assert "ENTITY" in issue.message
    with pytest.raises(PackIssueError):
        parse_xml_safely(hostile, "lol.bpmn")


def test_malformed_xml_reports_its_line(compile_one):
    broken = REF.replace(
        b'<bpmn:endEvent id="case_closed" name="Closed \xe7\xbb\x93\xe6\xa1\x88">',
        b'<bpmn:endEvent id="case_closed">\n<unclosed>',
        1,
    )
    assert broken != REF
    issue = only_issue(compile_one(broken))
    assert issue.message.startswith("malformed XML") and issue.file == "processes/x.bpmn"
    # libxml2 reports the mismatch where the enclosing end tag turns up, naming the open tag's line
    assert issue.line == line_of(broken, b"</bpmn:endEvent>\n  </bpmn:process>")
    assert f"unclosed line {line_of(broken, b'<unclosed>')}" in issue.message
    # an unescaped "<" in a condition is reported on its own line
    broken = REF.replace(b"owner_unit is not None", b"owner_unit < 3", 1)
    assert only_issue(compile_one(broken)).line == line_of(broken, b"owner_unit < 3")
    assert only_issue(compile_one(b"<a>\n<b>\n</a>")).line == 3


@pytest.mark.parametrize(
    "old, new, needle",
    [
        (b'<bpmn:userTask id="handle"', b'<bpmn:userTask colour="red" id="handle"', b"colour="),
        (
            b'<bpmn:endEvent id="case_closed"',
            b'<bpmn:bogus id="x"/>\n    <bpmn:endEvent id="case_closed"',
            b"<bpmn:bogus",
        ),
    ],
)
def test_schema_error_reported_with_file_and_line(compile_one, old, new, needle):
    broken = REF.replace(old, new, 1)
    issue = only_issue(compile_one(broken, "processes/broken.bpmn"))
    assert issue.message.startswith("schema:")
    assert issue.file == "processes/broken.bpmn"
    assert issue.line == line_of(broken, needle)


@pytest.mark.parametrize("reserved", ["Start", "End"])
def test_reserved_element_ids_refused(compile_one, reserved):
    broken = REF.replace(b'"case_closed"', f'"{reserved}"'.encode())
    issue = only_issue(compile_one(broken))
    assert issue.element == reserved and reserved in issue.message
    assert issue.line == line_of(broken, f'<bpmn:endEvent id="{reserved}"'.encode())


# -- scripts and expressions ------------------------------------------------------------------
@pytest.mark.parametrize(
    "script, reason",
    [
        ("import os\nos.system('id')", "import"),
        ("from os import path", "import"),
        ("x = ().__class__.__bases__[0].__subclasses__()", "__class__"),
        ("while True:\n    pass", "while"),
        ("def f():\n    return 1", "function"),
        ("x = __import__('os')", "__import__"),
    ],
)
def test_hostile_script_task_refused_at_validation(compile_one, script, reason):
    content = script_diagram(script)
    issue = only_issue(compile_one(content))
    assert reason in issue.message and "unsafe or invalid script" in issue.message
    assert (issue.file, issue.element) == ("processes/x.bpmn", "t")
    assert issue.line == line_of(content, b"<bpmn:script>")


def test_open_compiles_statically_but_is_not_a_builtin(compile_one):
    # open() is only a name to the static check; the sandbox has no such builtin (see test_sandbox)
    diagrams, issues = compile_one(script_diagram("x = open('/etc/passwd').read()"))
    assert issues == [] and "p" in diagrams.specs


def test_hostile_gateway_condition_refused(compile_one):
    broken = REF.replace(b"owner_unit is not None", b"__import__('os').system('id') == 0")
    issue = only_issue(compile_one(broken))
    assert "unsafe or invalid expression" in issue.message and "__import__" in issue.message
    assert issue.element == "flow_routed"
    assert issue.line == line_of(broken, b"<bpmn:conditionExpression>__import__")


def test_hostile_timer_expression_refused(compile_one):
    content = (
        HEAD + '<bpmn:process id="p" isExecutable="true"><bpmn:intermediateCatchEvent id="wait">'
        '<bpmn:timerEventDefinition id="td"><bpmn:timeDuration>().__class__</bpmn:timeDuration>'
        "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent></bpmn:process></bpmn:definitions>"
    ).encode()
    assert only_issue(compile_one(content)).element == "td"


def service_diagram(param: str) -> bytes:
    return one_task(
        '<bpmn:serviceTask id="t"><bpmn:extensionElements>'
        '<spiffworkflow:serviceTaskOperator id="double" resultVariable="out"><spiffworkflow:parameters>'
        f'<spiffworkflow:parameter id="x" type="int" value={quoteattr(param)} />'
        "</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>FLOWS</bpmn:serviceTask>"
    )


def test_service_task_parameter_expression_is_checked(compile_one):
    diagrams, issues = compile_one(service_diagram("n + 1"))
    assert issues == [] and "p" in diagrams.specs
    content = service_diagram("__import__('os').system('id')")
    issue = only_issue(compile_one(content))
    assert "__import__" in issue.message and issue.element == "x"
    assert issue.line == line_of(content, b"<spiffworkflow:parameter ")


# -- user tasks --------------------------------------------------------------------------------
def test_user_task_without_properties_refused(compile_one):
    start = REF.index(b'<bpmn:userTask id="handle"')
    ext_start = REF.index(b"<bpmn:extensionElements>", start)
    ext_end = REF.index(b"</bpmn:extensionElements>", start) + len(b"</bpmn:extensionElements>")
    broken = REF[:ext_start] + REF[ext_end:]
    issue = only_issue(compile_one(broken))
    assert issue.element == "handle"
    assert all(k in issue.message for k in ("stage", "assignee", "action"))
    assert issue.line == line_of(broken, b'<bpmn:userTask id="handle"')


def test_user_task_missing_one_property_names_it(compile_one):
    broken = REF.replace(b'<spiffworkflow:property name="action" value="handle" />', b"", 1)
    issue = only_issue(compile_one(broken))
    assert issue.element == "handle" and "action" in issue.message and "stage" not in issue.message


@pytest.mark.parametrize(
    "old, new, words",
    [
        (b'name="assignee" value="reporter"', b'name="assignee" value="mayor"', "assignee 'mayor'"),
        (b'name="stage" value="reviewed"', b'name="stage" value="limbo"', "stage 'limbo'"),
        (b'name="action" value="evaluate"', b'name="action" value="nope"', "form named 'nope'"),
    ],
)
def test_user_task_unknown_values_refused(compile_one, old, new, words):
    issue = only_issue(compile_one(REF.replace(old, new, 1)))
    assert issue.element == "evaluate" and words in issue.message


# -- structure ---------------------------------------------------------------------------------
def test_dangling_target_ref_is_an_issue_not_an_exception(compile_one):
    broken = REF.replace(b'sourceRef="evaluate" targetRef="evaluation_gw"', b'sourceRef="evaluate" targetRef="nowhere"')
    issue = only_issue(compile_one(broken))
    assert issue.file == "processes/x.bpmn" and issue.element == "flow_to_evaluation_gw"
    assert "nowhere" in issue.message
    assert issue.line == line_of(broken, b'targetRef="nowhere"')


def test_spiff_parse_error_surfaces_as_issue(compile_one):
    # schema-valid and every reference resolves, but the call activity calls an unknown process
    content = one_task('<bpmn:callActivity id="t" calledElement="ghost">FLOWS</bpmn:callActivity>')
    issue = only_issue(compile_one(content))
    assert issue.file == "processes/x.bpmn" and "ghost" in issue.message and issue.element == "p"


def test_oversized_file_refused(compile_one):
    big = REF.replace(b"</bpmn:definitions>", b"<!--" + b"x" * bpmn.MAX_DIAGRAM_BYTES + b"--></bpmn:definitions>")
    issue = only_issue(compile_one(big))
    assert "larger than" in issue.message and issue.file == "processes/x.bpmn"


def test_too_many_flow_nodes_refused(compile_one):
    def nodes(n: int) -> bytes:
        tasks = "".join(f'<bpmn:task id="t{i}"/>' for i in range(n))
        return (HEAD + f'<bpmn:process id="p" isExecutable="true">{tasks}</bpmn:process></bpmn:definitions>').encode()

    assert not any("flow nodes" in i.message for i in compile_one(nodes(bpmn.MAX_FLOW_NODES))[1])
    issue = only_issue(compile_one(nodes(bpmn.MAX_FLOW_NODES + 1)))
    assert f"{bpmn.MAX_FLOW_NODES + 1} flow nodes" in issue.message


def test_every_bad_file_is_reported_and_nothing_is_half_loaded(compile_one, reference_pack):
    files = {REF_NAME: REF, "processes/a.bpmn": script_diagram("import os"), "processes/b.bpmn": b"<oops"}
    diagrams, issues = compile_diagrams(files, forms=reference_pack.forms, stages=STAGES)
    assert diagrams is None
    assert {i.file for i in issues} == {"processes/a.bpmn", "processes/b.bpmn"}


def test_load_pack_reports_diagram_issues_with_file_line_and_element(reference_files):
    files = dict(reference_files)
    files[REF_NAME] = REF.replace(b"review_approved is True", b"().__class__ is True")
    with pytest.raises(PackError) as info:
        load_pack(files)
    [issue] = info.value.issues
    assert (issue.file, issue.element) == (REF_NAME, "flow_approved")
    assert issue.line == line_of(files[REF_NAME], b"<bpmn:conditionExpression>().__class__")


def test_compiled_specs_are_cached_by_content_hash(reference_pack):
    cache = Cache("diagrams")
    files = {REF_NAME: REF}
    first, issues = compile_diagrams(files, forms=reference_pack.forms, stages=STAGES, cache=cache)
    again, _ = compile_diagrams(dict(files), forms=reference_pack.forms, stages=STAGES, cache=cache)
    assert issues == [] and again is first
    changed = {name: body.replace(b'name="Sign for', b'name="Sign for now') for name, body in files.items()}
    other, _ = compile_diagrams(changed, forms=reference_pack.forms, stages=STAGES, cache=cache)
    assert other is not first and other.user_tasks["sign_for"].title.startswith("Sign for now")
    assert cache.stats.builds == 2
    uncached, _ = compile_diagrams(files, forms=reference_pack.forms, stages=STAGES)
    assert uncached is not first  # no cache given: nothing is kept between calls
