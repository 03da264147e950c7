"""The wheel holds the whole product: every package, its data, and nothing else.

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
import zipfile
from importlib import metadata
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: source folder -> the package it is installed as (pyproject's package-dir)
PACKAGES = {"engine": "govflow.engine", "api": "govflow.api", "plugins": "govflow.plugins", "govflow": "govflow"}
#: what the build reads besides the source folders
BUILD_FILES = ("pyproject.toml", "README.md")
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
    return files


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
    for folder in PACKAGES:
        shutil.copytree(ROOT / folder, src / folder, ignore=_JUNK)
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
