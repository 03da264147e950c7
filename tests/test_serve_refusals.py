"""``govflow serve`` refuses in one clear line like every other command (issue 15.3): no
traceback for an ordinary refusal, a non-zero exit code, the pack's issues one per line."""

from __future__ import annotations

import gc

import pytest
import uvicorn

import govflow.logs
from tests.pack_helpers import manifest
from tests.test_cli import db_url, deployed, pack_folder, run, upgraded, version_1_1  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
def _no_server(monkeypatch):
    """Start-up only: uvicorn never listens, logging and the heap are left as they are."""
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets=None: pytest.fail("serve got past start-up"))
    monkeypatch.setattr(govflow.logs, "configure", lambda fmt: "text")
    monkeypatch.setattr(gc, "freeze", lambda: None)


def refused(*args):
    result = run("serve", *args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    first, *rest = result.stderr.strip().splitlines()
    assert first.startswith("refused: ") and rest == [], result.stderr
    return result


def test_a_folder_that_is_no_pack(upgraded, tmp_path):  # noqa: F811
    result = refused("--pack", tmp_path / "nowhere")
    assert result.stderr.strip() == "refused: not a process pack: pack.yaml is missing"


def test_an_invalid_pack_lists_its_issues_one_per_line(upgraded, tmp_path):  # noqa: F811
    folder = pack_folder(tmp_path / "bad", {"pack.yaml": manifest(name="Bad Name", version="1.0.0")})
    result = refused("--pack", folder)
    assert result.stdout and all(": " in line for line in result.stdout.splitlines()), result.stdout


def test_a_changed_pack_under_a_deployed_version(deployed, tmp_path):  # noqa: F811
    folder = version_1_1(tmp_path)
    assert run("pack", "deploy", folder).exit_code == 0
    (folder / "pack.yaml").write_bytes(
        manifest(name="reference", version="1.1.0", extends="reference@1.0.0", description="changed, same version")
    )
    result = refused("--pack", folder, "--deploy-pack")
    assert "1.1.0" in result.stderr
