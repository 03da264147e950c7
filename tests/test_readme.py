"""A README that cannot rot: its curl walkthrough runs, as written, against a live server.

The shell block of "A five-minute walkthrough with curl" is taken from README.md and run
with bash (``set -euo pipefail``) against a real ``govflow serve --demo`` process; only
the port in ``API=`` is changed. Every ``# →`` line documents an answer: the output of the
commands since the previous ``# →`` line must contain each of its fragments (fragments
are separated by `` … ``; a ``<PLACEHOLDER>`` stands for any text). A second district
(examples/cangshan) is deployed first, as in a real deployment that serves several:
the walkthrough must name its district.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.live_server import ROOT, govflow, serve

README = ROOT / "README.md"
SECTION = "## A five-minute walkthrough with curl"
ANSWER = "# → "
MARK = "@@answer {}@@"


def walkthrough() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "the walkthrough has no ```bash block"
    return match.group(1)


def answers(block: str) -> list[list[str]]:
    """Each documented answer as the fragments its output must contain."""
    found = []
    for line in block.splitlines():
        if line.startswith(ANSWER):
            fragments = []
            for part in line[len(ANSWER) :].split(" … "):
                fragments += [f.strip() for f in re.split(r"<[A-Z_]+>", part) if f.strip(" {}")]
            found.append(fragments)
    return found


def instrumented(block: str, port: int) -> str:
    """The block as it stands, on the live server's port, with a marker after each answer."""
    assert "API=http://127.0.0.1:8000/api/v1" in block
    lines = ["set -euo pipefail"]
    count = 0
    for line in block.replace("127.0.0.1:8000", f"127.0.0.1:{port}").splitlines():
        lines.append(line)
        if line.startswith(ANSWER):
            count += 1
            lines.append(f"echo; echo '{MARK.format(count)}'")
    return "\n".join(lines) + "\n"


def test_the_walkthrough_documents_answers_and_selects_tasks_by_case():
    block = walkthrough()
    assert len(answers(block)) >= 10
    assert '[0]["id"]' not in block, "never pick an inbox's first task: inboxes hold many cases"
    assert '"district":"gulou"' in block


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """One live server for this module (starting one takes seconds): the reference pack and Cangshan."""
    url = f"sqlite:///{tmp_path_factory.mktemp('readme') / 'readme.sqlite3'}"
    with serve(url) as server:
        deployed = govflow("pack", "deploy", str(ROOT / "examples" / "cangshan"), "--database-url", url)
        assert deployed.returncode == 0, deployed.stderr
        yield server


def test_the_readme_walkthrough_runs_against_a_live_server(live, tmp_path):
    port = live.client.base_url.port
    assert live.client.get("/readyz").json()["districts"] == ["cangshan", "gulou"]
    block = walkthrough()
    script = tmp_path / "walkthrough.sh"
    script.write_text(instrumented(block, port), encoding="utf-8")
    ran = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert ran.returncode == 0, f"the walkthrough failed:\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    expected = answers(block)
    segments = re.split(r"@@answer \d+@@\n", ran.stdout)
    assert len(segments) == len(expected) + 1, ran.stdout[-2000:]
    for number, (fragments, output) in enumerate(zip(expected, segments, strict=False), start=1):
        assert output.strip(), f"answer {number} documents {fragments} but the commands printed nothing"
        for fragment in fragments:
            assert fragment in output, f"answer {number}: {fragment!r} not in:\n{output[:2000]}"


def test_a_report_without_its_district_is_refused_once_several_are_served(live):
    """Why the walkthrough names the district: 422 naming the field, not a 404."""
    refused = live.client.post(
        "/api/v1/cases",
        headers={"Authorization": "Bearer demo-citizen-zhang"},
        json={"channel": "app", "description": "路灯不亮了"},  # no coordinates, no place: nothing settles it
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"][0]["loc"] == ["district"]
    assert "cangshan, gulou" in refused.json()["detail"]


def test_the_readme_names_what_the_test_runs():
    assert Path(__file__).name in README.read_text(encoding="utf-8")
