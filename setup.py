"""The one build step pyproject.toml cannot declare: ship the reference pack in the wheel.

The reference pack is the repository's own top level (``pack.yaml``, ``catalog.yaml``,
``boundaries.geojson``, ``processes/``, ``policies/``): one source, never a copy in the
tree. A wheel needs it inside the package, so the build copies those files into
``govflow/reference/`` of the build folder; an editable install reads them from the
checkout instead (``govflow.settings.REFERENCE_PACK``). Everything else is in
pyproject.toml; tests/test_packaging.py checks the wheel holds exactly these files.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
REFERENCE_FILES = ("pack.yaml", "catalog.yaml", "boundaries.geojson", "simulation.yaml")
REFERENCE_FOLDERS = ("processes", "policies")
TARGET = ("govflow", "reference")


def reference_files() -> list[str]:
    """The reference pack's files, relative to the repository root (posix paths)."""
    names = [name for name in REFERENCE_FILES if (ROOT / name).is_file()]
    for folder in REFERENCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            rel = path.relative_to(ROOT)
            if path.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                names.append(rel.as_posix())
    return names


class BuildWithReferencePack(build_py):
    """build_py, plus the reference pack copied to govflow/reference/ (not in editable mode)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in reference_files():
            dest = Path(self.build_lib, *TARGET, name)
            self.mkpath(str(dest.parent))
            self.copy_file(str(ROOT / name), str(dest), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs += [str(Path(self.build_lib, *TARGET, name)) for name in reference_files()]
        return outputs


setup(cmdclass={"build_py": BuildWithReferencePack})
