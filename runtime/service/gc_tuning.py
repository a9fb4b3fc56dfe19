"""Garbage-collector settings for a service worker: keep full collections
from stalling every call on the event loop.

A worker holds a few hundred thousand long-lived objects once started
(modules, compiled graphs, clients: a full collection of them alone costs
~0.16 s of CPU here), and calls allocate many small objects per audio frame.
With CPython's defaults, under 200 calls a full collection ran every ~5 s and
each held the event loop ~0.3 s, which every call in progress hears as added
latency. `tune_for_service()` moves what exists after start-up out of the
collector's reach (`gc.freeze()`: those objects are never scanned again) and
raises the thresholds so that collections come less often (cyclic garbage is
still collected, a little later). Reference counting frees most garbage
either way.
"""

from __future__ import annotations

import gc

#: (young, middle, old) collection thresholds; CPython's default is (700, 10, 10).
THRESHOLDS = (10_000, 20, 20)


def tune_for_service() -> None:
    """Collect once, freeze what is left (start-up objects) and set `THRESHOLDS`.
    Call it once start-up is done, in the worker process that serves calls."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
