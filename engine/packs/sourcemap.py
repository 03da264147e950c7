"""Where a validation issue is in the files the user wrote.

A pack that ``extends`` another is validated as its *effective* pack (see
:mod:`govflow.engine.packs.compose`): merged YAML files are written anew, so a line of the
effective ``pack.yaml`` or ``catalog.yaml`` is a line of no file anybody wrote. A
:class:`SourceMap` turns each line of an effective file back into the line of the layer it
came from: the district pack's own file, or the base pack's file (the issue then names the
base, ``pack="reference 1.0.0"``), so ``govflow pack validate`` and the API point at the line
to edit.

How: every value of a YAML file has a *path* (mapping keys; a list item by its ``code`` or
``matter`` when it is a mapping with one, by its value when it is a scalar, else by its
index — the keys the merge itself uses), so the same value has the same path in the district
file, the base file and the merged file. A line of the merged file belongs to the layer
whose file has the same value at the same path (the district pack first); a value built from
both layers (a mapping merged key by key, the union of plugin lists) belongs to the district
pack if its file has that path, else to the base. Verbatim files (a diagram inherited or
overridden by path) keep their lines; ``policies/policy.csv`` maps row by row.

Issues without a line whose message starts with a path (``settings.deadlines.simple.sign_for:
…``, ``matters[3]: …``) get the line of that path too, for every pack.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from govflow.engine.model.errors import PackIssue
from govflow.engine.model.yaml_text import SAFE_LOADER, YamlRefused, check_events

#: a component of a YAML path: a mapping key, an item's merge key ("#", code), a scalar item ("=", value), or an index
Part = str | int | tuple[str, str]
Path = tuple[Part, ...]
#: list items that are mappings are known by the first of these keys they have (the merge keys of compose)
ITEM_KEYS = ("code", "matter")
YAML_SUFFIXES = (".yaml", ".yml")
_LEADING_PATH = re.compile(r"^([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\])*)(?=[: ])")
_STEP = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]")
_FORM_FIELD = re.compile(r"^form '([\w-]+)'(?: field '([\w-]+)')?")


@dataclass(frozen=True)
class Origin:
    """A line of a file the user wrote: in the district pack itself (``pack`` None) or in its base."""

    line: int
    pack: str | None = None


@dataclass(frozen=True)
class Located:
    """The values of one YAML text: path -> (line of its key or item, the value)."""

    lines: dict[Path, int] = field(default_factory=dict)
    values: dict[Path, Any] = field(default_factory=dict)
    data: Any = None


def _item_part(item: Any, index: int) -> Part:
    if isinstance(item, Mapping):
        for key in ITEM_KEYS:
            value = item.get(key)
            if value is not None and not isinstance(value, (Mapping, list)):
                return ("#", str(value))
        return index
    if isinstance(item, list):
        return index
    return ("=", str(item))


def locate_yaml(text: str) -> Located:
    """Every value of ``text`` with its path and line; empty when the text does not parse (the loader reports why)."""
    try:
        check_events(text)
        node = yaml.compose(text, Loader=SAFE_LOADER)
        data = yaml.load(text, Loader=SAFE_LOADER)
    except (yaml.YAMLError, YamlRefused, RecursionError):
        return Located()
    found = Located(data=data)
    if node is None:
        return found
    stack: list[tuple[yaml.Node, Any, Path, int]] = [(node, data, (), node.start_mark.line + 1)]
    while stack:  # pre-order: the outermost value of a line comes first
        current, value, path, line = stack.pop()
        if path not in found.lines:
            found.lines[path], found.values[path] = line, value
        children: list[tuple[yaml.Node, Any, Path, int]] = []
        if isinstance(current, yaml.MappingNode) and isinstance(value, Mapping):
            by_text = {str(k): v for k, v in value.items()}
            for key_node, value_node in current.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
                if key is None or key not in by_text:
                    continue
                children.append((value_node, by_text[key], (*path, key), key_node.start_mark.line + 1))
        elif isinstance(current, yaml.SequenceNode) and isinstance(value, list) and len(value) == len(current.value):
            for index, (item_node, item) in enumerate(zip(current.value, value, strict=True)):
                children.append((item_node, item, (*path, _item_part(item, index)), item_node.start_mark.line + 1))
        stack.extend(reversed(children))
    return found


def path_of(message: str, data: Any) -> Path | None:
    """The path a message starts with (``settings.deadlines.simple.sign_for: …``, ``matters[3] (x): …``)
    as found in ``data``, or None when the message names no value of it."""
    form = _FORM_FIELD.match(message)  # the words of govflow.engine.model.forms
    if form is not None:
        steps = [form.group(1)] + ([form.group(2)] if form.group(2) else [])
    elif (match := _LEADING_PATH.match(message)) is not None:
        steps = [m.group(0) for m in _STEP.finditer(match.group(1))]
    else:
        return None
    path: list[Part] = []
    value = data
    for step in (_STEP.fullmatch(s if s.startswith("[") else "." + s.lstrip(".")) for s in steps):
        if step is None:
            break
        key, index = step.group(1), step.group(2)
        if key is not None:
            if not isinstance(value, Mapping) or key not in {str(k) for k in value}:
                break
            value = next(v for k, v in value.items() if str(k) == key)
            path.append(key)
        else:
            position = int(index)
            if not isinstance(value, list) or position >= len(value):
                break
            path.append(_item_part(value[position], position))
            value = value[position]
    return tuple(path) or None


def line_of_path(located: Located, path: Path) -> int | None:
    """The line of ``path``, else of its nearest enclosing value."""
    while path:
        if path in located.lines:
            return located.lines[path]
        path = path[:-1]
    return None


def with_path_line(issue: PackIssue, files: Mapping[str, bytes], cache: dict[str, Located] | None = None) -> PackIssue:
    """``issue`` with the line of the path its message starts with, when it has no line and names one."""
    if issue.line is not None or not issue.file.endswith(YAML_SUFFIXES) or issue.file not in files:
        return issue
    cache = {} if cache is None else cache
    if issue.file not in cache:
        cache[issue.file] = locate_yaml(files[issue.file].decode("utf-8", "replace"))
    located = cache[issue.file]
    path = path_of(issue.message, located.data)
    line = line_of_path(located, path) if path else None
    return dataclasses.replace(issue, line=line) if line else issue


class SourceMap:
    """Lines of an effective (composed) pack -> lines of the district pack or its base.

    ``origins[file][line]`` for merged and inherited files; a file absent from ``origins`` is the
    district pack's own, unchanged.
    """

    def __init__(self, base_label: str) -> None:
        self.base_label = base_label
        self.origins: dict[str, dict[int, Origin]] = {}
        self.whole: dict[str, str | None] = {}  # verbatim files: file -> pack (None: the district's own)

    def verbatim(self, name: str, from_base: bool) -> None:
        self.whole[name] = self.base_label if from_base else None

    def rows(self, name: str, origins: list[Origin | None]) -> None:
        """Line ``i + 1`` of the effective file came from ``origins[i]`` (None: written by the merge)."""
        self.origins[name] = {i + 1: o for i, o in enumerate(origins) if o is not None}

    def merged_yaml(self, name: str, effective: bytes, child: bytes | None, base: bytes | None) -> None:
        eff = locate_yaml(effective.decode("utf-8", "replace"))
        own = locate_yaml(child.decode("utf-8", "replace")) if child is not None else Located()
        under = locate_yaml(base.decode("utf-8", "replace")) if base is not None else Located()
        mapped: dict[int, Origin] = {}
        for path, line in eff.lines.items():
            if line in mapped or not path:
                continue
            origin = _origin_of(path, eff.values[path], own, under, self.base_label)
            if origin is not None:
                mapped[line] = origin
        self.origins[name] = mapped

    def locate(self, issue: PackIssue, files: Mapping[str, bytes], cache: dict[str, Located]) -> PackIssue:
        """``issue`` (about the effective pack) pointed at the file and line the user wrote."""
        if issue.pack is not None:
            return issue
        if issue.file in self.whole:
            return dataclasses.replace(issue, pack=self.whole[issue.file])
        if issue.file not in self.origins:
            return issue
        issue = with_path_line(issue, files, cache)
        origin = self.origins[issue.file].get(issue.line) if issue.line is not None else None
        if origin is None:  # a line the merge wrote, or no line: never a line of another file
            return dataclasses.replace(issue, line=None)
        return dataclasses.replace(issue, line=origin.line, pack=origin.pack)

    def locate_all(self, issues: list[PackIssue], files: Mapping[str, bytes]) -> list[PackIssue]:
        cache: dict[str, Located] = {}
        return [self.locate(issue, files, cache) for issue in issues]


def _origin_of(path: Path, value: Any, own: Located, under: Located, base_label: str) -> Origin | None:
    if path in own.values and own.values[path] == value:
        return Origin(own.lines[path])
    if path in under.values and under.values[path] == value:
        return Origin(under.lines[path], base_label)
    if path in own.lines:
        return Origin(own.lines[path])
    if path in under.lines:
        return Origin(under.lines[path], base_label)
    return None


__all__ = ["Located", "Origin", "SourceMap", "line_of_path", "locate_yaml", "path_of", "with_path_line"]
