"""The scenario of a policy simulation (``simulation.yaml``): what arrives, who works, how people behave.

A scenario is data, validated like every other pack file: an unknown unit, street, matter or
step, a negative rate or share, a period longer than a year are refused with the file, the
line and the exact key before anything runs. Every duration is in **minutes**. Sections (all
optional; :func:`default_scenario` fills what a pack leaves out)::

    period:     {start: 2026-11-02, days: 30, drain_days: 10}   # local dates; days 1..366
    arrivals:
      per_day: 1000                       # reports on an ordinary day (before the factors)
      hour_of_day: [24 weights]           # local hours 0..23, relative
      day_of_week: [7 factors]            # Monday..Sunday, multiply per_day
      bursts:                             # e.g. a storm: five times the waterlogging reports
        - {name: storm, day: 12, days: 1, factor: 5, matters: [water.waterlogging]}
      channels: {app: 5, hotline_12345: 4}
      unlocated: 0.03                     # share of reports without a location (the command centre routes them)
    matters:    {road.*: 10, road.manhole_cover: 3, "*": 1}     # the mix: a code, a group.*, or *
    streets:    {gulou.dongjie: 1.5, "*": 1}                     # where reports come from
    capacity:                             # people per unit; hours: working (the pack's calendar) | always
      default: {people: 2, hours: working}
      duty_steps: [sign_for]              # steps a duty desk (值班) does around the clock in every unit
      units: {gulou.cc: {people: 4, hours: always}}
    handling:                             # minutes of work per step (a user task of the diagram)
      default: {dist: exponential, mean: 10}
      steps: {handle: {dist: lognormal, mean: 120, sd: 90}}
      matters: {road.manhole_cover: {handle: {dist: lognormal, mean: 240, sd: 120}}}
    decisions:  {call_out: 0.15, cooperating: 0.3, review_send_back: 0.03, maintain_rejected_call: 0.2,
                 refer_dispute: 0.1}             # disputed calls referred to the standing meeting
    departments:
      default: {reject: 0.05, report_in_delay: {dist: lognormal, mean: 60, sd: 45}}
      units: {gulou.cgj: {reject: 0.02}}
    residents:  {ratings: {5: 60, 4: 25, 3: 8, 2: 4, 1: 3}, silent: 0.1,
                 delay: {dist: exponential, mean: 1440},
                 reporters: 1000,                  # distinct residents who report (repeat reporters)
                 withdraw: 0.01, withdraw_delay: {dist: exponential, mean: 120},   # 撤回
                 reopen: 0.5}                      # share of dissatisfied return visits (score 1-2) reopened
    evaluations:                          # mutual evaluations of a call-out (互评), weights per score
      report_in: {5: 55, 4: 30, 3: 10, 2: 3, 1: 2}   # the street rates each department's report-in
      disposal: {5: 50, 4: 30, 3: 12, 2: 5, 1: 3}    # … and the main department's disposal
      accuracy: {5: 60, 4: 25, 3: 8, 2: 4, 1: 3}     # each department rates the call
      silent: 0.05                                   # share of these ratings never given

Distributions (``dist``): ``fixed`` (``value``), ``exponential`` (``mean``), ``uniform``
(``min``, ``max``), ``triangular`` (``min``, ``mode``, ``max``), ``lognormal`` (``mean``,
``sd``). This module is pure: the pack loader validates a pack's ``simulation.yaml`` with it.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from govflow.engine.model.catalog import Catalog
from govflow.engine.model.errors import PackIssue
from govflow.engine.model.limits import CHANNELS
from govflow.engine.model.yaml_text import compose_yaml, load_yaml

FILENAME = "simulation.yaml"
MAX_DAYS = 366
MAX_DRAIN_DAYS = 60
MAX_PER_DAY = 100_000
MAX_PEOPLE = 1000
MAX_MINUTES = 60 * 24 * 365  # no single piece of work lasts more than a year
HOURS = ("working", "always")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DISTRIBUTIONS = {
    "fixed": ("value",),
    "exponential": ("mean",),
    "uniform": ("min", "max"),
    "triangular": ("min", "mode", "max"),
    "lognormal": ("mean", "sd"),
}
SECTIONS = (
    "period",
    "arrivals",
    "matters",
    "streets",
    "capacity",
    "handling",
    "decisions",
    "departments",
    "residents",
    "evaluations",
)
DECISIONS = ("call_out", "cooperating", "review_send_back", "maintain_rejected_call", "refer_dispute")
RESIDENT_KEYS = ("ratings", "silent", "delay", "reporters", "withdraw", "withdraw_delay", "reopen")
#: the mutual evaluations (互评) of a call-out: the street rates each called department's report-in
#: and disposal, each department rates the accuracy of the call (weights per score 1-5)
EVALUATIONS = ("report_in", "disposal", "accuracy")
MAX_REPORTERS = 20_000
#: the work of deciding a call-out (呼叫) instead of handling alone: a step of ``handling`` like a user task
CALL_OUT_STEP = "call_out"


@dataclass(frozen=True)
class Distribution:
    """A distribution of minutes; :meth:`sample` draws from the given random stream."""

    dist: str
    params: tuple[float, ...]

    def sample(self, rng: random.Random) -> float:
        p = self.params
        if self.dist == "fixed":
            return p[0]
        if self.dist == "exponential":
            return rng.expovariate(1 / p[0]) if p[0] > 0 else 0.0
        if self.dist == "uniform":
            return rng.uniform(p[0], p[1])
        if self.dist == "triangular":
            return rng.triangular(p[0], p[2], p[1])
        mean, sd = p  # lognormal with this mean and standard deviation
        if mean <= 0:
            return 0.0
        sigma2 = math.log(1 + (sd / mean) ** 2)
        return rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))

    def describe(self) -> str:
        names = DISTRIBUTIONS[self.dist]
        return f"{self.dist}(" + ", ".join(f"{n}={v:g}" for n, v in zip(names, self.params, strict=True)) + ")"


@dataclass(frozen=True)
class Burst:
    name: str
    first_day: int  # 1-based day of the period
    days: int
    factor: float
    matters: tuple[str, ...] = ()  # empty: every matter
    streets: tuple[str, ...] = ()  # empty: every street


@dataclass(frozen=True)
class Capacity:
    people: int
    hours: str  # working | always


@dataclass(frozen=True)
class DepartmentBehaviour:
    reject: float
    report_in_delay: Distribution


@dataclass(frozen=True)
class Scenario:
    """A validated scenario (see the module docstring for the file)."""

    start: dt.date
    days: int
    drain_days: int
    per_day: float
    hour_of_day: tuple[float, ...]
    day_of_week: tuple[float, ...]
    bursts: tuple[Burst, ...]
    channels: tuple[tuple[str, float], ...]
    unlocated: float
    matters: tuple[tuple[str, float], ...]  # every matter with a positive weight, catalog order
    streets: tuple[tuple[str, float], ...]
    capacity_default: Capacity
    capacity: Mapping[str, Capacity]
    duty_steps: frozenset[str]
    handling_default: Distribution
    handling: Mapping[str, Distribution]
    handling_by_matter: Mapping[str, Mapping[str, Distribution]]
    decisions: Mapping[str, float]
    department_default: DepartmentBehaviour
    departments: Mapping[str, DepartmentBehaviour]
    ratings: tuple[tuple[int, float], ...]
    silent: float
    resident_delay: Distribution
    reporters: int = 1
    withdraw: float = 0.0
    withdraw_delay: Distribution = Distribution("fixed", (60.0,))
    reopen: float = 0.0
    evaluations: Mapping[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    evaluations_silent: float = 0.0
    #: what the file (and the history's defaults) gave, before the built-in defaults
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def capacity_of(self, unit: str) -> Capacity:
        return self.capacity.get(unit, self.capacity_default)

    def always(self, unit: str, step: str) -> bool:
        """Is this work done around the clock (the unit's hours, or a duty desk's step, 值班)?"""
        return step in self.duty_steps or self.capacity_of(unit).hours == "always"

    def handling_of(self, step: str, matter: str | None) -> Distribution:
        by_matter = self.handling_by_matter.get(matter or "", {})
        return by_matter.get(step) or self.handling.get(step) or self.handling_default

    def department(self, unit: str) -> DepartmentBehaviour:
        return self.departments.get(unit, self.department_default)

    def with_overrides(self, *, days: int | None = None, per_day: float | None = None) -> dict[str, Any]:
        """The raw scenario with the command line's ``--days`` and ``--per-day`` applied (parse it again)."""
        raw = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in self.raw.items()}
        if days is not None:
            raw["period"] = {**raw.get("period", {}), "days": days}
            bursts = (raw.get("arrivals") or {}).get("bursts")
            if isinstance(bursts, list):  # a shorter period drops the bursts after its end
                kept = [
                    b for b in bursts if not isinstance(b, Mapping) or not _is_number(b.get("day")) or b["day"] <= days
                ]
                raw["arrivals"] = {**raw["arrivals"], "bursts": kept}
        if per_day is not None:
            raw["arrivals"] = {**raw.get("arrivals", {}), "per_day": per_day}
        return raw


