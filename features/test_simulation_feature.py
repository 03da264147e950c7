"""simulation.feature: `govflow simulate` through the command line, on small scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from typer.testing import CliRunner

from govflow.cli import app
from govflow.settings import REFERENCE_PACK

scenarios("simulation.feature")

SCENARIO = """\
period: {start: 2026-11-02, days: 1, drain_days: 3}
arrivals:
  per_day: 20
  bursts: []
  unlocated: 0
  hour_of_day: [0, 0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0]
matters: {road.*: 1}
streets: {gulou.dongjie: 1}
capacity:
  default: {people: 1, hours: working}
  duty_steps: [sign_for]
  units: {gulou.cc: {people: 2, hours: always}}
handling:
  steps:
    sign_for: {dist: exponential, mean: 4}
    handle: {dist: lognormal, mean: 15, sd: 10}
    review: {dist: exponential, mean: 5}
decisions: {call_out: 0, review_send_back: 0}
residents: {silent: 0, delay: {dist: exponential, mean: 60}}
"""
MANIFEST = """\
name: reference
version: "{version}"
district: gulou
extends: reference
description: {description}
process: frontline_disposal
"""


def simulate(*args: object) -> object:
    result = CliRunner().invoke(app, ["simulate", *map(str, args)])
    return result


def version(folder: Path, number: str, description: str, settings: str = "", scenario: str | None = None) -> Path:
    folder.mkdir()
    (folder / "pack.yaml").write_text(MANIFEST.format(version=number, description=description) + settings, "utf-8")
    if scenario is not None:
        (folder / "simulation.yaml").write_text(scenario, "utf-8")
    return folder


def row(table: str, figure: str) -> list[str]:
    """The cells of a comparison row: figure, A ± h, B ± h, B - A ± h [*]."""
    [line] = [line for line in table.splitlines() if line.split() and line.split()[0] == figure]
    return line.split()


@pytest.fixture
def ctx(tmp_path) -> dict:
    return {"tmp": tmp_path}


@given(parsers.parse("a small scenario: {what}"))
def _scenario(ctx):
    ctx["scenario"] = ctx["tmp"] / "scenario.yaml"
    ctx["scenario"].write_text(SCENARIO, "utf-8")


@given("a version of the reference pack whose sign-for limit is 2 minutes instead of 10")
def _short_sign_for(ctx):
    limit = "{sign_for: {amount: 2, unit: minutes}}"
    settings = f"settings:\n  deadlines:\n    simple: {limit}\n    complex: {limit}\n    difficult: {limit}\n"
    ctx["b"] = version(ctx["tmp"] / "short", "1.1.0", "sign for within 2 minutes", settings)


@when(parsers.parse("the policy officer compares it with the reference pack over {n:d} replications"))
def _compare_reference(ctx, n):
    html = ctx["tmp"] / "report.html"
    result = simulate(
        "--pack", REFERENCE_PACK, "--compare", ctx["b"], "--scenario", ctx["scenario"], "--replications", n,
        "--html", html,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ctx["result"], ctx["html"] = result, html


@then("the new version has more escalations, the 95% interval of the difference above zero")
def _more_escalations(ctx):
    table = ctx["result"].stdout
    assert "3 replications (seeds 7, 8, 9)" in table
    cells = row(table, "escalations")  # escalations  a ± h  b ± h  d ± h  *
    a, b, difference, half = float(cells[1]), float(cells[4]), float(cells[7]), float(cells[9])
    assert b > a and difference - half > 0 and cells[-1] == "*", table
    assert "B - A" in ctx["html"].read_text("utf-8")


@given(parsers.parse("the scenario's Dongjie street has {people:d} person for its daytime work"))
def _one_person(ctx, people):
    text = SCENARIO.replace("units: {gulou.cc:", f"units: {{gulou.dongjie: {{people: {people}}}, gulou.cc:")
    ctx["a"] = version(ctx["tmp"] / "one", "1.0.1", "one person at Dongjie", scenario=text)
    ctx["a_scenario"] = text


@given(parsers.parse("a version whose scenario gives Dongjie street {people:d} people"))
def _two_people(ctx, people):
    text = ctx["a_scenario"].replace("gulou.dongjie: {people: 1}", f"gulou.dongjie: {{people: {people}}}")
    assert text != ctx["a_scenario"]
    ctx["b"] = version(ctx["tmp"] / "two", "1.0.2", "two people at Dongjie", scenario=text)


@when("the policy officer compares the two versions")
def _compare_versions(ctx):
    result = simulate(
        "--pack", ctx["a"], "--compare", ctx["b"], "--replications", 1, "--jobs", 1, "--html", ctx["tmp"] / "r.html"
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ctx["result"] = result


@then("Dongjie street's queue is shorter in the version with 2 people")
def _shorter_queue(ctx):
    table = ctx["result"].stdout
    queue = row(table, "mean_queue:gulou.dongjie")
    wait = row(table, "mean_wait_minutes:gulou.dongjie")
    assert float(queue[4]) < float(queue[1]) and float(queue[7]) < 0, table
    assert float(wait[4]) < float(wait[1]), table


@when(parsers.parse("the policy officer simulates the reference pack twice with seed {seed:d}"))
def _twice(ctx, seed):
    runs = []
    for n in (1, 2):
        html = ctx["tmp"] / f"run{n}.html"
        result = simulate("--scenario", ctx["scenario"], "--seed", seed, "--html", html)
        assert result.exit_code == 0, result.output
        runs.append((result.stdout, html.read_bytes()))
    ctx["runs"] = runs


@then("both runs print the same table and write the same HTML report, byte for byte")
def _identical(ctx):
    (table_1, html_1), (table_2, html_2) = ctx["runs"]
    assert table_1 == table_2 and html_1 == html_2
    assert b"<svg" in html_1 and b"<script" not in html_1


@then("the table shows the supervision rates, the steps on time and late, the escalations and the queues")
def _table(ctx):
    table = ctx["runs"][0][0]
    assert "simulation of reference 1.0.0" in table and "seed 11" in table
    for expected in ("bj_response_rate", "completion_rate", "escalated_count", "sign_for", "handle", "escalations:"):
        assert expected in table, expected
    reported = int(table.split("reported ")[1].split(" cases")[0])
    assert 10 <= reported <= 35  # about 20 reports a day
    assert "gulou.dongjie" in table and "busiest hour of the day" in table


@when(parsers.parse('the policy officer simulates with a scenario naming the unit "{unit}" and {days:d} days'))
def _bad(ctx, unit, days):
    text = SCENARIO.replace("days: 1,", f"days: {days},").replace(
        "units: {gulou.cc:", f"units: {{{unit}: {{people: 2}}, gulou.cc:"
    )
    bad = ctx["tmp"] / "bad.yaml"
    bad.write_text(text, "utf-8")
    ctx["result"] = simulate("--scenario", bad, "--html", ctx["tmp"] / "bad.html")
    ctx["bad"] = bad


@then("the command is refused in one line naming the scenario")
def _refused(ctx):
    result = ctx["result"]
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"refused: the scenario {ctx['bad']} is invalid")
    assert not (ctx["tmp"] / "bad.html").exists()  # nothing ran


@then("each issue names the file, the line and the key")
def _issues(ctx):
    lines = ctx["result"].stdout.splitlines()
    assert (
        f"{ctx['bad']}:1: period.days: 3650 (about 10 years) is out of range: a simulation covers 1 to 366 days"
        in lines
    )
    assert any(line.startswith(f"{ctx['bad']}:12: capacity.units.gulou.nowhere: unknown unit") for line in lines), lines
