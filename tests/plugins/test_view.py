"""What hooks see of a pack (PackView) and how plugins cache per pack: in the application's
caches, built once however many callers arrive together, never in module globals."""

from __future__ import annotations

import ast
import dataclasses
import threading
import time
from pathlib import Path

import pytest

from govflow.engine.cache import Caches
from govflow.engine.cases.history import PastCase, StaticHistory
from govflow.engine.model.dispatch import Report
from govflow.engine.model.errors import NotFound
from govflow.plugins import PackView
from govflow.plugins.builtin import keywords
from govflow.plugins.view import CACHE_PREFIX

ROOT = Path(__file__).resolve().parents[2]


def test_the_view_is_narrow_and_read_only(reference_pack, reference_view):
    public = [f.name for f in dataclasses.fields(PackView) if not f.name.startswith("_")]
    assert public == ["name", "version", "district", "catalog", "settings", "territory", "gazetteer"]
    assert (reference_view.name, reference_view.version, reference_view.district) == ("reference", "1.0.0", "gulou")
    assert reference_view.catalog is reference_pack.catalog and reference_view.territory is reference_pack.territory
    assert not hasattr(reference_view, "manifest") and not hasattr(reference_view, "runtime")
    with pytest.raises(dataclasses.FrozenInstanceError):
        reference_view.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        reference_view.settings["deadlines"] = {}  # type: ignore[index]
    assert dict(reference_view.settings).keys() == dict(reference_pack.manifest.settings).keys()


def test_settings_are_read_only_all_the_way_down(reference_pack, caches):
    manifest = dataclasses.replace(
        reference_pack.manifest, settings={"zone_routing": {"zones": [{"unit": "gulou.dongjie", "matters": ["env.*"]}]}}
    )
    view = PackView.of(dataclasses.replace(reference_pack, manifest=manifest, content_hash="other"), caches)
    zone = view.settings["zone_routing"]["zones"][0]
    assert zone["matters"] == ("env.*",)
    with pytest.raises(TypeError):
        zone["unit"] = "gulou.nanjie"


def test_one_view_per_pack_version(reference_pack, caches):
    assert PackView.of(reference_pack, caches) is PackView.of(reference_pack, caches)
    assert PackView.of(reference_pack, Caches()) is not PackView.of(reference_pack, caches)


def test_a_view_evaluates_the_packs_decisions_only(reference_view):
    with pytest.raises(NotFound):
        reference_view.decide("no_such_decision", {})


def test_pack_cache_builds_once_per_pack_version(reference_pack, reference_view, caches):
    builds = []

    def build():
        builds.append(1)
        return object()

    first = reference_view.cache("test.thing", build)
    assert reference_view.cache("test.thing", build) is first
    assert PackView.of(reference_pack, caches).cache("test.thing", build) is first
    assert builds == [1]
    assert caches.cache(CACHE_PREFIX + "test.thing").stats.builds == 1
    caches.clear()  # the application can drop every plugin cache at once
    assert reference_view.cache("test.thing", build) is not first


def test_depends_on_rebuilds_and_keeps_only_the_latest(reference_view, caches):
    a, b = object(), object()
    on_a = reference_view.cache("test.snapshot", lambda: ["a"], depends_on=a)
    assert reference_view.cache("test.snapshot", lambda: ["again"], depends_on=a) is on_a
    on_b = reference_view.cache("test.snapshot", lambda: ["b"], depends_on=b)
    assert on_b == ["b"]
    assert len(caches.cache(CACHE_PREFIX + "test.snapshot")) == 1  # the value for ``a`` is gone


def test_a_failed_build_is_not_cached(reference_view):
    def broken():
        raise ValueError("bad settings")

    with pytest.raises(ValueError):
        reference_view.cache("test.broken", broken)
    assert reference_view.cache("test.broken", lambda: "fixed") == "fixed"


def test_concurrent_first_classifications_build_the_scorer_once(reference_view, monkeypatch):
    built: list[int] = []

    class SlowScorer(keywords.MatterScorer):
        def __init__(self, *args, **kwargs):
            built.append(1)
            time.sleep(0.2)  # long enough for every caller to arrive while it is built
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(keywords, "MatterScorer", SlowScorer)
    history = StaticHistory("gulou", [PastCase("楼下的路灯全黑", "lighting.streetlight_out")] * 3)
    report = Report("东街口有个井盖没了", None, None, None, None, "app")
    start = threading.Barrier(8)
    results: list[object] = []

    def classify():
        start.wait()
        results.append(keywords.classify(reference_view, report, history))

    threads = [threading.Thread(target=classify) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert built == [1]
    assert len(results) == 8 and {r[0] for r in results} == {"road.manhole_cover"}


def test_a_refreshed_snapshot_replaces_the_scorer(reference_view, caches):
    history = StaticHistory("gulou", [PastCase("楼下的路灯全黑", "lighting.streetlight_out")])
    first = keywords.scorer(reference_view, history.past_cases("gulou"))
    refreshed = keywords.scorer(
        reference_view, StaticHistory("gulou", list(history.past_cases("gulou").cases)).past_cases("gulou")
    )
    assert refreshed is not first
    assert len(caches.cache(CACHE_PREFIX + keywords.SCORER_CACHE)) == 1


# -- no module-level mutable caches in plugins ------------------------------------------------
MUTABLE_CALLS = {
    "dict",
    "list",
    "set",
    "defaultdict",
    "OrderedDict",
    "Counter",
    "WeakKeyDictionary",
    "WeakValueDictionary",
}


def module_level_mutables(path: Path) -> list[str]:
    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name) and t.id != "__all__"]
            value = node.value
            call = value.func if isinstance(value, ast.Call) else None
            called = call.attr if isinstance(call, ast.Attribute) else getattr(call, "id", None)
            if names and (isinstance(value, ast.Dict | ast.List | ast.Set) or called in MUTABLE_CALLS):
                found += [f"{path.relative_to(ROOT)}: {name}" for name in names]
    return found


def plugin_sources() -> list[Path]:
    folders = [ROOT / "plugins", ROOT / "examples" / "plugins"]
    return sorted(p for folder in folders for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_walk_sees_the_plugins():
    names = {p.name for p in plugin_sources()}
    assert {"dispatch.py", "calendar.py", "view.py"} <= names
    assert any(p.parent.name == "govflow_zone_routing" for p in plugin_sources())


@pytest.mark.parametrize("path", plugin_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_keep_no_module_level_mutable_state(path):
    assert module_level_mutables(path) == []
