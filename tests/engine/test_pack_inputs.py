"""Hostile pack inputs (issue 14, seen 3, 4 and 14): YAML that expands, links and special files,
files a pack holds but would not read. Each class is refused at validation with file and line,
through the folder reader, the zip reader, the CLI and the API alike."""

from __future__ import annotations

import os
import shutil
import stat
import time
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import govflow.logs
from govflow.cli import app as cli
from govflow.engine.access.identity import parse_principals
from govflow.engine.model.errors import InvalidInput, PackError
from govflow.engine.model.yaml_text import MAX_DEPTH, YamlRefused, load_yaml
from govflow.engine.packs.loader import files_to_zip, load_pack, read_folder, read_zip
from tests.pack_helpers import CANGSHAN, ROOT, gulou_version

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _issues(exc: pytest.ExceptionInfo[PackError]) -> list[str]:
    return [str(issue) for issue in exc.value.issues]


def _copy_reference(tmp_path: Path) -> Path:
    folder = tmp_path / "pack"
    folder.mkdir()
    for name in ("pack.yaml", "catalog.yaml", "boundaries.geojson"):
        shutil.copy(ROOT / name, folder / name)
    for sub in ("processes", "policies"):
        shutil.copytree(ROOT / sub, folder / sub)
    return folder


# -- YAML: no anchors, no aliases, bounded nesting -------------------------------------------------
@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        (BILLION_LAUGHS, 1, "anchor &a"),
        ("x: 1\ny: *nowhere\n", 2, "alias *nowhere"),  # an alias without its anchor
        ("base: &b {a: 1}\nd:\n  <<: *b\n", 1, "anchor &b"),  # merge keys are aliases too
        ("settings:\n  x: !!str &s text\n", 2, "anchor &s"),  # after a tag
        ("- &only 1\n", 1, "anchor &only"),  # a bare anchor is refused as well
        ("a: [1, 2, {b: &deep [x]}]\n", 1, "anchor &deep"),  # inside flow collections
        ("a:\n" + "".join("  " * (i + 1) + "a:\n" for i in range(MAX_DEPTH + 3)), MAX_DEPTH + 1, "nested"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), 1, "nested"),
    ],
)
def test_yaml_that_could_expand_is_refused_with_its_line(text, line, what):
    with pytest.raises(YamlRefused) as refused:
        load_yaml(text)
    assert what in refused.value.problem
    assert refused.value.problem_mark.line + 1 == line


@pytest.mark.parametrize(
    "text",
    [
        "matter: road.*\npattern: '*'\n",  # stars and ampersands in ordinary scalars
        "name: 'A & B'\nnote: \"x *y\"\nlist: [a*, '&b']\n",
        "a:\n" + "".join("  " * (i + 1) + "a:\n" for i in range(MAX_DEPTH - 2)),
    ],
)
def test_ordinary_yaml_with_stars_ampersands_and_some_depth_loads(text):
    assert load_yaml(text) is not None


def test_the_billion_laughs_is_refused_before_anything_walks_it():
    started = time.perf_counter()
    with pytest.raises(YamlRefused):
        load_yaml(BILLION_LAUGHS * 50)
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    "name",
    [
        "pack.yaml",
        "catalog.yaml",
        "processes/forms.yaml",
        "policies/responsibility.yaml",
        "policies/demo-principals.yaml",
    ],
)
def test_every_yaml_file_of_a_pack_refuses_aliases_with_file_and_line(reference_files, name):
    files = dict(reference_files)
    files[name] = files[name] + b"\nzz_anchor: &zz [1, 2]\nzz_alias: *zz\n"
    line = files[name].decode().splitlines().index("zz_anchor: &zz [1, 2]") + 1
    with pytest.raises(PackError) as refused:
        load_pack(files)
    [issue] = [i for i in refused.value.issues if i.file == name]
    assert issue.line == line
    assert "anchor &zz refused" in issue.message


