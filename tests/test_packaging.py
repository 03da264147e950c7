"""The wheel holds the whole product: every package, its data, the reference pack, and nothing else.

pyproject.toml lists the packages by hand (``package-dir`` maps the source folders
engine/, api/, plugins/ and govflow/ into the one package ``govflow``), so a new
subpackage left off that list would vanish from the wheel without a sound. These
tests build the wheel from a copy of the sources (no build isolation, no network),
compare it with the source folders, and import every module from the unpacked
wheel in a fresh interpreter that cannot see the source checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from importlib import metadata
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: source folder -> the package it is installed as (pyproject's package-dir)
PACKAGES = {"engine": "govflow.engine", "api": "govflow.api", "plugins": "govflow.plugins", "govflow": "govflow"}
#: what the build reads besides the source folders
BUILD_FILES = ("pyproject.toml", "README.md", "setup.py")
#: the reference pack: the repository's top level, shipped as govflow/reference/ (setup.py)
REFERENCE_FILES = ("pack.yaml", "catalog.yaml", "boundaries.geojson", "simulation.yaml")
REFERENCE_FOLDERS = ("processes", "policies")
#: modules that only run inside a host: Alembic executes env.py itself
NOT_IMPORTABLE_ALONE = {"govflow.engine.store.migrations.env"}
_JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


def source_files() -> dict[str, Path]:
    """Every file of the source folders, by the path it must have in the wheel."""
    files = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*")):
            rel = path.relative_to(ROOT / folder)
            if path.is_dir() or "__pycache__" in rel.parts or path.suffix == ".pyc":
                continue
            files[str(PurePosixPath(*package.split("."), *rel.parts))] = path
    return files | reference_files()


def reference_files() -> dict[str, Path]:
    """The reference pack's files, by the path they must have in the wheel (govflow/reference/…)."""
    paths = [ROOT / name for name in REFERENCE_FILES]
    for folder in REFERENCE_FOLDERS:
        paths += [p for p in sorted((ROOT / folder).rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    return {str(PurePosixPath("govflow", "reference", *p.relative_to(ROOT).parts)): p for p in paths}


def source_packages() -> set[str]:
    """Every folder with an ``__init__.py``, as its dotted package name."""
    return {
        str(PurePosixPath(name).parent).replace("/", ".") for name in source_files() if name.endswith("/__init__.py")
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    try:
        setuptools = metadata.version("setuptools")
    except metadata.PackageNotFoundError:
        setuptools = "0"
    if int(setuptools.split(".")[0]) < 77:
        pytest.fail(f"building the wheel needs setuptools>=77 (have {setuptools}): run scripts/setup")
    work = tmp_path_factory.mktemp("wheel")
    src, dist = work / "src", work / "dist"
    src.mkdir()
    for name in BUILD_FILES:
        shutil.copy2(ROOT / name, src / name)
    for folder in (*PACKAGES, *REFERENCE_FOLDERS):
        shutil.copytree(ROOT / folder, src / folder, ignore=_JUNK)
    for name in REFERENCE_FILES:
        shutil.copy2(ROOT / name, src / name)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(dist),
        ],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, f"pip wheel failed:\n{built.stdout}\n{built.stderr}"
    (found,) = dist.glob("govflow-*.whl")
    return found


@pytest.fixture(scope="module")
def wheel_names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.fixture(scope="module")
def unpacked(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def test_the_walk_sees_the_sources():
    packages = source_packages()
    assert {"govflow", "govflow.engine", "govflow.engine.store.migrations.versions", "govflow.api.routes"} <= packages
    assert "govflow/engine/store/migrations/script.py.mako" in source_files()


def test_the_reference_pack_ships_in_the_wheel(wheel_names):
    """One source (the repository's top level), shipped as package data: what `govflow serve` runs when installed."""
    shipped = {n for n in wheel_names if n.startswith("govflow/reference/")}
    assert shipped == set(reference_files())
    assert {"govflow/reference/pack.yaml", "govflow/reference/processes/frontline_disposal.bpmn"} <= shipped
    assert not (ROOT / "govflow" / "reference").exists(), "the checkout must not hold a copy of the reference pack"


def test_every_source_package_is_in_the_wheel(wheel_names):
    in_wheel = {str(PurePosixPath(n).parent).replace("/", ".") for n in wheel_names if n.endswith("/__init__.py")}
    missing = sorted(source_packages() - in_wheel)
    assert not missing, f"packages missing from the wheel (add them to [tool.setuptools] packages): {missing}"


def test_every_source_file_is_in_the_wheel(wheel_names):
    """Modules and package data alike (Alembic's script.py.mako and every migration version)."""
    missing = sorted(set(source_files()) - wheel_names)
    assert not missing, f"files missing from the wheel (package list or package-data): {missing}"


def test_migrations_ship_with_their_template_and_versions(wheel_names):
    migrations = "govflow/engine/store/migrations/"
    assert {migrations + "env.py", migrations + "script.py.mako", migrations + "versions/__init__.py"} <= wheel_names
    versions = [n for n in wheel_names if n.startswith(migrations + "versions/") and not n.endswith("__init__.py")]
    assert len(versions) == len(list((ROOT / "engine/store/migrations/versions").glob("0*.py")))


def test_the_wheel_holds_only_govflow(wheel_names):
    tops = {PurePosixPath(n).parts[0] for n in wheel_names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"govflow"}


# The child interpreter: no site module (so no .pth file, and no editable-install finder
# pointing at the source checkout), no environment variables, no current folder; only the
# standard library, the unpacked wheel, and the virtualenv's site-packages for dependencies.
_CHILD = r"""
import importlib, json, sys, tempfile
from pathlib import Path

wheel_dir, site_dirs, modules, entry_points = json.loads(sys.argv[1])
sys.path[:0] = [wheel_dir]
sys.path.extend(site_dirs)
for name in modules:
    importlib.import_module(name)
for value in entry_points:
    module, _, attr = value.partition(":")
    target = importlib.import_module(module)
    if attr:
        getattr(target, attr)

from govflow.engine.store.db import make_engine
from govflow.engine.store.migrate import upgrade

with tempfile.TemporaryDirectory() as tmp:
    engine = make_engine(f"sqlite:///{tmp}/wheel.sqlite3")
    upgrade(engine)
    engine.dispose()

outside = sorted(
    name for name, module in sys.modules.items()
    if name.split(".")[0] == "govflow" and getattr(module, "__file__", None)
    and not Path(module.__file__).resolve().is_relative_to(Path(wheel_dir).resolve())
)
print(json.dumps({"outside": outside, "path": sys.path}))
"""


def wheel_modules(wheel_names: set[str]) -> list[str]:
    names = []
    for name in sorted(wheel_names):
        if name.startswith("govflow/") and name.endswith(".py"):
            parts = PurePosixPath(name).with_suffix("").parts
            dotted = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if dotted not in NOT_IMPORTABLE_ALONE:
                names.append(dotted)
    return names


def test_every_module_imports_from_the_wheel_alone(unpacked, wheel_names):
    """Every package and module, the entry points, and the database migrations, run from the wheel."""
    (dist_info,) = unpacked.glob("govflow-*.dist-info")
    entry_points = [
        line.split("=", 1)[1].strip()
        for line in (dist_info / "entry_points.txt").read_text(encoding="utf-8").splitlines()
        if "=" in line
    ]
    site_dirs = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    modules = wheel_modules(wheel_names)
    assert "govflow.engine.model" in modules and "govflow.api.app" in modules
    child = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _CHILD, json.dumps([str(unpacked), site_dirs, modules, entry_points])],
        cwd=unpacked,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, f"importing from the wheel failed:\n{child.stderr[-4000:]}"
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["outside"] == [], "govflow modules were imported from outside the wheel"
    root = str(ROOT)
    venv = str(Path(sys.prefix).resolve())
    leaked = [p for p in report["path"] if p.startswith(root) and not Path(p).resolve().is_relative_to(venv)]
    assert leaked == [], f"the source checkout is on the child's sys.path: {leaked}"


# -- installed in a fresh virtualenv: the main job from an empty folder ----------------------------
# The wheel is installed with pip into a new virtualenv (no network, no index). Its dependencies
# come from this environment's site-packages, seen through a .pth file in the new one, less any
# govflow distribution (the editable install and its finder stay out): the child sees the
# wheel's govflow and nothing of the checkout.


def _site_dirs() -> list[Path]:
    return [Path(p) for p in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("install")
    venv, deps = work / "venv", work / "deps"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    deps.mkdir()
    for site in _site_dirs():
        for entry in site.iterdir():
            name = entry.name
            if name.startswith(("govflow", "__editable__", "__pycache__")) or name.endswith(".pth"):
                continue
            if not (deps / name).exists():
                (deps / name).symlink_to(entry)
    python = venv / "bin" / "python"
    child_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(child_site) / "_govflow_test_dependencies.pth").write_text(f"{deps}\n", encoding="utf-8")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"pip install failed:\n{done.stdout}\n{done.stderr}"
    return venv


def _clean_env(venv: Path, home: Path) -> dict[str, str]:
    """What a new user's shell has: no GOVFLOW_* settings, a home of its own."""
    return {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "GOVFLOW_LOG_FORMAT": "json"}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_installed_wheel_has_every_dependency(installed):
    check = r"""
import re
from importlib import metadata
missing = []
for req in metadata.requires("govflow") or []:
    if "extra ==" in req:
        continue
    name = re.split(r"[ <>=!~;\[]", req, maxsplit=1)[0]
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        missing.append(name)
import govflow, govflow.settings as s
print(missing, govflow.__file__, s.REFERENCE_PACK, s.FROM_CHECKOUT)
"""
    out = subprocess.run(
        [str(installed / "bin" / "python"), "-c", check], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert out.returncode == 0, out.stderr
    missing, module, reference, from_checkout = out.stdout.split()
    assert missing == "[]"
    assert Path(module).is_relative_to(installed) and Path(reference).is_relative_to(installed)
    assert from_checkout == "False"


def test_an_installed_govflow_serves_the_reference_pack_from_an_empty_folder(installed, tmp_path):
    """`govflow serve --demo` from any folder: schema created in the user's data folder, the reference pack
    deployed, a case reported, /healthz and /readyz answered, SIGTERM ends it with exit code 0."""
    import signal

    import httpx

    home, folder = tmp_path / "home", tmp_path / "anywhere"
    home.mkdir()
    folder.mkdir()
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(installed / "bin" / "govflow"), "serve", "--demo", "--port", str(port)],
            cwd=folder,
            env=_clean_env(installed, home),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while True:
                assert server.poll() is None, log_path.read_text(encoding="utf-8")
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not start:\n" + log_path.read_text()
                time.sleep(0.2)
            ready = httpx.get(f"{base}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
            assert ready.json()["districts"] == ["gulou"]
            reported = httpx.post(
                f"{base}/api/v1/cases",
                headers={"Authorization": "Bearer demo-citizen-zhang", "X-Request-ID": "install-test-1"},
                json={
                    "channel": "app",
                    "description": "东街口有个井盖没了",
                    "location": {"lat": 26.0865, "lng": 119.3025},
                },
                timeout=30,
            )
            assert reported.status_code == 201, reported.text
            assert reported.json()["status"] == "dispatched"
            assert reported.headers["X-Request-ID"] == "install-test-1"
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=60)
    lines = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    said = [entry["msg"] for entry in lines]
    assert code == 0, said
    [db] = list(home.rglob("govflow.sqlite3"))
    assert db.parent == home / ".local" / "share" / "govflow"
    assert any(m.startswith("created the database schema (") and str(db) in m for m in said), said
    assert "deployed and activated reference 1.0.0 for gulou (the district had no active version)" in said
    assert any(e["msg"].startswith("POST /api/v1/cases 201") and e.get("request_id") == "install-test-1" for e in lines)
    assert "timer loop stopped" in said
    assert list(folder.iterdir()) == [], "nothing is written into the folder it was started from"


def test_an_installed_govflow_scaffolds_and_validates_district_packs(installed, tmp_path):
    """The reference pack is known to an installed govflow: `init` and `pack validate` of a pack that extends it."""
    home = tmp_path / "home"
    home.mkdir()
    env = _clean_env(installed, home)
    govflow = str(installed / "bin" / "govflow")
    made = subprocess.run(
        [govflow, "init", "minhou", "--district", "minhou"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    assert "ok: minhou 0.1.0 (minhou)" in made.stdout
    example = subprocess.run(
        [govflow, "pack", "validate", str(ROOT / "examples" / "cangshan")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert example.returncode == 0, example.stderr
    assert example.stdout.startswith("ok: cangshan")
