"""The service worker's collector settings: start-up objects are frozen, the
thresholds are raised, and cyclic garbage made afterwards is still collected.
Run in a child process so this test process keeps its own settings."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc, weakref
from runtime.service.gc_tuning import THRESHOLDS, tune_for_service

class Node:
    pass

survivor = Node()
tune_for_service()
assert gc.get_threshold() == THRESHOLDS, gc.get_threshold()
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
a, b = Node(), Node()
a.other, b.other = b, a
gone = weakref.ref(a)
del a, b
gc.collect()
assert gone() is None, "a reference cycle made after start-up was not collected"
print("ok")
"""


def test_tuning_freezes_start_up_objects_and_still_collects_later_cycles() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
