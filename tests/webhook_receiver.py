"""A webhook receiver for tests and benchmarks: a real HTTP server on 127.0.0.1 that records every
POST and answers as told (status, delay), verifying nothing itself."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """``answer(received, count_on_path) -> (status, delay_seconds)``; 200 at once by default."""

    answer: Callable[[Received, int], tuple[int, float]] = lambda r, n: (200, 0.0)
    received: list[Received] = field(default_factory=list)
    accepted: list[Received] = field(default_factory=list)
    #: ids of the events whose answer was held (see :meth:`hold_after`)
    held: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._hold_after: int | None = None
        self._released = threading.Event()
        self._counts: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers

            def do_POST(self) -> None:  # the http.server hook
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender went away mid-request (a killed worker): nothing arrived
                    self.close_connection = True
                    return
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                with receiver._lock:
                    receiver.received.append(got)
                    count = receiver._counts[self.path] = receiver._counts.get(self.path, 0) + 1
                    hold = receiver._hold_after is not None and not receiver._released.is_set()
                    if hold and len({r.event["id"] for r in receiver.accepted}) >= (receiver._hold_after or 0):
                        receiver.held.append(got.event["id"])
                    else:
                        hold = False
                if hold:
                    receiver._released.wait(600)
                status, delay = receiver.answer(got, count)
                if delay:
                    time.sleep(delay)
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.accepted.append(got)
                payload = b'{"ok":true}'
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that went away (a killed worker) is no news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def hold_after(self, count: int) -> None:
        """Hold every answer once ``count`` distinct events were accepted, until :meth:`release`: a
        sender killed while :attr:`held` is not empty is killed mid-delivery, however loaded the machine."""
        self._hold_after = count

    def wait_held(self, alive: Callable[[], bool], timeout: float = 300.0) -> None:
        """Wait until an answer is held (AssertionError if ``alive()`` turns false or on the timeout)."""
        deadline = time.monotonic() + timeout
        while not self.held:
            assert alive(), "the sender went away before an answer was held"
            assert time.monotonic() < deadline, f"no answer was held in {timeout:.0f} s"
            time.sleep(0.05)

    def release(self) -> None:
        self._released.set()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def events(self, path: str | None = None, *, accepted: bool = True) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self.accepted if accepted else self.received)
        return [r.event for r in items if path is None or r.path == path]

    def wait_for(self, count: int, timeout: float = 30.0, path: str | None = None) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events(path)
            if len({e["id"] for e in events}) >= count:
                return events
            time.sleep(0.02)
        return self.events(path)

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
