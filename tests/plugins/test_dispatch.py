"""Smart dispatch and per-pack plugins: keyword rules, past cases, DMN owner decisions,
a district plugin acting for its own pack only, a failing plugin recorded instead of a corrupt case."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from govflow.engine.cache import Caches
from govflow.engine.cases.history import CaseHistory, PastCase, StaticHistory
from govflow.engine.cases.service import NewCase
from govflow.engine.model.dispatch import Report
from govflow.engine.packs.loader import load_pack, read_folder
from govflow.engine.store.db import CaseEvent, CaseRow
from govflow.plugins import PackPlugins, PackView, PluginDispatcher, hookimpl, plugin_manager
from govflow.plugins.builtin import dispatch, keywords
from tests.pack_helpers import CANGSHAN, TAIJIANG, deploy_example


def rep(text, category=None, lat=None, lng=None):
    return Report(text, category, lat, lng, None, "app")


def test_keywords_decide_and_a_tie_is_left_to_a_person(reference_view):
    matter, how = keywords.classify(reference_view, rep("东街口有个井盖没了"))
    assert matter == "road.manhole_cover" and how.startswith("keywords: 井盖没了 (score ")
    assert keywords.classify(reference_view, rep("法海路药店的灯箱漏电")) is None  # 灯箱 vs 漏电: too close to call
    assert keywords.classify(reference_view, rep("随便说点什么")) is None


def test_a_paraphrase_of_a_keyword_counts(reference_view):
    matter, how = keywords.classify(reference_view, rep("大树被台风吹歪了"))  # keywords: 大树歪, 树被风吹倒
    assert matter == "green.tree_fallen" and how.startswith("keyword profile: score ")


def test_without_enough_past_cases_the_scorer_is_more_cautious(reference_view):
    few = StaticHistory("gulou", [PastCase("楼下的路灯全黑", "lighting.streetlight_out")] * (keywords.COLD_START - 1))
    enough = StaticHistory("gulou", [PastCase("楼下的路灯全黑", "lighting.streetlight_out")] * keywords.COLD_START)
    assert keywords.scorer(reference_view, None).ratio == keywords.COLD_RATIO
    assert keywords.scorer(reference_view, few.past_cases("gulou")).ratio == keywords.COLD_RATIO
    assert keywords.scorer(reference_view, enough.past_cases("gulou")).ratio == keywords.RATIO


def test_one_shared_character_is_no_evidence(reference_view):
    past = StaticHistory(
        "gulou",
        [PastCase("楼下的路灯全黑", "lighting.streetlight_out"), PastCase("小区门口垃圾桶满了", "env.garbage_overflow")]
        * 20,
    )
    for text in ("你好", "我要投诉", "谢谢"):
        assert keywords.classify(reference_view, rep(text)) is None
        assert keywords.classify(reference_view, rep(text), past) is None


def test_past_cases_decide_when_keywords_do_not(reference_view):
    text = "巷子口的蜂窝越来越大"
    past = StaticHistory(
        "gulou",
        [PastCase("巷子口的蜂窝越来越大了，怕蜇到小孩", "health.pests")] * 3
        + [PastCase("楼下的路灯全黑", "lighting.streetlight_out")],
    )
    matter, how = keywords.classify(reference_view, rep(text), past)
    assert matter == "health.pests" and how.startswith("similar past cases: nearest ")
    assert keywords.classify(reference_view, rep(text), StaticHistory("gulou", [])) is None


def test_the_scorer_is_built_once_per_pack_version_and_snapshot(reference_view):
    history = StaticHistory("gulou", [PastCase("楼下的路灯全黑", "lighting.streetlight_out")])
    snapshot = history.past_cases("gulou")
    first = keywords.scorer(reference_view, snapshot)
    assert keywords.scorer(reference_view, history.past_cases("gulou")) is first
    assert (
        keywords.scorer(reference_view, StaticHistory("gulou", list(snapshot.cases)).past_cases("gulou")) is not first
    )  # a refresh
    assert keywords.scorer(reference_view, None) is keywords.scorer(
        reference_view, StaticHistory("gulou", []).past_cases("gulou")
    )


def test_the_neighbour_search_stays_bounded_however_long_the_history(reference_pack):
    cases = [(f"巷子口的蜂窝越来越大了，怕蜇到小孩（{i}）", "health.pests") for i in range(300)]
    cases += [(f"楼下的路灯全黑（{i}）", "lighting.streetlight_out") for i in range(300)]
    scorer = keywords.MatterScorer(reference_pack.catalog, cases)
    assert scorer.size == 600
    assert max(len(posting) for posting in scorer._postings.values()) <= keywords.CHAMPIONS
    assert scorer.score("巷子口的蜂窝越来越大").decided() == "health.pests"


def test_case_history_reads_closed_cases_of_the_district_only(govflow, principals):
    out = govflow.cases.report(
        principals["citizen.zhang"], NewCase("app", "东街口有个井盖没了", lat=26.0865, lng=119.3025)
    )
    history = CaseHistory(govflow.db, govflow.clock)
    assert history.past_cases("gulou").cases == ()
    with govflow.db.begin() as conn:
        conn.execute(
            CaseRow.__table__.update()
            .where(CaseRow.id == out.case_id)
            .values(closed_at=govflow.clock.now(), status="evaluated")
        )
    history.forget()
    assert history.past_cases("gulou").cases == (PastCase("东街口有个井盖没了", "road.manhole_cover"),)
    assert history.past_cases("cangshan").cases == ()


def test_case_history_reads_only_the_most_recent_cases(govflow, principals):
    texts = ["东街口有个井盖没了", "楼下的路灯全黑了", "小区门口垃圾桶满了"]
    ids = [
        govflow.cases.report(principals["citizen.zhang"], NewCase("app", t, lat=26.0865, lng=119.3025)).case_id
        for t in texts
    ]
    now = govflow.clock.now()
    with govflow.db.begin() as conn:
        for minutes, case_id in enumerate(ids):
            conn.execute(
                CaseRow.__table__.update()
                .where(CaseRow.id == case_id)
                .values(closed_at=now + dt.timedelta(minutes=minutes), status="evaluated")
            )
    history = CaseHistory(govflow.db, govflow.clock)
    history.LIMIT = 2
    assert [c.description for c in history.past_cases("gulou").cases] == ["小区门口垃圾桶满了", "楼下的路灯全黑了"]


def test_a_dmn_owner_decision_routes_where_the_pack_provides_one(reference_files):
    pack = PackView.of(load_pack(read_folder(CANGSHAN), resolve_base=lambda n, v: reference_files), Caches())
    assert (
        dispatch.govflow_route(pack, rep("x", lat=26.045, lng=119.31), "utility.gas_leak", "cangshan.cangqian")
        == "cangshan.rqgs"
    )
    assert (
        dispatch.govflow_route(pack, rep("x", lat=26.045, lng=119.31), "road.pothole", "cangshan.cangqian")
        == "cangshan.cangqian"
    )


def test_a_district_plugin_acts_only_for_packs_that_enable_it(reference_pack, reference_files):
    taijiang = load_pack(read_folder(TAIJIANG), resolve_base=lambda n, v: reference_files)
    pm = plugin_manager()
    plugins = PackPlugins(pm, {"dispatch", "calendar"})
    assert "zone_routing" in plugins.excluded(reference_pack.manifest)
    assert "zone_routing" not in plugins.excluded(taijiang.manifest)
    disp = PluginDispatcher(plugins, Caches())
    inside = disp.dispatch(taijiang, rep("路面有个大坑", lat=26.062, lng=119.302))
    outside = disp.dispatch(taijiang, rep("路面有个大坑", lat=26.062, lng=119.312))
    assert (inside.street, inside.owner) == ("taijiang.cangxia", "taijiang.sxh")
    assert "decided by plugin zone_routing" in inside.how
    assert outside.owner == "taijiang.shanghai"


def test_a_pack_may_disable_a_builtin(reference_pack, reference_view):
    plugins = PackPlugins(plugin_manager(load_entry_points=False), {"dispatch", "calendar"})
    manifest = reference_pack.manifest.__class__(
        **{**reference_pack.manifest.__dict__, "plugins": (), "disabled_plugins": ("dispatch",)}
    )
    assert plugins.excluded(manifest) == frozenset({"dispatch"})
    located = rep("x", lat=26.0865, lng=119.3025)
    assert plugins.call_answered(manifest, "govflow_locate", pack=reference_view, report=located) == (None, None)
    assert plugins.call_answered(reference_pack.manifest, "govflow_locate", pack=reference_view, report=located) == (
        "gulou.dongjie",
        "dispatch",
    )


class Exploding:
    @hookimpl
    def govflow_locate(self, pack, report):
        raise RuntimeError("geocoder down")


def test_a_failing_plugin_sends_the_case_to_the_command_centre_with_the_reason(
    database, clock, reference_pack, demo_entries
):
    from sqlalchemy.orm import Session

    from govflow.bootstrap import build
    from govflow.engine.access.identity import store_principals

    app = build("", db=database, clock=clock, extra_plugins=[Exploding()])
    app.packs.deploy(reference_pack, actor="tests", now=clock.now())
    with Session(database) as session, session.begin():
        store_principals(session, demo_entries, clock.now())
    citizen = next(p for p, _ in demo_entries if p.id == "citizen.zhang")
    out = app.cases.report(citizen, NewCase("app", "东街口有个井盖没了", lat=26.0865, lng=119.3025))
    assert out.status == "reported"
    with database.connect() as conn:
        row = conn.execute(select(CaseRow.owner_unit).where(CaseRow.id == out.case_id)).one()
        event = conn.execute(
            select(CaseEvent.data).where(CaseEvent.case_id == out.case_id, CaseEvent.kind == "case.unroutable")
        ).one()
    assert row.owner_unit == "gulou.cc"
    assert "failed in govflow_locate: RuntimeError: geocoder down" in event.data["how"]
    assert "sent to the command centre" in event.data["how"]


@pytest.mark.usefixtures("database")
def test_example_plugin_routes_taijiang_cases_end_to_end(govflow, principals):
    deploy_example(govflow, TAIJIANG)
    out = govflow.cases.report(
        principals["citizen.zhang"], NewCase("app", "路面有个大坑", lat=26.062, lng=119.302, district="taijiang")
    )
    with govflow.db.connect() as conn:
        assert conn.execute(select(CaseRow.owner_unit).where(CaseRow.id == out.case_id)).scalar() == "taijiang.sxh"