def test_a_bomb_in_the_manifest_is_refused_by_the_folder_and_zip_readers(tmp_path):
    folder = _copy_reference(tmp_path)
    (folder / "pack.yaml").write_text((ROOT / "pack.yaml").read_text() + "bomb:\n" + _indent(BILLION_LAUGHS))
    for files in (read_folder(folder), read_zip(files_to_zip(read_folder(folder)))):
        with pytest.raises(PackError) as refused:
            load_pack(files)
        assert any(i.startswith("pack.yaml:") and "anchor &a refused" in i for i in _issues(refused))


def test_the_cli_refuses_a_bomb_on_validate_show_and_deploy(tmp_path, monkeypatch):
    folder = _copy_reference(tmp_path)
    (folder / "pack.yaml").write_text((ROOT / "pack.yaml").read_text() + "bomb:\n" + _indent(BILLION_LAUGHS))
    monkeypatch.setenv("GOVFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    line = (folder / "pack.yaml").read_text().splitlines().index(
        '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
    ) + 1
    for command in (["pack", "validate", str(folder)], ["pack", "show", str(folder)], ["pack", "deploy", str(folder)]):
        started = time.perf_counter()
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 1, (command, result.output)
        assert f"pack.yaml:{line}: invalid YAML: anchor &a refused" in result.output, result.output
        assert time.perf_counter() - started < 30


def test_a_pack_that_extends_another_refuses_aliases_while_merging(reference_files):
    child = gulou_version("1.1.0", catalog_DOT_yaml=b"matters: &m []\nunits: *m\n")
    with pytest.raises(PackError) as refused:
        load_pack(child, resolve_base=lambda name, version: reference_files)
    assert any(i.file == "catalog.yaml" and i.line == 1 and "anchor &m" in i.message for i in refused.value.issues)


