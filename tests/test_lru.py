"""caching.lru.LoadOnceLRU: eviction order, load once under concurrency, failed loads not cached."""
import threading
import time

import pytest

from caching.lru import LoadOnceLRU


def test_least_recently_used_is_evicted_first_and_a_hit_refreshes():
    cache = LoadOnceLRU(2)
    loads = []

    def loader(key):
        return lambda: loads.append(key) or f"value {key}"

    assert cache.get("a", loader("a")) == "value a"
    cache.get("b", loader("b"))
    assert cache.get("a", loader("a")) == "value a"  # a hit: no load, "a" now the most recent
    cache.get("c", loader("c"))  # evicts "b"
    assert cache.keys() == ["a", "c"] and loads == ["a", "b", "c"] and len(cache) == 2
    cache.get("b", loader("b"))
    assert cache.keys() == ["c", "b"] and loads == ["a", "b", "c", "b"]
    cache.clear()
    assert cache.keys() == [] and len(cache) == 0
    with pytest.raises(ValueError):
        LoadOnceLRU(0)


def test_concurrent_askers_share_one_load_and_other_keys_are_not_held_up():
    cache = LoadOnceLRU(3)
    release = threading.Event()
    loads = []

    def slow():
        loads.append("slow")
        assert release.wait(10)
        return object()

    start = threading.Barrier(5)
    got = []

    def ask():
        start.wait()
        got.append(cache.get("slow", slow))

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for thread in threads:
        thread.start()
    # while "slow" is loading, another key loads and is served at once
    while not loads:
        threading.Event().wait(0.001)
    assert cache.get("quick", lambda: 7) == 7
    time.sleep(0.2)  # the other askers reach get() and wait for the load in progress
    release.set()
    for thread in threads:
        thread.join(10)
    assert loads == ["slow"] and len(got) == 5 and all(value is got[0] for value in got)
    assert cache.keys() == ["quick", "slow"]


def test_a_failed_load_caches_nothing_and_a_waiter_loads_again():
    cache = LoadOnceLRU(2)
    entered = threading.Event()
    release = threading.Event()
    attempts = []

    def failing():
        attempts.append("failing")
        entered.set()
        assert release.wait(10)
        raise OSError("weights file gone")

    errors, got = [], []

    def first():
        try:
            cache.get("k", failing)
        except OSError as error:
            errors.append(error)

    loader = threading.Thread(target=first)
    loader.start()
    assert entered.wait(10)
    waiter = threading.Thread(target=lambda: got.append(cache.get("k", lambda: attempts.append("retry") or 5)))
    waiter.start()
    time.sleep(0.2)  # the waiter reaches get() and waits for the failing load
    release.set()
    loader.join(10)
    waiter.join(10)
    assert len(errors) == 1 and got == [5] and attempts == ["failing", "retry"]
    assert cache.keys() == ["k"]
