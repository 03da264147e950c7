"""YAML as govflow reads it: safe, without anchors or aliases, bounded in depth.

Every YAML file govflow reads (``pack.yaml``, ``catalog.yaml``, forms, the
responsibility list, principals files) goes through :func:`load_yaml`:

* PyYAML's safe loader (the C one when libyaml is there): no Python tags;
* **no anchors and no aliases** (``&a`` / ``*a``, merge keys ``<<: *a`` included).
  An alias shares a node, so a few hundred bytes can describe billions of
  values ("billion laughs"): loading is cheap, but everything that walks the
  result afterwards (merging a pack over its base, showing its settings,
  serialising it to JSON) is not. Pack files are short and written by hand;
  they do not need them. A refusal names the line of the anchor or alias;
* **at most** :data:`MAX_DEPTH` **levels of nesting** (libyaml stops at about a
  thousand, which is still deep enough to exhaust a recursive walk later).

A refusal is a :class:`yaml.MarkedYAMLError` (``problem`` and ``problem_mark``),
so every caller that reports YAML errors with file and line reports these too.
"""

from __future__ import annotations

from typing import Any

import yaml

#: PyYAML's safe loader, in C when libyaml is there (same semantics as yaml.safe_load, ~10× faster).
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: nesting levels of mappings and sequences a govflow YAML file may have
MAX_DEPTH = 32


class YamlRefused(yaml.MarkedYAMLError):
    """Valid YAML that govflow refuses to read (an anchor, an alias, too deep a nesting)."""


def load_yaml(text: str) -> Any:
    """The document in ``text``; :class:`YamlRefused` for anchors, aliases or too deep nesting."""
    if "&" in text or "*" in text:  # neither an anchor nor an alias can be written without one
        check_events(text)
    data = yaml.load(text, Loader=SAFE_LOADER)
    if _too_deep(data):
        check_events(text)  # finds the line; the structure above is never walked recursively
    return data


def compose_yaml(text: str) -> yaml.Node | None:
    """The node graph of ``text`` (with line marks), refused like :func:`load_yaml`."""
    check_events(text)
    return yaml.compose(text, Loader=SAFE_LOADER)


def check_events(text: str) -> None:
    """Scan the parser's events: refuse the first anchor, alias or nesting beyond :data:`MAX_DEPTH`."""
    depth = 0
    for event in yaml.parse(text, Loader=SAFE_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise YamlRefused(
                problem=f"alias *{event.anchor} refused: govflow YAML allows no anchors or aliases (write the value out)",
                problem_mark=_mark(event),
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise YamlRefused(
                problem=f"anchor &{anchor} refused: govflow YAML allows no anchors or aliases (write the value out)",
                problem_mark=_mark(event),
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlRefused(problem=f"nested more than {MAX_DEPTH} levels deep", problem_mark=_mark(event))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _mark(event: yaml.Event) -> yaml.Mark | None:
    """The event's position as a plain :class:`yaml.Mark` (the C parser has its own mark type)."""
    mark = event.start_mark
    if mark is None:
        return None
    return yaml.Mark("<yaml>", mark.index, mark.line, mark.column, None, None)  # type: ignore[arg-type]


def _too_deep(data: Any) -> bool:
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth >= MAX_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            if depth >= MAX_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in value)
    return False


__all__ = ["MAX_DEPTH", "SAFE_LOADER", "YamlRefused", "check_events", "compose_yaml", "load_yaml"]
