"""The `govflow` command line on a temporary SQLite file (GOVFLOW_DATABASE_URL): exit codes and output.

Exit codes: 0 done, 1 refused (with the reason and, for packs, one ``file:line: message`` per
issue), 2 a migration that left cases behind.
"""

from __future__ import annotations

import datetime as dt
import gc
import io
import json
import logging
import re
import threading
import zipfile
from pathlib import Path

import pytest
import yaml
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from govflow.bootstrap import build
from govflow.cli import app as cli
from govflow.engine.cases.service import NewCase
from govflow.engine.model.clock import ManualClock
from govflow.engine.store.db import CaseEvent, CaseRow, make_engine
from govflow.settings import REFERENCE_PACK
from tests.pack_helpers import CANGSHAN, manifest

DEMO = REFERENCE_PACK / "policies" / "demo-principals.yaml"
DONGJIE = dict(lat=26.0865, lng=119.3025)
HASH = r"[0-9a-f]{12}"


def run(*args) -> object:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def db_url(tmp_path, monkeypatch) -> str:
    """An empty SQLite file named by GOVFLOW_DATABASE_URL, as an operator would set it."""
    url = f"sqlite:///{tmp_path / 'govflow.sqlite3'}"
    monkeypatch.setenv("GOVFLOW_DATABASE_URL", url)
    return url


@pytest.fixture
def upgraded(db_url) -> str:
    result = run("db", "upgrade")
    assert result.exit_code == 0 and result.stdout.startswith("created the database schema ("), result.output
    return db_url


@pytest.fixture
def deployed(upgraded) -> str:
    result = run("pack", "deploy", REFERENCE_PACK)
    assert result.exit_code == 0, result.output
    return upgraded


def pack_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def version_1_1(tmp_path: Path) -> Path:
    return pack_folder(
        tmp_path / "v1.1",
        {"pack.yaml": manifest(name="reference", version="1.1.0", extends="reference@1.0.0")},
    )


def report_case(url: str, principals, *, at: dt.datetime | None = None) -> str:
    """A citizen's case in Dongjie, reported through the engine on the CLI's database."""
    assert run("principals", "load", DEMO).exit_code == 0
    app = build(url, clock=ManualClock(at or dt.datetime.now(dt.UTC)))
    try:
        outcome = app.cases.report(
            principals["citizen.zhang"], NewCase(channel="app", description="东街口有个井盖没了", **DONGJIE)
        )
    finally:
        app.db.dispose()
    return str(outcome.case_id)


def case_row(url: str, case_id: str):
    import uuid

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(CaseRow).where(CaseRow.id == uuid.UUID(case_id))).one()
    finally:
        engine.dispose()


# -- db upgrade ------------------------------------------------------------------------------------
def test_db_upgrade_creates_the_schema_and_is_idempotent(db_url):
    from govflow.engine.store.migrate import head

    assert run("db", "upgrade").stdout == f"created the database schema ({head()}) in {db_url}\n"
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"cases", "case_events", "case_tasks", "pack_versions", "principals", "alembic_version"} <= tables
    again = run("db", "upgrade")
    assert (again.exit_code, again.stdout) == (0, f"the database schema is already current ({head()}) in {db_url}\n")


def test_the_database_url_option_wins_over_the_environment(db_url, tmp_path):
    other = tmp_path / "elsewhere.sqlite3"
    assert run("db", "upgrade", "--database-url", f"sqlite:///{other}").exit_code == 0
    assert other.is_file() and not Path(db_url.removeprefix("sqlite:///")).exists()


def test_a_relative_sqlite_file_gets_its_folder(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVFLOW_DATABASE_URL", "sqlite:///var/relative.sqlite3")
    assert run("db", "upgrade").exit_code == 0
    assert (tmp_path / "var" / "relative.sqlite3").is_file()


# -- pack validate ---------------------------------------------------------------------------------
def test_validate_accepts_the_reference_pack(db_url):
    result = run("pack", "validate", REFERENCE_PACK)
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        rf"ok: reference 1\.0\.0 \(gulou\): 1 process\(es\), \d+ units, 107 matters, hash {HASH}\n", result.stdout
    ), result.stdout


