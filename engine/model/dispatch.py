"""Smart dispatch (智能派遣): what the engine asks of a dispatcher.

What a dispatcher sees of a report and what it decides. The engine asks a
``Dispatcher`` (:mod:`govflow.engine.cases.service`); the behaviour comes from plugins
(``govflow.plugins``: classify, locate and route hooks, the built-in ones
included), wired in by the composition root (``govflow.bootstrap``).
"""

from __future__ import annotations

from dataclasses import dataclass


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
class Routing:
    """A dispatch decision and how it was reached (it goes on the record)."""

    matter: str | None
    street: str | None
    owner: str | None
    how: str
