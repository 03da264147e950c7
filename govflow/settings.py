"""Settings, read once at the edge (environment variables prefixed ``GOVFLOW_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

#: The reference pack is the repository root (pack.yaml beside processes/ and policies/).
REFERENCE_PACK = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOVFLOW_", extra="ignore")

    database_url: str = "sqlite:///var/govflow.sqlite3"
    pack_path: Path = REFERENCE_PACK
    host: str = "127.0.0.1"
    port: int = 8000
    timer_interval_seconds: float = 5.0
    max_request_bytes: int = 1_000_000