def test_validate_accepts_a_zip_and_a_pack_that_extends_the_reference(db_url, tmp_path, reference_files):
    archive = tmp_path / "reference.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, content in reference_files.items():
            zf.writestr(name, content)
    zipped = run("pack", "validate", archive)
    assert zipped.exit_code == 0 and zipped.stdout.startswith("ok: reference 1.0.0 (gulou)"), zipped.output
    extending = run("pack", "validate", CANGSHAN)
    assert extending.exit_code == 0, extending.output
    assert extending.stdout.startswith("ok: cangshan 1.0.0 (cangshan): ")


def test_validate_refuses_a_bad_pack_with_each_issue_at_its_file_and_line(db_url, tmp_path, reference_files):
    diagram = reference_files["processes/frontline_disposal.bpmn"].decode()
    line = diagram[: diagram.index('<bpmn:userTask id="sign_for"')].count("\n") + 1
    broken = diagram.replace('<bpmn:userTask id="sign_for"', '<bpmn:userTask id="sign_for" oops="1"', 1)
    folder = pack_folder(tmp_path / "bad", {**reference_files, "processes/frontline_disposal.bpmn": broken.encode()})
    result = run("pack", "validate", folder)
    assert result.exit_code == 1
    assert result.stderr.startswith("invalid: ")
    issues = result.stdout.splitlines()
    assert issues and all(re.match(r"[\w/.-]+(:\d+)?( \[[^]]+\])?: ", issue) for issue in issues), issues
    assert any(issue.startswith(f"processes/frontline_disposal.bpmn:{line}") for issue in issues), issues


def test_validate_refuses_a_folder_that_is_no_pack(db_url, tmp_path):
    result = run("pack", "validate", tmp_path)
    assert result.exit_code == 1
    assert result.stdout == "pack.yaml: file not found\n"


def test_validate_refuses_an_unknown_base(db_url, tmp_path):
    folder = pack_folder(tmp_path / "orphan", {"pack.yaml": b"name: x\nversion: '1'\nextends: nowhere@2.0\n"})
    result = run("pack", "validate", folder)
    assert result.exit_code == 1
    assert result.stdout.startswith("pack.yaml:3: ") and "nowhere@2.0" in result.stdout


# -- pack deploy / list / activate / rollback -------------------------------------------------------
def test_deploy_list_activate_and_roll_back(upgraded, tmp_path):
    first = run("pack", "deploy", REFERENCE_PACK)
    assert first.exit_code == 0, first.output
    assert re.fullmatch(rf"deployed: reference 1\.0\.0 \(gulou\) hash {HASH}, active\n", first.stdout)
    again = run("pack", "deploy", REFERENCE_PACK)
    assert re.fullmatch(rf"already deployed: reference 1\.0\.0 \(gulou\) hash {HASH}, active\n", again.stdout)
    staged = run("pack", "deploy", version_1_1(tmp_path), "--no-activate")
    assert re.fullmatch(rf"deployed: reference 1\.1\.0 \(gulou\) hash {HASH}\n", staged.stdout), staged.output

    def listed(*args):
        result = run("pack", "list", *args)
        assert result.exit_code == 0, result.output
        return [line.split()[:4] for line in result.stdout.splitlines()]

    assert listed() == [["*", "gulou", "reference", "1.0.0"], ["gulou", "reference", "1.1.0", listed()[1][3]]]
    assert listed("--district", "cangshan") == []
    activated = run("pack", "activate", "reference", "1.1.0")
    assert (activated.exit_code, activated.stdout) == (0, "active for gulou: reference 1.1.0\n")
    assert [row[0] for row in listed()] == ["gulou", "*"]
    rolled = run("pack", "rollback", "gulou")
    assert (rolled.exit_code, rolled.stdout) == (0, "active for gulou: reference 1.0.0\n")
    nothing = run("pack", "rollback", "gulou")
    assert nothing.exit_code == 1
    assert nothing.stderr.startswith("refused: ") and "nothing to roll back to" in nothing.stderr


def test_deploy_refuses_an_invalid_pack_and_lists_its_issues(upgraded, tmp_path):
    folder = pack_folder(tmp_path / "bad", {"pack.yaml": manifest(name="reference", version="9.0.0")})
    result = run("pack", "deploy", folder)
    assert result.exit_code == 1
    assert result.stderr.startswith("refused: ")
    assert result.stdout and all(": " in line for line in result.stdout.splitlines())
    listed = run("pack", "list")
    assert listed.stdout == ""  # nothing was stored


