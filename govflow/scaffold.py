"""``govflow init DIR --district NAME``: a district pack that extends the reference pack.

The scaffold is the smallest pack that validates at once and runs: the district's own
units (a command centre, two streets, two departments), placeholder street boundaries,
a responsibility list with one ``group.*`` entry per matter group of the reference
catalog (so every inherited matter is covered), and a manifest that ``extends:
reference`` and changes nothing else. Every file says in comments what to change.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

DISTRICT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

PACK_YAML = """\
# The process pack of {district}: it extends govflow's reference pack (front-line
# disposal: report, dispatch, sign for, handle, call out, review, evaluate) and
# overrides only what differs. `govflow pack show {folder}` prints the effective pack
# (every file and where it comes from); `govflow pack validate {folder}` checks it.
#
# What to change, file by file:
#   catalog.yaml                  your district's name and units: command centre, streets, departments
#   boundaries.geojson            each street's territory (the polygons here are placeholders)
#   policies/responsibility.yaml  which department answers for which matter (责任清单), with time limits
#   processes/                    nothing by default: the reference diagrams and forms are inherited;
#                                 a file with the same path overrides the reference's
#   policies/policy.csv           nothing by default: the reference's rows are re-homed to {district}
#
# Deploy: `govflow pack deploy {folder}` (the reference pack must be deployed first:
# `govflow serve` does that on its first start). Bump `version` for every change you deploy:
# a deployed version never changes, and running cases finish on the version they started on.
name: {district}          # the pack's name: lower-case letters, digits, - and _
version: "0.1.0"
district: {district}      # the district code: the catalog's district, and the `district` of API requests
extends: reference        # the base pack; reference@1.0.0 pins a version
description: Front-line disposal for {district}, extending the reference pack
# settings are deep-merged over the reference's: name only what differs, e.g.
# settings:
#   deadlines:
#     simple:
#       sign_for: {{amount: 30, unit: minutes}}
#   closures: ["2026-12-31"]      # local days off, on top of the national calendar
"""

CATALOG_YAML = """\
# {district}'s units. A pack for another district than the reference's brings its own units
# (the reference's are Gulou's). Unit codes are "<district>.<name>" in lower-case ascii.
# Matters are inherited from the reference catalog and merged by code: add a matter here
# (code, name, tier simple|complex|difficult, keywords) or drop one with {{code: x, remove: true}}.
district: {{code: {district}, name: {district}}}     # CHANGE the name to the district's own
units:
  # exactly one command centre: it dispatches what cannot be routed and supervises overdue cases
  - {{code: {district}.cc, name: {district} command centre, kind: command_centre}}
  # one entry per street (街道): a case is routed to the street whose territory holds its location
  - {{code: {district}.street_a, name: Street A, kind: street}}
  - {{code: {district}.street_b, name: Street B, kind: street}}
  # departments answer call-outs (呼叫) and dispose (处置) according to the responsibility list
  - {{code: {district}.cgj, name: urban management bureau, kind: department}}
  - {{code: {district}.zjj, name: housing and construction bureau, kind: department}}
matters: []
"""

RESPONSIBILITY_HEAD = """\
# {district}'s responsibility list (责任清单): for each matter (or group of matters, "road.*"),
# the department with the main responsibility, the cooperating ones, and the time limit to
# dispose. Every matter of the catalog must be covered; an exact entry wins over its group.
# These entries give every group to the urban management bureau: CHANGE them to your list.
"""


def scaffold(folder: Path, district: str, reference: Path) -> list[Path]:
    """Write the pack files into ``folder`` (new or empty); returns the files written."""
    if not DISTRICT.match(district):
        raise ValueError(f"district {district!r} must be lower-case ascii letters, digits and _ (e.g. cangshan)")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(f"{folder} exists and is not an empty folder")
    catalog = yaml.safe_load((reference / "catalog.yaml").read_text(encoding="utf-8")) or {}
    groups = sorted({str(m["code"]).split(".")[0] for m in catalog.get("matters") or [] if "code" in m})
    shown = str(folder)
    files = {
        "pack.yaml": PACK_YAML.format(district=district, folder=shown),
        "catalog.yaml": CATALOG_YAML.format(district=district),
        "policies/responsibility.yaml": RESPONSIBILITY_HEAD.format(district=district)
        + yaml.safe_dump(
            {
                "district": district,
                "entries": [
                    {
                        "matter": f"{group}.*",
                        "main": f"{district}.cgj",
                        "cooperating": [f"{district}.zjj"],
                        "time_limit": {"amount": 3, "unit": "working_days"},
                    }
                    for group in groups
                ],
            },
            allow_unicode=True,
            sort_keys=False,
            default_flow_style=None,
            width=120,
        ),
        "boundaries.geojson": _boundaries(district),
    }
    written = []
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _boundaries(district: str) -> str:
    """Two adjacent placeholder squares, one per street (GeoJSON has no comments: pack.yaml explains)."""

    def square(code: str, name: str, west: float) -> dict:
        south, north, east = 26.20, 26.22, west + 0.02
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        return {
            "type": "Feature",
            "properties": {"code": code, "name": name, "placeholder": "replace with the street's real territory"},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    collection = {
        "type": "FeatureCollection",
        "features": [
            square(f"{district}.street_a", "Street A", 119.50),
            square(f"{district}.street_b", "Street B", 119.52),
        ],
    }
    return json.dumps(collection, ensure_ascii=False, indent=1) + "\n"
