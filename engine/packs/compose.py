"""Pack inheritance: a district pack that ``extends`` another and overrides only what differs.

``pack.yaml`` of a district pack names its base::

    extends: reference            # the active (else newest) deployed version of "reference"
    extends: reference@1.0.0      # or a pinned version

:func:`compose` builds the **effective pack** — an ordinary, self-contained set
of files — from the district's own files over the base's (already effective)
files. The effective pack is what is validated, hashed, stored and run, so a
deployed version never changes when its base is redeployed, and ``govflow pack
show`` / the download API show exactly what runs.

Merge rules (the child is the district pack):

=============================  ==============================================================
``pack.yaml``                  child keys win; ``settings`` deep-merged (mappings merge key by
                               key, lists and scalars are replaced); ``plugins`` and
                               ``disabled_plugins`` are unions; ``name`` and ``version`` must be
                               the child's own
``catalog.yaml``               ``matters`` merged by code (a child entry replaces the base's,
                               ``{code: x, remove: true}`` drops it); ``units`` merged the same way
                               for the *same* district, not inherited for another district
``processes/forms.yaml``       merged by form name
``policies/responsibility``    entries merged by ``matter`` for the same district; another
``.yaml``                      district brings its own list (its units differ)
``policies/policy.csv``        union of rows; rows inherited by another district are re-homed
                               (a domain pattern ``<base district>/…`` becomes ``<district>/…``)
``boundaries.geojson``,        district-bound: inherited only by a pack of the same district
``gazetteer.yaml``,
``simulation.yaml``,
``policies/demo-principals``
every other file               overridden by path (diagrams, decisions, the Casbin model)
=============================  ==============================================================

The effective ``pack.yaml`` drops ``extends`` and records ``composition``: the
base (name, version, content hash) and where each file came from.

Validation reports issues at the lines the user wrote, not at lines of the merged
files: :func:`compose` fills a :class:`~govflow.engine.packs.sourcemap.SourceMap`
(each line of an effective file -> the district pack's line, or the base's with the
base named).
"""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from govflow.engine.model.catalog import load_yaml
from govflow.engine.model.errors import PackIssue
from govflow.engine.packs.sourcemap import Origin, SourceMap

#: (base name, version or None for "active, else newest") -> the base's effective files
BaseResolver = Callable[[str, "str | None"], Mapping[str, bytes]]

MANIFEST = "pack.yaml"
CATALOG = "catalog.yaml"
FORMS = "processes/forms.yaml"
RESPONSIBILITY = "policies/responsibility.yaml"
POLICY = "policies/policy.csv"
DISTRICT_BOUND = ("boundaries.geojson", "gazetteer.yaml", "policies/demo-principals.yaml", "simulation.yaml")


@dataclass(frozen=True)
class BaseRef:
    """What ``extends`` names: a pack name and, optionally, a pinned version."""

    name: str
    version: str | None = None

    def __str__(self) -> str:
        return self.name + (f"@{self.version}" if self.version else "")


def parse_extends(value: Any) -> BaseRef | None:
    """``"reference"``, ``"reference@1.0.0"`` or ``{pack: reference, version: 1.0.0}``; None if malformed."""
    if isinstance(value, str) and value.strip():
        name, _, version = value.strip().partition("@")
        return BaseRef(name, version or None) if name else None
    if isinstance(value, Mapping) and isinstance(value.get("pack"), str) and set(value) <= {"pack", "version"}:
        pinned = value.get("version")
        return BaseRef(value["pack"], str(pinned) if pinned is not None else None)
    return None


def deep_merge(base: Any, over: Any) -> Any:
    """Mappings merge key by key (recursively); anything else in ``over`` replaces ``base``."""
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        merged = dict(copy.deepcopy(base))
        for key, value in over.items():
            merged[key] = deep_merge(merged[key], value) if key in merged else copy.deepcopy(value)
        return merged
    return copy.deepcopy(over)


def _load(files: Mapping[str, bytes], name: str, origin: str, issues: list[PackIssue]) -> Any:
    if name not in files:
        return None
    try:
        return load_yaml(files[name].decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        issues.append(
            PackIssue(
                name,
                f"{origin}: cannot be read for merging: {getattr(exc, 'problem', None) or exc}",
                line=(mark.line + 1) if mark else None,
            )
        )
        return None


def _dump(data: Any) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120).encode("utf-8")


