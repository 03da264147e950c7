"""The responsibility list (责任清单): for each matter, who answers for it.

``policies/responsibility.yaml`` of a pack::

    district: gulou
    entries:
      - matter: road.*                       # a group pattern: every road.* matter ...
        main: gulou.cgj                      # 主体责任单位 (a department)
        cooperating: [gulou.zjj]             # 配合责任单位 (departments)
        time_limit: {amount: 1, unit: working_days}
      - matter: road.manhole_cover           # ... unless it has an exact entry of its own
        main: gulou.cgj
        cooperating: [gulou.zjj, gulou.swjt]
        time_limit: {amount: 2, unit: working_hours}

:func:`parse_responsibility` checks the file against the pack's catalog (every
unit named exists and is a department, every catalog matter is covered by an
exact entry or a ``group.*`` pattern, no entry names a matter the catalog does
not know) and returns a :class:`ResponsibilityList`, whose
:meth:`~ResponsibilityList.lookup` answers "who is responsible for this matter,
and by which entry". Issues carry the file, the line of the entry and the
matter as the element.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from govflow.engine.model.catalog import Catalog, load_yaml
from govflow.engine.model.errors import PackIssue
from govflow.engine.model.yaml_text import compose_yaml

FILENAME = "policies/responsibility.yaml"
TIME_UNITS = ("minutes", "hours", "working_hours", "days", "working_days")
_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.\*$")


@dataclass(frozen=True)
class TimeLimit:
    """A 处置时限: an amount of some time unit (working units count the district's calendar)."""

    amount: int
    unit: str


@dataclass(frozen=True)
class ResponsibilityEntry:
    """One row of the list: a matter (or ``group.*``), its main and cooperating units, its time limit."""

    matter: str
    main: str
    cooperating: tuple[str, ...]
    time_limit: TimeLimit | None
    line: int | None = None

    @property
    def is_pattern(self) -> bool:
        return self.matter.endswith(".*")


@dataclass(frozen=True)
class Responsibility:
    """The answer of :meth:`ResponsibilityList.lookup`: the entry and the pattern that matched."""

    matter: str
    entry: ResponsibilityEntry

    @property
    def matched(self) -> str:
        """``"road.manhole_cover"`` for an exact entry, ``"road.*"`` for a group pattern."""
        return self.entry.matter

    @property
    def main(self) -> str:
        return self.entry.main

    @property
    def cooperating(self) -> tuple[str, ...]:
        return self.entry.cooperating


class ResponsibilityList:
    """A validated responsibility list: exact entries first, then ``group.*`` patterns."""

    def __init__(self, district: str, entries: list[ResponsibilityEntry]) -> None:
        self.district = district
        self._exact = {e.matter: e for e in entries if not e.is_pattern}
        self._groups = {e.matter[:-2]: e for e in entries if e.is_pattern}

    def lookup(self, matter: str) -> Responsibility | None:
        """The entry responsible for ``matter`` (exact entry wins over ``group.*``), or None."""
        entry = self._exact.get(matter)
        if entry is None:
            entry = self._groups.get(matter.split(".", 1)[0])
        return Responsibility(matter, entry) if entry is not None else None

    def __iter__(self) -> Iterator[ResponsibilityEntry]:
        yield from self._exact.values()
        yield from self._groups.values()

    def __len__(self) -> int:
        return len(self._exact) + len(self._groups)


def _entry_lines(text: str) -> list[int]:
    """The 1-based line of each item of ``entries`` (YAML nodes keep their marks)."""
    try:
        root = compose_yaml(text)
    except yaml.YAMLError:
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if getattr(key, "value", None) == "entries" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def parse_responsibility(
    content: bytes, catalog: Catalog, filename: str = FILENAME
) -> tuple[ResponsibilityList | None, list[PackIssue]]:
    """Parse and check a responsibility list against ``catalog``; return it or the issues."""
    try:
        text = content.decode("utf-8")
        data = load_yaml(text)
    except UnicodeDecodeError:
        return None, [PackIssue(filename, "not UTF-8 text")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [
            PackIssue(
                filename,
                f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
                line=(mark.line + 1) if mark else None,
            )
        ]
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        return None, [PackIssue(filename, "must be a mapping with district and an entries list")]
    issues: list[PackIssue] = []
    if data.get("district") != catalog.district:
        issues.append(
            PackIssue(
                filename, f"district {data.get('district')!r} differs from catalog.yaml's {catalog.district!r}", line=1
            )
        )
    lines = _entry_lines(text)
    entries: list[ResponsibilityEntry] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["entries"]):
        line = lines[index] if index < len(lines) else None
        entry = _entry(raw, index, line, catalog, filename, issues)
        if entry is None:
            continue
        if entry.matter in seen:
            issues.append(
                PackIssue(
                    filename,
                    f"entries[{index}]: matter {entry.matter} is listed twice (first at line {seen[entry.matter]})",
                    line=line,
                    element=entry.matter,
                )
            )
            continue
        seen[entry.matter] = line or 0
        entries.append(entry)
    result = ResponsibilityList(catalog.district, entries)
    for code in catalog.matters:
        if result.lookup(code) is None:
            group = code.split(".", 1)[0]
            issues.append(
                PackIssue(
                    filename,
                    f"matter {code} of catalog.yaml has no responsibility entry (add {code} or {group}.*)",
                    element=code,
                )
            )
    if issues:
        return None, issues
    return result, []


def _entry(
    raw: Any, index: int, line: int | None, catalog: Catalog, filename: str, issues: list[PackIssue]
) -> ResponsibilityEntry | None:
    def bad(message: str, element: str | None = None) -> None:
        issues.append(PackIssue(filename, f"entries[{index}]: {message}", line=line, element=element))

    if not isinstance(raw, Mapping) or not raw.get("matter") or not raw.get("main"):
        bad("needs matter and main")
        return None
    matter = str(raw["matter"])
    unknown = set(raw) - {"matter", "main", "cooperating", "time_limit", "note"}
    if unknown:
        bad(f"unknown keys {sorted(unknown)}", matter)
    if _PATTERN.match(matter):
        group = matter[:-2]
        if not any(code.split(".", 1)[0] == group for code in catalog.matters):
            bad(f"pattern {matter} matches no matter of catalog.yaml", matter)
    elif matter not in catalog.matters:
        bad(f"matter {matter} is not in catalog.yaml", matter)
    cooperating = raw.get("cooperating") or []
    if not isinstance(cooperating, list):
        bad("cooperating must be a list of unit codes", matter)
        cooperating = []
    for role, code in [("main", raw["main"])] + [("cooperating", c) for c in cooperating]:
        unit = catalog.unit(str(code))
        if unit is None:
            bad(f"{role} unit {code!r} is not a unit of catalog.yaml", matter)
        elif unit.kind != "department":
            bad(f"{role} unit {code} is a {unit.kind}, not a department", matter)
    if str(raw["main"]) in {str(c) for c in cooperating}:
        bad(f"{raw['main']} is both main and cooperating", matter)
    limit = None
    if raw.get("time_limit") is not None:
        tl = raw["time_limit"]
        if (
            not isinstance(tl, Mapping)
            or not isinstance(tl.get("amount"), int)
            or isinstance(tl.get("amount"), bool)
            or tl["amount"] <= 0
            or tl.get("unit") not in TIME_UNITS
        ):
            bad(f"time_limit must be {{amount: <positive integer>, unit: {' | '.join(TIME_UNITS)}}}", matter)
        else:
            limit = TimeLimit(int(tl["amount"]), str(tl["unit"]))
    return ResponsibilityEntry(matter, str(raw["main"]), tuple(str(c) for c in cooperating), limit, line)
