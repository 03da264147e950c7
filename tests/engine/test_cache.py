"""The application's cache helper: single flight per key, bounds, time to live, invalidation."""

from __future__ import annotations

import threading
import time

import pytest

from govflow.engine.cache import Cache, Caches


def test_concurrent_misses_on_one_key_build_once_and_share_the_value():
    cache: Cache[str, object] = Cache("t")
    started, release = threading.Event(), threading.Event()
    builds = []

    def build():
        builds.append(1)
        started.set()
        release.wait(5)
        return object()

    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", build))) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert started.wait(5)
    time.sleep(0.05)  # let the other seven arrive while the first build is in flight
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(builds) == 1 and len(results) == 8 and len({id(r) for r in results}) == 1
    assert (cache.stats.builds, cache.stats.waits + cache.stats.hits) == (1, 7)


def test_builds_of_different_keys_do_not_wait_for_each_other():
    cache: Cache[str, str] = Cache("t")
    slow_started, release = threading.Event(), threading.Event()

    def slow():
        slow_started.set()
        release.wait(5)
        return "slow"

    worker = threading.Thread(target=lambda: cache.get("slow", slow))
    worker.start()
    assert slow_started.wait(5)
    assert cache.get("fast", lambda: "fast") == "fast"  # not blocked by the build in flight
    release.set()
    worker.join(5)
    assert cache.get("slow", lambda: "rebuilt") == "slow"


def test_a_failed_build_is_not_cached_and_waiters_see_the_error():
    cache: Cache[str, int] = Cache("t")
    calls = []

    def failing():
        calls.append(1)
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        cache.get("k", failing)
    assert "k" not in cache
    assert cache.get("k", lambda: 7) == 7 and len(calls) == 1


def test_least_recently_used_entries_are_dropped_beyond_the_bound():
    cache: Cache[int, int] = Cache("t", max_entries=2)
    cache.get(1, lambda: 1)
    cache.get(2, lambda: 2)
    cache.get(1, lambda: -1)  # 1 is now the most recently used
    cache.get(3, lambda: 3)
    assert sorted(cache.keys()) == [1, 3] and cache.stats.evictions == 1


def test_entries_expire_after_their_time_to_live():
    cache: Cache[str, int] = Cache("t", ttl=0.05)
    assert cache.get("k", lambda: 1) == 1
    time.sleep(0.08)
    assert cache.peek("k") is None and cache.get("k", lambda: 2) == 2


def test_invalidation_by_key_predicate_and_all():
    cache: Cache[tuple[str, str], str] = Cache("t")
    for key in [("a", "1"), ("a", "2"), ("b", "1")]:
        cache.put(key, "x")
    cache.invalidate(("b", "1"))
    assert ("b", "1") not in cache
    assert cache.invalidate_where(lambda key: key[0] == "a") == 2 and len(cache) == 0
    cache.put(("c", "1"), "y")
    cache.clear()
    assert len(cache) == 0


def test_a_value_built_while_its_key_was_invalidated_is_not_kept():
    cache: Cache[str, str] = Cache("t")
    started, release = threading.Event(), threading.Event()

    def build():
        started.set()
        release.wait(5)
        return "stale"

    worker = threading.Thread(target=lambda: cache.get("k", build))
    worker.start()
    assert started.wait(5)
    cache.invalidate("k")  # e.g. the pack version was re-deployed while it compiled
    release.set()
    worker.join(5)
    assert cache.peek("k") is None


def test_caches_are_named_and_owned_by_one_registry():
    caches = Caches()
    first = caches.cache("packs.compiled", max_entries=4)
    assert caches.cache("packs.compiled") is first and first.max_entries == 4
    first.put("k", 1)
    caches.clear()
    assert len(first) == 0 and [c.name for c in caches] == ["packs.compiled"]
    with pytest.raises(ValueError):
        Cache("t", max_entries=0)


def test_the_app_owns_the_engine_caches(govflow, reference_pack):
    """Compiled packs, compiled diagrams and enforcers live in App.caches, not in module globals."""
    names = {cache.name for cache in govflow.caches}
    assert {"packs.compiled", "diagrams.compiled", "packs.active", "access.enforcers"} <= names
    assert govflow.packs.get("reference", "1.0.0") is reference_pack
    govflow.caches.clear()
    again = govflow.packs.get("reference", "1.0.0")  # compiled anew from the stored archive
    assert again is not reference_pack and again.content_hash == reference_pack.content_hash
