"""Step definitions for frontline.feature, against the real API and database."""

from __future__ import annotations

import shutil

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from typer.testing import CliRunner

from govflow.cli import app as cli
from govflow.settings import REFERENCE_PACK

scenarios("frontline.feature")

# Every scenario runs once per database back-end (SQLite, and PostgreSQL when configured).
pytestmark = pytest.mark.usefixtures("database")


@given(
    parsers.parse('a copy of the reference pack whose diagram has a script task running "{script}"'),
    target_fixture="ctx",
)
def _hostile_pack(tmp_path, script):
    pack = tmp_path / "pack"
    pack.mkdir()
    for entry in ("pack.yaml", "catalog.yaml", "boundaries.geojson", "processes", "policies"):
        source = REFERENCE_PACK / entry
        if source.is_dir():
            shutil.copytree(source, pack / entry)
        else:
            shutil.copy(source, pack / entry)
    diagram = pack / "processes" / "frontline_disposal.bpmn"
    xml = diagram.read_text(encoding="utf-8")
    xml = xml.replace(
        '<bpmn:sequenceFlow id="flow_to_intake" sourceRef="case_reported" targetRef="intake" />',
        '<bpmn:sequenceFlow id="flow_to_intake" sourceRef="case_reported" targetRef="hostile_script" />\n'
        f'    <bpmn:scriptTask id="hostile_script"><bpmn:incoming>flow_to_intake</bpmn:incoming>'
        f"<bpmn:outgoing>flow_after_script</bpmn:outgoing><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>\n"
        '    <bpmn:sequenceFlow id="flow_after_script" sourceRef="hostile_script" targetRef="intake" />',
    ).replace(
        "<bpmn:incoming>flow_to_intake</bpmn:incoming>\n      <bpmn:incoming>flow_sent_back</bpmn:incoming>",
        "<bpmn:incoming>flow_after_script</bpmn:incoming>\n      <bpmn:incoming>flow_sent_back</bpmn:incoming>",
    )
    diagram.write_text(xml, encoding="utf-8")
    return {"pack": pack}


@when(parsers.parse('the pack is validated with "govflow pack validate"'))
def _validate(ctx):
    ctx["result"] = CliRunner().invoke(cli, ["pack", "validate", str(ctx["pack"])])


@then(parsers.parse('validation fails naming "{file}" and the element "{element}"'))
def _fails(ctx, file, element):
    result = ctx["result"]
    assert result.exit_code == 1, result.output
    assert f"{file}:" in result.output and f"[{element}]" in result.output


@then(parsers.parse('the message says "{text}"'))
def _message(ctx, text):
    assert text in ctx["result"].output
