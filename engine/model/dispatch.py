"""Smart dispatch (智能派遣): what the engine asks of a dispatcher.

The engine only knows this protocol; the behaviour comes from plugins
(``govflow.plugins``: classify, locate and route hooks, the built-in ones
included), wired in by the composition root (``govflow.bootstrap``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from govflow.engine.packs.loader import LoadedPack


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


class Dispatcher(Protocol):
    def dispatch(self, pack: LoadedPack, report: Report) -> Routing:
        """Decide the matter, street and owner unit of a new case (owner None: command centre)."""
        ...
