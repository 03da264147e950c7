"""Settings, read once at the edge (environment variables prefixed ``GOVFLOW_``).

Where things are by default:

* **The reference pack** ships inside the package (``govflow/reference/``: the
  repository's top-level ``pack.yaml``, ``catalog.yaml``, ``boundaries.geojson``,
  ``processes/`` and ``policies/``, copied into the wheel at build time by
  ``setup.py``). Run from a source checkout (an editable install) it is the
  repository root itself: one source, never a copy in the tree.
* **The data folder** (``GOVFLOW_DATA_DIR``) holds the embedded SQLite file
  ``govflow.sqlite3``: the checkout's ``var/`` when run from a source checkout,
  else the user's data folder (``platformdirs``: ``~/.local/share/govflow`` on
  Linux, ``~/Library/Application Support/govflow`` on macOS,
  ``%LOCALAPPDATA%\\govflow`` on Windows), so every command finds the same
  database whichever folder it is run from.
* **The database** (``GOVFLOW_DATABASE_URL``) defaults to that SQLite file;
  ``postgresql://…`` in production (docs/production.md).
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PACKAGE = Path(__file__).resolve().parent


def _reference_pack() -> Path:
    shipped = _PACKAGE / "reference"
    if (shipped / "pack.yaml").is_file():
        return shipped  # an installed wheel
    return _PACKAGE.parent  # a source checkout: the repository root is the reference pack


#: The reference pack (Gulou district): inside the installed package, or the checkout's root.
REFERENCE_PACK = _reference_pack()
#: True when govflow runs from a source checkout (editable install), not from an installed wheel.
FROM_CHECKOUT = REFERENCE_PACK == _PACKAGE.parent


def default_data_dir() -> Path:
    """The checkout's ``var/`` (source checkout), else the user's data folder for govflow."""
    if FROM_CHECKOUT:
        return REFERENCE_PACK / "var"
    return Path(platformdirs.user_data_dir("govflow", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOVFLOW_", extra="ignore")

    data_dir: Path = default_data_dir()
    #: empty: the SQLite file ``govflow.sqlite3`` in ``data_dir``
    database_url: str = ""
    pack_path: Path = REFERENCE_PACK
    host: str = "127.0.0.1"
    port: int = 8000
    timer_interval_seconds: float = 5.0
    max_request_bytes: int = 1_000_000
    #: seconds a stopping server waits for in-flight requests before it closes them
    graceful_timeout_seconds: float = 30.0
    #: ``json`` (one JSON object per line, for log collectors), ``text`` (for a person), or ``auto``:
    #: text when standard error is a terminal, else json
    log_format: str = "auto"

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'govflow.sqlite3').resolve()}"
        return self
