"""docs/supervision.md lists exactly the counters and rates the code defines (the doc cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

from govflow.engine.oversight.definitions import COUNTERS, PREFIXED, RATES

DOC = (Path(__file__).resolve().parent.parent / "docs" / "supervision.md").read_text(encoding="utf-8")


def first_column(header: str) -> list[str]:
    section = DOC.split(header, 1)[1].split("\n## ", 1)[0]
    cells = re.findall(r"^\| ([^|]+) \|", section, flags=re.M)
    return [name for cell in cells for name in re.findall(r"`([^`]+)`", cell)]


def test_every_counter_is_documented():
    documented = first_column("## From events to counters")
    plain = [c for c in documented if ":" not in c]
    assert sorted(plain) == sorted(COUNTERS)
    assert {c.split(":")[0] + ":" for c in documented if ":" in c} == set(PREFIXED)


def test_every_rate_is_documented_with_its_formula():
    section = DOC.split("## From counters to rates", 1)[1].split("\n## ", 1)[0]
    rows = {
        m[0]: m for m in re.findall(r"^\| `([^`]+)` \| ([^|]+) \| (\w+) \| (\w+) \| ([^|]+) \|", section, flags=re.M)
    }
    assert sorted(rows) == sorted(r.name for r in RATES)
    for rate in RATES:
        _, chinese, kind, level, formula = rows[rate.name]
        assert (chinese.strip(), kind, level) == (rate.chinese, rate.kind, rate.level)
        assert f"`{rate.numerator}`" in formula and (rate.kind == "count" or f"`{rate.denominator}`" in formula)
