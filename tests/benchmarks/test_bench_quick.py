"""What CI runs: `switchboard bench --quick --out FILE` in a subprocess. It
fails only when a benchmark errors (exit 1), never on timings; skipped
benchmarks (a missing server outside CI) are fine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]
#: Hang guard only: the quick run is meant to take under two minutes.
TIMEOUT_S = 900
CLI = (sys.executable, "-c", "from runtime.cli import main; main()")


def test_quick_bench_runs_every_benchmark_without_errors(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [*CLI, "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert out.exists(), done.stderr[-4000:]
    document = json.loads(out.read_text(encoding="utf-8"))
    errors = {
        name: (result.get("reason"), result.get("traceback"))
        for name, result in document["benchmarks"].items()
        if result["status"] == "error"
    }
    assert errors == {}
    assert done.returncode == 0, done.stderr[-4000:]
    assert list(document["benchmarks"]) == list(BENCHMARKS)
    assert all(r["status"] in ("ok", "skipped") for r in document["benchmarks"].values())
    assert document["settings"]["quick"] is True
