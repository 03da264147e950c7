"""Per-pack plugin selection over pluggy's own hook callers: wrappers run, the calendar is
chosen per pack like every other hook, and a plugin that raises is named on the record."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from govflow.bootstrap import build
from govflow.engine.access.identity import store_principals
from govflow.engine.cases.service import NewCase
from govflow.engine.model.dispatch import Report
from govflow.engine.model.errors import EngineFault, PluginFailed
from govflow.engine.packs.loader import load_pack
from govflow.engine.store.db import CaseEvent
from govflow.plugins import PackPlugins, PluginDispatcher, hookimpl, plugin_manager
from govflow.plugins.builtin.calendar import ChineseWorkCalendar
from govflow.plugins.selection import failing_plugin

DONGJIE = Report("东街口有个井盖没了", None, 26.0865, 119.3025, None, "app")


def selection(*plugins: tuple[str, object], always_on: tuple[str, ...] = ()) -> PackPlugins:
    """The built-ins plus named plugins; those in ``always_on`` act for every pack, the others like a district's."""
    pm = plugin_manager(load_entry_points=False)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return PackPlugins(pm, {"dispatch", "calendar", *always_on})


def with_plugins(pack, *names):
    return pack.manifest.__class__(**{**pack.manifest.__dict__, "plugins": tuple(names)})


# -- hook wrappers run, because every call is pluggy's own ------------------------------------
class Reroute:
    """A new-style wrapper: sees the route the plugins chose and sends manhole covers to the street's neighbour."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    @hookimpl(wrapper=True)
    def govflow_route(self, pack, report, matter, street):
        owner = yield
        self.seen.append(owner)
        return "gulou.nanjie" if matter == "road.manhole_cover" else owner


class Audit:
    """An old-style hookwrapper: watches the outcome without changing it."""

    def __init__(self) -> None:
        self.outcomes: list[object] = []

    @hookimpl(hookwrapper=True)
    def govflow_classify(self, pack, report, history):
        outcome = yield
        self.outcomes.append(outcome.get_result())


def test_hook_wrappers_wrap_the_dispatch_hooks(reference_pack, caches):
    reroute, audit = Reroute(), Audit()
    plugins = selection(("reroute", reroute), ("audit", audit), always_on=("reroute", "audit"))
    routing = PluginDispatcher(plugins, caches).dispatch(reference_pack, DONGJIE)
    assert reroute.seen == ["gulou.dongjie"]  # the built-in's answer reached the wrapper
    assert audit.outcomes and getattr(audit.outcomes[0], "matter", None) == "road.manhole_cover"
    assert routing.owner == "gulou.nanjie"
    assert "owner gulou.nanjie decided by plugin reroute" in routing.how


def test_a_wrapper_acts_only_for_the_packs_that_enable_it(reference_pack, reference_view, caches):
    plugins = selection(("reroute", Reroute()))
    assert PluginDispatcher(plugins, caches).dispatch(reference_pack, DONGJIE).owner == "gulou.dongjie"
    asked = {"pack": reference_view, "report": DONGJIE, "matter": "road.manhole_cover", "street": "gulou.dongjie"}
    assert plugins.call(reference_pack.manifest, "govflow_route", **asked) == "gulou.dongjie"
    assert plugins.call(with_plugins(reference_pack, "reroute"), "govflow_route", **asked) == "gulou.nanjie"


def test_the_answering_plugin_is_named_and_a_pass_through_wrapper_is_not(reference_pack, reference_view, caches):
    class PassThrough:
        @hookimpl(wrapper=True)
        def govflow_route(self, pack, report, matter, street):
            return (yield)

    plugins = selection(("passthrough", PassThrough()), always_on=("passthrough",))
    routing = PluginDispatcher(plugins, caches).dispatch(reference_pack, DONGJIE)
    assert routing.owner == "gulou.dongjie" and "decided by" not in routing.how  # the street owns it
    asked = {"pack": reference_view, "report": DONGJIE, "matter": "road.manhole_cover"}
    assert plugins.call_answered(reference_pack.manifest, "govflow_route", **asked, street="gulou.dongjie") == (
        "gulou.dongjie",
        "dispatch",
    )
    assert plugins.call_answered(reference_pack.manifest, "govflow_route", **asked, street=None) == (None, None)


# -- the calendar is chosen per pack ----------------------------------------------------------
class NoWeekends:
    """A district's own calendar: no statutory holidays, every weekday a working day."""

    def is_workday(self, day: dt.date) -> bool:
        return day.weekday() < 5


class DistrictCalendar:
    @hookimpl
    def govflow_calendar(self, district, settings):
        return NoWeekends()


