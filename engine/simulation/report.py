"""What a simulation reports, computed from the simulated event record with the rates' own definitions.

The supervision figures are **not** counted by the simulator: the run's event log is folded
again with :func:`govflow.engine.oversight.projection.recompute` (the same ``fold`` as
``govflow rates verify``) and the rates come from :meth:`Oversight.figures` — the very numbers
``GET /api/v1/rates`` would show for that record. The simulator adds only what the record
cannot know: queue lengths and waiting times per unit, and commands the engine refused.

Every figure here is a function of the record and the simulated clock, never of the wall
clock, so the same seed, scenario and pack give the same table and HTML, byte for byte.
"""

from __future__ import annotations

import html
import math
import statistics
import unicodedata
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select

from govflow.engine.oversight.definitions import RATES, STEP_RATE_PREFIX
from govflow.engine.oversight.projection import recompute
from govflow.engine.oversight.rates import Oversight
from govflow.engine.simulation.runner import Simulation
from govflow.engine.store.db import CaseEvent, CaseRow


@dataclass
class Figures:
    """The outcome of one run."""

    label: str
    seed: int
    period: str
    reported: int
    commands: int
    events: int
    district: dict[str, float | None]
    units: dict[str, dict[str, float | None]]
    steps: list[tuple[str, int, int]]  # step, done, on time
    escalations: dict[str, int]  # "kind element -> target" -> count
    queues: dict[str, dict[str, float]]
    series: dict[str, list[int]]
    wait_series: dict[str, list[float]]  # mean wait (minutes) of the work begun each day of the run
    by_hour: list[int]
    busiest: list[tuple[str, int]]
    statuses: dict[str, int]
    refused: dict[str, int]
    #: what the simulated people did beyond the tasks: residents who reported, withdrawals (and
    #: those too late), the call-outs' mutual evaluations given by dimension
    people: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = field(default=0.0, compare=False)

    def flat(self) -> dict[str, float]:
        """Comparable numbers (for replications): district rates, steps, escalations, queues per unit."""
        out: dict[str, float] = {}
        for name, value in self.district.items():
            if value is not None:
                out[name] = value
        out["escalations"] = float(sum(self.escalations.values()))
        for code, rates in sorted(self.units.items()):  # the rates a unit is ranked on (a street, a department)
            for name in UNIT_RATES:
                value = rates.get(name)
                if value is not None:
                    out[f"{name}@{code}"] = value
        for code, queue in sorted(self.queues.items()):
            out[f"mean_wait_minutes:{code}"] = queue["mean_wait"]
            out[f"mean_queue:{code}"] = queue["mean_queue"]
        return out


#: the per-unit rates a comparison lists (the district's are all listed)
UNIT_RATES = ("bj_response_rate", "completion_rate", "overdue_count", "escalated_count", "response_rate")


