"""Deploy-time validation: the responsibility list, plugins, decisions and called processes
are checked before a pack can be activated, each issue naming file, line and element."""

from __future__ import annotations

import pytest
import yaml

from govflow.engine.model.errors import PackError
from govflow.engine.model.responsibility import parse_responsibility
from govflow.engine.packs.loader import load_pack

RESP = "policies/responsibility.yaml"


def issues_of(files, **kw):
    with pytest.raises(PackError) as info:
        load_pack(files, **kw)
    return info.value.issues


def with_file(reference_files, name, content: bytes):
    return {**reference_files, name: content}


def test_lookup_prefers_the_exact_entry_and_says_which_matched(reference_pack):
    resp = reference_pack.responsibility
    exact = resp.lookup("road.manhole_cover")
    assert (exact.matched, exact.main) == ("road.manhole_cover", "gulou.cgj")
    assert "gulou.swjt" in exact.cooperating
    grouped = resp.lookup("road.sidewalk_damage")
    assert (grouped.matched, grouped.main, grouped.cooperating) == ("road.*", "gulou.cgj", ("gulou.zjj",))
    assert resp.lookup("nothing.here") is None
    assert all(resp.lookup(code) is not None for code in reference_pack.catalog.matters)


def test_a_matter_without_responsibility_entry_is_refused(reference_files):
    data = yaml.safe_load(reference_files[RESP])
    data["entries"] = [e for e in data["entries"] if not e["matter"].startswith("utility.")]
    issues = issues_of(with_file(reference_files, RESP, yaml.safe_dump(data, allow_unicode=True).encode()))
    utilities = {
        m["code"]
        for m in yaml.safe_load(reference_files["catalog.yaml"])["matters"]
        if m["code"].startswith("utility.")
    }
    assert len(utilities) >= 2 and {(i.file, i.element) for i in issues} == {(RESP, code) for code in utilities}
    assert any(
        i.message
        == "matter utility.gas_leak of catalog.yaml has no responsibility entry (add utility.gas_leak or utility.*)"
        for i in issues
    )


def test_entries_name_lines_and_units_must_be_departments(reference_pack):
    text = (
        "district: gulou\nentries:\n"
        "  - {matter: road.*, main: gulou.cgj}\n"
        "  - matter: road.pothole\n    main: gulou.dongjie\n"
        "  - {matter: road.pothole, main: gulou.cgj}\n"
        "  - {matter: road.nope, main: gulou.nobody, cooperating: [gulou.cc]}\n"
        "  - {matter: road.guardrail, main: gulou.cgj, time_limit: {amount: 0, unit: weeks}}\n"
    )
    _, issues = parse_responsibility(text.encode(), reference_pack.catalog)
    got = {(i.line, i.element, i.message.split(": ", 1)[1]) for i in issues if i.line}
    assert (4, "road.pothole", "main unit gulou.dongjie is a street, not a department") in got
    assert (6, "road.pothole", "matter road.pothole is listed twice (first at line 4)") in got
    assert (7, "road.nope", "matter road.nope is not in catalog.yaml") in got
    assert (7, "road.nope", "main unit 'gulou.nobody' is not a unit of catalog.yaml") in got
    assert (7, "road.nope", "cooperating unit gulou.cc is a command_centre, not a department") in got
    assert any(line == 8 and "time_limit must be" in msg for line, _, msg in got)
    assert any(i.element == "lighting.streetlight_out" and i.line is None for i in issues)  # coverage


def test_missing_responsibility_list_is_refused(reference_files):
    files = {k: v for k, v in reference_files.items() if k != RESP}
    assert [(i.file, i.message) for i in issues_of(files)] == [
        (RESP, "file not found (every matter needs a responsibility entry)")
    ]


def test_a_plugin_that_is_not_installed_is_refused_with_its_line(reference_files):
    text = reference_files["pack.yaml"].decode().replace("plugins: [dispatch]", "plugins: [dispatch, sms_gateway]")
    issues = issues_of(
        with_file(reference_files, "pack.yaml", text.encode()), available_plugins=["dispatch", "calendar"]
    )
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith("plugins:"))
    assert [(i.file, i.line, i.message) for i in issues] == [
        ("pack.yaml", line, "plugin 'sms_gateway' is not installed (installed: calendar, dispatch)")
    ]


def test_disabling_an_unknown_plugin_is_refused(reference_files):
    text = reference_files["pack.yaml"].decode() + "disabled_plugins: [dispach]\n"
    issues = issues_of(
        with_file(reference_files, "pack.yaml", text.encode()), available_plugins=["dispatch", "calendar"]
    )
    assert [i.message for i in issues] == ["plugin 'dispach' is not installed (installed: calendar, dispatch)"]


def test_an_owner_decision_that_no_dmn_defines_is_refused(reference_files):
    text = (
        reference_files["pack.yaml"]
        .decode()
        .replace("settings:", "settings:\n  dispatch: {owner_decision: who_owns}", 1)
    )
    issues = issues_of(with_file(reference_files, "pack.yaml", text.encode()))
    assert [(i.file, i.element) for i in issues] == [("pack.yaml", "who_owns")]
    assert "which no processes/*.dmn or decisions/*.dmn defines (found: none)" in issues[0].message


def test_a_missing_called_process_is_refused(reference_files):
    caller = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="outer" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call_it" />
    <bpmn:callActivity id="call_it" calledElement="not_there"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:callActivity>
    <bpmn:sequenceFlow id="f2" sourceRef="call_it" targetRef="e" />
    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""
    issues = issues_of(with_file(reference_files, "processes/outer.bpmn", caller))
    assert len(issues) == 1 and issues[0].file == "processes/outer.bpmn"
    assert "not_there" in issues[0].message


def test_a_decision_that_does_not_parse_is_refused(reference_files):
    dmn = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="defs" name="x" namespace="x">
  <decision id="broken" name="broken">
    <decisionTable id="t"><input id="i" label="m"><inputExpression id="ie" typeRef="string"><text>matter</text></inputExpression></input>
      <output id="o" name="owner" typeRef="string" />
      <rule id="r"><inputEntry id="r_i"><text>__import__("os")</text></inputEntry><outputEntry id="r_o"><text>"x"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""
    issues = issues_of(with_file(reference_files, "processes/broken.dmn", dmn))
    assert issues[0].file == "processes/broken.dmn" and issues[0].line == 6
    assert "unsafe or invalid expression" in issues[0].message