def test_a_principals_file_with_aliases_is_refused(reference_pack, tmp_path, monkeypatch):
    text = "principals:\n  - &p {id: a.b, token: 12345678, roles: [citizen]}\n  - *p\n"
    with pytest.raises(InvalidInput) as refused:
        parse_principals(text, [reference_pack.catalog])
    assert "anchor &p refused" in refused.value.message and "line 2" in refused.value.message
    monkeypatch.setenv("GOVFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    path = tmp_path / "principals.yaml"
    path.write_text(text)
    assert CliRunner().invoke(cli, ["db", "upgrade"]).exit_code == 0
    assert CliRunner().invoke(cli, ["pack", "deploy", str(ROOT)]).exit_code == 0
    result = CliRunner().invoke(cli, ["principals", "load", str(path)])
    assert result.exit_code == 1 and "anchor &p refused" in result.output


# -- links and special files -----------------------------------------------------------------------
@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "outside" / "secret.bpmn"
    path.parent.mkdir()
    path.write_text("<secret>not part of any pack</secret>")
    return path


@pytest.mark.parametrize(
    "where",
    ["processes/leak.bpmn", "policies/policy.csv", "catalog.yaml", "decisions/owner.dmn"],
)
def test_a_symlinked_file_is_refused_and_never_read(tmp_path, secret, where):
    folder = _copy_reference(tmp_path)
    link = folder / where
    link.parent.mkdir(exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    with pytest.raises(PackError) as refused:
        read_folder(folder)
    assert f"{where}: symbolic link refused" in "\n".join(_issues(refused))


def test_a_symlinked_folder_a_dangling_link_and_a_linked_manifest_are_refused(tmp_path, secret):
    folder = _copy_reference(tmp_path)
    shutil.rmtree(folder / "policies")
    (folder / "policies").symlink_to(ROOT / "policies", target_is_directory=True)
    (folder / "processes" / "gone.bpmn").symlink_to(tmp_path / "nowhere.bpmn")
    with pytest.raises(PackError) as refused:
        read_folder(folder)
    assert {i.file for i in refused.value.issues} == {"policies", "processes/gone.bpmn"}
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "pack.yaml").symlink_to(ROOT / "pack.yaml")
    with pytest.raises(PackError, match=r"pack\.yaml is a symbolic link"):
        read_folder(linked)


def test_a_fifo_in_a_pack_folder_is_refused_without_blocking(tmp_path):
    folder = _copy_reference(tmp_path)
    os.mkfifo(folder / "policies" / "policy.csv.fifo")
    os.mkfifo(folder / "processes" / "frozen.bpmn")
    with pytest.raises(PackError) as refused:
        read_folder(folder)
    assert {i.file for i in refused.value.issues} == {"policies/policy.csv.fifo", "processes/frozen.bpmn"}
    assert all("not a regular file" in i.message for i in refused.value.issues)


def test_a_zip_with_a_symlink_or_device_entry_is_refused(reference_files):
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in reference_files.items():
            archive.writestr(name, content)
        link = zipfile.ZipInfo("processes/leak.bpmn")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        device = zipfile.ZipInfo("policies/tty.csv")
        device.external_attr = (stat.S_IFCHR | 0o600) << 16
        archive.writestr(device, "")
    with pytest.raises(PackError) as refused:
        read_zip(buffer.getvalue())
    assert _issues(refused) == [
        "processes/leak.bpmn: symbolic link refused: a pack's files must be regular files inside its folder",
        "policies/tty.csv: not a regular file (a FIFO, socket or device): refused",
    ]


def test_a_zip_holding_a_file_twice_is_refused(reference_files):
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in reference_files.items():
            archive.writestr(name, content)
        archive.writestr("processes//forms.yaml", b"{}")
    with pytest.raises(PackError) as refused:
        read_zip(buffer.getvalue())
    assert _issues(refused) == ["processes//forms.yaml: the archive holds this file twice"]


def test_the_cli_refuses_a_linked_pack_folder_on_deploy_and_serve(tmp_path, secret, monkeypatch):
    folder = _copy_reference(tmp_path)
    (folder / "processes" / "leak.bpmn").symlink_to(secret)
    monkeypatch.setenv("GOVFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    deployed = CliRunner().invoke(cli, ["pack", "deploy", str(folder)])
    assert deployed.exit_code == 1
    assert "processes/leak.bpmn: symbolic link refused" in deployed.output
    monkeypatch.setattr(govflow.logs, "configure", lambda fmt: "text")  # keep pytest's log handlers
    served = CliRunner().invoke(cli, ["serve", "--pack", str(folder), "--port", "1"])
    assert served.exit_code != 0
    assert "symbolic link refused" in served.output + repr(served.exception)
    listed = CliRunner().invoke(cli, ["pack", "list"])
    assert listed.exit_code == 0 and listed.stdout.strip() == ""  # nothing was stored


# -- every file used or refused ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("processes/notes.txt", "processes/ holds diagrams"),
        ("processes/extra.yaml", "processes/ holds diagrams"),
        ("processes/.owner.dmn", "hidden file refused"),
        ("decisions/readme.md", "decisions/ holds decision tables (*.dmn) only"),
        ("decisions/flow.bpmn", "decisions/ holds decision tables (*.dmn) only"),
        ("policies/roles.yaml", "policies/ holds model.conf, policy.csv"),
        ("policies/policy2.csv", "policies/ holds model.conf, policy.csv"),
        ("forms.yaml", "not a file govflow reads at the pack's root"),
        ("owner.dmn", "not a file govflow reads at the pack's root"),
        ("README.md", "not a file govflow reads at the pack's root"),
        ("docs/owner.dmn", "not part of a pack"),
    ],
)
def test_a_file_the_pack_would_not_read_is_refused_in_a_zip(reference_files, name, says):
    files = {**reference_files, name: b"x: 1\n"}
    with pytest.raises(PackError) as refused:
        load_pack(read_zip(files_to_zip(files)))
    [issue] = [i for i in refused.value.issues if i.file == name]
    assert says in issue.message


def test_a_folder_refuses_misplaced_pack_files_but_not_the_repository_around_it(tmp_path):
    folder = _copy_reference(tmp_path)
    (folder / "README.md").write_text("a district's notes")  # not pack content: outside the pack
    (folder / ".git").mkdir()
    (folder / "tools").mkdir()
    (folder / "tools" / "x.yaml").write_text("x: 1")
    assert "README.md" not in read_folder(folder)
    (folder / "owner.dmn").write_bytes((CANGSHAN / "processes" / "owner.dmn").read_bytes())
    (folder / "policies" / "extra.csv").write_text("p, citizen, *, report\n")
    with pytest.raises(PackError) as refused:
        load_pack(read_folder(folder))
    assert {i.file for i in refused.value.issues} == {"owner.dmn"}
    (folder / "owner.dmn").unlink()
    with pytest.raises(PackError) as refused:
        load_pack(read_folder(folder))
    assert {i.file for i in refused.value.issues} == {"policies/extra.csv"}