def figures(simulation: Simulation, label: str) -> Figures:
    db = simulation.world.db
    catalog = simulation.catalog
    recomputed = recompute(db)
    by_unit: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    district: dict[str, int] = defaultdict(int)
    for (_, _, unit, _, metric), value in recomputed.counters.items():
        by_unit[unit][metric] += value
        district[metric] += value
    units = {}
    for code, info in catalog.units.items():
        if code in by_unit:
            level = "department" if info.kind == "department" else "street"
            units[code] = Oversight.figures(by_unit[code], level)
    steps = sorted(
        (metric.split(":", 1)[1], value, district.get(f"on_time:{metric.split(':', 1)[1]}", 0))
        for metric, value in district.items()
        if metric.startswith("done:")
    )
    escalations: dict[str, int] = defaultdict(int)
    with db.connect() as conn:
        events = conn.execute(select(func.count()).select_from(CaseEvent)).scalar() or 0
        rows = conn.execute(
            select(CaseEvent.kind, CaseEvent.data)
            .where(or_(CaseEvent.kind.like("deadline.%"), CaseEvent.kind.like("callout.%")))
            .order_by(CaseEvent.case_id, CaseEvent.seq)
        ).all()
        statuses = dict(
            conn.execute(select(CaseRow.status, func.count()).group_by(CaseRow.status).order_by(CaseRow.status)).all()
        )
    for kind, data in rows:
        if (data or {}).get("escalate_to"):
            escalations[f"{kind} {data.get('element')} -> {data['escalate_to']}"] += 1
    queues = {}
    for code in sorted(simulation.units):
        worked = simulation.units[code]
        waits = sorted(worked.waits)
        queues[code] = {
            "people": float(worked.people),
            "tasks": float(len(waits)),
            "mean_wait": _round(statistics.fmean(waits)) if waits else 0.0,
            "p90_wait": _round(waits[int(0.9 * (len(waits) - 1))]) if waits else 0.0,
            "mean_queue": _round(statistics.fmean(worked.series)) if worked.series else 0.0,
            "max_queue": float(max(worked.series, default=0)),
        }
    tally = simulation.tally
    total_days = simulation.scenario.days + simulation.scenario.drain_days
    busiest = sorted(tally.arrivals_by_day_hour.items(), key=lambda item: (-item[1], item[0]))[:5]
    scenario = simulation.scenario
    return Figures(
        label=label,
        seed=simulation.seed,
        period=f"{scenario.start.isoformat()} + {scenario.days} days (+ {scenario.drain_days} to finish)",
        reported=tally.reported,
        commands=tally.commands,
        events=events,
        district={k: _round(v) for k, v in Oversight.figures(district, "district").items()},
        units={code: {k: _round(v) for k, v in values.items()} for code, values in units.items()},
        steps=steps,
        escalations=dict(sorted(escalations.items())),
        queues=queues,
        series={code: list(simulation.units[code].series) for code in sorted(simulation.units)},
        wait_series={
            code: _daily(simulation.units[code].waits_by_day, total_days) for code in sorted(simulation.units)
        },
        by_hour=list(tally.arrivals_by_hour),
        busiest=busiest,
        statuses={str(k): int(v) for k, v in statuses.items()},
        refused=dict(sorted(tally.refused.items())),
        people={
            "residents": scenario.reporters,
            "reporters": len({c.reporter for c in simulation.cases.values() if c.id is not None}),
            "withdrawn": tally.withdrawn,
            "withdraw_late": tally.withdraw_late,
            **{f"rated {k}": v for k, v in sorted(tally.evaluations.items())},
        },
        wall_seconds=simulation.wall_seconds,
    )


def _people(people: dict[str, int]) -> list[str]:
    if not people:
        return []
    rated = ", ".join(f"{k.removeprefix('rated ')} {v}" for k, v in people.items() if k.startswith("rated "))
    return [
        f"residents: {people['reporters']} of {people['residents']} reported; {people['withdrawn']} withdrew a report"
        f" ({people['withdraw_late']} more tried once the result was in)",
        f"mutual evaluations of the call-outs given: {rated or 'none'}",
    ]


def _daily(waits: dict[int, list[float]], days: int) -> list[float]:
    return [round(statistics.fmean(waits[d]), 2) if waits.get(d) else 0.0 for d in range(days + 1)]


def _round(value: float | None) -> Any:
    return None if value is None else round(float(value), 4)


def _fmt(value: float | None, kind: str = "ratio") -> str:
    if value is None:
        return "-"
    if kind == "ratio":
        return f"{value * 100:.1f}%"
    if kind == "count":
        return f"{value:.0f}"
    return f"{value:.2f}"


RATE_KIND = {r.name: r.kind for r in RATES}


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal columns (a Chinese character takes two)."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - used)


