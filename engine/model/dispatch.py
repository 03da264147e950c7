"""Smart dispatch (智能派遣): what the engine asks of a dispatcher.

What a dispatcher sees of a report and what it decides. The engine asks a
``Dispatcher`` (:mod:`govflow.engine.cases.service`); the behaviour comes from plugins
(``govflow.plugins``: classify, locate and route hooks, the built-in ones
included), wired in by the composition root (``govflow.bootstrap``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Report:
    """What a dispatcher sees of a new case (no personal data)."""

    description: str
    category: str | None
    lat: float | None
    lng: float | None
    address: str | None
    channel: str


@dataclass(frozen=True)
class Classification:
    """What a classify hook may answer instead of ``(matter, how)``: also the candidates it weighed.

    ``matter`` None means *unsure*: the case goes to the command centre, which
    sees ``candidates`` (matter codes with their probabilities, best first) and
    ``evidence`` (what in the text weighed most) in its dispatch task.
    """

    matter: str | None
    how: str
    candidates: tuple[tuple[str, float], ...] = ()
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Location:
    """What a locate hook may answer instead of a street code: how it was found, the other candidates."""

    street: str | None
    how: str
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Routing:
    """A dispatch decision and how it was reached (it goes on the record)."""

    matter: str | None
    street: str | None
    owner: str | None
    how: str
    #: the matters weighed, best first: ({"matter", "name", "p"}), and the evidence for the best
    candidates: tuple[dict[str, Any], ...] = ()
    evidence: tuple[str, ...] = ()
    #: how the street was found and the streets a person may choose among when it was not
    located: str | None = None
    streets: tuple[str, ...] = field(default=())

    def record(self) -> dict[str, Any]:
        """The explanation that goes on the routing event (empty parts left out)."""
        out: dict[str, Any] = {}
        if self.candidates:
            out["candidates"] = [dict(c) for c in self.candidates]
        if self.evidence:
            out["evidence"] = list(self.evidence)
        if self.located:
            out["located"] = self.located
        if self.streets:
            out["streets"] = list(self.streets)
        return out
