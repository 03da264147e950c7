"""One small cache helper for everything govflow keeps in memory.

Every in-memory cache of the engine, the API and the plugins is a
:class:`Cache` owned by the application (``govflow.bootstrap.App.caches``) and
passed in; there are no module-level mutable caches. A cache gives:

* **per-key single flight**: concurrent misses on the same key build the value
  once; the other callers wait for that build (and share its result or its
  exception) instead of building it again. Builds of *different* keys run in
  parallel: no lock is held while a value is built;
* **a bound** (least recently used entries are dropped beyond ``max_entries``)
  and an optional **time to live**;
* **explicit invalidation** of one key, of the keys matching a predicate, or of
  everything.

:class:`Caches` is the registry of named caches an application owns, so tests
and operators can see and clear them all in one place.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class CacheStats:
    """What a cache did since it was created (for tests, benchmarks and metrics)."""

    hits: int = 0
    misses: int = 0
    builds: int = 0
    waits: int = 0
    evictions: int = 0


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class Cache(Generic[K, V]):
    """A bounded, thread-safe map with single-flight builds and explicit invalidation."""

    def __init__(self, name: str, *, max_entries: int = 128, ttl: float | None = None) -> None:
        if max_entries < 1:
            raise ValueError("a cache holds at least one entry")
        self.name = name
        self.max_entries = max_entries
        self.ttl = ttl
        self.stats = CacheStats()
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._flights: dict[K, _Flight] = {}
        self._lock = threading.Lock()
        self._generation = 0

    def get(self, key: K, build: Callable[[], V]) -> V:
        """The value of ``key``, built by ``build()`` on a miss (once, however many callers miss at once)."""
        with self._lock:
            hit = self._fresh(key)
            if hit is not None:
                self.stats.hits += 1
                return hit[0]
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
                generation = self._generation
                self.stats.misses += 1
                self.stats.builds += 1
            else:
                self.stats.waits += 1
        assert flight is not None
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            value = build()
        except BaseException as exc:
            flight.error = exc
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
            raise
        flight.value = value
        with self._lock:
            self._flights.pop(key, None)
            if generation == self._generation:  # not invalidated while it was being built
                self._store(key, value)
        flight.done.set()
        return value

    def peek(self, key: K) -> V | None:
        """The cached value of ``key`` if present and fresh; never builds."""
        with self._lock:
            hit = self._fresh(key)
            return hit[0] if hit is not None else None

    def put(self, key: K, value: V) -> None:
        """Store a value built elsewhere (e.g. a pack version just deployed)."""
        with self._lock:
            self._store(key, value)

    def invalidate(self, key: K) -> None:
        """Forget ``key`` (a build in flight for it is not stored)."""
        with self._lock:
            self._entries.pop(key, None)
            if key in self._flights:
                self._generation += 1

    def invalidate_where(self, predicate: Callable[[K], bool]) -> int:
        """Forget every key for which ``predicate(key)`` is true; returns how many."""
        with self._lock:
            doomed = [k for k in self._entries if predicate(k)]
            for k in doomed:
                del self._entries[k]
            if any(predicate(k) for k in self._flights):
                self._generation += 1
            return len(doomed)

    def clear(self) -> None:
        """Forget everything (builds in flight are not stored)."""
        with self._lock:
            self._entries.clear()
            self._generation += 1

    def keys(self) -> list[K]:
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries and self._fresh(key) is not None  # type: ignore[arg-type]

    # -- internals (called with the lock held) -------------------------------------
    def _fresh(self, key: K) -> tuple[V, float] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.ttl is not None and time.monotonic() - entry[1] >= self.ttl:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def _store(self, key: K, value: V) -> None:
        self._entries[key] = (value, time.monotonic())
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.stats.evictions += 1


class Caches:
    """The named caches one application owns (``App.caches``)."""

    def __init__(self) -> None:
        self._caches: dict[str, Cache[Any, Any]] = {}
        self._lock = threading.Lock()

    def cache(self, name: str, *, max_entries: int = 128, ttl: float | None = None) -> Cache[Any, Any]:
        """The cache called ``name``, created with these bounds the first time it is asked for."""
        with self._lock:
            found = self._caches.get(name)
            if found is None:
                found = self._caches[name] = Cache(name, max_entries=max_entries, ttl=ttl)
            return found

    def clear(self) -> None:
        """Forget every cached value of every cache."""
        with self._lock:
            caches = list(self._caches.values())
        for cache in caches:
            cache.clear()

    def __iter__(self) -> Iterator[Cache[Any, Any]]:
        with self._lock:
            return iter(list(self._caches.values()))


__all__ = ["Cache", "CacheStats", "Caches"]