#: what a pack without simulation.yaml simulates (and what every omitted key falls back to)
DEFAULTS: dict[str, Any] = {
    "period": {"start": "2026-11-02", "days": 30, "drain_days": 10},
    "arrivals": {
        "per_day": 1000,
        "hour_of_day": [1, 1, 0.5, 0.5, 0.5, 1, 2, 4, 8, 10, 10, 9, 7, 6, 8, 9, 9, 8, 6, 5, 4, 3, 2, 1],
        "day_of_week": [1, 1, 1, 1, 1, 0.8, 0.7],
        "bursts": [],
        "channels": {"hotline_12345": 45, "app": 25, "wechat": 20, "grid_worker": 10},
        "unlocated": 0.03,
    },
    "matters": {"*": 1},
    "streets": {"*": 1},
    "capacity": {"default": {"people": 2, "hours": "working"}, "units": {}, "duty_steps": ["sign_for"]},
    "handling": {
        "default": {"dist": "exponential", "mean": 15},
        "steps": {
            "sign_for": {"dist": "exponential", "mean": 4},
            "handle": {"dist": "lognormal", "mean": 90, "sd": 60},
            "consult": {"dist": "exponential", "mean": 30},
            "dispose": {"dist": "lognormal", "mean": 180, "sd": 120},
            "review": {"dist": "exponential", "mean": 20},
        },
        "matters": {},
    },
    "decisions": {
        "call_out": 0.15,
        "cooperating": 0.3,
        "review_send_back": 0.03,
        "maintain_rejected_call": 0.2,
        "refer_dispute": 0.1,
    },
    "departments": {
        "default": {"reject": 0.05, "report_in_delay": {"dist": "lognormal", "mean": 60, "sd": 45}},
        "units": {},
    },
    "residents": {
        "ratings": {5: 60, 4: 25, 3: 8, 2: 4, 1: 3},
        "silent": 0.1,
        "delay": {"dist": "exponential", "mean": 1440},
        "reporters": 1000,
        "withdraw": 0.01,
        "withdraw_delay": {"dist": "exponential", "mean": 120},
        "reopen": 0.5,
    },
    "evaluations": {
        "report_in": {5: 55, 4: 30, 3: 10, 2: 3, 1: 2},
        "disposal": {5: 50, 4: 30, 3: 12, 2: 5, 1: 3},
        "accuracy": {5: 60, 4: 25, 3: 8, 2: 4, 1: 3},
        "silent": 0.05,
    },
}
#: the command centre answers around the clock unless the scenario says otherwise
CC_CAPACITY = {"people": 3, "hours": "always"}


