"""``govflow dispatch``: train the smart-dispatch model of a pack and stage it with the pack.

``govflow dispatch train --district D`` reads the district's active pack, its
labelled examples (``dispatch/examples.yaml``) and every report the command centre
dispatched or re-categorised by hand (``case.dispatched`` events with a matter),
trains a model (:mod:`govflow.plugins.builtin.dispatch_training`), prints the
cross-validated figures and the confusion pairs, and deploys a **new, inactive**
pack version holding the model and the examples it was trained on: activation
stays an explicit step (``govflow pack activate``), so a bad model never goes
live silently. ``--pack PATH`` trains a pack folder offline and writes its
``dispatch/model.json`` (how the reference pack's model is made).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

dispatch_app = typer.Typer(help="Smart dispatch: train the model of a pack.", no_args_is_help=True)


def examples_of(files: dict[str, bytes]) -> list[Any]:
    from govflow.plugins.builtin.dispatch_model import EXAMPLES_FILE
    from govflow.plugins.builtin.dispatch_training import Example

    raw = yaml.safe_load(files.get(EXAMPLES_FILE, b"[]").decode("utf-8")) or []
    return [Example(str(r["text"]), r.get("matter")) for r in raw]


def dump_examples(examples: list[Any]) -> bytes:
    header = (
        "# Labelled reports the dispatch model of this pack version was trained on (with the catalog's\n"
        "# names and keywords). matter null: no matter of the catalog. Written by govflow dispatch train.\n"
    )
    lines = [json.dumps({"text": e.text, "matter": e.matter}, ensure_ascii=False) for e in examples]
    return (header + "".join(f"- {line}\n" for line in lines)).encode("utf-8")


def train_files(files: dict[str, bytes], pack: Any, examples: list[Any], say: Any, **options: Any) -> bytes:
    """Train on ``examples`` for ``pack``; print the report; return the model file's bytes."""
    from govflow.plugins.builtin.dispatch_training import train

    mask = list(pack.gazetteer.names) if pack.gazetteer is not None else []
    model, report = train(examples, pack.catalog, mask, **options)
    for line in report.lines():
        say(line)
    return json.dumps(model, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def next_version(version: str, taken: set[str]) -> str:
    base = version.split("+m", 1)[0]
    n = 1
    while f"{base}+m{n}" in taken:
        n += 1
    return f"{base}+m{n}"


@dispatch_app.command("train")
def dispatch_train(
    district: Annotated[str | None, typer.Option(help="train the district's active pack with its corrections")] = None,
    pack_path: Annotated[Path | None, typer.Option("--pack", help="train a pack folder offline")] = None,
    folds: Annotated[int, typer.Option(help="cross-validation folds")] = 5,
    database_url: Annotated[str | None, typer.Option(help="database URL")] = None,
) -> None:
    """Retrain the dispatch model, print cross-validated accuracy and confusion pairs, stage it with the pack."""
    from govflow.cli import _build, _settings
    from govflow.engine.cases.history import dispatch_corrections
    from govflow.engine.packs.loader import load_pack, read_folder
    from govflow.plugins.builtin.dispatch_model import EXAMPLES_FILE, MODEL_FILE
    from govflow.plugins.builtin.dispatch_training import Example

    if (district is None) == (pack_path is None):
        raise typer.BadParameter("give either --district or --pack")
    if pack_path is not None:
        files = read_folder(pack_path)
        pack = load_pack(files)
        content = train_files(files, pack, examples_of(files), typer.echo, folds=folds)
        target = pack_path / MODEL_FILE
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(content)
        typer.echo(f"wrote {MODEL_FILE} ({len(content) // 1024} KiB)")
        return
    assert district is not None
    app = _build(_settings(database_url))
    active = app.packs.active(district)
    files = dict(active.files)
    examples = examples_of(files)
    seen = {e.text for e in examples}
    corrections = [c for c in dispatch_corrections(app.db, district) if c.matter in active.catalog.matters]
    fresh = [Example(c.description, c.matter, "district") for c in corrections if c.description not in seen]
    typer.echo(
        f"{active.manifest.name} {active.manifest.version}: {len(examples)} examples in the pack,"
        f" {len(fresh)} new from the district's dispatchers"
    )
    examples += fresh
    files[MODEL_FILE] = train_files(files, active, examples, typer.echo, folds=folds)
    files[EXAMPLES_FILE] = dump_examples(examples)
    manifest = yaml.safe_load(files["pack.yaml"].decode("utf-8"))
    taken = {v.version for v in app.packs.versions() if v.name == active.manifest.name}
    manifest["version"] = next_version(active.manifest.version, taken)
    files["pack.yaml"] = yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False).encode("utf-8")
    staged = app.packs.compile(files)
    app.packs.deploy(staged, actor="system.cli", now=app.clock.now(), activate=False)
    m = staged.manifest
    typer.echo(f"staged {m.name} {m.version} ({m.district}), not active: govflow pack activate {m.name} {m.version}")


__all__ = ["dispatch_app", "dump_examples", "examples_of", "next_version", "train_files"]