def test_decision_tables_in_decisions_are_read_and_used(tmp_path, reference_files):
    folder = _copy_reference(tmp_path)
    (folder / "decisions").mkdir()
    (folder / "decisions" / "owner.dmn").write_bytes((CANGSHAN / "processes" / "owner.dmn").read_bytes())
    pack = load_pack(read_folder(folder))
    assert pack.decisions is not None and "cangshan_owner" in pack.decisions
    assert pack.decisions.file_of("cangshan_owner") == "decisions/owner.dmn"
    manifest = yaml.safe_load(pack.files["pack.yaml"])
    manifest["settings"]["dispatch"] = {"owner_decision": "cangshan_owner"}
    files = {**pack.files, "pack.yaml": yaml.safe_dump(manifest, allow_unicode=True).encode()}
    assert load_pack(read_zip(files_to_zip(files))).decisions.evaluate(
        "cangshan_owner", {"matter": "utility.gas_leak"}
    ) == {"owner": "cangshan.rqgs"}
    bad = {**reference_files, "decisions/broken.dmn": b"<definitions/>"}
    with pytest.raises(PackError) as refused:
        load_pack(bad)
    assert any(i.file == "decisions/broken.dmn" for i in refused.value.issues)


def test_invalid_demo_principals_are_refused_with_the_pack(reference_files):
    files = dict(reference_files)
    files["policies/demo-principals.yaml"] = b"principals:\n  - {id: x, token: short, roles: [king]}\n"
    with pytest.raises(PackError) as refused:
        load_pack(files)
    messages = [str(i) for i in refused.value.issues if i.file == "policies/demo-principals.yaml"]
    assert any("principals[0].token" in m for m in messages) and any("principals[0].roles" in m for m in messages)


def _indent(text: str) -> str:
    return "".join("  " + line + "\n" for line in text.splitlines())


# -- files of an unexpected shape ----------------------------------------------------------------------------
SHAPES = [
    b"[]",
    b"5",
    b"'x'",
    b"{a: 1}",
    b"[[1]]",
    b"\xff\xfe",
    b"{units: [5, 'x', {code: 5}], matters: [{code: [1]}]}",
    b"{entries: [5, {matter: [1], main: {}}]}",
    b"{principals: [5, {id: [1], roles: 'x'}]}",
    b"{sign_for: {fields: 5}}",
    b"{sign_for: {fields: {x: 5}}}",
    b"{sign_for: {fields: {x: {type: text, options: 5, max_length: 'x', min: []}}}}",
    b"{sign_for: {fields: {model_config: {type: text}, 5: {type: text}}}}",
]
GEOJSON = [
    b'{"type":"FeatureCollection","features":5}',
    b'{"type":"FeatureCollection","features":[5,"x",{"properties":5}]}',
    b'{"type":"FeatureCollection","features":"abc"}',
    b'{"type":"FeatureCollection","features":[{"properties":{"code":"gulou.dongjie"},"geometry":5}]}',
    b"[" * 100_000 + b"]" * 100_000,
]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (n, c)
        for n in (
            "pack.yaml",
            "catalog.yaml",
            "processes/forms.yaml",
            "policies/responsibility.yaml",
            "policies/demo-principals.yaml",
        )
        for c in SHAPES
    ]
    + [("boundaries.geojson", c) for c in SHAPES + GEOJSON]
    + [
        (
            "pack.yaml",
            b"name: reference\nversion: '1'\ndistrict: gulou\nprocess: frontline_disposal\nsettings: {dispatch: 5, deadlines: 5}\n",
        )
    ],
)
def test_a_file_of_an_unexpected_shape_is_an_issue_never_a_crash(reference_files, name, content):
    with pytest.raises(PackError) as refused:
        load_pack({**reference_files, name: content})
    assert refused.value.issues
