"""Responsibility disputes (长效责任机制): the standing meeting's ruling amends the responsibility list.

A department rejects a call, the street maintains it, the command centre cannot
settle it and refers it to the standing responsibility meeting (all in the
diagram). The meeting's ruling task declares the role ``responsibility_ruling``
(:mod:`govflow.engine.workflow.roles`): completing it names the department with
main responsibility (主体责任) for the case's matter. :func:`amend` builds that
ruling as a **new version** of the district's active pack — the same files, the
responsibility list amended, ``pack.yaml`` with the next patch version and a
description naming the case — which the service deploys (active) through the
pack registry before the case moves onto it, so the street's next call-out is
decided by the amended list. Nothing is edited in place: versions are immutable.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from govflow.engine.model.errors import InvalidInput, NotFound

RESPONSIBILITY = "policies/responsibility.yaml"


@dataclass(frozen=True)
class Amendment:
    """What a ruling changed: the matter's entry before and after, and the new version."""

    matter: str
    main: str
    previous_main: str | None
    version: str
    files: dict[str, bytes]
    description: str

    def record(self, name: str, from_version: str, decision: str, case_id: str) -> dict[str, Any]:
        return {
            "matter": self.matter,
            "main": self.main,
            "previous_main": self.previous_main,
            "pack": f"{name} {self.version}",
            "from": f"{name} {from_version}",
            "decision": decision,
            "case": case_id,
        }


def next_version(version: str, exists: Callable[[str], bool]) -> str:
    """The next free patch version after ``version`` (1.0.0 → 1.0.1, or later if taken)."""
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", version)
    if match is None:
        raise InvalidInput(f"pack version {version!r} is not major.minor.patch; the ruling cannot amend it")
    major, minor, patch = (int(x) for x in match.groups())
    for step in range(1, 1000):
        candidate = f"{major}.{minor}.{patch + step}"
        if not exists(candidate):
            return candidate
    raise InvalidInput("no free pack version for the ruling")  # pragma: no cover


def amend(
    files: dict[str, bytes],
    *,
    version: str,
    description: str,
    matter: str,
    department: str,
    case_id: str,
    decision: str,
) -> Amendment:
    """The files of the new version: ``department`` main for ``matter``, provenance in pack.yaml."""
    if RESPONSIBILITY not in files:
        raise NotFound("the pack has no responsibility list to amend", file=RESPONSIBILITY)
    text = files[RESPONSIBILITY].decode("utf-8")
    data = yaml.safe_load(text) or {}
    entries: list[dict[str, Any]] = list(data.get("entries") or [])
    exact = next((e for e in entries if e.get("matter") == matter), None)
    group = next((e for e in entries if e.get("matter") == matter.split(".", 1)[0] + ".*"), None)
    base = exact or group or {"time_limit": {"amount": 1, "unit": "working_days"}}
    previous = base.get("main")
    cooperating = [u for u in [previous, *(base.get("cooperating") or [])] if u and u != department]
    entry = {
        "matter": matter,
        "main": department,
        "cooperating": list(dict.fromkeys(cooperating)),
        # a copy: the group's own time limit stays in the list, and a shared object would be written
        # as a YAML anchor and alias, which no pack file may hold
        "time_limit": copy.deepcopy(base.get("time_limit")),
    }
    if exact is not None:
        entries[entries.index(exact)] = entry
    else:
        entries.append(entry)
    data["entries"] = entries
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#") and text.startswith(line))
    note = f"# Amended by the standing responsibility meeting (长效责任联席会议): {matter} → {department}, case {case_id}\n"
    amended_list = header + note + yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    summary = f"{description} · 长效责任联席会议 ruling on case {case_id}: {matter} → {department} (main)"
    manifest = files["pack.yaml"].decode("utf-8")
    manifest, versions = re.subn(r"(?m)^version:.*$", f"version: {json.dumps(version)}", manifest, count=1)
    manifest, descriptions = re.subn(
        r"(?m)^description:.*$", lambda _: f"description: {json.dumps(summary, ensure_ascii=False)}", manifest, count=1
    )
    if not versions:
        raise InvalidInput("pack.yaml has no version line; the ruling cannot amend it")
    if not descriptions:
        manifest += f"description: {json.dumps(summary, ensure_ascii=False)}\n"
    new_files = {
        **files,
        RESPONSIBILITY: amended_list.encode("utf-8"),
        "pack.yaml": manifest.encode("utf-8"),
    }
    return Amendment(matter, department, previous, version, new_files, summary)


__all__ = ["RESPONSIBILITY", "Amendment", "amend", "next_version"]
