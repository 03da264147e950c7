"""Helpers shared by the pack tests: example pack folders, derived packs, principals of other districts."""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy.orm import Session

from govflow.engine.access.identity import parse_principals, store_principals
from govflow.engine.packs.loader import read_folder

ROOT = Path(__file__).resolve().parent.parent
CANGSHAN = ROOT / "examples" / "cangshan"
TAIJIANG = ROOT / "examples" / "taijiang"


def manifest(**keys) -> bytes:
    return yaml.safe_dump(keys, allow_unicode=True, sort_keys=False).encode()


def gulou_version(version: str, *, extends: str = "reference@1.0.0", **files: bytes) -> dict[str, bytes]:
    """A new version of the Gulou pack (name ``reference``) that extends 1.0.0 with ``files``."""
    out = {"pack.yaml": manifest(name="reference", version=version, extends=extends)}
    out.update({name.replace("__", "/").replace("_DOT_", "."): content for name, content in files.items()})
    return out


def deploy_example(app, folder: Path, *, actor: str = "tests"):
    pack = app.packs.compile(read_folder(folder))
    app.packs.deploy(pack, actor=actor, now=app.clock.now())
    store_demo_principals(app, folder)
    return pack


def store_demo_principals(app, folder: Path) -> dict:
    catalogs = [app.packs.active(d).catalog for d in app.packs.districts()]
    entries = parse_principals((folder / "policies" / "demo-principals.yaml").read_text(encoding="utf-8"), catalogs)
    with Session(app.db) as session, session.begin():
        store_principals(session, entries, app.clock.now())
    app.access.refresh_grants()
    return {p.id: p for p, _ in entries}
