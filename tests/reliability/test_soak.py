"""Soak: continuous simulated text calls through a real `switchboard serve`
process, sampling its resident memory, open file descriptors and threads from
/proc/PID. After a warm-up (a quarter of the run: caches, compiled graphs,
the allocator's arenas) a least-squares line is fitted to each series.

Bounds (generous on purpose: 8 engineers share 2 cores, so timing and GC
points vary). In 45 s of steady state SQLite page caches and allocator arenas
are still settling, so the quick run only catches gross leaks; the 10-minute
run states the real bound:
- quick: RSS slope <= 10 MB/min and growth after warm-up <= 15 MB;
- full: RSS slope <= 1 MB/min (at ~190 calls/min that is ~5 KB per call)
  and growth after warm-up <= 40 MB;
- both: open fds with no upward trend (slope <= 1 fd/min) and at most 4 more
  than at the end of warm-up; threads at most 2 more; every call recorded;
  every call ends with the outcome its scenario expects.

The calls are varied (`soak_calls`): bookings on distinct days and hours under
different names and caller numbers (completed), requests for a person
(escalated), an hours question then goodbye (completed), hang-ups (abandoned).

The quick variant (60 s) runs with the suite; the 10-minute one only in full
mode (`switchboard reliability` without --quick, or
SWITCHBOARD_RELIABILITY_FULL=1).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from reliability.report import full_mode, record_soak
from tests.reliability.soak_calls import SoakCaller, scenario_for

GRAPHS_DIR = Path(__file__).resolve().parents[2] / "graphs"
SAMPLE_EVERY_S = 1.0
#: (RSS slope MB/min, RSS growth MB) after warm-up, per variant.
RSS_BOUNDS = {"service-quick": (10.0, 15.0), "service-10min": (1.0, 40.0)}
MAX_FD_SLOPE_PER_MIN = 1.0
MAX_FD_GROWTH = 4
MAX_THREAD_GROWTH = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(fields["Threads"]),
    }


def _slope_per_min(t: list[float], y: list[float]) -> float:
    return float(np.polyfit(np.array(t) / 60.0, np.array(y), 1)[0])


def _soak(tmp_path: Path, duration_s: float, name: str) -> dict[str, Any]:
    port = _free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_JWT_SECRET": "soak-" + "s" * 40,
        "SWITCHBOARD_ADMIN_USER": "admin",
        "SWITCHBOARD_ADMIN_PASSWORD": "soak-password",
        "SWITCHBOARD_GRAPHS_DIR": str(GRAPHS_DIR),
        "SWITCHBOARD_CHECKPOINT_URL": f"sqlite:///{tmp_path / 'memory.db'}",
        "SWITCHBOARD_DATABASE_URL": f"sqlite:///{tmp_path / 'calls.db'}",
        "SWITCHBOARD_CALL_START_RATE_LIMIT": "1000000/minute",
        "SWITCHBOARD_LOGIN_RATE_LIMIT": "1000/minute",
        "SWITCHBOARD_SPOOL_DIR": str(tmp_path / "spool"),
    }
    env.pop("SWITCHBOARD_REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("switchboard")),
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    samples: list[tuple[float, dict[str, float]]] = []
    calls = turns = 0
    outcomes: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    mismatches: list[dict[str, Any]] = []
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "switchboard serve did not start"
                time.sleep(0.1)
            login = client.post(
                "/api/auth/login", json={"username": "admin", "password": "soak-password"}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            began = time.monotonic()
            next_sample = began
            soak_caller = SoakCaller(client, headers)
            while (now := time.monotonic()) - began < duration_s:
                if now >= next_sample:
                    samples.append((now - began, _proc(proc.pid)))
                    next_sample += SAMPLE_EVERY_S
                scenario = scenario_for(calls)
                outcome, call_turns = soak_caller.run(scenario)
                if outcome != scenario.expected and len(mismatches) < 5:
                    mismatches.append(
                        {"call": calls, "scenario": scenario.lines, "outcome": outcome}
                        | {"said": soak_caller.said[-3:]}
                    )
                turns += call_turns
                outcomes[outcome] += 1
                expected[scenario.expected] += 1
                calls += 1
            samples.append((time.monotonic() - began, _proc(proc.pid)))
            listed = client.get("/api/calls", params={"limit": 1}, headers=headers).json()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()

    steady = [(t, s) for t, s in samples if t >= duration_s / 4]
    t = [x for x, _ in steady]
    rss = [s["rss_mb"] for _, s in steady]
    fds = [s["fds"] for _, s in steady]
    threads = [s["threads"] for _, s in steady]
    return {
        "name": name,
        "duration_s": round(duration_s, 1),
        "calls": calls,
        "turns": turns,
        "outcomes": dict(outcomes),
        "expected_outcomes": dict(expected),
        "unexpected_outcomes": mismatches,
        "calls_recorded": listed["total"],
        "samples": len(samples),
        "rss_start_mb": round(samples[0][1]["rss_mb"], 1),
        "rss_after_warmup_mb": round(rss[0], 1),
        "rss_end_mb": round(rss[-1], 1),
        "rss_max_mb": round(max(rss), 1),
        "rss_slope_mb_per_min": round(_slope_per_min(t, rss), 3),
        "rss_growth_after_warmup_mb": round(max(rss) - rss[0], 1),
        "fds_after_warmup": fds[0],
        "fds_max": max(fds),
        "fd_slope_per_min": round(_slope_per_min(t, fds), 3),
        "threads_after_warmup": threads[0],
        "threads_max": max(threads),
        "rss_growth_per_call_kb": round((rss[-1] - rss[0]) * 1024 / max(1, calls), 2),
        "bounds": {
            "rss_slope_mb_per_min": RSS_BOUNDS[name][0],
            "rss_growth_mb": RSS_BOUNDS[name][1],
            "fd_slope_per_min": MAX_FD_SLOPE_PER_MIN,
            "fd_growth": MAX_FD_GROWTH,
            "thread_growth": MAX_THREAD_GROWTH,
        },
    }


def _judge(figures: dict[str, Any]) -> None:
    max_slope, max_growth = RSS_BOUNDS[figures["name"]]
    within = (
        figures["rss_slope_mb_per_min"] <= max_slope
        and figures["rss_growth_after_warmup_mb"] <= max_growth
        and figures["fd_slope_per_min"] <= MAX_FD_SLOPE_PER_MIN
        and figures["fds_max"] - figures["fds_after_warmup"] <= MAX_FD_GROWTH
        and figures["threads_max"] - figures["threads_after_warmup"] <= MAX_THREAD_GROWTH
        and figures["calls_recorded"] == figures["calls"]
        and figures["outcomes"] == figures["expected_outcomes"]
    )
    record_soak(figures["name"], within_bounds=within, figures=figures)
    assert figures["calls"] >= 10, figures
    assert figures["calls_recorded"] == figures["calls"], figures
    assert figures["outcomes"] == figures["expected_outcomes"], figures
    assert figures["rss_slope_mb_per_min"] <= max_slope, figures
    assert figures["rss_growth_after_warmup_mb"] <= max_growth, figures
    assert figures["fd_slope_per_min"] <= MAX_FD_SLOPE_PER_MIN, figures
    assert figures["fds_max"] - figures["fds_after_warmup"] <= MAX_FD_GROWTH, figures
    assert figures["threads_max"] - figures["threads_after_warmup"] <= MAX_THREAD_GROWTH, figures


def test_soak_quick(tmp_path: Path) -> None:
    _judge(_soak(tmp_path, 60.0, "service-quick"))


@pytest.mark.skipif(not full_mode(), reason="10-minute soak: full reliability mode only")
def test_soak_ten_minutes(tmp_path: Path) -> None:
    _judge(_soak(tmp_path, 600.0, "service-10min"))
