"""A real `govflow serve` in a separate process, for tests that need another process's view
(grants changed by `govflow principals load` while the server runs)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def govflow(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the govflow CLI in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "govflow.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Live:
    """A running server: a client for it, and what it has logged so far."""

    client: httpx.Client
    _log: IO[str]

    def log(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read()


@contextmanager
def serve(database_url: str, *extra: str, startup_seconds: float = 90) -> Iterator[Live]:
    """`govflow serve --demo` on a free port; yields it; stops it (SIGTERM) afterwards."""
    port = free_port()
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "govflow.cli",
            "serve",
            "--demo",
            "--port",
            str(port),
            "--database-url",
            database_url,
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, "GOVFLOW_TIMER_INTERVAL_SECONDS": "3600"},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"govflow serve exited with {process.returncode}: {log.read()[-3000:]}")
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("govflow serve did not start in time")
            time.sleep(0.2)
        yield Live(client, log)
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
