"""A real `govflow serve --demo` process on 127.0.0.1 for end-to-end tests (its own database URL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url(engine) -> str:
    return engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")


class Served:
    """``with Served(url) as server: server.base`` — started from the checkout, stopped with SIGTERM."""

    def __init__(
        self,
        database_url: str,
        *,
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.args = args  # more options of `govflow serve` (e.g. --workers 2)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "GOVFLOW_DATABASE_URL": database_url,
            "GOVFLOW_LOG_FORMAT": "text",
            "GOVFLOW_TIMER_INTERVAL_SECONDS": "0.5",
            "GOVFLOW_DELIVERY_INTERVAL_SECONDS": "0.2",
            **(env or {}),
        }
        if data_dir is not None:
            self.env["GOVFLOW_DATA_DIR"] = str(data_dir)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Served:
        # the log goes to a file: a pipe nobody reads fills up and blocks the server
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "govflow.cli", "serve", "--demo", "--port", str(self.port), *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("govflow serve exited: " + self.output()[-2000:])
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("govflow serve did not come up in 60 s")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
