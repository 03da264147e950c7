"""`govflow dispatch train --district D` on a real database (SQLite and PostgreSQL): the command
centre's hand dispatches become labelled examples, the retrained model is staged with a new,
inactive pack version, and a bad district is refused in one line."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from govflow.cli import app as cli
from govflow.plugins.builtin.dispatch_model import EXAMPLES_FILE, MODEL_FILE, Model

UNSURE = "东街口那边有点事情想说一下，麻烦你们来看看"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def url_of(database) -> str:
    return database.url.render_as_string(hide_password=False)


def test_training_learns_the_command_centres_dispatches_and_stages_an_inactive_version(api, govflow, database):
    created = api.report("citizen.zhang", description=UNSURE, location={"lat": 26.0865, "lng": 119.3025})
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    task = next(t for t in api.inbox("cc.supervisor", case_id) if t["name"] == "dispatch")
    assert task["candidates"]  # what the model weighed, shown to the command centre
    done = api.complete("cc.supervisor", task["id"], street="gulou.dongjie", matter="road.manhole_cover")
    assert done.status_code == 200, done.text

    result = run("dispatch", "train", "--district", "gulou", "--folds", "2", "--database-url", url_of(database))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "examples in the pack, 1 new from the district's dispatchers" in out
    assert "cross-validated on " in out and "most confused" in out
    assert "staged reference 1.0.0+m1 (gulou), not active" in out

    versions = {v.version: v for v in govflow.packs.versions() if v.name == "reference"}
    assert "1.0.0+m1" in versions
    assert govflow.packs.active("gulou").manifest.version == "1.0.0"  # a model never goes live silently
    staged = govflow.packs.get("reference", "1.0.0+m1")
    examples = yaml.safe_load(staged.files[EXAMPLES_FILE].decode("utf-8"))
    assert {"text": UNSURE, "matter": "road.manhole_cover"} in examples
    model = Model(json.loads(staged.files[MODEL_FILE]))
    assert model.data["training"]["examples"] == len(examples) and model.data["training"]["folds"] == 2

    # trained again from the active version: the next free version is taken, the first one kept
    again = run("dispatch", "train", "--district", "gulou", "--folds", "2", "--database-url", url_of(database))
    assert again.exit_code == 0, again.output
    assert "staged reference 1.0.0+m2 (gulou), not active" in again.output
    assert {"1.0.0+m1", "1.0.0+m2"} <= {v.version for v in govflow.packs.versions() if v.name == "reference"}


def test_a_district_nobody_serves_is_refused_in_one_line(govflow, database):
    result = run("dispatch", "train", "--district", "nowhere", "--database-url", url_of(database))
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("refused:") and "nowhere" in lines[0]
    neither = run("dispatch", "train", "--database-url", url_of(database))
    assert neither.exit_code == 2 and "give either --district or --pack" in neither.output
