"""A small thread-safe LRU whose missing values are loaded once, however many threads ask at the same time.

    from caching.lru import LoadOnceLRU
    predictors = LoadOnceLRU(2)
    predictor = predictors.get((version.pk, version.weights.name), lambda: load(version))

The served model (``training/serving.py``), the decoded photos (``labeling/photos.py``), the active model's
outputs per photo (``prelabel/active_prediction.py``) and click-a-nail's full-size probability maps
(``prelabel/click_foreground.py``) each keep one, as a public module attribute (``keys()`` and ``clear()``
are the LRU's own: no wrapper around them). Keys carry what identifies the value (an image's stored file
name, a model version's weights file), so a replaced file is a new key and the old entry simply ages out:
there is no other invalidation.

``get(key, load)``: a hit moves the key to the most recent end. On a miss the first asker runs ``load()``
outside the cache's lock; the others asking for that key meanwhile wait for it and get the same value, while
asks for other keys go on. A load that raises caches nothing: its asker gets the exception, and each waiter
then tries the load itself (one at a time again). ``load`` must not ask the same cache for the same key.
Plain Python; never imports Django or an app.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["LoadOnceLRU"]

V = TypeVar("V")


class _Load:
    """One load in progress: its askers wait on ``done``; ``failed`` when it raised."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value = None
        self.failed = False


class LoadOnceLRU(Generic[V]):
    """At most ``size`` values, the least recently used evicted first; see the module docstring."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("an LRU holds at least one value")
        self.size = size
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self._loads: dict[Hashable, _Load] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        """The value of ``key``, from the cache or from ``load()`` (run once for concurrent askers)."""
        while True:
            with self._lock:
                if key in self._values:
                    self._values.move_to_end(key)
                    return self._values[key]
                pending = self._loads.get(key)
                if pending is None:
                    pending = self._loads[key] = _Load()
                    break  # this thread loads
            pending.done.wait()
            if not pending.failed:
                return pending.value
        try:
            value = load()
        except BaseException:
            with self._lock:
                del self._loads[key]
            pending.failed = True
            pending.done.set()
            raise
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
            del self._loads[key]
        pending.value = value
        pending.done.set()
        return value

    def keys(self) -> list[Hashable]:
        """The cached keys, least recently used first."""
        with self._lock:
            return list(self._values)

    def clear(self) -> None:
        """Forget every value (a load in progress still stores its own when it ends)."""
        with self._lock:
            self._values.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)