#: mixes (weights) replace the defaults' as a whole: naming one street means only that street
REPLACED = {
    ("matters",),
    ("streets",),
    ("arrivals", "channels"),
    ("residents", "ratings"),
    *(("evaluations", name) for name in EVALUATIONS),
}


def merge(base: Mapping[str, Any], over: Mapping[str, Any], path: tuple[str, ...] = ()) -> dict[str, Any]:
    """``over`` deep-merged onto ``base`` (mappings key by key; lists, scalars, mixes and distributions replaced)."""
    out = dict(base)
    for key, value in over.items():
        here = (*path, str(key))
        distribution = isinstance(value, Mapping) and "dist" in value  # another kind takes other parameters
        if (
            isinstance(value, Mapping)
            and isinstance(out.get(key), Mapping)
            and here not in REPLACED
            and not distribution
        ):
            out[key] = merge(out[key], value, here)
        else:
            out[key] = value
    return out


class _Problems:
    """Issues with the line of the key they are about."""

    def __init__(self, filename: str, lines: Mapping[tuple[Any, ...], int]) -> None:
        self.filename, self.lines = filename, lines
        self.issues: list[PackIssue] = []

    def add(self, loc: tuple[Any, ...], message: str) -> None:
        line = None
        keys = tuple(_scalar(part) for part in loc)  # a key "5" of the message is the file's 5
        for n in range(len(keys), 0, -1):  # the deepest key the file has (a default has none)
            if keys[:n] in self.lines:
                line = self.lines[keys[:n]]
                break
        self.issues.append(PackIssue(self.filename, f"{_path(loc)}: {message}", line=line))


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _key_lines(node: yaml.Node | None) -> dict[tuple[Any, ...], int]:
    """(path of keys) -> 1-based line, for every mapping key and sequence item of the document."""
    found: dict[tuple[Any, ...], int] = {}
    stack: list[tuple[Any, tuple[Any, ...]]] = [(node, ())]
    while stack:
        current, path = stack.pop()
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                here = (*path, _scalar(key.value))
                found[here] = key.start_mark.line + 1
                stack.append((value, here))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                found[(*path, index)] = item.start_mark.line + 1
                stack.append((item, (*path, index)))
    return found