def test_activate_and_rollback_refuse_what_is_not_deployed(deployed):
    unknown = run("pack", "activate", "reference", "7.0.0")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("refused: ")
    nowhere = run("pack", "rollback", "atlantis")
    assert nowhere.exit_code == 1 and "atlantis" in nowhere.stderr


# -- pack show / export ----------------------------------------------------------------------------
def test_show_a_folder_and_a_deployed_version(deployed, tmp_path):
    folder = run("pack", "show", CANGSHAN)
    assert folder.exit_code == 0, folder.output
    shown = json.loads(folder.stdout)
    assert (shown["extends"]["name"], shown["extends"]["version"]) == ("reference", "1.0.0")
    assert run("pack", "deploy", version_1_1(tmp_path), "--no-activate").exit_code == 0
    pinned = json.loads(run("pack", "show", "reference@1.0.0").stdout)
    newest = json.loads(run("pack", "show", "reference").stdout)  # no version: the newest deployed
    assert (pinned["version"], pinned["extends"], pinned["process"]) == ("1.0.0", None, "frontline_disposal")
    assert (newest["version"], newest["extends"]["name"], newest["extends"]["version"]) == (
        "1.1.0",
        "reference",
        "1.0.0",
    )
    assert newest["extends"]["content_hash"] == pinned["content_hash"]


def test_show_refuses_what_is_not_deployed(deployed):
    nameless = run("pack", "show", "atlantis")
    assert (nameless.exit_code, nameless.stderr.strip()) == (1, "no deployed pack named atlantis")
    version = run("pack", "show", "reference@7.0.0")
    assert version.exit_code == 1 and version.stderr.startswith("refused: ")


def test_export_writes_the_effective_pack(deployed, tmp_path, reference_files):
    out = tmp_path / "out.zip"
    result = run("pack", "export", "reference", "1.0.0", "-o", out)
    assert (result.exit_code, result.stdout) == (0, f"wrote {out}\n")
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as zf:
        assert set(zf.namelist()) == set(reference_files)
    missing = run("pack", "export", "reference", "7.0.0", "-o", tmp_path / "none.zip")
    assert missing.exit_code == 1 and missing.stderr.startswith("refused: ")
    assert not (tmp_path / "none.zip").exists()


# -- pack migrate ----------------------------------------------------------------------------------
@pytest.fixture
def running_case(deployed, principals) -> str:
    return report_case(deployed, principals)


def test_migrate_dry_run_changes_nothing_then_migrates(running_case, deployed, tmp_path):
    assert run("pack", "deploy", version_1_1(tmp_path)).exit_code == 0
    dry = run("pack", "migrate", "reference", "--from", "1.0.0", "--to", "1.1.0", "--dry-run")
    assert (dry.exit_code, dry.stdout) == (
        0,
        "would migrate 1 case(s) from reference 1.0.0 to reference 1.1.0; refused 0; conflicts 0\n",
    )
    assert case_row(deployed, running_case).pack_version == "1.0.0"
    done = run("pack", "migrate", "reference", "--from", "1.0.0", "--to", "1.1.0", "--case", running_case)
    assert (done.exit_code, done.stdout) == (
        0,
        "migrated 1 case(s) from reference 1.0.0 to reference 1.1.0; refused 0; conflicts 0\n",
    )
    assert case_row(deployed, running_case).pack_version == "1.1.0"


