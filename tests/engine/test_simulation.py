"""The policy simulator: scenario checks, arrivals, the run's figures against the rates API, history.

Runs are small (a day of a few dozen reports in one street) on throw-away SQLite databases;
features/simulation.feature drives the command line.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from govflow.bootstrap import build
from govflow.cli import app as cli
from govflow.engine.model.clock import ManualClock
from govflow.engine.simulation import report
from govflow.engine.simulation.arrivals import generate
from govflow.engine.simulation.history import history_defaults
from govflow.engine.simulation.runner import Simulation
from govflow.engine.simulation.scenario import merge, parse_scenario, read_scenario
from govflow.settings import REFERENCE_PACK

TZ = ZoneInfo("Asia/Shanghai")
SMALL = {
    "period": {"start": "2026-11-02", "days": 1, "drain_days": 2},
    "arrivals": {"per_day": 16, "bursts": [], "unlocated": 0.1},
    "matters": {"road.*": 1},
    "streets": {"gulou.nanjie": 1},
    "decisions": {"call_out": 0.5, "review_send_back": 0},
    "residents": {"silent": 0.3, "delay": {"dist": "exponential", "mean": 60}},
}
#: people who do everything the scenario lets them: rejected calls disputed and referred to the
#: standing meeting, withdrawals, dissatisfied residents reopening, mutual evaluations of the calls
LIVELY = merge(
    SMALL,
    {
        "arrivals": {"per_day": 24},
        "decisions": {"call_out": 0.6, "maintain_rejected_call": 1, "refer_dispute": 1},
        "departments": {"default": {"reject": 0.4}},
        "residents": {
            "ratings": {1: 1, 5: 1},
            "silent": 0,
            "reporters": 6,
            "withdraw": 0.25,
            "withdraw_delay": {"dist": "fixed", "value": 5},
            "reopen": 1,
        },
        "evaluations": {"accuracy": {2: 1}, "silent": 0},
    },
)


def issues_of(raw, catalog, steps=None):
    scenario, issues = parse_scenario(raw, catalog, steps=steps)
    assert scenario is None
    return [i.message for i in issues]


def test_a_bad_scenario_is_refused_with_every_issue(reference_pack):
    catalog = reference_pack.catalog
    messages = issues_of(
        {
            "period": {"days": 3650},
            "arrivals": {"per_day": -5, "channels": {"pigeon": 1}},
            "matters": {"road.nothing": 2, "zzz.*": 1},
            "streets": {"gulou.cgj": 1},
            "capacity": {"units": {"gulou.nowhere": {"people": 2}, "gulou.dongjie": {"people": 0, "hours": "night"}}},
            "handling": {"steps": {"sign_in": {"dist": "exponential", "mean": 3}, "handle": {"dist": "gamma"}}},
            "departments": {"units": {"gulou.dongjie": {"reject": 1.5}}},
            "residents": {"ratings": {"6": 1}},
            "weather": {},
        },
        catalog,
        steps=list(reference_pack.diagrams.user_tasks),
    )
    expected = [
        "weather: unknown section",
        "period.days: 3650 (about 10 years) is out of range: a simulation covers 1 to 366 days",
        "arrivals.per_day: -5 is negative",
        "arrivals.channels.pigeon: unknown channel",
        "matters.road.nothing: unknown matter (not in catalog.yaml)",
        "matters.zzz.*: the pattern matches no matter of the catalog",
        "streets.gulou.cgj: unknown street (not in catalog.yaml)",
        "capacity.units.gulou.nowhere: unknown unit (not in catalog.yaml of gulou)",
        "capacity.units.gulou.dongjie.people: 0 is out of range: 1 to 1000 people",
        "capacity.units.gulou.dongjie.hours: one of working, always, not 'night'",
        "handling.steps.sign_in: unknown step: no user task of the diagrams has this id",
        "handling.steps.handle: must be a distribution of minutes",
        "departments.units.gulou.dongjie: not a department of catalog.yaml (gulou)",
        "residents.ratings.6: a score is 1 to 5",
    ]
    for prefix in expected:
        assert any(m.startswith(prefix) for m in messages), (prefix, messages)


def test_the_people_s_keys_are_checked_with_their_lines(reference_pack):
    text = (
        "decisions: {refer_dispute: 1.5}\n"
        "residents:\n"
        "  reporters: 0\n"
        "  withdraw: -0.1\n"
        "  withdraw_delay: {dist: exponential}\n"
        "  reopen: 2\n"
        "  mood: 3\n"
        "evaluations:\n"
        "  accuracy: {7: 1}\n"
        "  kindness: {5: 1}\n"
        "  silent: yes\n"
    )
    data, lines, _ = read_scenario(text, "people.yaml")
    _, issues = parse_scenario(data, reference_pack.catalog, lines=lines, filename="people.yaml")
    assert [str(i) for i in issues] == [
        "people.yaml:1: decisions.refer_dispute: must be a share from 0 to 1, not 1.5",
        "people.yaml:7: residents.mood: unknown key (ratings, silent, delay, reporters, withdraw, withdraw_delay, "
        "reopen)",
        "people.yaml:3: residents.reporters: 0 is out of range: 1 to 20,000 residents who report",
        "people.yaml:4: residents.withdraw: must be a share from 0 to 1, not -0.1",
        "people.yaml:5: residents.withdraw_delay.mean: must be a number from 0 to 525600",
        "people.yaml:6: residents.reopen: must be a share from 0 to 1, not 2",
        "people.yaml:10: evaluations.kindness: unknown key (report_in, disposal, accuracy, silent)",
        "people.yaml:9: evaluations.accuracy.7: a score is 1 to 5",
        "people.yaml:9: evaluations.accuracy: every weight is zero",
        "people.yaml:11: evaluations.silent: must be a share from 0 to 1, not True",
    ]
    # what a file leaves out is the defaults: everything the people do, at sensible shares
    scenario, issues = parse_scenario({}, reference_pack.catalog)
    assert scenario is not None, issues
    assert scenario.reporters == 1000 and 0 < scenario.withdraw < 0.1 and 0 < scenario.reopen <= 1
    assert 0 < scenario.decisions["refer_dispute"] < 0.5
    assert set(scenario.evaluations) == {"report_in", "disposal", "accuracy"} and scenario.evaluations_silent < 0.5


def test_issues_carry_the_line_of_their_key(reference_pack):
    text = "period:\n  start: 2026-11-02\n  days: 2\narrivals:\n  per_day: 10\n  unlocated: -0.5\n"
    data, lines, _ = read_scenario(text, "what-if.yaml")
    _, issues = parse_scenario(data, reference_pack.catalog, lines=lines, filename="what-if.yaml")
    assert [str(i) for i in issues] == ["what-if.yaml:6: arrivals.unlocated: must be a share from 0 to 1, not -0.5"]


def test_arrivals_follow_the_scenario_and_the_seed(reference_pack):
    raw = merge(
        SMALL,
        {
            "period": {"days": 3},
            "arrivals": {
                "per_day": 200,
                "bursts": [{"name": "storm", "day": 2, "factor": 5, "matters": ["water.waterlogging"]}],
            },
            "matters": {"road.*": 1, "water.waterlogging": 1},
        },
    )
    scenario, issues = parse_scenario(raw, reference_pack.catalog)
    assert scenario is not None, issues
    first, again, other = generate(scenario, TZ, 7), generate(scenario, TZ, 7), generate(scenario, TZ, 8)
    assert first == again and first != other
    by_day = {d: [a for a in first if a.at.astimezone(TZ).day == d] for d in (2, 3, 4)}
    storm = sum(a.matter == "water.waterlogging" for a in by_day[3])
    calm = sum(a.matter == "water.waterlogging" for a in by_day[2])
    assert storm > 3 * calm > 0  # five times the waterlogging on the storm day
    assert {a.street for a in first} == {"gulou.nanjie"}
    assert all(first[i].at <= first[i + 1].at for i in range(len(first) - 1))
    assert 0 < sum(not a.located for a in first) < len(first) * 0.2


@pytest.fixture
def world_factory(tmp_path, sqlite_template):
    worlds = []

    def make(clock):
        path = tmp_path / f"world{len(worlds)}.sqlite3"
        shutil.copy(sqlite_template, path)
        world = build(f"sqlite:///{path}", clock=clock)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.db.dispose()


@pytest.fixture
def finished(world_factory, reference_files):
    """One small run of the reference pack (call-outs, silent residents, unlocated reports)."""
    clock = ManualClock()
    world = world_factory(clock)
    pack = world.packs.compile(reference_files)
    scenario, issues = parse_scenario(SMALL, pack.catalog, steps=list(pack.diagrams.user_tasks))
    assert scenario is not None, issues
    simulation = Simulation(world, clock, pack, scenario, seed=3)
    simulation.prepare()
    simulation.run()
    return simulation


def test_the_figures_are_the_rates_api_s_own(finished):
    """The report folds the simulated record; the rates API reads the projection kept by the commands."""
    figures = report.figures(finished, "reference")
    assert figures.reported == len(finished.arrivals) > 5 and not figures.refused
    principal = finished.principals["gulou.cc"]
    answer = finished.world.oversight.rates(principal, level="district", start="2026-11-01", end="2026-11-30")
    [row] = answer["rows"]
    for name, value in figures.district.items():
        expected = row[name]
        assert value == (None if expected is None else round(expected, 4)), name
    assert figures.district["completion_rate"] is not None
    events = [(k, n) for k, n in figures.escalations.items()]
    assert sum(n for _, n in events) == figures.district["escalated_count"]
    steps = {step for step, _, _ in figures.steps}
    assert {"sign_for", "handle", "review"} <= steps
    assert figures.units["gulou.nanjie"]["completion_rate"] is not None
    called = [c for c in finished.cases.values() if c.called]
    assert called, "half the cases call a department out"


@pytest.fixture
def lively(world_factory, reference_files):
    """A small run whose people do everything: disputes referred, withdrawals, reopening, mutual ratings."""
    clock = ManualClock()
    world = world_factory(clock)
    pack = world.packs.compile(reference_files)
    scenario, issues = parse_scenario(LIVELY, pack.catalog, steps=list(pack.diagrams.user_tasks))
    assert scenario is not None, issues
    simulation = Simulation(world, clock, pack, scenario, seed=5)
    simulation.prepare()
    simulation.run()
    return simulation


def test_the_people_act_through_the_real_commands(lively):
    """Every supervision rate has a figure, equal to the rates API's; each behaviour is on the record."""
    figures = report.figures(lively, "reference")
    assert not figures.refused, figures.refused
    principal = lively.principals["gulou.cc"]
    [row] = lively.world.oversight.rates(principal, level="district", start="2026-11-01", end="2026-11-30")["rows"]
    for name, value in figures.district.items():
        assert value is not None, name  # no "-" in the report: every rate is given by someone
        assert value == round(row[name], 4), name
    assert figures.district["call_accuracy"] == 2.0  # the departments' scores of the scenario
    assert figures.district["reopen_rate"] > 0
    assert figures.statuses.get("withdrawn", 0) == lively.tally.withdrawn > 0
    assert lively.tally.evaluations["report_in"] > 0 and lively.tally.evaluations["disposal"] > 0
    steps = {step: done for step, done, _ in figures.steps}
    assert steps.get("rule_responsibility", 0) > 0  # disputes referred to the standing meeting, who ruled
    reporters = {c.reporter for c in lively.cases.values()}
    assert 1 < len(reporters) <= 6
    with lively.world.db.connect() as conn:
        recorded = {r for (r,) in conn.exec_driver_sql("SELECT DISTINCT reported_by FROM cases")}
        versions = conn.exec_driver_sql("SELECT count(*) FROM pack_versions").scalar()
    assert recorded == reporters
    assert versions > 1  # the meeting's ruling amended the responsibility list: a new version