# -- the table -----------------------------------------------------------------------------------
def table(f: Figures) -> str:
    """The plain-text report of one run (what ``govflow simulate`` prints)."""
    lines = [
        f"simulation of {f.label}, seed {f.seed}: {f.period}",
        f"reported {f.reported} cases; {f.commands} commands and {f.events} events on the record",
        "cases by status at the end: " + ", ".join(f"{k} {v}" for k, v in f.statuses.items()),
        *_people(f.people),
        "",
        "supervision rates (district; the definitions of docs/supervision.md, folded from the record)",
    ]
    for rate in RATES:
        lines.append(f"  {rate.name:<28}{_pad(rate.chinese, 22)}{_fmt(f.district.get(rate.name), rate.kind):>10}")
    lines += ["", f"  {'step':<22}{'done':>8}{'on time':>10}{'late':>8}{'on-time rate':>14}"]
    for step, done, on_time in f.steps:
        step_rate = f.district.get(f"{STEP_RATE_PREFIX}{step}")
        lines.append(f"  {step:<22}{done:>8}{on_time:>10}{done - on_time:>8}{_fmt(step_rate):>14}")
    lines += ["", f"escalations: {sum(f.escalations.values())}"]
    lines += [f"  {key:<60}{count:>8}" for key, count in f.escalations.items()]
    lines += [
        "",
        f"  {'unit':<26}{'people':>7}{'tasks':>8}{'mean wait':>11}{'p90 wait':>10}{'mean queue':>12}{'max queue':>11}",
    ]
    for code, q in f.queues.items():
        lines.append(
            f"  {code:<26}{q['people']:>7.0f}{q['tasks']:>8.0f}{q['mean_wait']:>10.1f}m{q['p90_wait']:>9.1f}m"
            f"{q['mean_queue']:>12.2f}{q['max_queue']:>11.0f}"
        )
    lines += ["", "busiest hours (local): " + ", ".join(f"{k} ({v})" for k, v in f.busiest)]
    peak = max(range(24), key=lambda h: (f.by_hour[h], -h))
    lines.append(f"busiest hour of the day: {peak:02d}:00 ({f.by_hour[peak]} reports)")
    if f.refused:
        lines += ["", "commands the engine refused (the policy may not allow what people do):"]
        lines += [f"  {key:<50}{count:>8}" for key, count in f.refused.items()]
    return "\n".join(lines) + "\n"


# -- comparison with replications ------------------------------------------------------------------
#: two-sided 95% quantiles of Student's t by degrees of freedom (1..30; beyond: the normal's)
T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (0 with a single value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    t = T95[len(values) - 2] if len(values) - 1 <= len(T95) else 1.96
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


@dataclass
class Comparison:
    label_a: str
    label_b: str
    seeds: list[int]
    rows: list[tuple[str, tuple[float, float], tuple[float, float], tuple[float, float]]]


def compare(runs_a: Sequence[Figures], runs_b: Sequence[Figures]) -> Comparison:
    """Paired differences (common random numbers: replication i of both used seed i)."""
    flat_a, flat_b = [r.flat() for r in runs_a], [r.flat() for r in runs_b]
    keys = sorted(set().union(*flat_a, *flat_b), key=_order)
    rows = []
    for key in keys:
        if not all(key in a and key in b for a, b in zip(flat_a, flat_b, strict=True)):
            continue
        a = [f[key] for f in flat_a]
        b = [f[key] for f in flat_b]
        if not any(a) and not any(b):
            continue  # nothing happened there in either version (an idle duty desk, a unit without tasks)
        rows.append((key, interval(a), interval(b), interval([y - x for x, y in zip(a, b, strict=True)])))
    return Comparison(runs_a[0].label, runs_b[0].label, [r.seed for r in runs_a], rows)


def _order(key: str) -> tuple[int, str]:
    names = [r.name for r in RATES]
    if key in names:
        return (0, f"{names.index(key):03d}")
    if key == "escalations":
        return (1, key)
    if key.startswith(STEP_RATE_PREFIX):
        return (2, key)
    if "@" in key:  # a unit's rate: by unit, then in the order of RATES
        name, unit = key.split("@", 1)
        return (3, f"{unit} {names.index(name) if name in names else 999:03d}")
    return (4, key)


def _value(key: str, value: float) -> str:
    kind = RATE_KIND.get(key.split("@")[0], "ratio" if key.startswith(STEP_RATE_PREFIX) else "mean")
    if kind == "ratio":
        return f"{value * 100:.1f}%"
    return f"{value:.2f}"


def _differs(mean: float, half_width: float) -> bool:
    """Does the difference's confidence interval exclude zero?"""
    return abs(mean) > half_width and (half_width > 0 or mean != 0)


def comparison_table(c: Comparison) -> str:
    lines = [
        f"comparison: A = {c.label_a}, B = {c.label_b}; {len(c.seeds)} replications "
        f"(seeds {', '.join(map(str, c.seeds))}), the same reports and people in both (common random numbers)",
        "mean ± half-width of the 95% confidence interval; B - A paired by replication; * : the interval excludes 0",
        "",
        f"  {'figure':<40}{'A':>20}{'B':>20}{'B - A':>22}",
    ]
    for key, (ma, ha), (mb, hb), (md, hd) in c.rows:
        mark = " *" if _differs(md, hd) else "  "
        lines.append(
            f"  {key:<40}{_value(key, ma) + ' ± ' + _value(key, ha):>20}{_value(key, mb) + ' ± ' + _value(key, hb):>20}"
            f"{_value(key, md) + ' ± ' + _value(key, hd):>20}{mark}"
        )
    return "\n".join(lines) + "\n"


# -- HTML with inline SVG charts -------------------------------------------------------------------------
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
STYLE = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
    "pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}tr.differs td{font-weight:bold}svg{background:#fff;border:1px solid #ddd;display:block;margin:.5em 0}"
    "table.rates td:nth-child(2),table.rates th:nth-child(2){text-align:left}h3{margin:1.2em 0 .3em}"
)


