"""concurrency: N simultaneous voice calls over real WebSockets against a real
`switchboard serve` process, with provider stand-ins that wait the reference
design's cloud latencies, so that what is measured is the orchestration.

Processes: the service (`switchboard serve`, one worker, Redis
checkpointer and live feed, SQLite call records, call recording on — its
defaults otherwise), an OpenAI-compatible LLM stand-in
(`benchmarks.llm_standin`) and the load generator(s)
(`benchmarks.concurrency_load`, one process per `CALLS_PER_LOADER` calls,
asyncio + uvloop). The service uses the stand-ins of
`runtime.voice.providers.standin` (energy VAD on the synthetic audio, STT
final 250 ms after end of speech, TTS first chunk 200 ms) and the LLM stand-in
(first token 600 ms). Each call talks to an `llm` node for several turns.

Per N: end-to-end turn latency (end of caller audio -> first agent audio byte at
the client) p50/p90/p95/p99, degradation against N = 1 in the same run, the
server's CPU % (100 = one core; mean and peak of 0.5 s samples) and RSS (before
the calls, peak, per call), the load generator's and the LLM stand-in's CPU %,
how late the load generator's 20 ms ticker ran, errors (counted by kind, with
the server's distinct warning and error log lines), and the server's own
per-turn stage timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks import llm_standin
from benchmarks.harness import Settings, Skipped, distribution, percentile
from runtime.voice.providers import standin

DESCRIPTION = "N simultaneous WebSocket calls on one `switchboard serve` process"
FULL_N = (1, 50, 100, 200, 400)
QUICK_N = (1, 10)
FULL_TURNS, QUICK_TURNS = 6, 1
CALLS_PER_LOADER = 200
#: Call starts are spread over at least this long (about one turn cycle) ...
RAMP_S = 6.0
QUICK_RAMP_S = 2.0
#: ... and at most this many per second.
MAX_STARTS_PER_S = 40.0
END_OF_TURN_MS = 500
GOAL = {"calls": 200, "p95_degradation_pct_max": 12.0, "errors": 0}
START_DEADLINE_S = 120.0
SAMPLE_S = 0.5
PROFILE_ENV = "SWITCHBOARD_BENCH_PROFILE_DIR"
SIZES_ENV = "SWITCHBOARD_BENCH_CALLS"
WORKERS_ENV = "SWITCHBOARD_BENCH_WORKERS"
#: Overrides the service's checkpointer (default: Redis at REDIS_URL).
CHECKPOINT_ENV = "SWITCHBOARD_BENCH_CHECKPOINT_URL"
ROOT = Path(__file__).resolve().parents[1]
#: `switchboard` as `python` arguments (what the console script runs).
SWITCHBOARD = ("-c", "from runtime.cli import main; main()")
ADMIN = ("bench", "bench-password-" + secrets.token_hex(8))
AGENT = "bench-chat"
FALLBACK = "Sorry, I'm having trouble right now."
GRAPH = f"""
schema: switchboard/v1
id: {AGENT}
name: Concurrency benchmark chat
start: talk
fallback_line: "{FALLBACK}"
llm: {{model: standin, timeout_s: 15}}
voice: {{stt: standin, tts: standin, end_of_turn_ms: {END_OF_TURN_MS}}}
nodes:
  talk:
    type: llm
    prompt: You are a help desk. Be brief.
    greeting: Hi, how can I help?
    max_turns: 100
    exits:
      done: {{description: The caller has no more questions, next: bye}}
  bye: {{type: end, text: Goodbye!}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """A child process with its log file."""

    proc: asyncio.subprocess.Process
    log: Path
    base: str = ""

    def tail(self, chars: int = 2000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-chars:]


async def _wait_healthy(proc: Proc, url: str, what: str) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if proc.proc.returncode is not None:
                raise RuntimeError(f"{what} exited with {proc.proc.returncode}:\n{proc.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{what} did not start in {START_DEADLINE_S:g} s:\n{proc.tail()}"
                )
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def _process(
    args: Sequence[str], env: dict[str, str], log: Path, health: str | None, what: str
) -> AsyncIterator[Proc]:
    """Run `python args...`; yields once `health` (a URL) answers 200; stops it on exit."""
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=ROOT, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    child = Proc(proc, log)
    try:
        if health is not None:
            await _wait_healthy(child, health, what)
        yield child
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def _service_env(tmp: Path, settings: Settings, llm_base: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SWITCHBOARD_JWT_SECRET": secrets.token_urlsafe(48),
        "SWITCHBOARD_ADMIN_USER": ADMIN[0],
        "SWITCHBOARD_ADMIN_PASSWORD": ADMIN[1],
        "SWITCHBOARD_GRAPHS_DIR": str(tmp / "graphs"),
        "SWITCHBOARD_CHECKPOINT_URL": os.environ.get(CHECKPOINT_ENV) or settings.redis_url,
        "SWITCHBOARD_DATABASE_URL": f"sqlite:///{tmp / 'calls.db'}",
        "SWITCHBOARD_LIVE_CHANNEL": f"switchboard:bench:{secrets.token_hex(6)}",
        "SWITCHBOARD_RECORDINGS_DIR": str(tmp / "recordings"),
        "SWITCHBOARD_CALL_START_RATE_LIMIT": "100000/minute",
        "SWITCHBOARD_LOGIN_RATE_LIMIT": "1000/minute",
        "SWITCHBOARD_STT": "standin",
        "SWITCHBOARD_TTS": "standin",
        "SWITCHBOARD_VAD": "standin",
        "SWITCHBOARD_LLM_BASE_URL": f"{llm_base}/v1",
        "OPENAI_API_KEY": "standin",
        # The LLM stand-in answers turns only; ended calls are scored offline.
        "SWITCHBOARD_SENTIMENT": "lexicon",
    }


def _tree(pid: int) -> list[psutil.Process]:
    """The process and its children (uvicorn's workers, with --workers > 1)."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_rss_mb(pid: int) -> float:
    """Resident memory of the process and its children, in MB."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


class Sampler:
    """CPU % (summed over each process tree) and the server tree's RSS every
    `SAMPLE_S`, while running."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: _tree(pid) for name, pid in pids.items()}
        self.server_pid = pids["server"]
        self.cpu: dict[str, list[float]] = {name: [] for name in pids}
        self.rss_mb: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        for tree in self.procs.values():
            for p in tree:
                with contextlib.suppress(psutil.Error):
                    p.cpu_percent(None)
        while True:
            await asyncio.sleep(SAMPLE_S)
            for name, tree in self.procs.items():
                total = 0.0
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        total += p.cpu_percent(None)
                self.cpu[name].append(total)
            self.rss_mb.append(tree_rss_mb(self.server_pid))

    def __enter__(self) -> Sampler:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


@contextlib.asynccontextmanager
async def _profiled(pid: int, n: int) -> AsyncIterator[None]:
    """With $SWITCHBOARD_BENCH_PROFILE_DIR set, `py-spy record` the server
    while the block runs, into `server-N{n}.txt` there (collapsed stacks)."""
    folder = os.environ.get(PROFILE_ENV)
    spy = Path(sys.executable).parent / "py-spy"
    if not folder or n < 2:
        yield
        return
    if not spy.exists():
        raise RuntimeError(f"{PROFILE_ENV} is set but py-spy is not installed")
    Path(folder).mkdir(parents=True, exist_ok=True)
    out = Path(folder) / f"server-N{n}.txt"
    proc = await asyncio.create_subprocess_exec(
        str(spy),
        *("record", "--pid", str(pid), "--subprocesses", "--format", "raw"),
        *("--rate", "50", "-o", str(out)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _pct(a: float, b: float) -> float | None:
    return round(100.0 * (a / b - 1.0), 1) if b else None


async def _load(
    base: str,
    token: str,
    calls: int,
    turns: int,
    seed: int,
    tmp: Path,
    env: dict[str, str],
    *,
    quick: bool = False,
) -> list[dict[str, Any]]:
    """Run the load generator(s) for `calls` calls; their JSON results."""
    loaders = max(1, math.ceil(calls / CALLS_PER_LOADER))
    # Calls start spread over about one turn cycle, so their turns fall at
    # random phases as in real traffic instead of all at the same instant.
    spread = QUICK_RAMP_S if quick else RAMP_S
    ramp = 0.0 if calls == 1 else max(spread, calls / MAX_STARTS_PER_S)
    procs = []
    for i in range(loaders):
        share = calls // loaders + (1 if i < calls % loaders else 0)
        out = tmp / f"load-{calls}-{i}.json"
        err = tmp / f"load-{calls}-{i}.log"
        with out.open("wb") as o, err.open("wb") as e:
            procs.append(
                (
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        *("-m", "benchmarks.concurrency_load", "--base", base, "--token", token),
                        *("--agent", AGENT, "--calls", str(share), "--turns", str(turns)),
                        *("--ramp-s", f"{ramp:g}", "--seed", str(seed + i)),
                        *("--fallback-line", FALLBACK),
                        cwd=ROOT,
                        env=env,
                        stdout=o,
                        stderr=e,
                    ),
                    out,
                    err,
                )
            )
    results = []
    for proc, out, err in procs:
        code = await proc.wait()
        if code != 0:
            raise RuntimeError(f"load generator exited with {code}:\n{err.read_text()[-2000:]}")
        results.append(json.loads(out.read_text()))
    return results


def _summarise(
    n: int, loads: list[dict[str, Any]], sampler: Sampler, rss_before: float, turns: int
) -> dict[str, Any]:
    latencies = [x for r in loads for x in r["latencies_ms"]]
    errors = [e for r in loads for e in r["errors"]]
    late = [x for r in loads for x in r["ticker_late_ms"]]
    wall = max(r["wall_s"] for r in loads)
    load_cpu = sum(r["cpu_s"] for r in loads) / wall * 100.0 if wall else 0.0
    rss_peak = max(sampler.rss_mb, default=rss_before)
    server_cpu = sampler.cpu["server"] or [0.0]
    stages: dict[str, Any] = {}
    metrics = [m for r in loads for m in r["server_metrics"]]
    for key in ("stt_final_ms", "llm_first_token_ms", "tts_first_audio_ms", "end_to_end_ms"):
        values = [float(m[key]) for m in metrics if m.get(key) is not None]
        stages[key] = distribution(values, digits=1)
    out: dict[str, Any] = {
        "calls": n,
        "turns_expected": n * turns,
        "turns_measured": len(latencies),
        "peak_connected_calls": sum(r["peak_connected"] for r in loads),
        "turn_latency_ms": distribution(latencies, digits=1),
        "errors": len(errors),
        "failed_calls": sum(r["failed_calls"] for r in loads),
        "server_cpu_pct": {
            "mean": round(sum(server_cpu) / len(server_cpu), 1),
            "peak": round(max(server_cpu), 1),
        },
        "server_rss_mb": {"before": round(rss_before, 1), "peak": round(rss_peak, 1)},
        "rss_per_call_mb": round((rss_peak - rss_before) / n, 3),
        "loader_cpu_pct": round(load_cpu, 1),
        "loader_processes": len(loads),
        "llm_standin_cpu_pct_mean": round(
            sum(sampler.cpu["llm"]) / max(1, len(sampler.cpu["llm"])), 1
        ),
        "loader_ticker_late_ms": distribution(late, digits=2),
        "server_stage_ms": stages,
        "duration_s": round(wall, 1),
    }
    if latencies:
        out["turn_latency_ms"]["p95"] = round(percentile(latencies, 95), 1)
    if errors:
        out["first_errors"] = errors[:5]
        out["error_kinds"] = error_kinds(errors)
    return out


def error_kinds(errors: Sequence[str]) -> dict[str, int]:
    """How many calls' problems read the same once the call number is removed."""
    kinds: dict[str, int] = {}
    for error in errors:
        kind = re.sub(r"^call \d+: ", "", error)[:160]
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


def _log_problems(log: Path, start: int, limit: int = 20) -> dict[str, int]:
    """The server's distinct WARNING/ERROR/Traceback lines written after byte
    `start`, with how often each came (the first `limit` kinds)."""
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if re.search(r"WARNING|ERROR|Traceback|Error:", line):
            key = line.strip()[:200]
            if key in counts or len(counts) < limit:
                counts[key] = counts.get(key, 0) + 1
    return counts


def _degradation(rows: list[dict[str, Any]]) -> None:
    base = rows[0]["turn_latency_ms"] if rows else {}
    for row in rows:
        lat = row["turn_latency_ms"]
        if lat.get("n") and base.get("n"):
            row["degradation_vs_n1_pct"] = {
                "p50": _pct(lat["p50"], base["p50"]),
                "p95": _pct(lat["p95"], base["p95"]),
            }


def _workers() -> int:
    """Service worker processes: $SWITCHBOARD_BENCH_WORKERS, default 1."""
    raw = os.environ.get(WORKERS_ENV, "").strip() or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise ValueError(f"{WORKERS_ENV}={raw!r}: give a number of workers from 1 to 64")
    return int(raw)


def _sizes(settings: Settings) -> tuple[int, ...]:
    """The N to run: $SWITCHBOARD_BENCH_CALLS (comma-separated, N = 1 added
    first as the baseline), else the quick or full list."""
    raw = os.environ.get(SIZES_ENV, "").strip()
    if not raw:
        return QUICK_N if settings.quick else FULL_N
    try:
        chosen = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{SIZES_ENV}={raw!r}: give call counts like 1,50,200") from None
    if not chosen or min(chosen) < 1:
        raise ValueError(f"{SIZES_ENV}={raw!r}: call counts must be >= 1")
    return (1, *sorted(set(chosen) - {1}))


async def _redis_ok(url: str) -> str | None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        await client.ping()
    except Exception as exc:  # any failure means "not usable here"
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.aclose()
    return None


async def run(settings: Settings) -> dict[str, Any]:
    """Run the benchmark for each N (see module doc); Skipped without Redis
    outside CI. Errors of calls are counted, not raised."""
    problem = await _redis_ok(settings.redis_url)
    if problem is not None:
        if settings.ci:
            raise RuntimeError(f"Redis at {settings.redis_url} is unreachable: {problem}")
        raise Skipped(f"Redis at REDIS_URL={settings.redis_url} is unreachable: {problem}")
    sizes = _sizes(settings)
    turns = QUICK_TURNS if settings.quick else FULL_TURNS
    with tempfile.TemporaryDirectory(prefix="sb-concurrency-") as name:
        tmp = Path(name)
        (tmp / "graphs").mkdir()
        (tmp / "graphs" / f"{AGENT}.yaml").write_text(GRAPH, encoding="utf-8")
        llm_port, port = _free_port(), _free_port()
        llm_base, base = f"http://127.0.0.1:{llm_port}", f"http://127.0.0.1:{port}"
        env = _service_env(tmp, settings, llm_base)
        llm_args = ("-m", "benchmarks.llm_standin", "--port", str(llm_port))
        workers = _workers()
        serve_args = (
            *(*SWITCHBOARD, "serve", "--port", str(port), "--log-level", "warning"),
            *("--workers", str(workers)),
        )
        async with (
            _process(llm_args, env, tmp / "llm.log", None, "LLM stand-in") as llm,
            _process(serve_args, env, tmp / "serve.log", None, "service") as server,
        ):
            await asyncio.gather(
                _wait_healthy(llm, f"{llm_base}/healthz", "LLM stand-in"),
                _wait_healthy(server, f"{base}/healthz", "service"),
            )
            async with httpx.AsyncClient(timeout=30) as http:
                r = await http.post(
                    f"{base}/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}
                )
                r.raise_for_status()
                token = str(r.json()["access_token"])
            if not settings.quick:  # first compile and connections, not reported
                await _load(base, token, 1, 1, settings.seed, tmp, env)
            rows = []
            for n in sizes:
                rss_before = tree_rss_mb(server.proc.pid)
                log_at = server.log.stat().st_size
                pids = {"server": server.proc.pid, "llm": llm.proc.pid}
                async with _profiled(server.proc.pid, n):
                    with Sampler(pids) as sampler:
                        loads = await _load(
                            base, token, n, turns, settings.seed, tmp, env, quick=settings.quick
                        )
                row = _summarise(n, loads, sampler, rss_before, turns)
                problems = _log_problems(server.log, log_at)
                if problems:
                    row["server_log_problems"] = problems
                rows.append(row)
                if server.proc.returncode is not None:
                    raise RuntimeError(f"the service died during N={n}:\n{server.tail()}")
    _degradation(rows)
    return {
        "backends": "Redis checkpointer and live feed, SQLite call records, recording on",
        "service_workers": workers,
        "providers": {
            "vad": "energy stand-in on synthetic tone bursts (runtime.voice.providers.standin)",
            "stt_final_after_end_of_speech_ms": standin.STT_FINAL_S * 1000,
            "llm_first_token_ms": llm_standin.FIRST_TOKEN_S * 1000,
            "llm_token_interval_ms": llm_standin.TOKEN_INTERVAL_S * 1000,
            "tts_first_chunk_ms": standin.TTS_FIRST_CHUNK_S * 1000,
            "call_sentiment": "offline lexicon (VADER) when a call ends",
        },
        "script": {
            "turns_per_call": turns,
            "caller_speech_s": 1.0,
            "end_of_turn_ms": END_OF_TURN_MS,
            "audio": "20 ms frames paced in real time, silence between turns",
            "call_starts": f"spread over max({QUICK_RAMP_S if settings.quick else RAMP_S:g} s, "
            f"N / {MAX_STARTS_PER_S:g} s)",
            "latency": "end of caller audio -> first agent audio byte, at the client",
        },
        "cpu_pct_note": "100 = one core fully busy",
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "goal": GOAL,
        "results": rows,
        "goal_met": _goal_met(rows),
    }


def _goal_met(rows: list[dict[str, Any]]) -> bool | None:
    """None when the goal's N was not run."""
    row = next((r for r in rows if r["calls"] == GOAL["calls"]), None)
    if row is None:
        return None
    p95 = row.get("degradation_vs_n1_pct", {}).get("p95")
    return p95 is not None and p95 < GOAL["p95_degradation_pct_max"] and row["errors"] == 0
