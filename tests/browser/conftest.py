"""Browser tests: the studio in headless Chromium from Debian's package, driven by Playwright.

Set-up happens here, so ``scripts/test`` and a bare ``pytest`` both work: Chromium (and a CJK
font for readable screenshots) is installed with apt-get when it is missing and the tests run
as root; the studio's bundle is built when ``web/node_modules`` is there but ``web/dist`` is
not. Playwright never downloads a browser: it is pointed at ``/usr/bin/chromium``. Without
Playwright, Chromium or Node.js the tests are skipped, saying why. Screenshots of the main
screens go to ``var/artefacts/studio/`` (git-ignored; ``GOVFLOW_TEST_ARTEFACTS`` moves them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.server import CHROMIUM_ARGS, Served, serve

ROOT = Path(__file__).resolve().parents[2]


def chromium() -> str | None:
    """Debian's Chromium, installed when missing (as root, with apt-get)."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "chromium", "fonts-wqy-microhei"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        subprocess.run(install, env=env, capture_output=True, check=False)
    return shutil.which("chromium")


def studio_bundle() -> str | None:
    """Why the studio cannot be served (None when its bundle is there, built now if need be)."""
    if (ROOT / "web" / "dist" / "studio" / "index.html").is_file():
        return None
    node = shutil.which("node")
    if node is None or not (ROOT / "web" / "node_modules").is_dir():
        return "the studio is not built: scripts/setup builds it when Node.js and npm are there"
    built = subprocess.run([node, str(ROOT / "web" / "build.mjs")], capture_output=True, text=True, check=False)
    return None if built.returncode == 0 else f"the studio did not build: {built.stderr[-2000:]}"


@pytest.fixture(scope="session")
def browser() -> Iterator:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    missing = studio_bundle()
    if missing:
        pytest.skip(missing)
    executable = chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def server(tmp_path) -> Iterator[Served]:
    with serve(tmp_path) as served:
        yield served


@pytest.fixture(scope="session")
def artefacts() -> Path:
    folder = Path(os.environ.get("GOVFLOW_TEST_ARTEFACTS") or ROOT / "var" / "artefacts" / "studio")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