def test_migrate_lists_refused_cases_and_exits_2(running_case, deployed, tmp_path, reference_files):
    diagram = reference_files["processes/frontline_disposal.bpmn"].decode()
    renamed = re.sub(r'(id|Ref)="sign_for"', r'\1="sign_for_v2"', diagram)
    folder = pack_folder(
        tmp_path / "v2",
        {
            "pack.yaml": manifest(name="reference", version="2.0.0", extends="reference@1.0.0"),
            "processes/frontline_disposal.bpmn": renamed.encode(),
        },
    )
    assert run("pack", "deploy", folder, "--no-activate").exit_code == 0
    result = run("pack", "migrate", "reference", "--from", "1.0.0", "--to", "2.0.0")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        "migrated 0 case(s) from reference 1.0.0 to reference 2.0.0; refused 1; conflicts 0",
        f"refused {running_case}: open step sign_for of intake does not exist in the target; "
        "planned step sign_for.BoundaryEventJoin of intake does not exist in the target; "
        "taken step sign_for.BoundaryEventSplit of intake does not exist in the target",
    ]
    assert case_row(deployed, running_case).pack_version == "1.0.0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "1.0.0", "--to", "1.0.0"), "refused: the source and target versions are the same"),
        (("--from", "1.0.0", "--to", "1.1.0", "--case", "not-a-uuid"), "refused: case ids must be UUIDs"),
        (("--from", "1.0.0", "--to", "7.0.0"), "refused: "),
    ],
)
def test_migrate_refuses_bad_arguments(deployed, tmp_path, args, message):
    assert run("pack", "deploy", version_1_1(tmp_path), "--no-activate").exit_code == 0
    result = run("pack", "migrate", "reference", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr


# -- principals load -------------------------------------------------------------------------------
def test_principals_load_creates_and_updates(deployed):
    count = len(yaml.safe_load(DEMO.read_text(encoding="utf-8"))["principals"])
    first = run("principals", "load", DEMO)
    assert (first.exit_code, first.stdout) == (0, f"{count} principals loaded\n")
    again = run("principals", "load", DEMO)
    assert (again.exit_code, again.stdout) == (0, f"{count} principals loaded\n")


def test_principals_load_refuses_a_bad_file_and_names_each_entry(deployed, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "principals:\n"
        "  - {id: ok.person, roles: [citizen], token: long-enough-token}\n"
        "  - {id: lost, unit: gulou.atlantis, roles: [street_dispatcher], token: another-token}\n"
        "  - {id: short, roles: [citizen], token: short}\n",
        encoding="utf-8",
    )
    result = run("principals", "load", bad)
    assert result.exit_code == 1
    assert result.stderr.startswith("refused: bad.yaml: 2 invalid principal entries")
    assert [yaml.safe_load(line) for line in result.stdout.splitlines()] == [
        {"loc": ["principals", 1, "unit"], "msg": "unknown unit 'gulou.atlantis'"},
        {"loc": ["principals", 2, "token"], "msg": "token must be at least 8 characters"},
    ]
    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("principals: [\n", encoding="utf-8")
    broken = run("principals", "load", not_yaml)
    assert broken.exit_code == 1 and broken.stderr.startswith("refused: broken.yaml: invalid YAML")


# -- worker ----------------------------------------------------------------------------------------
def test_worker_once_fires_due_timers_and_reports(deployed, principals):
    two_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    case = report_case(deployed, principals, at=two_hours_ago)  # its sign-for deadline passed long ago
    result = run("worker", "--once")
    assert (result.exit_code, result.stderr) == (0, "due 1 fired 1 idle 0 conflicts 0 failed 0\n")
    idle = run("worker", "--once")
    assert (idle.exit_code, idle.stdout, idle.stderr) == (0, "", "")  # nothing due: silent
    import uuid

    engine = make_engine(deployed)
    with engine.connect() as conn:
        kinds = conn.execute(
            select(CaseEvent.kind).where(CaseEvent.case_id == uuid.UUID(case)).order_by(CaseEvent.seq)
        ).scalars()
        assert "deadline.overdue" in list(kinds)
    engine.dispose()


# -- serve -----------------------------------------------------------------------------------------
def test_serve_deploys_the_pack_loads_demo_principals_and_stops_its_timer_loop(db_url, monkeypatch, caplog):
    import uvicorn

    import govflow.logs

    served = {}

    def fake_run(server, sockets=None):
        served.update(app=server.config.app, host=server.config.host, port=server.config.port)
        served["timers"] = [t for t in threading.enumerate() if t.name == "govflow-timers"]

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setattr(govflow.logs, "configure", lambda fmt: "text")  # keep pytest's log handlers
    monkeypatch.setattr(gc, "freeze", lambda: None)  # keep this test process's heap collectable
    with caplog.at_level(logging.INFO, logger="govflow"):
        result = run("serve", "--demo", "--port", "8123", "--pack", REFERENCE_PACK)
    assert result.exit_code == 0, result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    said = [r.getMessage() for r in caplog.records if r.name == "govflow.serve"]
    assert any(m.startswith("created the database schema") for m in said), said
    assert "deployed and activated reference 1.0.0 for gulou (the district had no active version)" in said
    assert any(re.match(r"demo principals: \d+ loaded", m) for m in said), said
    assert "timer loop stopped" in said
    [loop] = served["timers"]
    assert not loop.is_alive()  # stopped (and joined) when the server returned
    listed = run("pack", "list")
    assert listed.stdout.startswith("* gulou")


def test_help_lists_the_commands(db_url):
    result = run("--help")
    assert result.exit_code == 0
    for command in ("serve", "worker", "pack", "db", "principals"):
        assert command in result.stdout
    nothing = run("pack")  # no_args_is_help: the usage, and exit code 2 (a usage error)
    assert nothing.exit_code == 2 and "validate" in nothing.output


def test_a_restart_keeps_the_version_an_operator_activated(db_url, monkeypatch, caplog, tmp_path):
    """Start-up never changes what is live: the folder pack is deployed only for a district without an
    active version, or with --deploy-pack; each start says what it did."""
    import uvicorn

    import govflow.logs

    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets=None: None)
    monkeypatch.setattr(govflow.logs, "configure", lambda fmt: "text")
    monkeypatch.setattr(gc, "freeze", lambda: None)

    def start(*extra) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="govflow"):
            result = run("serve", "--pack", REFERENCE_PACK, *extra)
        assert result.exit_code == 0, result.output
        return [r.getMessage() for r in caplog.records if r.name == "govflow.serve"]

    assert "deployed and activated reference 1.0.0 for gulou (the district had no active version)" in start()
    assert run("pack", "deploy", version_1_1(tmp_path)).exit_code == 0  # an operator activates 1.1.0
    said = start()
    assert (
        "gulou runs reference 1.1.0 (active version kept); the folder holds reference 1.0.0, not deployed: "
        f"`govflow pack deploy {REFERENCE_PACK}` or `serve --deploy-pack` deploys it"
    ) in said
    assert re.search(r"^\* gulou +reference +1\.1\.0", run("pack", "list").stdout, re.M)
    said = start("--deploy-pack")
    assert "activated reference 1.0.0 for gulou, deployed before (as told by --deploy-pack)" in said
    assert re.search(r"^\* gulou +reference +1\.0\.0", run("pack", "list").stdout, re.M)
    assert "gulou runs reference 1.0.0: deployed and active already, nothing changed" in start("--deploy-pack")


