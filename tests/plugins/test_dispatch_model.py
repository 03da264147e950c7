"""The trained dispatch model: the corpus's frozen split, features that set side issues and places
aside, the model file of the reference pack (loadable, reproducible from its examples, faithful to
scikit-learn's calibrated probabilities), classification with candidates, places from text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from govflow.engine.cache import Caches
from govflow.engine.model.dispatch import Classification, Location, Report
from govflow.engine.packs.loader import load_pack, read_folder
from govflow.plugins import PackView
from govflow.plugins.builtin import dispatch
from govflow.plugins.builtin.dispatch_model import DEFAULT_CONFIG, MODEL_FILE, NONE, Model, clauses, features
from govflow.plugins.builtin.dispatch_training import Example, digest, train
from govflow.settings import REFERENCE_PACK

DATA = Path(__file__).resolve().parent.parent / "data" / "dispatch"


def rep(text, lat=None, lng=None, address=None):
    return Report(text, None, lat, lng, address, "app")


def test_the_frozen_test_split_shares_no_place_and_no_report_with_the_training_split():
    test = yaml.safe_load((DATA / "test.yaml").read_text(encoding="utf-8"))
    train_split = yaml.safe_load((DATA / "train.yaml").read_text(encoding="utf-8"))
    assert len(test) >= 300 and len(train_split) >= 400
    assert not {r["place"] for r in test if r["place"]} & {r["place"] for r in train_split if r["place"]}
    assert not {r["text"] for r in test} & {r["text"] for r in train_split}
    examples = yaml.safe_load((REFERENCE_PACK / "dispatch" / "examples.yaml").read_text(encoding="utf-8"))
    assert not {r["text"] for r in test} & {e["text"] for e in examples}  # the test split never trains


def test_a_dismissed_side_issue_weighs_little_and_the_main_complaint_more():
    parts = dict(clauses("我一开始以为是自来水管爆了，其实是污水井满出来了", DEFAULT_CONFIG))
    assert parts["我一开始以为是自来水管爆了"] == DEFAULT_CONFIG["dismissed"]
    assert parts["污水井满出来了"] == DEFAULT_CONFIG["emphasis"]
    inline = dict(clauses("不是路灯的问题而是井盖丢了", DEFAULT_CONFIG))
    assert inline["不是路灯的问题"] == DEFAULT_CONFIG["dismissed"] and inline["井盖丢了"] == DEFAULT_CONFIG["emphasis"]
    assert dict(clauses("垃圾桶倒是天天有人清", DEFAULT_CONFIG))["垃圾桶倒是天天有人清"] == DEFAULT_CONFIG["dismissed"]


def test_place_names_are_masked_so_they_are_no_evidence():
    grams = features("西湖公园门口的井盖没了", DEFAULT_CONFIG, {"西湖公园": True}, [4])
    assert "公园" not in grams and "井盖" in grams and "园门" not in grams


def test_the_reference_model_is_reproducible_from_the_pack_it_ships_with():
    files = read_folder(REFERENCE_PACK)
    data = json.loads(files[MODEL_FILE])
    examples = yaml.safe_load(files["dispatch/examples.yaml"].decode("utf-8"))
    assert data["training"]["examples_sha256"] == digest(Example(e["text"], e["matter"]) for e in examples)
    pack = load_pack(files)
    model = Model(data)
    assert set(model.classes) - {NONE} <= set(pack.catalog.matters)
    assert set(pack.gazetteer.names) <= set(model.mask)  # trained with the pack's places masked


@pytest.fixture(scope="module")
def small():
    pack = load_pack(read_folder(REFERENCE_PACK))
    keep = {"road.manhole_cover", "lighting.streetlight_out", "env.garbage_overflow"}
    pack.catalog.matters = {k: v for k, v in pack.catalog.matters.items() if k in keep}
    examples = [
        Example("路口的井盖不见了", "road.manhole_cover"),
        Example("下水道的盖子碎了", "road.manhole_cover"),
        Example("检查井的铁盖翘起来", "road.manhole_cover"),
        Example("晚上路灯全灭了", "lighting.streetlight_out"),
        Example("这条街的灯一个星期不亮", "lighting.streetlight_out"),
        Example("路边的灯坏了很黑", "lighting.streetlight_out"),
        Example("垃圾桶满了没人收", "env.garbage_overflow"),
        Example("垃圾堆在路边好几天", "env.garbage_overflow"),
        Example("收集点的垃圾满出来了", "env.garbage_overflow"),
    ]
    return pack, examples


def test_training_is_deterministic_and_predictions_match_scikit_learn(small):
    from sklearn.svm import LinearSVC

    pack, examples = small
    first, report = train(examples, pack.catalog, ["东街口"], folds=3)
    second, _ = train(examples, pack.catalog, ["东街口"], folds=3)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert report.n == len(examples) and report.classes == 3
    model = Model(json.loads(json.dumps(first)))
    prediction = model.predict("东街口有个井盖没了")
    assert prediction.best[0] == "road.manhole_cover"
    assert abs(sum(p for _, p in model.predict("x", top=3).ranked) - 1.0) < 1e-6
    decision, *_ = model.scores("井盖")
    proba = model.probabilities(decision.astype(np.float64))
    assert np.all(proba > 0) and abs(proba.sum() - 1) < 1e-9
    assert list(np.argsort(-proba)) == list(np.argsort(-decision))  # the probabilities keep the decisions' order
    assert 0 < model.predict("x").confidence < prediction.confidence < 1
    # the stored coefficients (int8) reproduce scikit-learn's decision values on the training features
    from govflow.plugins.builtin import dispatch_training as t

    featurizer = t._Featurizer(dict(first["config"]), ["东街口"])
    texts = [e.text for e in t.catalog_examples(pack.catalog)] + [e.text for e in examples]
    counts = featurizer.counts(texts)
    vocabulary, idf = t._vocabulary(counts, 1)
    x = t._matrix(counts, vocabulary, idf)
    svm = LinearSVC(C=t.C, random_state=t.SEED, max_iter=5000).fit(
        x, [*[e.matter for e in t.catalog_examples(pack.catalog)], *[e.matter for e in examples]]
    )
    want = svm.decision_function(t._matrix(featurizer.counts(["东街口有个井盖没了"]), vocabulary, idf))[0]
    got, *_ = model.scores("东街口有个井盖没了")
    assert np.allclose(got, want, atol=0.02)


def test_the_reference_model_routes_a_clear_report_and_leaves_the_unsure_to_a_person():
    view = PackView.of(load_pack(read_folder(REFERENCE_PACK)), Caches())
    sure = dispatch.classify(view, rep("东街口有个井盖没了，晚上很危险"))
    assert isinstance(sure, Classification) and sure.matter == "road.manhole_cover"
    assert sure.candidates[0][0] == "road.manhole_cover" and sure.how.startswith("model: ")
    vague = dispatch.classify(view, rep("你好，我想问一下"))
    assert isinstance(vague, Classification) and vague.matter is None and vague.candidates
    assert dispatch.model(view) is dispatch.model(view)  # once per pack version


def test_places_from_text_settle_the_street_or_are_left_to_a_person():
    view = PackView.of(load_pack(read_folder(REFERENCE_PACK)), Caches())
    found = dispatch.locate(view, rep("朱紫坊门口路灯不亮"))
    assert isinstance(found, Location) and found.street == "gulou.antai"
    assert dispatch.locate(view, rep("路灯不亮", address="八一七北路东街口")).street == "gulou.dongjie"
    both = dispatch.locate(view, rep("从三坊七巷走到东街口一路都黑"))
    assert both.street is None and set(both.candidates) == {"gulou.nanjie", "gulou.dongjie"}
    assert dispatch.locate(view, rep("我家楼下路灯不亮")) is None
    assert dispatch.locate(view, rep("x", lat=26.0865, lng=119.3025)) == "gulou.dongjie"
