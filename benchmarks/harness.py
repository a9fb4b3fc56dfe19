"""Run benchmarks and report them as one JSON document.

A benchmark is a module with `DESCRIPTION` (one line) and
`async def run(settings: Settings) -> dict[str, Any]` returning its figures
(each benchmark states its own baseline and goal inside them). It raises
`Skipped(reason)` when it cannot run here (a missing server outside CI). The
document holds the machine (cores, CPU model, memory, load average at start),
library versions, the settings, start/end times and duration, and per
benchmark its status, duration and figures. Times are reported as
distributions (`distribution`), never single samples.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import platform
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

#: Benchmark name -> module, in the order a full run executes them.
BENCHMARKS: dict[str, str] = {
    "turn_overhead": "benchmarks.turn_overhead",
    "graph_scale": "benchmarks.graph_scale",
    "intents_quality": "benchmarks.intents_quality",
    "stt_quality": "benchmarks.stt_quality",
    "barge_in": "benchmarks.barge_in",
    "e2e_offline": "benchmarks.e2e_offline",
    "concurrency": "benchmarks.concurrency",
}

#: Distributions the harness reports for every series of timings.
PERCENTILES = (50, 90, 99)

VERSIONED_PACKAGES = (
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "langchain-core",
    "redis",
    "onnxruntime",
    "faster-whisper",
    "ctranslate2",
    "espeakng-loader",
    "numpy",
    "soxr",
    "jiwer",
    "networkx",
    "jsonschema",
    "ruamel.yaml",
    "pydantic",
)


class Skipped(Exception):
    """The benchmark cannot run on this machine; the message says why."""


class UnknownBenchmark(ValueError):
    """A benchmark name that is not in `BENCHMARKS`."""


@dataclass(frozen=True)
class Settings:
    """What every benchmark is run with."""

    quick: bool = False
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Under CI a missing service is an error, not a skip.
    ci: bool = False
    #: Extra WAV recordings (with .txt transcripts) for stt_quality.
    audio_dir: Path | None = None
    seed: int = 7

    @classmethod
    def from_env(cls, *, quick: bool = False, audio_dir: Path | None = None) -> Settings:
        """Settings from $REDIS_URL and $CI plus the given options."""
        return cls(
            quick=quick,
            redis_url=os.environ.get("REDIS_URL") or cls.redis_url,
            ci=os.environ.get("CI", "").strip().lower() == "true",
            audio_dir=audio_dir,
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["audio_dir"] = str(self.audio_dir) if self.audio_dir else None
        return data


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between the
    closest ranks (numpy's default 'linear' method). ValueError when empty."""
    if len(values) == 0:
        raise ValueError("percentile of an empty series")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    return float(np.percentile(np.asarray(values, dtype=float), q))


def distribution(values: Sequence[float], *, digits: int = 3) -> dict[str, Any]:
    """n, min, p50, p90, p99, max and mean of `values`, rounded to `digits`.
    An empty series gives {"n": 0} only."""
    if len(values) == 0:
        return {"n": 0}
    arr = np.asarray(values, dtype=float)
    out: dict[str, Any] = {"n": len(values), "min": round(float(arr.min()), digits)}
    for q in PERCENTILES:
        out[f"p{q}"] = round(percentile(values, q), digits)
    out["max"] = round(float(arr.max()), digits)
    out["mean"] = round(float(arr.mean()), digits)
    return out


def ratio(a: float, b: float, *, digits: int = 3) -> float | None:
    """a / b rounded, or None when b is zero."""
    return round(a / b, digits) if b else None


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name from /proc/cpuinfo (or the given text), else the
    platform's processor string."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("model name", "hardware", "cpu model"):
            return value.strip()
    return platform.processor() or platform.machine()


def memory_total_mb(meminfo: str | None = None) -> float | None:
    """Total memory in MB from /proc/meminfo (or the given text), None if unknown."""
    if meminfo is None:
        try:
            meminfo = Path("/proc/meminfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return round(int(parts[1]) / 1024, 1)
    return None


def machine_info() -> dict[str, Any]:
    """Cores (usable by this process and installed), CPU model, memory, OS and
    the load average when the run began."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cores": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_mb": memory_total_mb(),
        "os": platform.platform(),
        "load_average_at_start": load,
    }


def versions(packages: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Python's version and each installed package's (None when missing)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@dataclass
class BenchResult:
    """One benchmark's entry in the document."""

    name: str
    status: str  # ok, skipped or error
    duration_s: float
    description: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "description": self.description,
            "duration_s": round(self.duration_s, 3),
        }
        if self.reason is not None:
            out["reason"] = self.reason
        out.update(self.figures)
        return out


def resolve_names(names: Sequence[str]) -> list[str]:
    """The benchmarks to run, in registry order: all when `names` is empty.
    UnknownBenchmark names the unknown ones and the known ones."""
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise UnknownBenchmark(
            f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}"
        )
    wanted = set(names)
    return [n for n in BENCHMARKS if not wanted or n in wanted]


async def run_one(name: str, settings: Settings) -> BenchResult:
    """Run one benchmark; its failure is reported in the result, never raised."""
    started = time.perf_counter()
    description = ""
    try:
        module = importlib.import_module(BENCHMARKS[name])
        description = str(getattr(module, "DESCRIPTION", ""))
        figures = await module.run(settings)
    except Skipped as exc:
        return BenchResult(
            name, "skipped", time.perf_counter() - started, description, reason=str(exc)
        )
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(exc)).strip()
        return BenchResult(
            name,
            "error",
            time.perf_counter() - started,
            description,
            figures={"traceback": traceback.format_exc(limit=8)},
            reason=detail,
        )
    return BenchResult(name, "ok", time.perf_counter() - started, description, figures=figures)


async def run_benchmarks(names: Sequence[str], settings: Settings) -> dict[str, Any]:
    """Run the named benchmarks (all when empty) one after another and return
    the JSON-ready document. Raises UnknownBenchmark before running anything."""
    todo = resolve_names(names)
    machine = machine_info()
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    for name in todo:
        result = await run_one(name, settings)
        results[name] = result.as_dict()
    duration = time.perf_counter() - t0
    return {
        "switchboard_bench": 1,
        "machine": machine,
        "versions": versions(),
        "settings": settings.as_dict(),
        "started_at": started_at.isoformat(timespec="seconds"),
        "ended_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(duration, 3),
        "benchmarks": results,
    }


def failed(document: dict[str, Any]) -> list[str]:
    """Names of the benchmarks in `document` that errored."""
    return [n for n, r in document.get("benchmarks", {}).items() if r.get("status") == "error"]


async def timed(coro: Any) -> tuple[Any, float]:
    """Await `coro`; return (its result, elapsed ms on the perf counter)."""
    t0 = time.perf_counter()
    result = await coro
    return result, (time.perf_counter() - t0) * 1000.0


def run_sync(names: Sequence[str], settings: Settings) -> dict[str, Any]:
    """`run_benchmarks` on a fresh event loop."""
    return asyncio.run(run_benchmarks(names, settings))