def line_chart(
    title: str,
    series: Mapping[str, Sequence[float]],
    width: int = 900,
    height: int = 260,
    *,
    per_day: int = 1,
) -> str:
    """An SVG line chart (x: sample index, ``per_day`` samples a day of the run; y: value), with a legend."""
    top = max((max(v, default=0) for v in series.values()), default=0) or 1
    length = max((len(v) for v in series.values()), default=1)
    left, bottom, right = 48, 30, 160
    plot_w, plot_h = width - left - right, height - bottom - 20
    base = 20 + plot_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="{left}" y="14" font-size="12">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#999"/>',
        f'<line x1="{left}" y1="20" x2="{left}" y2="{base}" stroke="#999"/>',
        f'<text x="{left - 4}" y="26" font-size="10" text-anchor="end">{_tick(top)}</text>',
        f'<text x="{left - 4}" y="{base}" font-size="10" text-anchor="end">0</text>',
    ]
    days = max(1, math.ceil(length / per_day))
    stride = max(1, math.ceil(days / 15))  # at most about fifteen day labels
    for day in range(0, days, stride):
        x = left + plot_w * day * per_day / max(1, length - 1)
        parts.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="#999"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{base + 15}" font-size="9" text-anchor="{"start" if day == 0 else "middle"}">'
            f"{'day ' if day == 0 else ''}{day + 1}</text>"
        )
    for index, (name, values) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        points = " ".join(
            f"{left + plot_w * i / max(1, length - 1):.1f},{20 + plot_h - plot_h * v / top:.1f}"
            for i, v in enumerate(values)
        )
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
        y = 30 + 16 * index
        parts.append(f'<rect x="{width - right + 10}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{width - right + 26}" y="{y}" font-size="11">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _tick(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:g}"


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], width: int = 900, height: int = 220) -> str:
    top = max(values, default=0) or 1
    left, bottom = 40, 30
    plot_w, plot_h = width - left - 10, height - bottom - 20
    step = plot_w / max(1, len(values))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="{left}" y="14" font-size="12">{html.escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = left + i * step
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{20 + plot_h - h:.1f}" width="{max(1.0, step - 2):.1f}" height="{h:.1f}" '
            f'fill="{COLOURS[0]}"><title>{html.escape(label)}: {value:g}</title></rect>'
        )
        parts.append(
            f'<text x="{x + step / 2:.1f}" y="{height - 12}" font-size="9" text-anchor="middle">{html.escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], css: str = "", marked: Sequence[int] = ()) -> str:
    """A table; the ``marked`` rows (a difference whose interval excludes zero) in bold."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        ("<tr class=differs>" if index in marked else "<tr>")
        + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
        + "</tr>"
        for index, row in enumerate(rows)
    )
    return f"<table{f' class={css}' if css else ''}><tr>{head}</tr>{body}</table>"


def html_report(runs: Sequence[Figures], comparison: Comparison | None = None) -> str:
    """A self-contained HTML page: the tables and SVG charts (no script, nothing fetched)."""
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>govflow simulation: {html.escape(runs[0].label)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Policy simulation: {html.escape(' vs '.join(dict.fromkeys(r.label for r in runs)))}</h1>",
    ]
    if comparison is not None:
        head = comparison_table(comparison).splitlines()[:2]
        parts.append("<h2>Comparison</h2><p>" + "<br>".join(html.escape(line) for line in head) + "</p>")
        rows = [
            (
                key,
                f"{_value(key, a[0])} ± {_value(key, a[1])}",
                f"{_value(key, b[0])} ± {_value(key, b[1])}",
                f"{_value(key, d[0])} ± {_value(key, d[1])}" + (" *" if _differs(*d) else ""),
            )
            for key, a, b, d in comparison.rows
        ]
        marked = [i for i, (_, _, _, d) in enumerate(comparison.rows) if _differs(*d)]
        parts.append(_html_table(("figure", "A", "B", "B - A (95% CI)"), rows, marked=marked))
    for f in runs[:2] if comparison is not None else runs:
        parts.append(f"<h2>{html.escape(f.label)} (seed {f.seed})</h2>")
        busiest = sorted(f.queues, key=lambda c: (-f.queues[c]["mean_queue"], c))[:6]
        parts.append(f"<p>{html.escape(f.period)}: {f.reported} reports, {f.commands} commands, {f.events} events")
        parts.append(
            "<br>cases by status at the end: " + html.escape(", ".join(f"{k} {v}" for k, v in f.statuses.items()))
        )
        parts += [f"<br>{html.escape(line)}" for line in _people(f.people)]
        parts.append("</p>")
        rates = [(r.name, r.chinese, _fmt(f.district.get(r.name), r.kind)) for r in RATES]
        parts.append("<h3>Supervision rates (district)</h3>" + _html_table(("rate", "中文", "value"), rates, "rates"))
        parts.append("<h3>Queues and waits</h3>")
        parts.append(
            line_chart(
                "Waiting tasks per unit, hourly (the busiest units)", {c: f.series[c] for c in busiest}, per_day=24
            )
        )
        # up to the last day any of them began work (no work begun is no wait to plot, not a wait of zero)
        last = max((i for c in busiest for i, v in enumerate(f.wait_series[c]) if v > 0), default=0)
        waits = {c: f.wait_series[c][: last + 1] for c in busiest}
        parts.append(line_chart("Mean wait per unit in minutes, by day of the run (work begun that day)", waits))
        parts.append(bar_chart("Reports by hour of day (local)", [f"{h:02d}" for h in range(24)], f.by_hour))
        steps = [(s, d, o, d - o, _fmt(f.district.get(f"{STEP_RATE_PREFIX}{s}"))) for s, d, o in f.steps]
        parts.append("<h3>Steps on time</h3>" + _html_table(("step", "done", "on time", "late", "on-time rate"), steps))
        escalated = [(key, count) for key, count in f.escalations.items()]
        parts.append(f"<h3>Escalations: {sum(f.escalations.values())}</h3>")
        if escalated:
            parts.append(_html_table(("kind, element -> target", "count"), escalated))
        unit_rows = [
            (
                c,
                f"{q['people']:.0f}",
                f"{q['tasks']:.0f}",
                f"{q['mean_wait']:.1f}",
                f"{q['p90_wait']:.1f}",
                f"{q['mean_queue']:.2f}",
            )
            for c, q in f.queues.items()
        ]
        parts.append(
            "<h3>Units</h3>"
            + _html_table(("unit", "people", "tasks", "mean wait (min)", "p90 wait (min)", "mean queue"), unit_rows)
        )
        parts.append("<h3>The whole table</h3><pre>" + html.escape(table(f)) + "</pre>")
    parts.append("</body></html>\n")
    return "".join(parts)


__all__ = ["Comparison", "Figures", "compare", "comparison_table", "figures", "html_report", "interval", "table"]