def test_every_refusal_is_one_line_and_debug_shows_the_traceback(upgraded, tmp_path):
    missing = run("pack", "deploy", tmp_path / "nowhere")
    assert missing.exit_code == 1
    assert missing.stderr.splitlines()[0] == "refused: not a process pack: pack.yaml is missing"
    unreadable = run("principals", "load", tmp_path / "absent.yaml")
    assert unreadable.exit_code == 1 and "Traceback" not in unreadable.output
    assert len(unreadable.stderr.strip().splitlines()) == 1, unreadable.stderr
    assert unreadable.stderr.startswith("error: No such file or directory:")
    debug = CliRunner().invoke(cli, ["--debug", "principals", "load", str(tmp_path / "absent.yaml")])
    assert isinstance(debug.exception, FileNotFoundError)
    not_current = run("pack", "list", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert not_current.exit_code == 1
    assert not_current.stderr.startswith("error: database error:") and len(not_current.stderr.splitlines()) == 1


def test_init_scaffolds_a_district_pack_that_validates_at_once(db_url, tmp_path):
    made = run("init", tmp_path / "minhou", "--district", "minhou")
    assert made.exit_code == 0, made.output
    assert re.search(r"^ok: minhou 0\.1\.0 \(minhou\): 1 process\(es\), 5 units", made.stdout, re.M)
    manifest = (tmp_path / "minhou" / "pack.yaml").read_text(encoding="utf-8")
    assert "extends: reference" in manifest and "# What to change" in manifest
    again = run("init", tmp_path / "minhou", "--district", "minhou")
    assert (again.exit_code, again.stderr.strip()) == (
        1,
        f"refused: {tmp_path / 'minhou'} exists and is not an empty folder",
    )
    bad = run("init", tmp_path / "x", "--district", "Min Hou")
    assert bad.exit_code == 1 and "lower-case" in bad.stderr
    assert run("pack", "deploy", REFERENCE_PACK).exit_code == 0
    deployed = run("pack", "deploy", tmp_path / "minhou")
    assert deployed.exit_code == 0, deployed.output
    assert deployed.stdout.startswith("deployed: minhou 0.1.0 (minhou)")