def test_history_gives_the_defaults_of_a_district(finished):
    raw = history_defaults(finished.world.db, "gulou", TZ)
    assert set(raw["streets"]) == {"gulou.nanjie"} and sum(raw["streets"].values()) <= finished.tally.reported
    assert set(raw["matters"]) <= {m for m in finished.pack.catalog.matters if m.startswith("road.")}
    assert raw["arrivals"]["per_day"] > 0 and sum(raw["arrivals"]["hour_of_day"]) == finished.tally.reported
    assert "handle" in raw["handling"]["steps"] and raw["handling"]["steps"]["handle"]["dist"] == "lognormal"
    assert raw["residents"]["ratings"]
    reporters = {c.reporter for c in finished.cases.values() if c.id is not None}
    assert raw["residents"]["reporters"] == len(reporters) > 1
    assert raw["residents"]["withdraw"] == round(finished.tally.withdrawn / finished.tally.reported, 4)
    assert set(raw["evaluations"]) <= {"report_in", "disposal", "accuracy"} and raw["evaluations"]["accuracy"]
    scenario, issues = parse_scenario({}, finished.pack.catalog, defaults=raw)
    assert scenario is not None, issues
    assert dict(scenario.streets) == {k: float(v) for k, v in raw["streets"].items()}


def test_an_interrupted_run_says_how_far_it_got(tmp_path, monkeypatch):
    calls = []
    original = Simulation._happen

    def interrupt(self, action):
        calls.append(action)
        if len(calls) == 40:
            raise KeyboardInterrupt
        original(self, action)

    monkeypatch.setattr(Simulation, "_happen", interrupt)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("period: {days: 2}\narrivals: {per_day: 30}\nstreets: {gulou.dongjie: 1}\n", "utf-8")
    result = CliRunner().invoke(cli, ["simulate", "--scenario", str(scenario), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 130
    assert result.stderr.strip().startswith("interrupted at simulated 2026-11-02 ")
    assert "(day 1 of 12)" in result.stderr and "reports made" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_the_command_line_refuses_a_bad_option(tmp_path):
    result = CliRunner().invoke(cli, ["simulate", "--days", "3650", "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "refused: --days/--per-day: --days: 3650 (about 10 years) is out of range: a simulation covers 1 to 366 days"
    )
    database = f"sqlite:///{tmp_path / 'deployed.sqlite3'}"
    missing = CliRunner().invoke(
        cli, ["simulate", "--compare", "9.9.9", "--database-url", database, "--html", str(tmp_path / "r.html")]
    )
    assert missing.exit_code == 1 and "--compare 9.9.9" in missing.stderr


def test_the_reference_scenario_is_valid_and_gulou_scale(reference_pack):
    text = (REFERENCE_PACK / "simulation.yaml").read_bytes()
    data, _lines, issues = read_scenario(text)
    scenario, issues = parse_scenario(data, reference_pack.catalog, steps=list(reference_pack.diagrams.user_tasks))
    assert scenario is not None, issues
    assert (scenario.days, scenario.per_day) == (30, 1000)
    assert scenario.start == dt.date(2026, 11, 2) and scenario.bursts[0].name == "storm"


def test_from_history_starts_from_the_district_s_record(finished, tmp_path):
    """`--from-history` reads the database named; the scenario file's values stand over the history's."""
    history = finished.world.db.url.render_as_string(hide_password=False)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("period: {start: 2026-12-07, days: 1, drain_days: 1}\n", "utf-8")
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            "--from-history",
            "--database-url",
            history,
            "--scenario",
            str(scenario),
            "--html",
            str(tmp_path / "r.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2026-12-07 + 1 days" in result.stdout
    queues = [
        line.split()[0] for line in result.stdout.split("mean queue")[1].splitlines()[1:] if line.startswith("  gulou.")
    ]
    assert {q.split("/")[0] for q in queues} <= {"gulou.nanjie", "gulou.cc"}  # the history's one street


def test_from_history_without_history_is_refused(tmp_path, sqlite_template):
    empty = tmp_path / "empty.sqlite3"
    shutil.copy(sqlite_template, empty)
    result = CliRunner().invoke(
        cli, ["simulate", "--from-history", "--database-url", f"sqlite:///{empty}", "--html", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == "refused: district 'gulou' has no case in this database: no history to start from"


def test_the_output_is_the_same_in_one_process_or_several(tmp_path):
    """Runs in spawned workers (other hash seeds, other processes) give the figures of runs in-process."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "period: {days: 1, drain_days: 1}\narrivals: {per_day: 8}\nstreets: {gulou.dongjie: 1}\n", "utf-8"
    )
    what_if = REFERENCE_PACK / "examples" / "what-if"
    outputs = []
    for jobs in (1, 2):
        html = tmp_path / f"jobs{jobs}.html"
        args = ["simulate", "--compare", str(what_if), "--scenario", str(scenario), "--replications", "2"]
        result = CliRunner().invoke(cli, [*args, "--jobs", str(jobs), "--html", str(html)])
        assert result.exit_code == 0, result.output
        outputs.append((result.stdout, html.read_bytes()))
    assert outputs[0] == outputs[1]
    assert "B = reference 1.1.0-what-if (what-if); 2 replications (seeds 7, 8)" in outputs[0][0]


def test_a_pack_s_scenario_is_validated_with_the_pack(reference_files):
    from govflow.engine.model.errors import PackError
    from govflow.engine.packs.loader import load_pack

    bad = dict(reference_files)
    bad["simulation.yaml"] = b"period: {days: 400}\ncapacity:\n  units:\n    gulou.atlantis: {people: 2}\n"
    with pytest.raises(PackError) as refused:
        load_pack(bad)
    assert [str(i) for i in refused.value.issues] == [
        "simulation.yaml:1: period.days: 400 is out of range: a simulation covers 1 to 366 days",
        "simulation.yaml:4: capacity.units.gulou.atlantis: unknown unit (not in catalog.yaml of gulou)",
    ]
    renamed = dict(reference_files)  # a version that renames a step still loads; simulating it asks for the step
    diagram = renamed["processes/frontline_disposal.bpmn"].decode()
    renamed["processes/frontline_disposal.bpmn"] = re.sub(r'(id|Ref)="sign_for"', r'\1="sign_for_v2"', diagram).encode()
    pack = load_pack(renamed)
    data, lines, _ = read_scenario(renamed["simulation.yaml"])
    scenario, issues = parse_scenario(data, pack.catalog, steps=list(pack.diagrams.user_tasks), lines=lines)
    assert scenario is None
    assert [str(i).split(" (")[0] for i in issues] == [
        "simulation.yaml:34: capacity.duty_steps[0]: unknown step 'sign_for'",
        "simulation.yaml:42: handling.steps.sign_for: unknown step: no user task of the diagrams has this id",
    ]


def test_compare_with_a_version_deployed_in_the_database(tmp_path, sqlite_template):
    """`--compare VERSION` takes a staged version from the database (as the studio saves one)."""
    database = tmp_path / "deployed.sqlite3"
    shutil.copy(sqlite_template, database)
    url = f"sqlite:///{database}"
    runner = CliRunner()
    assert runner.invoke(cli, ["pack", "deploy", str(REFERENCE_PACK), "--database-url", url]).exit_code == 0
    what_if = REFERENCE_PACK / "examples" / "what-if"
    staged = runner.invoke(cli, ["pack", "deploy", str(what_if), "--no-activate", "--database-url", url])
    assert staged.exit_code == 0, staged.output
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "period: {days: 1, drain_days: 1}\narrivals: {per_day: 6}\nstreets: {gulou.dongjie: 1}\n", "utf-8"
    )
    args = ["simulate", "--compare", "1.1.0-what-if", "--database-url", url, "--scenario", str(scenario)]
    result = runner.invoke(cli, [*args, "--replications", "1", "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("comparison: A = reference 1.0.0 (the reference pack), B = reference 1.1.0-what-if")
    assert "(reference@1.1.0-what-if)" in first