def test_a_district_calendar_acts_only_for_the_packs_that_enable_it(reference_files):
    plugins = selection(("district_calendar", DistrictCalendar()))
    reference = load_pack(reference_files, calendar_factory=plugins.calendar)
    enabling = dict(reference_files)
    manifest = yaml.safe_load(reference_files["pack.yaml"])
    enabling["pack.yaml"] = yaml.safe_dump({**manifest, "plugins": ["district_calendar"]}).encode()
    district = load_pack(enabling, calendar_factory=plugins.calendar)

    assert isinstance(reference.runtime.deadlines.working_time.calendar, ChineseWorkCalendar)
    assert isinstance(district.runtime.deadlines.working_time.calendar, NoWeekends)
    # what the unfiltered hook would have given the reference pack (the later-registered plugin answers first)
    assert isinstance(plugins.pm.hook.govflow_calendar(district="gulou", settings={}), NoWeekends)
    national_day = dt.date(2026, 10, 1)  # a Thursday, a statutory holiday
    assert not reference.runtime.deadlines.working_time.calendar.is_workday(national_day)


def test_service_functions_come_from_the_packs_plugins_only(reference_pack):
    class Services:
        @hookimpl
        def govflow_service_functions(self):
            return {"notify_grid": lambda: "sent"}

    plugins = selection(("grid", Services()))
    assert "notify_grid" not in plugins.services(reference_pack.manifest)
    assert plugins.services(with_plugins(reference_pack, "grid"))["notify_grid"]() == "sent"


# -- a failing plugin is named ----------------------------------------------------------------
class Geocoder:
    """Two instances of one class: only the one configured to fail does."""

    def __init__(self, name: str, broken: bool) -> None:
        self.__name__, self.broken = name, broken

    def _lookup(self):
        raise RuntimeError("geocoder down")

    @hookimpl
    def govflow_locate(self, pack, report):
        return self._lookup() if self.broken else None


class Watch:
    """A wrapper the failure passes through: it must not be blamed."""

    @hookimpl(wrapper=True)
    def govflow_locate(self, pack, report):
        return (yield)


def test_the_failing_implementation_is_found_on_the_traceback(reference_pack, reference_view):
    plugins = selection(
        ("geocoder_ok", Geocoder("ok", False)),
        ("geocoder_down", Geocoder("down", True)),
        ("watch", Watch()),
        always_on=("geocoder_ok", "geocoder_down", "watch"),
    )
    with pytest.raises(PluginFailed) as caught:
        plugins.call(reference_pack.manifest, "govflow_locate", pack=reference_view, report=DONGJIE)
    assert (caught.value.plugin, caught.value.hook) == ("geocoder_down", "govflow_locate")
    assert caught.value.message == "plugin geocoder_down failed in govflow_locate: RuntimeError: geocoder down"
    assert isinstance(caught.value, EngineFault)
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_a_failure_outside_every_implementation_names_no_plugin():
    assert failing_plugin(RuntimeError("pluggy refused"), plugin_manager().hook.govflow_locate.get_hookimpls()) is None


def app_with(plugin, *, database, clock, pack, entries):
    """An application with one extra plugin, the reference pack and the demo principals; and a citizen."""
    app = build("", db=database, clock=clock, extra_plugins=[plugin])
    app.packs.deploy(pack, actor="tests", now=clock.now())
    with Session(database) as session, session.begin():
        store_principals(session, entries, clock.now())
    return app, next(p for p, _ in entries if p.id == "citizen.zhang")


@pytest.mark.parametrize("hook", ["govflow_classify", "govflow_locate", "govflow_route"])
def test_a_failing_plugin_is_named_on_the_record(database, clock, reference_pack, demo_entries, hook):
    class Broken:
        __name__ = "district_geo"

    def fail(*args):
        raise RuntimeError("geocoder down")

    broken = Broken()
    setattr(broken, hook, hookimpl(tryfirst=True)(fail))
    app, citizen = app_with(broken, database=database, clock=clock, pack=reference_pack, entries=demo_entries)
    out = app.cases.report(citizen, NewCase("app", "东街口有个井盖没了", lat=26.0865, lng=119.3025))
    with database.connect() as conn:
        how = conn.execute(
            select(CaseEvent.data).where(CaseEvent.case_id == out.case_id, CaseEvent.kind == "case.unroutable")
        ).scalar_one()["how"]
    assert f"dispatch failed: plugin district_geo failed in {hook}: RuntimeError: geocoder down" in how
    assert how.endswith("sent to the command centre")


def test_a_failing_notifier_is_logged_by_name_and_the_change_stays(
    database, clock, reference_pack, demo_entries, caplog
):
    class Pager:
        __name__ = "pager"

        @hookimpl
        def govflow_case_events(self, events):
            raise ConnectionError("SMS gateway down")

    app, citizen = app_with(Pager(), database=database, clock=clock, pack=reference_pack, entries=demo_entries)
    with caplog.at_level(logging.ERROR, logger="govflow.plugins"):
        out = app.cases.report(citizen, NewCase("app", "东街口有个井盖没了", lat=26.0865, lng=119.3025))
    assert out.status == "dispatched"  # the report went through, routed as usual
    with database.connect() as conn:
        kinds = conn.execute(select(CaseEvent.kind).where(CaseEvent.case_id == out.case_id)).scalars().all()
    assert "case.routed" in kinds
    assert (
        "plugin pager failed in govflow_case_events: ConnectionError: SMS gateway down; the events stay committed"
        in caplog.text
    )
