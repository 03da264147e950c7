"""The reports of a simulated period: when, what, where, by which channel.

Arrivals depend on the scenario, the catalog and the seed only, never on the pack's process:
two pack versions with the same scenario receive the very same reports (common random
numbers), so a difference between their figures is the policy's, not the dice's.

Each local hour of the period gets a Poisson number of reports: ``per_day`` × the weekday's
factor × the hour's share of the day; a burst adds ``factor - 1`` times the reports of its
matters and streets on its days. Reports are spread uniformly inside their hour.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import random
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from govflow.engine.simulation.scenario import Burst, Scenario


@dataclass(frozen=True)
class Arrival:
    """One report: its arrival order ``n`` (the key of every random draw about this case)."""

    n: int
    at: dt.datetime  # aware UTC
    matter: str
    street: str  # where it happens (an unlocated report names no place; the command centre routes it)
    channel: str
    located: bool


class _Choice:
    """Weighted choice over a fixed list (cumulative weights, one bisect per draw)."""

    def __init__(self, items: list[tuple[str, float]]) -> None:
        self.codes = [code for code, _ in items]
        self.cumulative = list(itertools.accumulate(weight for _, weight in items))

    @property
    def total(self) -> float:
        return self.cumulative[-1] if self.cumulative else 0.0

    def draw(self, rng: random.Random) -> str:
        return self.codes[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, the normal approximation for large ones)."""
    if mean <= 0:
        return 0
    if mean >= 40:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def generate(scenario: Scenario, tz: dt.tzinfo | str, seed: int) -> list[Arrival]:
    """Every report of the period, in time order, numbered from 0."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    rng = random.Random(f"govflow-simulation/{seed}/arrivals")
    matters, streets = _Choice(list(scenario.matters)), _Choice(list(scenario.streets))
    channels = _Choice(list(scenario.channels))
    hour_total = sum(scenario.hour_of_day)
    drafts: list[tuple[dt.datetime, str, str, str, bool]] = []
    for day in range(scenario.days):
        date = scenario.start + dt.timedelta(days=day)
        factor = scenario.day_of_week[date.weekday()]
        bursts = [b for b in scenario.bursts if b.first_day <= day + 1 < b.first_day + b.days]
        for hour in range(24):
            mean = scenario.per_day * factor * scenario.hour_of_day[hour] / hour_total
            begin = dt.datetime.combine(date, dt.time(hour), zone)
            for _ in range(poisson(rng, mean)):
                drafts.append(_draft(rng, begin, matters.draw(rng), streets.draw(rng), channels, scenario))
            for burst in bursts:
                extra_matters, extra_streets = _burst_choices(burst, matters, streets)
                share = (extra_matters.total / matters.total) * (extra_streets.total / streets.total)
                for _ in range(poisson(rng, mean * (burst.factor - 1) * share) if burst.factor > 1 else 0):
                    drafts.append(
                        _draft(rng, begin, extra_matters.draw(rng), extra_streets.draw(rng), channels, scenario)
                    )
    drafts.sort(key=lambda d: (d[0], d[1], d[2]))
    return [
        Arrival(n, at, matter, street, channel, located)
        for n, (at, matter, street, channel, located) in enumerate(drafts)
    ]


def _draft(
    rng: random.Random, begin: dt.datetime, matter: str, street: str, channels: _Choice, scenario: Scenario
) -> tuple[dt.datetime, str, str, str, bool]:
    at = (begin + dt.timedelta(seconds=rng.randrange(3600))).astimezone(dt.UTC)
    return at, matter, street, channels.draw(rng), rng.random() >= scenario.unlocated


def _burst_choices(burst: Burst, matters: _Choice, streets: _Choice) -> tuple[_Choice, _Choice]:
    def subset(choice: _Choice, codes: tuple[str, ...]) -> _Choice:
        if not codes:
            return choice
        weights = dict(zip(choice.codes, _weights(choice), strict=True))
        picked = [(c, weights.get(c, 0.0)) for c in codes if weights.get(c, 0.0) > 0]
        return _Choice(picked or [(codes[0], 1e-12)])

    return subset(matters, burst.matters), subset(streets, burst.streets)


def _weights(choice: _Choice) -> list[float]:
    return [b - a for a, b in zip([0.0, *choice.cumulative[:-1]], choice.cumulative, strict=True)]


__all__ = ["Arrival", "generate", "poisson"]