def _merge_by_key(
    base: list[Any], over: list[Any], key: str, where: str, issues: list[PackIssue], file: str
) -> list[Any]:
    """Merge two lists of mappings by ``key``: replace in place, append new, drop ``remove: true``."""
    merged: dict[str, Any] = {}
    for item in base or []:
        if isinstance(item, Mapping) and item.get(key) is not None:
            merged[str(item[key])] = item
    for index, item in enumerate(over or []):
        if not isinstance(item, Mapping) or item.get(key) is None:
            issues.append(PackIssue(file, f"{where}[{index}]: needs a {key} to merge with the base"))
            continue
        code = str(item[key])
        if item.get("remove") is True:
            if merged.pop(code, None) is None:
                issues.append(
                    PackIssue(file, f"{where}[{index}]: cannot remove {code}: the base has no such entry", element=code)
                )
            continue
        merged[code] = item
    return list(merged.values())


def _rehome_policy(text: str, base_district: str, district: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        cells = next(csv.reader(io.StringIO(line)), [])
        stripped = [c.strip() for c in cells]
        if (
            len(stripped) == 4
            and stripped[0] == "p"
            and base_district != district
            and stripped[2].startswith(base_district + "/")
        ):
            stripped[2] = district + stripped[2][len(base_district) :]
            line = ", ".join(stripped)
        lines.append(line)
    return lines


def _policy_union(
    base_text: str, child_text: str, child_name: str, base_label: str = "base"
) -> tuple[str, list[Origin | None]]:
    """The union of the rows, and where each line of it came from (the base's line or the district's)."""
    seen: set[tuple[str, ...]] = set()
    out: list[str] = []
    origins: list[Origin | None] = []
    for origin, text in (("base", base_text), (child_name, child_text)):
        if origin != "base" and text.strip():
            out.append(f"# ---- rows of {child_name} ----")
            origins.append(None)
        for number, line in enumerate(text.splitlines(), start=1):
            cells = tuple(c.strip() for c in next(csv.reader(io.StringIO(line)), []))
            if cells and cells[0] == "p":
                if cells in seen:
                    continue
                seen.add(cells)
            out.append(line)
            origins.append(Origin(number, base_label if origin == "base" else None))
    return "\n".join(out) + "\n", origins


def compose(
    child: Mapping[str, bytes],
    base: Mapping[str, bytes],
    ref: BaseRef,
    base_hash: str,
    sources: SourceMap | None = None,
) -> tuple[dict[str, bytes], list[PackIssue]]:
    """The effective files of ``child`` over ``base`` (see the module docstring for the rules).

    ``sources``, when given, is filled with where each line of the effective files came from
    (the district pack's files or the base's), so that validation points at the lines the user
    wrote (:mod:`govflow.engine.packs.sourcemap`).
    """
    issues: list[PackIssue] = []
    child_manifest = _load(child, MANIFEST, "the district pack", issues) or {}
    base_manifest = _load(base, MANIFEST, f"base {ref}", issues) or {}
    if sources is None:
        sources = SourceMap(str(ref))
    sources.base_label = f"{ref.name} {base_manifest.get('version', ref.version or '')}".strip()
    for key in ("name", "version"):
        if not child_manifest.get(key):
            issues.append(PackIssue(MANIFEST, f"{key} is required: a pack that extends another states its own {key}"))
    base_manifest = {k: v for k, v in base_manifest.items() if k != "composition"}
    base_district = str(base_manifest.get("district", ""))
    district = str(child_manifest.get("district") or base_district)
    same_district = district == base_district

    manifest = {k: v for k, v in base_manifest.items() if k not in ("settings", "plugins", "disabled_plugins")}
    manifest.update(
        {k: v for k, v in child_manifest.items() if k not in ("extends", "settings", "plugins", "disabled_plugins")}
    )
    manifest["district"] = district
    manifest["settings"] = deep_merge(base_manifest.get("settings") or {}, child_manifest.get("settings") or {})
    for key in ("plugins", "disabled_plugins"):
        union = [*(base_manifest.get(key) or []), *(child_manifest.get(key) or [])]
        if union:
            manifest[key] = list(dict.fromkeys(str(p) for p in union))

    effective: dict[str, bytes] = {}
    origin: dict[str, str] = {}
    for name, content in base.items():
        if name in DISTRICT_BOUND and not same_district:
            continue
        effective[name], origin[name] = content, "base"
    for name, content in child.items():
        origin[name] = "overrides base" if name in effective else "own"
        effective[name] = content

    # structured files merge instead of replacing
    if CATALOG in child and CATALOG in base:
        over, under = _load(child, CATALOG, "the district pack", issues), _load(base, CATALOG, f"base {ref}", issues)
        if isinstance(over, Mapping) and isinstance(under, Mapping):
            merged = dict(under)
            merged.update({k: v for k, v in over.items() if k not in ("units", "matters")})
            merged["matters"] = _merge_by_key(
                under.get("matters") or [], over.get("matters") or [], "code", "matters", issues, CATALOG
            )
            if same_district:
                merged["units"] = _merge_by_key(
                    under.get("units") or [], over.get("units") or [], "code", "units", issues, CATALOG
                )
            else:
                merged["units"] = list(over.get("units") or [])
            effective[CATALOG], origin[CATALOG] = _dump(merged), "merged"
    if FORMS in child and FORMS in base:
        over, under = _load(child, FORMS, "the district pack", issues), _load(base, FORMS, f"base {ref}", issues)
        if isinstance(over, Mapping) and isinstance(under, Mapping):
            effective[FORMS], origin[FORMS] = _dump({**under, **over}), "merged"
    if RESPONSIBILITY in base and not same_district and RESPONSIBILITY not in child:
        del effective[RESPONSIBILITY]
        issues.append(
            PackIssue(
                RESPONSIBILITY,
                f"file not found: district {district} differs from the base's ({base_district}), so it brings its own responsibility list",
            )
        )
    elif RESPONSIBILITY in child and RESPONSIBILITY in base and same_district:
        over, under = (
            _load(child, RESPONSIBILITY, "the district pack", issues),
            _load(base, RESPONSIBILITY, f"base {ref}", issues),
        )
        if isinstance(over, Mapping) and isinstance(under, Mapping):
            entries = _merge_by_key(
                under.get("entries") or [], over.get("entries") or [], "matter", "entries", issues, RESPONSIBILITY
            )
            effective[RESPONSIBILITY], origin[RESPONSIBILITY] = _dump({**under, **over, "entries": entries}), "merged"
    if POLICY in base:
        base_rows = "\n".join(_rehome_policy(base[POLICY].decode("utf-8", "replace"), base_district, district))
        child_rows = child[POLICY].decode("utf-8", "replace") if POLICY in child else ""
        policy_text, policy_origins = _policy_union(
            base_rows, child_rows, str(child_manifest.get("name", "the district pack")), sources.base_label
        )
        effective[POLICY] = policy_text.encode("utf-8")
        sources.rows(POLICY, policy_origins)
        origin[POLICY] = "merged" if POLICY in child else ("re-homed from base" if not same_district else "base")
    if not same_district:
        for name in DISTRICT_BOUND:
            if name in base and name not in child and name == "boundaries.geojson":
                issues.append(
                    PackIssue(
                        name,
                        f"file not found: district {district} differs from the base's ({base_district}), so it brings its own street boundaries",
                    )
                )

    origin[MANIFEST] = "merged"
    manifest["composition"] = {
        "base": {"name": ref.name, "version": str(base_manifest.get("version", "")), "content_hash": base_hash},
        "files": {name: origin[name] for name in sorted(origin) if name in effective or name == MANIFEST},
    }
    effective[MANIFEST] = _dump(manifest)
    for name in effective:
        if name == POLICY and name in base:
            continue  # mapped row by row above
        if origin.get(name) == "merged":
            sources.merged_yaml(name, effective[name], child.get(name), base.get(name))
        elif origin.get(name) == "base":
            sources.verbatim(name, from_base=True)
    return effective, issues