def _scalar(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


def read_scenario(
    content: bytes | str, filename: str = FILENAME
) -> tuple[dict[str, Any] | None, dict, list[PackIssue]]:
    """The raw document of a scenario file and the line of each key; issues if it is no YAML mapping."""
    try:
        text = content.decode("utf-8") if isinstance(content, bytes) else content
        data = load_yaml(text)
        lines = _key_lines(compose_yaml(text))
    except UnicodeDecodeError:
        return None, {}, [PackIssue(filename, "not UTF-8 text")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 1) if mark else None
        return None, {}, [PackIssue(filename, f"invalid YAML: {getattr(exc, 'problem', None) or exc}", line=line)]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, {}, [PackIssue(filename, "a scenario is a mapping of sections: " + ", ".join(SECTIONS))]
    return data, lines, []


def parse_scenario(
    data: Mapping[str, Any],
    catalog: Catalog,
    *,
    steps: Iterable[str] | None = None,
    lines: Mapping[tuple[Any, ...], int] | None = None,
    filename: str = FILENAME,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[Scenario | None, list[PackIssue]]:
    """Validate a raw scenario against the pack's catalog (and its diagrams' user-task ``steps``).

    ``defaults`` (e.g. derived from a district's history) stand under the file's values; the
    built-in :data:`DEFAULTS` under both. Returns the scenario, or None and every issue found.
    """
    p = _Problems(filename, lines or {})
    for key in data:
        if key not in SECTIONS:
            p.add((key,), f"unknown section (a scenario has {', '.join(SECTIONS)})")
    given = merge(defaults or {}, {k: v for k, v in data.items() if k in SECTIONS})
    raw = merge(DEFAULTS, given)
    sections = {}
    for name in SECTIONS:
        value = raw.get(name)
        if not isinstance(value, Mapping):
            p.add((name,), "must be a mapping")
            value = {}
        sections[name] = value
    # the built-in defaults name the reference process's steps: a pack without them just drops them
    known_steps = (set(steps) | {CALL_OUT_STEP}) if steps is not None else None
    builtin_steps = set(DEFAULTS["handling"]["steps"]) - set((given.get("handling") or {}).get("steps") or {})
    period = sections["period"]
    start = _date(p, ("period", "start"), period.get("start"))
    days = _integer(p, ("period", "days"), period.get("days"), 1, MAX_DAYS, "a simulation covers 1 to 366 days")
    drain = _integer(p, ("period", "drain_days"), period.get("drain_days"), 0, MAX_DRAIN_DAYS, "0 to 60 days")
    arrivals = sections["arrivals"]
    per_day = _number(p, ("arrivals", "per_day"), arrivals.get("per_day"), 0, MAX_PER_DAY)
    hour_of_day = _weights_list(p, ("arrivals", "hour_of_day"), arrivals.get("hour_of_day"), 24)
    day_of_week = _day_of_week(p, arrivals.get("day_of_week"))
    channels = _weights(p, ("arrivals", "channels"), arrivals.get("channels"), set(CHANNELS), "channel")
    unlocated = _share(p, ("arrivals", "unlocated"), arrivals.get("unlocated"))
    matters = _mix(p, ("matters",), sections["matters"], list(catalog.matters), "matter")
    streets = _mix(p, ("streets",), sections["streets"], list(catalog.streets), "street")
    bursts = _bursts(p, arrivals.get("bursts"), catalog, days or MAX_DAYS)
    cap = sections["capacity"]
    capacity_default = _capacity(p, ("capacity", "default"), cap.get("default"))
    capacity: dict[str, Capacity] = {}
    units = cap.get("units") or {}
    if not isinstance(units, Mapping):
        p.add(("capacity", "units"), "must be a mapping of unit code -> {people, hours}")
        units = {}
    if catalog.command_centre and catalog.command_centre not in units:
        units = {catalog.command_centre: CC_CAPACITY, **units}
    for code, value in units.items():
        if catalog.unit(str(code)) is None:
            p.add(("capacity", "units", code), f"unknown unit (not in catalog.yaml of {catalog.district})")
            continue
        base = {"people": capacity_default.people, "hours": capacity_default.hours} if capacity_default else {}
        parsed = _capacity(p, ("capacity", "units", code), merge(base, value or {}))
        if parsed is not None:
            capacity[str(code)] = parsed
    duty_steps = (
        _codes(
            p,
            ("capacity", "duty_steps"),
            cap.get("duty_steps"),
            set(known_steps or ()),
            "step",
            "no user task of the diagrams has this id",
        )
        if known_steps is not None and "duty_steps" in (given.get("capacity") or {})
        else tuple(s for s in cap.get("duty_steps") or () if known_steps is None or s in known_steps)
    )  # the built-in default (sign_for) applies where the diagrams have that step
    for key in cap:
        if key not in ("default", "units", "duty_steps"):
            p.add(("capacity", key), "unknown key (default, units, duty_steps)")
    handling = sections["handling"]
    handling_default = _distribution(p, ("handling", "default"), handling.get("default"))
    handling_steps = _step_distributions(
        p,
        ("handling", "steps"),
        {
            k: v
            for k, v in (handling.get("steps") or {}).items()
            if known_steps is None or k in known_steps or k not in builtin_steps
        },
        known_steps,
    )
    by_matter: dict[str, dict[str, Distribution]] = {}
    for code, value in (handling.get("matters") or {}).items():
        if code not in catalog.matters:
            p.add(("handling", "matters", code), f"unknown matter (not in catalog.yaml of {catalog.district})")
            continue
        by_matter[str(code)] = _step_distributions(p, ("handling", "matters", code), value, known_steps)
    decisions: dict[str, float] = {}
    for key, value in sections["decisions"].items():
        if key not in DECISIONS:
            p.add(("decisions", key), f"unknown decision (one of {', '.join(DECISIONS)})")
            continue
        share = _share(p, ("decisions", key), value)
        decisions[str(key)] = share if share is not None else 0.0
    deps = sections["departments"]
    department_default = _department(p, ("departments", "default"), deps.get("default"), None)
    departments: dict[str, DepartmentBehaviour] = {}
    for code, value in (deps.get("units") or {}).items():
        unit = catalog.unit(str(code))
        if unit is None or unit.kind != "department":
            p.add(("departments", "units", code), f"not a department of catalog.yaml ({catalog.district})")
            continue
        behaviour = _department(p, ("departments", "units", code), value, department_default)
        if behaviour is not None:
            departments[str(code)] = behaviour
    residents = sections["residents"]
    for key in residents:
        if key not in RESIDENT_KEYS:
            p.add(("residents", key), f"unknown key ({', '.join(RESIDENT_KEYS)})")
    ratings = _ratings(p, ("residents", "ratings"), residents.get("ratings"))
    silent = _share(p, ("residents", "silent"), residents.get("silent"))
    resident_delay = _distribution(p, ("residents", "delay"), residents.get("delay"))
    reporters = _integer(
        p,
        ("residents", "reporters"),
        residents.get("reporters"),
        1,
        MAX_REPORTERS,
        f"1 to {MAX_REPORTERS:,} residents who report",
    )
    withdraw = _share(p, ("residents", "withdraw"), residents.get("withdraw"))
    withdraw_delay = _distribution(p, ("residents", "withdraw_delay"), residents.get("withdraw_delay"))
    reopen = _share(p, ("residents", "reopen"), residents.get("reopen"))
    evaluations_raw = sections["evaluations"]
    for key in evaluations_raw:
        if key not in (*EVALUATIONS, "silent"):
            p.add(("evaluations", key), f"unknown key ({', '.join(EVALUATIONS)}, silent)")
    evaluations = {name: _ratings(p, ("evaluations", name), evaluations_raw.get(name)) for name in EVALUATIONS}
    evaluations_silent = _share(p, ("evaluations", "silent"), evaluations_raw.get("silent"))
    if per_day is not None and per_day > 0 and not matters:
        p.add(("matters",), "no matter has a positive weight: nothing would be reported")
    if per_day is not None and per_day > 0 and not streets:
        p.add(("streets",), "no street has a positive weight")
    if p.issues:
        return None, p.issues
    assert start is not None and days is not None and drain is not None and per_day is not None
    assert hour_of_day is not None and day_of_week is not None
    assert capacity_default is not None and handling_default is not None and department_default is not None
    assert resident_delay is not None and unlocated is not None and silent is not None
    assert reporters is not None and withdraw is not None and withdraw_delay is not None and reopen is not None
    assert evaluations_silent is not None
    return (
        Scenario(
            start=start,
            days=days,
            drain_days=drain,
            per_day=per_day,
            hour_of_day=hour_of_day,
            day_of_week=day_of_week,
            bursts=bursts,
            channels=channels,
            unlocated=unlocated,
            matters=matters,
            streets=streets,
            capacity_default=capacity_default,
            capacity=capacity,
            duty_steps=frozenset(duty_steps),
            handling_default=handling_default,
            handling=handling_steps,
            handling_by_matter=by_matter,
            decisions={k: decisions.get(k, 0.0) for k in DECISIONS},
            department_default=department_default,
            departments=departments,
            ratings=ratings,
            silent=silent,
            resident_delay=resident_delay,
            reporters=reporters,
            withdraw=withdraw,
            withdraw_delay=withdraw_delay,
            reopen=reopen,
            evaluations=evaluations,
            evaluations_silent=evaluations_silent,
            raw=given,
        ),
        [],
    )


def scenario_issues(content: bytes, catalog: Catalog, steps: Iterable[str] | None = None) -> list[PackIssue]:
    """The issues of a pack's ``simulation.yaml`` (the pack loader's check)."""
    data, lines, issues = read_scenario(content)
    if data is None:
        return issues
    return parse_scenario(data, catalog, steps=steps, lines=lines)[1]


# -- field checks ------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(p: _Problems, loc: tuple[Any, ...], value: Any, low: float, high: float) -> float | None:
    if not _is_number(value):
        p.add(loc, f"must be a number from {low:g} to {high:g}")
        return None
    if value < low:
        p.add(loc, f"{value:g} is negative" if value < 0 else f"must be at least {low:g}")
        return None
    if value > high:
        p.add(loc, f"{value:g} is more than {high:g}")
        return None
    return float(value)


def _integer(p: _Problems, loc: tuple[Any, ...], value: Any, low: int, high: int, what: str) -> int | None:
    if not isinstance(value, int) or isinstance(value, bool):
        p.add(loc, f"must be a whole number ({what})")
        return None
    if not low <= value <= high:
        years = f" (about {value / 365:.0f} years)" if value >= 730 else ""
        p.add(loc, f"{value}{years} is out of range: {what}")
        return None
    return value


def _share(p: _Problems, loc: tuple[Any, ...], value: Any) -> float | None:
    if not _is_number(value) or not 0 <= value <= 1:
        p.add(loc, f"must be a share from 0 to 1, not {value!r}")
        return None
    return float(value)


def _date(p: _Problems, loc: tuple[Any, ...], value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        p.add(loc, f"must be a date like 2026-11-02, not {value!r}")
        return None


def _weights_list(p: _Problems, loc: tuple[Any, ...], value: Any, size: int) -> tuple[float, ...] | None:
    if not isinstance(value, list) or len(value) != size:
        p.add(loc, f"must be a list of {size} numbers")
        return None
    out = []
    for index, item in enumerate(value):
        number = _number(p, (*loc, index), item, 0, 1e9)
        out.append(number or 0.0)
    if sum(out) <= 0:
        p.add(loc, "every weight is zero")
        return None
    return tuple(out)


def _day_of_week(p: _Problems, value: Any) -> tuple[float, ...] | None:
    loc = ("arrivals", "day_of_week")
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in WEEKDAYS]
        for key in unknown:
            p.add((*loc, key), f"unknown day (one of {', '.join(WEEKDAYS)})")
        return tuple(_number(p, (*loc, d), value.get(d, 1), 0, 100) or 0.0 for d in WEEKDAYS)
    if not isinstance(value, list) or len(value) != 7:
        p.add(loc, "must be 7 factors (Monday..Sunday) or a mapping mon..sun")
        return None
    return tuple(_number(p, (*loc, i), v, 0, 100) or 0.0 for i, v in enumerate(value))


def _weights(
    p: _Problems, loc: tuple[Any, ...], value: Any, known: set[str], what: str
) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, Mapping) or not value:
        p.add(loc, f"must be a mapping of {what} -> weight")
        return ()
    out = []
    for key, weight in value.items():
        if key not in known:
            p.add((*loc, key), f"unknown {what} (one of {', '.join(sorted(known))})")
            continue
        number = _number(p, (*loc, key), weight, 0, 1e9)
        if number:
            out.append((str(key), number))
    return tuple(sorted(out))


def _mix(
    p: _Problems, loc: tuple[Any, ...], value: Mapping[str, Any], codes: list[str], what: str
) -> tuple[tuple[str, float], ...]:
    """Weights by code, ``group.*`` pattern or ``*`` (the most specific entry wins), in catalog order."""
    specific: dict[str, float] = {}
    patterns: list[tuple[str, float]] = []
    for key, weight in value.items():
        key = str(key)
        number = _number(p, (*loc, key), weight, 0, 1e9)
        if number is None:
            continue
        if "*" in key:
            if not any(fnmatch.fnmatchcase(code, key) for code in codes):
                p.add((*loc, key), f"the pattern matches no {what} of the catalog")
            patterns.append((key, number))
        elif key not in codes:
            p.add((*loc, key), f"unknown {what} (not in catalog.yaml)")
        else:
            specific[key] = number
    patterns.sort(key=lambda item: -len(item[0]))  # road.* before *
    out = []
    for code in codes:
        weight = specific.get(code)
        if weight is None:
            weight = next((w for pattern, w in patterns if fnmatch.fnmatchcase(code, pattern)), 0.0)
        if weight > 0:
            out.append((code, weight))
    return tuple(out)


def _bursts(p: _Problems, value: Any, catalog: Catalog, days: int) -> tuple[Burst, ...]:
    loc: tuple[Any, ...] = ("arrivals", "bursts")
    if value is None:
        return ()
    if not isinstance(value, list):
        p.add(loc, "must be a list of bursts {name, day, days, factor, matters, streets}")
        return ()
    out = []
    for index, item in enumerate(value):
        here = (*loc, index)
        if not isinstance(item, Mapping):
            p.add(here, "must be a mapping {name, day, days, factor, matters, streets}")
            continue
        for key in item:
            if key not in ("name", "day", "days", "factor", "matters", "streets"):
                p.add((*here, key), "unknown key (name, day, days, factor, matters, streets)")
        first = _integer(p, (*here, "day"), item.get("day"), 1, days, f"a day of the period, 1 to {days}")
        length = _integer(p, (*here, "days"), item.get("days", 1), 1, days, "1 or more days")
        factor = _number(p, (*here, "factor"), item.get("factor"), 0, 1000)
        matters = _codes(p, (*here, "matters"), item.get("matters"), set(catalog.matters), "matter")
        streets = _codes(p, (*here, "streets"), item.get("streets"), set(catalog.streets), "street")
        if first is not None and length is not None and factor is not None:
            name = str(item.get("name") or f"burst {index + 1}")
            out.append(Burst(name, first, length, factor, matters, streets))
    return tuple(out)


def _codes(
    p: _Problems, loc: tuple[Any, ...], value: Any, known: set[str], what: str, where: str = "not in catalog.yaml"
) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        p.add(loc, f"must be a list of {what} codes")
        return ()
    out = []
    for index, code in enumerate(value):
        matched = [c for c in sorted(known) if fnmatch.fnmatchcase(c, str(code))]
        if not matched:
            p.add((*loc, index), f"unknown {what} {code!r} ({where})")
        out += matched
    return tuple(dict.fromkeys(out))


def _capacity(p: _Problems, loc: tuple[Any, ...], value: Any) -> Capacity | None:
    if not isinstance(value, Mapping):
        p.add(loc, "must be a mapping {people, hours}")
        return None
    for key in value:
        if key not in ("people", "hours"):
            p.add((*loc, key), "unknown key (people, hours)")
    people = _integer(p, (*loc, "people"), value.get("people"), 1, MAX_PEOPLE, f"1 to {MAX_PEOPLE} people")
    hours = value.get("hours", "working")
    if hours not in HOURS:
        p.add((*loc, "hours"), f"one of {', '.join(HOURS)}, not {hours!r}")
        return None
    return Capacity(people, str(hours)) if people is not None else None


def _distribution(p: _Problems, loc: tuple[Any, ...], value: Any) -> Distribution | None:
    if not isinstance(value, Mapping) or value.get("dist") not in DISTRIBUTIONS:
        kinds = ", ".join(f"{k} ({', '.join(v)})" for k, v in DISTRIBUTIONS.items())
        p.add(loc, f"must be a distribution of minutes {{dist: …}}: {kinds}")
        return None
    names = DISTRIBUTIONS[value["dist"]]
    for key in value:
        if key != "dist" and key not in names:
            p.add((*loc, key), f"unknown parameter of {value['dist']} (it takes {', '.join(names)})")
    params = []
    for name in names:
        number = _number(p, (*loc, name), value.get(name), 0, MAX_MINUTES)
        if number is None:
            return None
        params.append(number)
    if value["dist"] == "uniform" and params[0] > params[1]:
        p.add(loc, "min is more than max")
        return None
    if value["dist"] == "triangular" and not params[0] <= params[1] <= params[2]:
        p.add(loc, "needs min <= mode <= max")
        return None
    return Distribution(str(value["dist"]), tuple(params))


def _step_distributions(
    p: _Problems, loc: tuple[Any, ...], value: Any, steps: set[str] | None
) -> dict[str, Distribution]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        p.add(loc, "must be a mapping of step -> distribution")
        return {}
    out = {}
    for step, dist in value.items():
        if steps is not None and step not in steps:
            p.add((*loc, step), f"unknown step: no user task of the diagrams has this id ({', '.join(sorted(steps))})")
            continue
        parsed = _distribution(p, (*loc, step), dist)
        if parsed is not None:
            out[str(step)] = parsed
    return out


def _department(
    p: _Problems, loc: tuple[Any, ...], value: Any, base: DepartmentBehaviour | None
) -> DepartmentBehaviour | None:
    if not isinstance(value, Mapping):
        p.add(loc, "must be a mapping {reject, report_in_delay}")
        return None
    for key in value:
        if key not in ("reject", "report_in_delay"):
            p.add((*loc, key), "unknown key (reject, report_in_delay)")
    reject = _share(p, (*loc, "reject"), value["reject"]) if "reject" in value else (base.reject if base else None)
    if "report_in_delay" in value:
        delay = _distribution(p, (*loc, "report_in_delay"), value["report_in_delay"])
    else:
        delay = base.report_in_delay if base else None
    if reject is None or delay is None:
        if base is None and (reject is None or delay is None) and not p.issues:
            p.add(loc, "needs reject and report_in_delay")
        return None
    return DepartmentBehaviour(reject, delay)


def _ratings(p: _Problems, loc: tuple[Any, ...], value: Any) -> tuple[tuple[int, float], ...]:
    if not isinstance(value, Mapping) or not value:
        p.add(loc, "must be a mapping of score (1-5) -> weight")
        return ()
    out = []
    for score, weight in value.items():
        if str(score) not in ("1", "2", "3", "4", "5"):
            p.add((*loc, str(score)), "a score is 1 to 5")
            continue
        number = _number(p, (*loc, str(score)), weight, 0, 1e9)
        if number:
            out.append((int(score), number))
    if not out:
        p.add(loc, "every weight is zero")
    return tuple(sorted(out))


def default_scenario(catalog: Catalog, steps: Iterable[str] | None = None) -> Scenario:
    """The scenario of a pack without ``simulation.yaml``: every matter and street alike."""
    scenario, issues = parse_scenario({}, catalog, steps=steps)
    if scenario is None:  # the defaults name no unit or matter, so only a broken catalog gets here
        raise ValueError("; ".join(str(i) for i in issues))
    return scenario


__all__ = [
    "DEFAULTS",
    "FILENAME",
    "MAX_DAYS",
    "Burst",
    "Capacity",
    "DepartmentBehaviour",
    "Distribution",
    "Scenario",
    "default_scenario",
    "merge",
    "parse_scenario",
    "read_scenario",
    "scenario_issues",
]
